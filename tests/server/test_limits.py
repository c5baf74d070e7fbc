"""Per-connection limits: they refuse the offender with a clear error or close code, and other
participants carry on."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import trio

from meshagent_core import RoomException
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Server, ServerConfig
from meshagent_trio.websocket import WebSocketClosed, connect_websocket
from roomtest import mint, room_url


@pytest.fixture
async def small_server(tmp_path: Path, credentials, nursery) -> Server:
    config = ServerConfig(
        data_dir=tmp_path / "data",
        credentials=credentials,
        port=0,
        max_message_size=4096,
        max_pending_calls=2,
        max_queued_calls=2,
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


async def test_calls_over_the_running_limit_wait_their_turn(small_server, credentials) -> None:
    finished: list[str] = []
    async with RoomConnection.open(room_url(small_server), mint(credentials, name="waiter")) as room:
        async with trio.open_nursery() as nursery:

            async def waiting_list(label: str) -> None:
                # waits for a participant named "nobody" to register a toolkit
                await room.request("room.list_toolkits", {"participant_name": "nobody", "timeout": 30})
                finished.append(label)

            async def info() -> None:
                await room.invoke("developer", "info", {"message": "queued"})
                finished.append("info")

            nursery.start_soon(waiting_list, "list-1")
            nursery.start_soon(waiting_list, "list-2")
            await trio.sleep(0.05)
            nursery.start_soon(info)  # over the limit of 2 running calls: it waits, it is not refused
            await trio.sleep(0.05)
            assert finished == []
            async with RoomConnection.open(room_url(small_server), mint(credentials, name="nobody")) as nobody:
                await nobody.request("room.register_toolkit", {"name": "tk", "tools": {}, "public": True})
        assert sorted(finished[:2]) == ["list-1", "list-2"] and finished[2] == "info"


async def test_calls_over_the_queue_limit_are_refused(small_server, credentials) -> None:
    async with RoomConnection.open(room_url(small_server), mint(credentials, name="waiter")) as room:
        for _ in range(4):  # 2 running + 2 queued
            room.session.send_request("room.list_toolkits", {"participant_name": "nobody", "timeout": 30})
        room._kick()
        with pytest.raises(RoomException, match="too many calls in progress") as info:
            await room.invoke("developer", "info", {"message": "x"})
        assert info.value.code == 1008
