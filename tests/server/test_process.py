"""`meshagent-trio serve` as a real process: credentials bootstrap and clean shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from meshagent_core.tokens import parse_api_key
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials
from roomtest import mint


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def start(data_dir: Path, port: int, env: dict[str, str] | None = None) -> tuple[trio.Process, list[str]]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MESHAGENT_")}
    environment.update(env or {})
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "meshagent_trio", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        env=environment,
    )
    lines: list[str] = []
    buffer = b""
    with trio.fail_after(30):
        while not any("listening" in line for line in lines):
            data = await process.stdout.receive_some(4096)
            if not data:
                raise RuntimeError(f"server exited: {lines}")
            buffer += data
            *done, buffer = buffer.split(b"\n")
            lines += [line.decode() for line in done]
    return process, lines


async def test_first_start_creates_and_prints_credentials_then_reuses_them(tmp_path: Path) -> None:
    port = free_port()
    process, lines = await start(tmp_path, port)
    process.send_signal(signal.SIGTERM)
    with trio.fail_after(15):
        assert await process.wait() == 0
    exported = next(line.split("=", 1)[1] for line in lines if "export MESHAGENT_API_KEY=" in line)
    assert any(f"export MESHAGENT_API_URL=http://127.0.0.1:{port}" in line for line in lines)
    assert "created a project and API key" in lines[0]
    process, again = await start(tmp_path, port)
    process.send_signal(signal.SIGTERM)
    with trio.fail_after(15):
        await process.wait()
    assert any(exported in line for line in again) and "created" not in again[0]


async def test_sigterm_closes_connections_with_a_close_frame(tmp_path: Path) -> None:
    key = parse_api_key("ma-AAAAAAAAAAAAAAAAAAAAAA-_____________________w-process-test-secret")
    credentials = Credentials(key.project_id, key.id, key.secret)
    port = free_port()
    process, _ = await start(tmp_path, port, {"MESHAGENT_API_KEY": "ma-AAAAAAAAAAAAAAAAAAAAAA-_____________________w-process-test-secret"})
    async with RoomConnection.open(f"ws://127.0.0.1:{port}/rooms/r", mint(credentials, "r")) as room:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            while not room.closed:
                await trio.sleep(0.01)
        assert "websocket closed with code 1000" in room.close_reason  # a close frame, not a dropped socket
    with trio.fail_after(15):
        assert await process.wait() == 0


@pytest.mark.parametrize("signal_number", [signal.SIGINT])
async def test_ctrl_c_shuts_down_cleanly(tmp_path: Path, signal_number: int) -> None:
    process, _ = await start(tmp_path, free_port())
    process.send_signal(signal_number)
    with trio.fail_after(15):
        assert await process.wait() == 0
