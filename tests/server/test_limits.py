"""Per-connection limits: they refuse the offender with a clear error or close code, and other
participants carry on."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import trio

from meshagent_core import RoomException
from meshagent_core.session import events as ev
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Server, ServerConfig
from meshagent_trio.websocket import WebSocketClosed, connect_websocket
from roomtest import mint, room_url


@pytest.fixture
async def small_server(tmp_path: Path, credentials, nursery) -> Server:
    config = ServerConfig(
        data_dir=tmp_path / "data", credentials=credentials, port=0, max_message_size=4096, max_pending_calls=2
    )
    server = Server(config)
    await nursery.start(server.serve)
    return server


async def close_code_after(server: Server, credentials, packets: list[bytes]) -> int:
    websocket = await connect_websocket(room_url(server), headers={"Authorization": "Bearer " + mint(credentials, name="bad")})
    await websocket.receive_packets()
    await websocket.send_packets(packets)
    with pytest.raises(WebSocketClosed) as info:
        while True:
            await websocket.receive_packets()
    return info.value.code


async def test_oversized_message_is_refused_from_its_header(small_server, credentials) -> None:
    async with RoomConnection.open(room_url(small_server), mint(credentials, name="good")) as good:
        header = struct.pack(">QII", 1, 0, 1000) + b"room.invoke_tool"  # announces ~1 MB
        assert await close_code_after(small_server, credentials, [header]) == 1009
        assert await good.request("room.list_toolkits", {})  # unaffected


async def test_malformed_packets_close_with_protocol_error(small_server, credentials) -> None:
    async with RoomConnection.open(room_url(small_server), mint(credentials, name="good")) as good:
        assert await close_code_after(small_server, credentials, [b"\x00" * 5]) == 1002
        assert await good.request("room.list_toolkits", {})


async def test_pending_calls_limit(small_server, credentials) -> None:
    async with RoomConnection.open(room_url(small_server), mint(credentials, name="waiter")) as room:
        async with trio.open_nursery() as nursery:
            for _ in range(2):  # two calls that wait (for a toolkit that never appears)
                nursery.start_soon(lambda: room.request("room.list_toolkits", {"participant_name": "nobody", "timeout": 30}))
            await trio.sleep(0.1)
            with pytest.raises(RoomException, match="too many calls in progress") as info:
                await room.invoke("developer", "info", {"message": "x"})
            assert info.value.code == 1008
            nursery.cancel_scope.cancel()
