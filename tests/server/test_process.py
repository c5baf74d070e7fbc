"""`meshagent-trio serve` as a real process: credentials bootstrap and clean shutdown."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import trio

from meshagent_core.tokens import parse_api_key
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials
from meshagent_trio.server.process import LocalServerProcess, free_port
from roomtest import mint


def printed(server: LocalServerProcess) -> list[str]:
    """The lines the server's latest process printed (stdout and stderr)."""
    return server.log(None, current_run=True).splitlines()


async def test_first_start_creates_and_prints_credentials_then_reuses_them(tmp_path: Path) -> None:
    port = free_port()
    with LocalServerProcess(tmp_path, port=port, use_stored_credentials=True) as server:
        lines = printed(server)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=15) == 0
        exported = next(line.split("=", 1)[1] for line in lines if "export MESHAGENT_API_KEY=" in line)
        assert any(f"export MESHAGENT_API_URL=http://127.0.0.1:{port}" in line for line in lines)
        assert "created a project and API key" in lines[0]
        server.start()
        again = printed(server)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
        assert any(exported in line for line in again) and "created" not in again[0]


async def test_sigterm_closes_connections_with_a_close_frame(tmp_path: Path) -> None:
    key = parse_api_key("ma-AAAAAAAAAAAAAAAAAAAAAA-_____________________w-process-test-secret")
    credentials = Credentials(key.project_id, key.id, key.secret)
    with LocalServerProcess(tmp_path, api_key="ma-AAAAAAAAAAAAAAAAAAAAAA-_____________________w-process-test-secret") as server:
        async with RoomConnection.open(server.room_url("r"), mint(credentials, "r")) as room:
            server.send_signal(signal.SIGTERM)
            with trio.fail_after(15):
                while not room.closed:
                    await trio.sleep(0.01)
            assert "websocket closed with code 1000" in room.close_reason  # a close frame, not a dropped socket
        assert await trio.to_thread.run_sync(server.wait, 15) == 0


@pytest.mark.parametrize("signal_number", [signal.SIGINT])
async def test_ctrl_c_shuts_down_cleanly(tmp_path: Path, signal_number: int) -> None:
    with LocalServerProcess(tmp_path) as server:
        server.send_signal(signal_number)
        assert server.wait(timeout=15) == 0
