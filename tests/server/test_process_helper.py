"""`meshagent_trio.server.process.LocalServerProcess`: the local server as a subprocess."""

from __future__ import annotations

import http.client
import signal
import socket
from pathlib import Path

import pytest

from meshagent_core import EmptyContent, JsonContent
from meshagent_core.tokens import ApiScope, parse_api_key
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials
from meshagent_trio.server.process import LocalServerProcess, ServerStartError
from roomtest import mint

ROOM = "helper-room"


def get_root(server: LocalServerProcess) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status
    finally:
        connection.close()


async def send(server: LocalServerProcess, message: dict) -> None:
    token = mint(server.credentials, ROOM, scope=ApiScope.full())
    async with RoomConnection.open(server.room_url(ROOM), token) as room:
        answer = await room.invoke("queues", "send", {"name": "jobs", "create": True, "message": message})
        assert isinstance(answer, EmptyContent), answer


async def receive_all(server: LocalServerProcess) -> list[dict]:
    token = mint(server.credentials, ROOM, scope=ApiScope.full())
    received = []
    async with RoomConnection.open(server.room_url(ROOM), token) as room:
        for _ in range(20):
            answer = await room.invoke("queues", "receive", {"name": "jobs", "create": False, "wait": False})
            if isinstance(answer, EmptyContent):
                break
            assert isinstance(answer, JsonContent), answer
            received.append(answer.json)
    return received


async def test_start_answers_and_a_client_gets_in_then_close_cleans_up() -> None:
    with LocalServerProcess() as server:
        assert server.running
        assert get_root(server) == 200
        assert server.api_url == f"http://127.0.0.1:{server.port}"
        assert server.room_url("r") == f"ws://127.0.0.1:{server.port}/rooms/r"
        key = parse_api_key(server.api_key)
        assert server.credentials == Credentials(key.project_id, key.id, key.secret)
        await send(server, {"n": 1})
        assert await receive_all(server) == [{"n": 1}]
        assert server.log_path == server.data_dir / "server.log"
        assert "--- start 1:" in server.log()
        data_dir = server.data_dir
    assert server.returncode == 0  # SIGTERM: a clean shutdown
    assert not data_dir.exists()  # a temporary data dir made by the helper is removed


async def test_restart_keeps_port_data_dir_and_credentials(tmp_path: Path) -> None:
    with LocalServerProcess(tmp_path / "data") as server:
        port, api_key, first_pid = server.port, server.api_key, server.pid
        await send(server, {"n": 1})
        await send(server, {"n": 2})
        server.restart()
        assert server.running and server.pid != first_pid
        assert (server.port, server.api_key, server.starts) == (port, api_key, 2)
        assert get_root(server) == 200
        assert await receive_all(server) == [{"n": 1}, {"n": 2}]  # same data dir
    assert (tmp_path / "data").is_dir()  # a given data dir is kept


async def test_kill_then_restart(tmp_path: Path) -> None:
    with LocalServerProcess(tmp_path / "data") as server:
        await send(server, {"n": 1})
        assert server.kill() == -signal.SIGKILL
        assert not server.running
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        server.restart()
        assert get_root(server) == 200
        assert await receive_all(server) == [{"n": 1}]  # acknowledged before the kill
        assert "--- start 2:" in server.log() and "--- start" not in server.log(None, current_run=True)


async def test_stored_credentials_are_created_once_and_reused(tmp_path: Path) -> None:
    with LocalServerProcess(tmp_path, use_stored_credentials=True) as server:
        assert "created a project and API key" in server.log(current_run=True)
        credentials = server.credentials
        await send(server, {"n": 1})
    with LocalServerProcess(tmp_path, use_stored_credentials=True) as again:
        assert "created" not in again.log(current_run=True)
        assert again.credentials == credentials
        assert await receive_all(again) == [{"n": 1}]


def test_a_server_that_cannot_start_raises_with_its_output(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = LocalServerProcess(tmp_path, port=taken.getsockname()[1])
        with pytest.raises(ServerStartError, match="exited") as failure:
            server.start(timeout=30)
    assert "in use" in str(failure.value).lower()  # the server's own output is in the message
    assert not server.running


def test_credentials_go_through_api_key_not_env(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="api_key"):
        LocalServerProcess(tmp_path, env={"MESHAGENT_API_KEY": "ma-x"})
    with pytest.raises(ValueError):
        LocalServerProcess(tmp_path, api_key="ma-x", use_stored_credentials=True)
