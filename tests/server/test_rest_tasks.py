"""Scheduled tasks over REST (protocol/rest.md §20) against a real server on a real socket, with
our `Meshagent` client: create, update, delete, the project's cursor pages and a room's offset
pages with their filters, runs pages, and every refusal (404, 400 naming the field, 403, 501).
Firing is tested in test_scheduler.py."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import msgspec
import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import ROUTES, NotFoundError, PermissionDeniedError, RestError, ValidationErrorResponse, read_answer
from meshagent_core.rest.tasks import ScheduledTaskMetadata, ScheduledTaskQueueSpec, ScheduledTaskSpec
from meshagent_trio.server import Credentials, Server, ServerConfig

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc).timestamp()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat()


def spec(schedule: str = "0 * * * *", queue: str = "jobs", **fields: Any) -> dict[str, Any]:
    return {"schedule": schedule, "queue": {"name": queue, "payload": {"action": "sync"}}, **fields}


@pytest.fixture
async def server(tmp_path: Path, credentials: Credentials, nursery: trio.Nursery) -> AsyncIterator[Server]:
    server = Server(ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, clock=lambda: T0))
    await nursery.start(server.serve)
    yield server


def api(server: Server, token: str | None = None) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=token or server.config.credentials.api_key)


async def test_create_list_update_delete(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server) as client:
        lobby = await client.create_room(project_id=own, name="lobby")
        await client.create_room(project_id=own, name="hall")
        typed = ScheduledTaskSpec(
            schedule="30 9 * * 1-5",
            queue=ScheduledTaskQueueSpec(name="reports", payload={"kind": "daily"}, storage_write_path="reports/out"),
            metadata=ScheduledTaskMetadata(name="daily", annotations={"team": "a"}),
        )
        daily = await client.create_scheduled_task(project_id=own, room_name="lobby", spec=typed)
        hourly = await client.create_scheduled_task(project_id=own, room_name="lobby", spec=spec())
        idle = await client.create_scheduled_task(project_id=own, room_name="hall", spec=spec("2 hours", active=False))

        tasks = {task.id: task for task in await client.list_scheduled_tasks(project_id=own)}
        assert list(tasks) == [daily, hourly, idle]  # in creation order
        first = tasks[daily]
        assert (first.project_id, first.room_id, first.room_name, first.schedule, first.active, first.once) == (own, lobby.id, "lobby", "30 9 * * 1-5", True, False)
        assert (first.queue_name, first.payload, first.storage_write_path, first.annotations) == ("reports", {"kind": "daily"}, "reports/out", {"team": "a"})
        assert first.spec == typed and first.last_run_id is None and first.container is None
        assert first.next_run_time == iso(datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc).timestamp())  # 1 March 2026 is a Sunday
        assert tasks[hourly].next_run_time == iso(T0 + 1800)
        assert (tasks[idle].active, tasks[idle].next_run_time) == (False, None)

        # the project's cursor pages
        page = await client.list_scheduled_tasks_page(project_id=own, page_size=2)
        assert [t.id for t in page.tasks] == [daily, hourly] and page.total == 3 and page.continuation_token
        rest = await client.list_scheduled_tasks_page(project_id=own, page_size=2, continuation_token=page.continuation_token)
        assert [t.id for t in rest.tasks] == [idle] and rest.continuation_token is None
        # a room's offset pages
        in_lobby = await client.list_scheduled_tasks_page(project_id=own, room_id=lobby.id, page_size=1, offset=1)
        assert [t.id for t in in_lobby.tasks] == [hourly] and in_lobby.total == 2 and in_lobby.continuation_token is None
        # filters
        assert [t.id for t in await client.list_scheduled_tasks(project_id=own, active=False)] == [idle]
        assert [t.id for t in await client.list_scheduled_tasks(project_id=own, active=True)] == [daily, hourly]
        assert [t.id for t in await client.list_scheduled_tasks(project_id=own, task_id=hourly)] == [hourly]

        await client.update_scheduled_task(project_id=own, task_id=idle, spec=spec("0 0 * * *", queue="nightly", once=True))
        [updated] = await client.list_scheduled_tasks(project_id=own, task_id=idle)
        assert (updated.schedule, updated.queue_name, updated.active, updated.once, updated.room_name) == ("0 0 * * *", "nightly", True, True, "hall")
        assert updated.next_run_time == iso(datetime(2026, 3, 2, tzinfo=timezone.utc).timestamp())

        page = await client.list_scheduled_task_runs_page(project_id=own, task_id=hourly)
        assert (page.runs, page.total) == ([], 0)
        await client.delete_scheduled_task(project_id=own, task_id=hourly)
        assert [t.id for t in await client.list_scheduled_tasks(project_id=own)] == [daily, idle]
        with pytest.raises(NotFoundError, match=f"scheduled task '{hourly}' does not exist"):
            await client.delete_scheduled_task(project_id=own, task_id=hourly)


async def test_runs_are_listed_newest_first_in_pages(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server) as client:
        await client.create_room(project_id=own, name="lobby")
        task_id = await client.create_scheduled_task(project_id=own, room_name="lobby", spec=spec())
        fired = [run for hour in range(3) for run in await server.scheduler.tick(T0 + 1800 + hour * 3600)]
        assert len(fired) == 3
        page = await client.list_scheduled_task_runs_page(project_id=own, task_id=task_id, limit=2, offset=0)
        assert [int(r.id) for r in page.runs] == fired[::-1][:2] and page.total == 3
        assert [r.scheduled_time for r in page.runs] == [iso(T0 + 1800 + 7200), iso(T0 + 1800 + 3600)]
        runs = await client.list_scheduled_task_runs(project_id=own, task_id=task_id, limit=2, offset=2)
        assert [int(r.id) for r in runs] == [fired[0]] and runs[0].status == "submitted"


async def test_unknown_things_are_404_naming_them(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server) as client:
        other = await client.create_project(name="other")
        await client.create_room(project_id=own, name="lobby")
        task_id = await client.create_scheduled_task(project_id=own, room_name="lobby", spec=spec())
        with pytest.raises(NotFoundError, match="room 'nowhere' does not exist"):
            await client.create_scheduled_task(project_id=own, room_name="nowhere", spec=spec())
        with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
            await client.create_scheduled_task(project_id="nope", room_name="lobby", spec=spec())
        for call in (client.update_scheduled_task, client.delete_scheduled_task, client.list_scheduled_task_runs):
            arguments: dict[str, Any] = {"spec": spec()} if call == client.update_scheduled_task else {}
            with pytest.raises(NotFoundError, match="scheduled task 'missing' does not exist"):
                await call(project_id=own, task_id="missing", **arguments)
            with pytest.raises(NotFoundError, match=f"scheduled task '{task_id}' does not exist"):  # not in that project
                await call(project_id=other.id, task_id=task_id, **arguments)
        with pytest.raises(NotFoundError, match="room id 'gone' does not exist"):
            await client.list_scheduled_tasks(project_id=own, room_id="gone")


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (spec("61 * * * *"), "spec.schedule: unsupported schedule: 61 * * * *"),
        (spec("every day"), "spec.schedule: unsupported schedule"),
        (spec(""), "spec.schedule: schedule must not be empty"),
        (spec("*/5 * * * *"), "spec.schedule: '\\*/5 \\* \\* \\* \\*' runs more often than every 15 minutes"),
        (spec("10 minutes"), "runs more often than every 15 minutes"),
        (spec(queue=" "), "spec.queue.name must not be empty"),
        ({"schedule": "0 * * * *"}, "spec: a scheduled task has exactly one of queue and container"),
        ({**spec(), "container": {"image": "x"}}, "exactly one of queue and container"),
        ({**spec(), "colour": "blue"}, "Object contains unknown field `colour` - at `\\$.spec`"),
        ({**spec(), "schedule": 5}, "Expected `str`, got `int` - at `\\$.spec.schedule`"),
    ],
)
async def test_invalid_specs_are_400_naming_the_field(server: Server, credentials: Credentials, bad: dict[str, Any], field: str) -> None:
    own = credentials.project_id
    async with api(server) as client:
        await client.create_room(project_id=own, name="lobby")
        task_id = await client.create_scheduled_task(project_id=own, room_name="lobby", spec=spec())
        for route, arguments in (("create_scheduled_task", {"room_name": "lobby"}), ("update_scheduled_task", {"task_id": task_id})):
            with pytest.raises(ValidationErrorResponse, match=field):
                await send_as_is(server, route, {"project_id": own, **arguments}, {"spec": bad})
        with pytest.raises(ValueError):  # our client checks a spec before sending it, as the official one does
            await client.create_scheduled_task(project_id=own, room_name="lobby", spec=bad)
        assert len(await client.list_scheduled_tasks(project_id=own)) == 1


async def send_as_is(server: Server, route_name: str, path_arguments: dict[str, str], body: dict[str, Any]) -> Any:
    """Send `body` as it is (past our client's checks and Structs) to a route; its answer."""
    route = ROUTES[route_name]
    path = route.build(**path_arguments, spec=spec()).path
    async with httpx.AsyncClient() as http:
        response = await http.request(
            route.verb,
            f"http://127.0.0.1:{server.port}{path}",
            content=msgspec.json.encode(body),
            headers={"Authorization": f"Bearer {server.config.credentials.api_key}", "Content-Type": "application/json"},
        )
    return read_answer(route, response.status_code, response.content)


async def test_what_the_local_server_does_not_do_is_501(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server) as client:
        await client.create_room(project_id=own, name="lobby")
        container = {"schedule": "0 * * * *", "container": {"image": "busybox", "command": "date"}}
        with pytest.raises(RestError, match="Status=501.*spec.container: the local server runs no containers") as info:
            await client.create_scheduled_task(project_id=own, room_name="lobby", spec=container)
        assert info.value.http_status == 501
        with pytest.raises(RestError, match="Status=501.*filter is not implemented"):
            await client.list_scheduled_tasks(project_id=own, filter="daily")


async def test_another_projects_key_is_403(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server) as owner:
        other = await owner.create_project(name="other")
        account = await owner.create_service_account(project_id=other.id, name="bot")
        key = await owner.create_api_key(project_id=other.id, service_account_id=account.id, name="k", description="")
        await owner.create_room(project_id=own, name="lobby")
        task_id = await owner.create_scheduled_task(project_id=own, room_name="lobby", spec=spec())
    async with api(server, key.value) as stranger:
        with pytest.raises(PermissionDeniedError, match="another project"):
            await stranger.create_scheduled_task(project_id=own, room_name="lobby", spec=spec())
        for call, arguments in (
            (stranger.list_scheduled_tasks, {}),
            (stranger.list_scheduled_task_runs, {"task_id": task_id}),
            (stranger.update_scheduled_task, {"task_id": task_id, "spec": spec()}),
            (stranger.delete_scheduled_task, {"task_id": task_id}),
        ):
            with pytest.raises(PermissionDeniedError, match="another project"):
                await call(project_id=own, **arguments)
        assert await stranger.list_scheduled_tasks(project_id=other.id) == []
