"""The official `Meshagent` client (0.56, out of process) against our server's scheduled-task
routes (protocol/rest.md §20): every method, with the pages and filters, the runs of a task our
server fired (its clock held by the test), and the errors as the official client raises them.
One run of `official_scripts/rest_calls.py`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_trio.server import Credentials, Server, ServerConfig
from official_rest import official_rest

pytestmark = pytest.mark.interop

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc).timestamp()
HOUR = 3600.0


def spec(schedule: str = "0 * * * *", queue: str = "jobs", **fields: Any) -> dict[str, Any]:
    return {"schedule": schedule, "queue": {"name": queue, "payload": {"action": "sync"}}, **fields}


def moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture
async def server(tmp_path: Path, credentials: Credentials, nursery: trio.Nursery) -> AsyncIterator[Server]:
    server = Server(ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, clock=lambda: T0))
    await nursery.start(server.serve)
    yield server


async def test_the_official_client_with_scheduled_tasks(official_python: str, server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    base_url = f"http://127.0.0.1:{server.port}"
    async with Meshagent(base_url=base_url, token=credentials.api_key) as client:
        lobby = await client.create_room(project_id=own, name="lobby")
        fired_task = await client.create_scheduled_task(project_id=own, room_name="lobby", spec=spec(queue="fired"))
    fired = [run for hour in range(2) for run in await server.scheduler.tick(T0 + 1800 + hour * HOUR)]
    assert len(fired) == 2
    on_project = {"project_id": own}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("create_scheduled_task", {**on_project, "room_name": "lobby", "spec": spec(metadata={"name": "hourly", "annotations": {"a": "b"}})}),
        ("create_scheduled_task", {**on_project, "room_name": "lobby", "spec": spec("2 hours", active=False, once=True)}),
        ("list_scheduled_tasks", on_project),
        ("list_scheduled_tasks_page", {**on_project, "page_size": 2}),
        ("list_scheduled_tasks_page", {**on_project, "page_size": 2, "continuation_token": "$3.continuation_token"}),
        ("list_scheduled_tasks_page", {**on_project, "room_id": lobby.id, "page_size": 1, "offset": 2}),
        ("list_scheduled_tasks", {**on_project, "active": False}),
        ("list_scheduled_tasks", {**on_project, "task_id": fired_task}),
        ("update_scheduled_task", {**on_project, "task_id": "$2.2.id", "spec": spec("0 0 * * *", queue="nightly")}),
        ("list_scheduled_tasks", {**on_project, "task_id": "$2.2.id"}),
        ("list_scheduled_task_runs", {**on_project, "task_id": fired_task}),
        ("list_scheduled_task_runs_page", {**on_project, "task_id": fired_task, "limit": 1, "offset": 1}),
        ("delete_scheduled_task", {**on_project, "task_id": "$2.2.id"}),
        ("list_scheduled_tasks", on_project),
        ("create_scheduled_task", {**on_project, "room_name": "nowhere", "spec": spec()}),
        ("delete_scheduled_task", {**on_project, "task_id": "missing"}),
        ("list_scheduled_task_runs", {**on_project, "task_id": "missing"}),
        ("list_scheduled_tasks", {**on_project, "room_id": "gone"}),
        ("create_scheduled_task", {**on_project, "room_name": "lobby", "spec": {"schedule": "0 * * * *", "container": {"image": "busybox"}}}),
        ("list_scheduled_tasks", {**on_project, "filter": "hourly"}),
        ("create_scheduled_task", {**on_project, "room_name": "lobby", "spec": spec("*/5 * * * *")}),
    ]
    with trio.fail_after(180):
        answers = await official_rest(official_python, base_url, credentials.api_key, calls)
    returned = [answer.get("returned") for answer in answers]
    assert all("raised" not in answer for answer in answers[:14]), answers[:14]

    hourly, idle = returned[0], returned[1]
    assert isinstance(hourly, str) and isinstance(idle, str)
    listed = returned[2]
    assert [t["id"] for t in listed] == [fired_task, hourly, idle]
    first = listed[1]
    assert {k: first[k] for k in ("project_id", "room_id", "room_name", "schedule", "active", "once", "queue_name", "payload", "annotations")} == {
        "project_id": own,
        "room_id": lobby.id,
        "room_name": "lobby",
        "schedule": "0 * * * *",
        "active": True,
        "once": False,
        "queue_name": "jobs",
        "payload": {"action": "sync"},
        "annotations": {"a": "b"},
    }
    assert first["spec"] == {"version": "v1", "kind": "ScheduledTask", "metadata": {"name": "hourly", "annotations": {"a": "b"}}, **spec(), "active": True, "once": False}
    assert (listed[2]["active"], listed[2]["once"], listed[2]["schedule"]) == (False, True, "2 hours")
    assert listed[0]["last_status"] == "submitted" and listed[0]["last_run_id"] == fired[-1]
    assert moment(listed[0]["last_start_time"]) == T0 + 1800 + HOUR

    page, rest = returned[3], returned[4]
    assert [t["id"] for t in page["tasks"]] == [fired_task, hourly] and page["total"] == 3 and page["continuation_token"]
    assert [t["id"] for t in rest["tasks"]] == [idle] and rest["total"] == 3 and "continuation_token" not in rest
    assert [t["id"] for t in returned[5]["tasks"]] == [idle] and returned[5]["total"] == 3
    assert [t["id"] for t in returned[6]] == [idle]
    assert [t["id"] for t in returned[7]] == [fired_task]
    assert returned[8] is None
    [updated] = returned[9]
    assert (updated["schedule"], updated["queue_name"], updated["active"], updated["once"]) == ("0 0 * * *", "nightly", True, False)

    runs = returned[10]
    assert [int(r["id"]) for r in runs] == fired[::-1]
    assert [moment(r["scheduled_time"]) for r in runs] == [T0 + 1800 + HOUR, T0 + 1800]
    assert all((r["status"], r["target"], r["task_id"], r["room_id"], r["room_name"]) == ("submitted", "queue", fired_task, lobby.id, "lobby") for r in runs)
    assert [int(r["id"]) for r in returned[11]["runs"]] == [fired[0]] and returned[11]["total"] == 2
    assert returned[12] is None
    assert [t["id"] for t in returned[13]] == [fired_task, hourly]

    def raised(index: int, kind: str, *words: str) -> None:
        answer = answers[index]
        assert answer.get("raised") == kind and all(word in answer["message"] for word in words), answer

    raised(14, "NotFoundError", "Status=404", "room 'nowhere' does not exist")
    raised(15, "NotFoundError", "Status=404", "scheduled task 'missing' does not exist")
    raised(16, "NotFoundError", "Status=404", "scheduled task 'missing' does not exist")
    raised(17, "NotFoundError", "Status=404", "room id 'gone' does not exist")
    raised(18, "ServerError", "Status=501", "spec.container: the local server runs no containers")
    raised(19, "ServerError", "Status=501", "filter is not implemented")
    raised(20, "ValidationError", "no more frequently than every 15 minutes")  # refused by the official model, never sent
