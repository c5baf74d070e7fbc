"""Room services on the local server (protocol/webhooks.md §8), with real parts: the server over
real sockets, services stored through REST with our `Meshagent` client, external services as a
real HTTP receiver, local services as real child processes (`tests/local_service_app.py`, a
ServiceHost in miniature), and the `services` toolkit through `room.services`."""

from __future__ import annotations

from meshagent_core.client.room import websocket_room_url

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from meshagent_core import ErrorCode, RoomException
from meshagent_core.client.rest import Meshagent
from meshagent_core.tokens import ApiScope, ServicesGrant, StorageGrant
from meshagent_core.webhooks import SIGNATURE_HEADER, verify
from meshagent_trio import connect
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.auth import verify_token
from meshagent_trio.server.process import LocalServerProcess
from meshagent_trio.server.services import local_service
from meshagent_trio.server.services.room_services import IMAGE_NOT_RUN
from meshagent_trio.server.services.service_calls import SERVICE_CLAIM
from meshagent_trio.server.services.supervisor import MAX_LINE, run_child

from roomtest import mint, room_url, running_server
from webhook_receiver import webhook_receiver

APP = Path(__file__).resolve().parents[1] / "local_service_app.py"
COMMAND = f"{shlex.quote(sys.executable)} {shlex.quote(str(APP))}"
WAIT = 30.0  # a Python child that imports our client starts in about a second; a busy machine is slower


def rest(server: Server) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=server.config.credentials.api_key)


def spec(name: str, **fields: Any) -> dict[str, Any]:
    return {"version": "v1", "kind": "Service", "metadata": {"name": name}, **fields}


async def add_room_service(server: Server, room: str, service: dict[str, Any]) -> str:
    async with rest(server) as api:
        return await api.create_room_service(project_id=server.config.credentials.project_id, room_name=room, service=service)


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


async def until(predicate: Any, timeout: float = WAIT, what: str = "condition") -> Any:
    with trio.move_on_after(timeout):
        while True:
            value = await predicate()
            if value:
                return value
            await trio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


async def started_files(room: Any) -> dict[int, dict[str, Any]]:
    """The `started-<pid>.json` files of the test service, by pid."""
    found = {}
    for entry in await room.storage.list(path=""):
        if entry.name.startswith("started-"):
            found[int(entry.name[len("started-") : -len(".json")])] = json.loads((await room.storage.download(path=entry.name)).data)
    return found


async def state_of(room: Any, service_id: str) -> Any:
    return (await room.services.list()).service_states[service_id]


async def test_an_external_service_is_called_into_the_room_when_its_session_starts(server: Server, credentials: Credentials) -> None:
    secret = await server.control.webhooks.project_secret(credentials.project_id)
    with webhook_receiver() as receiver:
        base = receiver.url + "/base"
        async with rest(server) as api:
            with_port = await api.create_service(
                project_id=credentials.project_id,
                service=spec("ext", external={"url": base}, ports=[{"num": "*", "endpoints": [{"path": "/agent", "meshagent": {"identity": "ext-bot", "api": {"storage": {}}}}]}]),
            )
        bare = await add_room_service(server, "test-room", spec("bare-ext", external={"url": base + "/"}))
        await add_room_service(server, "other-room", spec("elsewhere", external={"url": base + "/other"}))
        assert receiver.taken() == []  # storing runs nothing

        async with connect(room_url(server), mint(credentials, name="alice")) as room:
            requests = await receiver.wait_for(2)
            assert sorted(request.path for request in requests) == ["/base/", "/base/agent"]
            for request in requests:
                envelope = verify(request.body, request.headers[SIGNATURE_HEADER.lower()], secret, now=None)
                assert envelope["event"] == "room.call" and envelope["data"]["arguments"] == {}
                assert envelope["data"]["room_url"] == server.config.room_url("test-room")
            tokens = {r.path: verify_token(server.control.keys.ring, json.loads(r.body)["data"]["token"], now=None)[0] for r in requests}
            assert tokens["/base/agent"].name == "ext-bot" and tokens["/base/agent"].get_api_grant() == ApiScope(storage=StorageGrant())
            assert tokens["/base/"].name == "bare-ext" and tokens["/base/"].get_api_grant() == ApiScope.agent_default()
            assert tokens["/base/agent"].extra_payload[SERVICE_CLAIM] == with_port.id

            token = json.loads(next(r for r in requests if r.path == "/base/agent").body)["data"]["token"]
            async with connect(room_url(server), token) as called:
                await called.storage.upload(path="from-ext.txt", data=b"hi")
            assert await room.storage.exists(path="from-ext.txt")

            listed = await until(lambda: _all_settled(room), what="external states")
            assert [service.metadata.name for service in listed.services] == ["ext", "bare-ext"]
            for service_id in (with_port.id, bare):
                state = listed.service_states[service_id]
                assert state.state == "running" and state.last_start_error is None
                assert [event.reason for event in state.events] == ["Called"]
            with pytest.raises(RoomException) as refused:
                await room.services.restart(service_id=bare)
            assert refused.value.code == ErrorCode.SERVICE_RESTART_NOT_ALLOWED
        assert len(receiver.taken()) == 2  # the other room's service was not called


async def _all_settled(room: Any) -> Any:
    listed = await room.services.list()
    return listed if all(state.state not in ("starting", "stopped") for state in listed.service_states.values()) else None


async def test_a_refused_external_call_is_recorded_and_the_room_works(server: Server, credentials: Credentials) -> None:
    with webhook_receiver() as receiver:
        receiver.status = 500
        service_id = await add_room_service(server, "test-room", spec("refuses", external={"url": receiver.url}))
        async with connect(room_url(server), mint(credentials)) as room:
            state = await until(lambda: _failed(room, service_id), what="the failed state")
            assert "http status code: 500" in state.last_start_error and state.last_start_error_at
            assert [event.reason for event in state.events] == ["StartFailed"]
            await room.storage.upload(path="still-works.txt", data=b"x")


async def _failed(room: Any, service_id: str) -> Any:
    state = await state_of(room, service_id)
    return state if state.state == "failed" else None


async def test_a_local_service_runs_restarts_and_stops_with_its_session(server: Server, credentials: Credentials) -> None:
    server.services.service_only_grace = 0.3
    secret = await server.control.webhooks.project_secret(credentials.project_id)
    environment = [{"name": "EXTRA", "value": "extra value"}, {"name": "HELPER_TOKEN", "token": {"identity": "helper", "role": "user"}}]
    service_id = await add_room_service(server, "test-room", spec("local", container={"image": "", "command": COMMAND, "environment": environment}))
    room_dir = server.room("test-room").storage_dir

    async with connect(room_url(server), mint(credentials, name="alice")) as room:
        [(pid, seen)] = (await until(lambda: started_files(room), what="the service to join")).items()
        assert alive(pid) and alive(seen["grandchild"])
        assert seen["signed"] is True and seen["path"] == "/agent" and seen["arguments"] == {}
        assert seen["cwd"] == str(room_dir)
        env = seen["environment"]
        [session] = [s for s in await rest_sessions(server) if s.room_name == "test-room"]
        assert env["MESHAGENT_ROOM"] == "test-room" and env["MESHAGENT_PROJECT_ID"] == credentials.project_id
        assert env["MESHAGENT_SESSION_ID"] == session.id and env["MESHAGENT_HOST"] == "127.0.0.1"
        # A base the clients append /rooms/<name> to, as they read MESHAGENT_ROOM_URL.
        assert websocket_room_url(room_name="test-room", environ={"MESHAGENT_ROOM_URL": env["MESHAGENT_ROOM_URL"]}) == server.config.room_url("test-room")
        assert env["MESHAGENT_API_URL"] == f"http://{server.config.host}:{server.port}"
        assert env["EXTRA"] == "extra value" and env["MESHAGENT_API_KEY"] is None and env["MESHAGENT_SECRET"] is None
        helper, _ = verify_token(server.control.keys.ring, env["HELPER_TOKEN"], now=None)
        assert helper.name == "helper" and helper.role == "user" and helper.get_api_grant() == ApiScope.user_default()
        own, _ = verify_token(server.control.keys.ring, env["MESHAGENT_TOKEN"], now=None)
        assert own.name == "local" and own.get_api_grant() == ApiScope.agent_default()
        bot, _ = verify_token(server.control.keys.ring, seen["token"], now=None)
        assert bot.name == "local-bot" and bot.extra_payload[SERVICE_CLAIM] == service_id  # from the well-known answer
        assert secret

        listed = await room.services.list()
        [service] = listed.services
        assert service.id == service_id and service.container.command == COMMAND
        state = await until(lambda: _running(room, service_id, pid), what="running")
        assert state.restart_count == 0 and state.started_at and state.last_exit_code is None
        assert [port.num for port in state.status.ports] == [int(env["MESHAGENT_PORT"])]
        assert [event.reason for event in state.events] == ["Started", "Called"]

        # it crashes (exit 3): recorded, and it comes back
        await room.storage.upload(path="crash.txt", data=b"")
        crashed = await until(lambda: _exited(room, service_id, 3), what="the crash to be recorded")
        assert crashed.restart_count >= 1 and crashed.last_exit_at
        second = await until(lambda: _new_start(room, {pid}), what="the service to come back")
        await until(lambda: _gone(pid), timeout=5, what="process pid to die")
        await until(lambda: _gone(seen["grandchild"]), timeout=5, what="the grandchild to die")
        await until(lambda: _running(room, service_id, second), what="running again")

        # services.restart stops it and starts it at once; the log shows it
        async with room.developer.logs() as logs:
            before = (await state_of(room, service_id)).restart_count
            await room.services.restart(service_id=service_id)
            third = await until(lambda: _new_start(room, {pid, second}), what="the restarted service")
            await until(lambda: _gone(second), timeout=5, what="process second to die")
            lines = await _log_until(logs, lambda seen: {"a line on stderr", f"service up on port {third_port(seen)}"} <= {e["message"] for e in seen})
        restarted = await until(lambda: _running(room, service_id, third), what="running after the restart")
        assert restarted.restart_count == before + 1 and "Restarting" in [event.reason for event in restarted.events]
        assert any(line["message"] == "restarting (requested)" for line in lines)
        assert any(line["message"].startswith("service up on port ") and line["extra"]["stream"] == "stdout" for line in lines)
        assert any(line["message"] == "a line on stderr" and line["extra"]["stream"] == "stderr" for line in lines)
        assert all(line["extra"]["service_id"] == service_id for line in lines)
        third_grandchild = (await started_files(room))[third]["grandchild"]

    # alice left; only the service's participant is there, so the session ends and the process stops
    await until(lambda: _gone(third, third_grandchild), timeout=15, what="the process to stop when the session ended")
    assert server.room("test-room").participants == {}

    # a new session starts it again
    async with connect(room_url(server), mint(credentials, name="bob")) as room:
        fourth = await until(lambda: _new_start(room, {pid, second, third}), what="the service in the new session")
        assert alive(fourth)


async def rest_sessions(server: Server) -> list:
    async with rest(server) as api:
        return await api.list_active_sessions(project_id=server.config.credentials.project_id)


async def _running(room: Any, service_id: str, pid: int) -> Any:
    """The state once it is `running` with the process that wrote `started-<pid>.json` (or the
    shell that runs it) as its container id."""
    state = await state_of(room, service_id)
    seen = (await started_files(room)).get(pid, {})
    return state if state.state == "running" and state.container_id in (str(pid), str(seen.get("ppid"))) else None


async def _exited(room: Any, service_id: str, code: int) -> Any:
    state = await state_of(room, service_id)
    return state if state.last_exit_code == code and state.restart_count >= 1 else None


async def _new_start(room: Any, known: set[int]) -> int | None:
    fresh = set(await started_files(room)) - known
    return fresh.pop() if fresh else None


async def _gone(*pids: int) -> bool:
    return not any(alive(pid) for pid in pids)


async def _log_until(logs: Any, done: Any) -> list[dict[str, Any]]:
    """The developer log's entries until `done(entries so far)`."""
    entries: list[dict[str, Any]] = []
    with trio.fail_after(WAIT):
        async for event in logs:
            entries.append(event.data)
            if done(entries):
                return entries
    return entries


def third_port(entries: list[dict[str, Any]]) -> str:
    """The port of the process whose start the log shows last ("started process N on port P: …")."""
    starts = [e["message"] for e in entries if e["message"].startswith("started process ")]
    return starts[-1].split(" on port ")[1].split(":")[0] if starts else "?"


async def test_server_shutdown_stops_every_local_service(tmp_path: Path, credentials: Credentials) -> None:
    async with running_server(tmp_path / "data", credentials) as server:
        await add_room_service(server, "test-room", spec("local", container={"image": "", "command": COMMAND}))
        async with connect(room_url(server), mint(credentials)) as room:
            [(pid, seen)] = (await until(lambda: started_files(room), what="the service to join")).items()
            assert alive(pid) and alive(seen["grandchild"])
            grandchild = seen["grandchild"]
    # the server's nursery is done: the child is reaped; what it started dies with it
    await until(lambda: _gone(pid), timeout=5, what="process pid to die")
    await until(lambda: _gone(grandchild), timeout=5, what="the grandchild to die")


async def test_a_crash_loop_backs_off(server: Server, credentials: Credentials) -> None:
    service_id = await add_room_service(server, "test-room", spec("crashes", container={"image": "", "command": "echo bye; exit 7"}))
    async with connect(room_url(server), mint(credentials)) as room:
        await trio.sleep(2.2)  # back-off 0.5 + 1 s: at most three starts, not a spin
        state = await state_of(room, service_id)
        assert state.last_exit_code == 7 and 1 <= state.restart_count <= 3
        assert state.state in ("restarting", "starting", "running")
        exited = next(event for event in state.events if event.reason == "Exited")
        assert exited.count >= 2 and exited.last_timestamp > exited.first_timestamp


async def test_a_container_image_is_not_run_and_the_room_works(server: Server, credentials: Credentials) -> None:
    image = await add_room_service(server, "test-room", spec("imaged", container={"image": "registry.example/agent:1", "command": "run"}))
    secret = await add_room_service(
        server,
        "test-room",
        spec("secretive", container={"image": "", "command": "true", "run_as": {"email": "a@b.c"}, "environment": [{"name": "KEY", "secret": {"id": "s1"}}]}),
    )
    disabled = await add_room_service(server, "test-room", spec("off", enabled=False, container={"image": "", "command": "true"}))
    async with connect(room_url(server), mint(credentials)) as room:
        states = (await until(lambda: _all_settled(room), what="states")).service_states
        assert states[image].state == "failed" and states[image].last_start_error == IMAGE_NOT_RUN
        assert [event.reason for event in states[image].events] == ["StartFailed"]
        assert states[secret].state == "failed" and "does not provide secrets" in states[secret].last_start_error
        assert states[disabled].state == "disabled"
        for service_id in (image, disabled):
            with pytest.raises(RoomException) as refused:
                await room.services.restart(service_id=service_id)
            assert refused.value.code == ErrorCode.SERVICE_RESTART_NOT_ALLOWED
        await room.services.restart(service_id=secret)  # allowed: it is tried again, and fails again
        assert (await until(lambda: _failed(room, secret), what="failed again")).restart_count == 1
        with pytest.raises(RoomException) as unknown:
            await room.services.restart(service_id="no-such-service")
        assert unknown.value.code == ErrorCode.SERVICE_NOT_FOUND
        await room.storage.upload(path="works.txt", data=b"x")
        assert await room.storage.exists(path="works.txt")


async def test_a_service_that_never_answers_its_well_known_is_reported(server: Server, credentials: Credentials, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_service, "WELL_KNOWN_TIMEOUT", 0.5)
    ports = [{"num": "*", "endpoints": [{"path": "/agent", "meshagent": {"identity": "x"}}]}]
    service_id = await add_room_service(server, "test-room", spec("silent", ports=ports, container={"image": "", "command": "exec sleep 60"}))
    async with connect(room_url(server), mint(credentials)) as room:
        state = await until(lambda: _with_error(room, service_id), what="the error")
        assert "did not answer within 0.5 s" in state.last_start_error and state.state == "running"
        pid = int(state.container_id)
        assert alive(pid)
    await until(lambda: _gone(pid), timeout=15, what="the process to stop")


async def _with_error(room: Any, service_id: str) -> Any:
    state = await state_of(room, service_id)
    return state if state.last_start_error else None


async def test_services_grants(server: Server, credentials: Credentials) -> None:
    service_id = await add_room_service(server, "test-room", spec("idle"))
    no_services = ApiScope(storage=StorageGrant())
    async with connect(room_url(server), mint(credentials, scope=no_services)) as room:
        for call in (room.services.list(), room.services.restart(service_id=service_id)):
            with pytest.raises(RoomException) as refused:
                await call
            assert refused.value.code == ErrorCode.PERMISSION_DENIED
    async with connect(room_url(server), mint(credentials, scope=ApiScope(services=ServicesGrant(list=False)))) as room:
        with pytest.raises(RoomException, match="services.list") as refused:
            await room.services.list()
        assert refused.value.code == ErrorCode.PERMISSION_DENIED
        with pytest.raises(RoomException) as refused:
            await room.services.restart(service_id=service_id)
        assert refused.value.code == ErrorCode.SERVICE_RESTART_NOT_ALLOWED  # allowed to ask; nothing to restart
    async with connect(room_url(server), mint(credentials)) as room:
        listed = await room.services.list()
        assert listed.service_states[service_id].state == "idle"


# --- the supervisor on its own ------------------------------------------------------------------


async def test_output_lines_are_bounded_and_signals_read_as_a_shell_reports_them(tmp_path: Path) -> None:
    lines: list[tuple[str, str]] = []
    program = "import sys; sys.stdout.write('x' * 100000 + '\\nshort\\nno end'); sys.stderr.write('err\\n')"
    status = await run_child([sys.executable, "-c", program], cwd=tmp_path, env=dict(os.environ), on_output=lambda *line: lines.append(line))
    assert status == 0
    out = [line for stream, line in lines if stream == "stdout"]
    assert out == ["x" * MAX_LINE + " […]", "short", "no end"] and ("stderr", "err") in lines
    assert await run_child(["/bin/sh", "-c", "kill -9 $$"], cwd=tmp_path, env={}, on_output=lambda *_: None) == 137


async def test_a_cancelled_child_and_its_group_are_stopped(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            lambda task_status: run_child(
                ["/bin/sh", "-c", f"trap '' TERM; sleep 600 & echo $! > {pids}; wait"], cwd=tmp_path, env=dict(os.environ), on_output=lambda *_: None, stop_grace=0.3, task_status=task_status
            )
        )
        await until(lambda: _exists(pids), what="the grandchild")
        grandchild = int(pids.read_text())
        assert alive(process.pid) and alive(grandchild)
        nursery.cancel_scope.cancel()
    assert process.returncode is not None  # SIGTERM ignored: SIGKILL after the grace
    await until(lambda: _gone(grandchild), timeout=5, what="the grandchild to die")


async def _exists(path: Path) -> bool:
    return path.exists() and path.read_text().strip() != ""


async def test_a_stopped_server_process_leaves_no_service_behind(tmp_path: Path) -> None:
    """The real shutdown: SIGTERM to a server process (`LocalServerProcess.stop`)."""
    server = LocalServerProcess(tmp_path / "data")
    await trio.to_thread.run_sync(server.start)
    try:
        async with Meshagent(base_url=server.api_url, token=server.api_key) as api:
            await api.create_room_service(project_id=server.credentials.project_id, room_name="test-room", service=spec("local", container={"image": "", "command": COMMAND}))
        async with connect(server.room_url("test-room"), mint(server.credentials)) as room:
            [(pid, seen)] = (await until(lambda: started_files(room), what="the service to join")).items()
            pids = [pid, seen["ppid"], seen["grandchild"]]
            assert all(alive(pid) for pid in pids)
            await trio.to_thread.run_sync(server.stop)
    finally:
        await trio.to_thread.run_sync(server.stop)
    await until(lambda: _gone(*pids), timeout=5, what="every process of the service to end with the server")


async def test_a_service_stored_during_a_session_starts_on_restart(server: Server, credentials: Credentials) -> None:
    server.services.service_only_grace = 0.3
    async with connect(room_url(server), mint(credentials)) as room:
        assert (await room.services.list()).services == []
        service_id = await add_room_service(server, "test-room", spec("late", container={"image": "", "command": "exec sleep 60"}))
        assert (await state_of(room, service_id)).state == "stopped"  # this session did not start it
        await room.services.restart(service_id=service_id)
        state = await until(lambda: _with_pid(room, service_id), what="the late service to start")
        pid = int(state.container_id)
        assert alive(pid) and state.events[0].reason == "Started"
    await until(lambda: _gone(pid), timeout=15, what="the process to stop with the session")


async def _with_pid(room: Any, service_id: str) -> Any:
    state = await state_of(room, service_id)
    return state if state.container_id else None
