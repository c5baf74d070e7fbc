"""`meshagent-trio room service`: list, describe and restart real room services of the session's
local server: a local command service (`exec sleep 60`, started by the server as a child process
when the room's session starts) and an external one (a webhook receiver), stored through REST
before a participant (in a thread of its own) holds the session open."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import trio

from clirun import CliResult, assert_one_line_error
from meshagent_core.tokens import ApiScope, StorageGrant
from meshagent_trio import Meshagent, connect
from meshagent_trio.testing import InProcessServer
from beside import in_background
from webhook_receiver import webhook_receiver


def add_room_service(server: InProcessServer, room: str, spec: dict[str, Any]) -> str:
    async def create() -> str:
        async with Meshagent(base_url=server.api_url, token=server.api_key) as api:
            return await api.create_room_service(project_id=server.credentials.project_id, room_name=room, service=spec)

    return trio.run(create)


@contextmanager
def session(server: InProcessServer, room: str) -> Iterator[None]:
    """A participant in `room` for the block, so that its session (and its services) runs."""

    async def stay(task_status: Any) -> None:
        async with connect(server.room_url(room), server.token(room, name="keeper")):
            task_status.started()
            await trio.sleep_forever()

    with in_background(stay):
        yield


def until(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_list_describe_and_restart(cli: Callable[..., CliResult], cli_env: InProcessServer, room_name: str) -> None:
    with webhook_receiver() as receiver:
        local = add_room_service(cli_env, room_name, {"version": "v1", "kind": "Service", "metadata": {"name": "sleeper"}, "container": {"image": "", "command": "exec sleep 60"}})
        outside = add_room_service(cli_env, room_name, {"version": "v1", "kind": "Service", "metadata": {"name": "outside"}, "external": {"url": receiver.url}})
        with session(cli_env, room_name):
            listed = cli("room", "service", "list", "--room", room_name, "-o", "json")
            assert listed.exit_code == 0, listed
            answer = listed.json()
            assert {service["metadata"]["name"]: service["id"] for service in answer["services"]} == {"sleeper": local, "outside": outside}
            assert set(answer["service_states"]) == {local, outside}
            assert answer["service_states"][local]["service_id"] == local

            table = cli("room", "services", "list", "--room", room_name)
            assert table.exit_code == 0 and table.stderr == "", table
            header, *rows = table.stdout.splitlines()
            assert header.split()[:5] == ["id", "name", "image", "state", "ports"]
            assert sorted(row.split()[1] for row in rows) == ["outside", "sleeper"]

            def started() -> Any:  # "starting" until its well-known answers, which `sleep` never does
                described = cli("room", "service", "describe", "--room", room_name, "--name", "sleeper", "-o", "json").json()
                return described if described["state"]["container_id"] else None

            described = until(started)
            assert described["service"]["id"] == local and described["service"]["container"]["command"] == "exec sleep 60"
            assert described["state"]["restart_count"] == 0
            pid = described["state"]["container_id"]

            readable = cli("room", "service", "describe", "--room", room_name, "--id", local)
            assert readable.exit_code == 0 and "sleeper" in readable.stdout and pid in readable.stdout, readable
            assert "events" in readable.stdout and "Started" in readable.stdout

            restarted = cli("room", "service", "restart", "--room", room_name, "--name", "sleeper")
            assert restarted.exit_code == 0 and restarted.stdout == "", restarted
            assert restarted.stderr == f"restart requested: sleeper ({local})\n"

            def started_again() -> Any:
                state = cli("room", "service", "describe", "--room", room_name, "--id", local, "-o", "json").json()["state"]
                return state if state["container_id"] not in (None, pid) else None

            state = until(started_again)
            assert state["restart_count"] == 1 and "Restarting" in [event["reason"] for event in state["events"]]

            refused = cli("room", "service", "restart", "--room", room_name, "--id", outside)
            assert_one_line_error(refused, 1, "meshagent-trio room service restart: error:")


def test_unknown_services_and_usage_errors(cli: Callable[..., CliResult], room_name: str) -> None:
    assert cli("room", "service", "list", "--room", room_name, "-o", "json").json() == {"services": [], "service_states": {}}
    assert cli("room", "service", "list", "--room", room_name).stdout == "no services in this room\n"
    assert_one_line_error(cli("room", "service", "describe", "--room", room_name, "--name", "nope"), 1, "no service 'nope'")
    assert_one_line_error(cli("room", "service", "restart", "--room", room_name, "--id", "nope"), 1, "no service 'nope'")
    assert_one_line_error(cli("room", "service", "describe", "--room", room_name), 2, "exactly one of --id and --name")
    assert_one_line_error(cli("room", "service", "restart", "--room", room_name, "--id", "a", "--name", "b"), 2, "exactly one")
    assert_one_line_error(cli("room", "service", "list"), 2, "--room")


def test_no_permission(cli: Callable[..., CliResult], cli_env: InProcessServer, monkeypatch: Any, room_name: str) -> None:
    monkeypatch.delenv("MESHAGENT_API_KEY")
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope(storage=StorageGrant())))
    assert_one_line_error(cli("room", "service", "list"), 1, "meshagent-trio room service list: error:")
    assert_one_line_error(cli("room", "service", "restart", "--name", "x"), 1, "meshagent-trio room service restart: error:")
