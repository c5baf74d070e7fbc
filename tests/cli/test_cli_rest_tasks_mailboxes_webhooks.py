"""`meshagent-trio scheduled-task …`, `mailbox …` and `webhook …` against the local server:
each command end to end with what it wrote read back, `-o json` parsed, and the errors of each
group (unknown ids, bad files, a missing room); webhooks also deliver `room.started`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
import trio

from clirun import CliResult, assert_one_line_error
from webhook_receiver import webhook_receiver


TASK = """\
kind: ScheduledTask
metadata: {name: nightly}
schedule: "0 3 * * *"
queue: {name: jobs, payload: {do: report}}
"""


def create_room(server: Any, room: str) -> None:
    from meshagent_trio import Meshagent

    async def create() -> None:
        async with Meshagent(base_url=server.api_url, token=server.api_key) as api:
            await api.create_room(project_id=server.credentials.project_id, name=room, if_not_exists=True)

    trio.run(create)


# --- scheduled tasks -------------------------------------------------------------------------


def test_a_scheduled_task_round_trip(cli: Callable[..., CliResult], cli_env: Any, room_name: str, tmp_path: Path) -> None:
    create_room(cli_env, room_name)
    spec = tmp_path / "task.yaml"
    spec.write_text(TASK)
    added = cli("scheduled-task", "add", "--room", room_name, "--file", str(spec))
    assert added.exit_code == 0, added
    task_id = added.stdout.strip()
    assert added.stderr == f"created scheduled task {task_id}\n"

    listed = cli("scheduled-task", "list", "-r", room_name, "-o", "json").json()
    assert [(t["id"], t["schedule"], t["queue_name"], t["active"], t["spec"]["queue"]["payload"]) for t in listed] == [
        (task_id, "0 3 * * *", "jobs", True, {"do": "report"})
    ]
    table = cli("scheduled-task", "list", "--room", room_name)
    assert task_id in table.stdout and "queue" in table.stdout and "0 3 * * *" in table.stdout, table
    assert [t["id"] for t in cli("scheduled-task", "list", "--id", task_id, "-o", "json").json()] == [task_id]

    spec.write_text(TASK.replace('"0 3 * * *"', '"30 minutes"') + "active: false\n")
    updated = cli("scheduled-task", "update", task_id, "-f", str(spec))
    assert updated.exit_code == 0, updated
    [task] = cli("scheduled-task", "list", "--task-id", task_id, "-o", "json").json()
    assert task["schedule"] == "30 minutes" and task["active"] is False
    assert [t["id"] for t in cli("scheduled-task", "list", "--room", room_name, "--inactive", "-o", "json").json()] == [task_id]
    assert cli("scheduled-task", "list", "--room", room_name, "--active", "-o", "json").json() == []

    runs = cli("scheduled-task", "runs", task_id, "-o", "json")
    assert runs.exit_code == 0 and runs.json() == [], runs
    assert cli("scheduled-task", "runs", task_id).stdout == "no runs yet\n"

    assert cli("scheduled-task", "delete", task_id).exit_code == 0
    assert cli("scheduled-task", "list", "--room", room_name, "-o", "json").json() == []
    for command in (("runs", task_id), ("delete", task_id), ("update", task_id, "-f", str(spec))):
        assert_one_line_error(cli("scheduled-task", *command), 1, f"no scheduled task {task_id!r}")


def test_scheduled_task_errors(cli: Callable[..., CliResult], room_name: str, tmp_path: Path) -> None:
    spec = tmp_path / "task.yaml"
    spec.write_text(TASK)
    assert_one_line_error(cli("scheduled-task", "add", "-f", str(spec)), 2, "--room", "MESHAGENT_ROOM")
    assert_one_line_error(cli("scheduled-task", "add", "-r", room_name, "-f", str(tmp_path / "none.yaml")), 2, "--file", "none.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("schedule: {\n")
    assert_one_line_error(cli("scheduled-task", "add", "-r", room_name, "-f", str(broken)), 2, "broken.yaml")
    often = tmp_path / "often.yaml"
    often.write_text(TASK.replace('"0 3 * * *"', '"* * * * *"'))
    assert_one_line_error(cli("scheduled-task", "add", "-r", room_name, "-f", str(often)), 1, "often.yaml", "15 minutes")
    assert_one_line_error(cli("scheduled-task", "add", "-r", room_name, "-f", str(spec)), 1, room_name)  # no such room
    assert_one_line_error(cli("scheduled-task", "list", "--room", room_name), 1, room_name)
    assert_one_line_error(cli("scheduled-task", "list", "--active", "--inactive"), 2, "--active")


# --- mailboxes -------------------------------------------------------------------------------


def test_a_mailbox_round_trip_with_a_delivery(cli: Callable[..., CliResult], cli_env: Any, room_name: str) -> None:
    address = f"{room_name}@example.com"
    created = cli("mailbox", "create", "--address", address, "--room", room_name, "-q", "mail", "-n", '{"team": "a"}')
    assert created.exit_code == 0 and created.stderr == f"created mailbox {address}\n", created
    assert_one_line_error(cli("mailbox", "create", "-a", address, "--room", room_name, "-q", "mail"), 1, "already in use", address)

    got = cli("mailbox", "get", address, "-o", "json").json()
    assert (got["room"], got["queue"], got["public"], got["annotations"]) == (room_name, "mail", False, {"team": "a"})
    assert address in cli("mailbox", "get", address).stdout
    assert address in [m["address"] for m in cli("mailbox", "list", "-o", "json").json()]
    assert [m["address"] for m in cli("mailbox", "list", "--room", room_name, "-o", "json").json()] == [address]
    assert address in cli("mailbox", "list", "--room", room_name).stdout

    assert cli("mailbox", "update", address, "-q", "inbox", "--public").exit_code == 0
    got = cli("mailbox", "get", address, "-o", "json").json()
    assert (got["room"], got["queue"], got["public"], got["annotations"]) == (room_name, "inbox", True, {"team": "a"})
    assert cli("mailbox", "update", address, "--private", "-n", "{}").exit_code == 0
    got = cli("mailbox", "get", address, "-o", "json").json()
    assert (got["queue"], got["public"], got["annotations"]) == ("inbox", False, {})

    # mail to the local server's stand-in for SMTP makes a delivery
    message = f"From: someone@example.org\r\nTo: {address}\r\nSubject: hi\r\nMessage-ID: <m1@example.org>\r\n\r\nhello\r\n"
    answer = httpx.post(
        f"{cli_env.api_url}/mail/{address}",
        content=message.encode(),
        headers={"Content-Type": "message/rfc822", "Authorization": f"Bearer {cli_env.api_key}"},
    )
    assert answer.status_code == 200, answer.text
    [delivery] = cli("mailbox", "deliveries", address, "-o", "json").json()
    assert delivery["message_id"] == "<m1@example.org>" and delivery["status"] == "delivered"
    assert cli("mailbox", "deliveries", address, "--status", "failed", "-o", "json").json() == []
    assert delivery["id"] in cli("mailbox", "deliveries", address).stdout
    assert cli("mailbox", "delivery", address, delivery["id"], "-o", "json").json()["id"] == delivery["id"]
    events = cli("mailbox", "delivery-events", address, delivery["id"], "-o", "json").json()
    assert [event["event_type"] for event in events] == ["accepted", "delivered"]
    assert "delivered" in cli("mailbox", "delivery-events", address, delivery["id"]).stdout
    assert_one_line_error(cli("mailbox", "delivery", address, "nope"), 1, "nope", address)
    assert_one_line_error(cli("mailbox", "deliveries", address, "--status", "lost"), 2, "--status")

    assert cli("mailbox", "delete", address).exit_code == 0
    assert address not in [m["address"] for m in cli("mailbox", "list", "-o", "json").json()]
    for command in (("get", address), ("delete", address), ("update", address, "-q", "x")):
        assert_one_line_error(cli("mailbox", *command), 1, f"no mailbox {address!r}")


def test_mailbox_usage_errors(cli: Callable[..., CliResult], room_name: str) -> None:
    assert_one_line_error(cli("mailbox", "create", "-a", "x@example.com", "-q", "mail"), 2, "--room")
    assert_one_line_error(cli("mailbox", "create", "-a", "x@example.com", "-q", "mail", "--room", room_name, "-n", "{bad"), 2, "--annotations")
    assert_one_line_error(cli("mailbox", "create", "-a", "x@example.com", "--room", room_name), 2, "--queue")


# --- webhooks --------------------------------------------------------------------------------


def test_a_webhook_round_trip_and_delivery(cli: Callable[..., CliResult], cli_env: Any, room_name: str) -> None:
    with webhook_receiver() as receiver:
        created = cli("webhook", "create", "--url", receiver.url, "--events", "room.started", "--name", "test", "-o", "json")
        assert created.exit_code == 0, created
        webhook = created.json()
        try:
            assert (webhook["name"], webhook["url"], webhook["events"]) == ("test", receiver.url, ["room.started"])
            assert webhook["id"] in [w["id"] for w in cli("webhook", "list", "-o", "json").json()]
            assert webhook["id"] in cli("webhook", "list").stdout
            assert cli("webhook", "get", webhook["id"], "-o", "json").json() == webhook
            trio.run(_join_and_wait, cli_env, room_name, receiver)

            updated = cli("webhook", "update", webhook["id"], "--events", "room.started,room.ended", "--description", "both", "-o", "json")
            assert updated.exit_code == 0, updated
            got = cli("webhook", "get", webhook["id"], "-o", "json").json()
            assert (got["events"], got["description"], got["url"], got["name"]) == (["room.started", "room.ended"], "both", receiver.url, "test")
        finally:
            deleted = cli("webhook", "delete", webhook["id"])
        assert deleted.exit_code == 0, deleted
    assert webhook["id"] not in [w["id"] for w in cli("webhook", "list", "-o", "json").json()]
    for command in (("get", webhook["id"]), ("delete", webhook["id"]), ("update", webhook["id"], "--name", "x")):
        assert_one_line_error(cli("webhook", *command), 1, f"no webhook {webhook['id']!r}")


async def _join_and_wait(server: Any, room: str, receiver: Any) -> None:
    from meshagent_trio import RoomClient

    async with RoomClient.connect(room, server.token(room, name="joiner"), connect_timeout=15):
        with trio.fail_after(15):
            while True:
                bodies = [json.loads(request.body) for request in receiver.taken()]
                if any(body["event"] == "room.started" and body["data"]["room_name"] == room for body in bodies):
                    return
                await trio.sleep(0.05)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("webhook", "create", "--url", "ftp://example.com"), "--url"),
        (("webhook", "create", "--url", "http://example.com", "--events", "room.exploded"), "--events"),
        (("webhook", "create"), "--url"),
    ],
)
def test_webhook_usage_errors(cli: Callable[..., CliResult], args: tuple[str, ...], fragment: str) -> None:
    assert_one_line_error(cli(*args), 2, fragment)
