"""The shared client engine on AnyIO, on asyncio and on Trio, against the local server."""

from __future__ import annotations

from typing import Iterator

import pytest

from meshagent_core import BinaryContent, CONTROL_OPEN, JsonContent, RoomException
from meshagent_core.session import events as ev
from meshagent_anyio.connection import RoomConnection
from meshagent_trio.server import LocalServerProcess
from roomtest import mint

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalServerProcess]:
    with LocalServerProcess() as server:
        yield server


async def test_join_call_and_events(local_server, anyio_backend) -> None:
    url = local_server.room_url("anyio-room")
    token_a = mint(local_server.credentials, "anyio-room", name="a")
    token_b = mint(local_server.credentials, "anyio-room", name="b")
    async with RoomConnection.open(url, token_a) as a, RoomConnection.open(url, token_b) as b:
        assert a.ready_event.room_name == "anyio-room"
        await a.invoke("queues", "send", {"name": f"q-{anyio_backend}", "message": {"n": 1}})
        received = await b.invoke("queues", "receive", {"name": f"q-{anyio_backend}", "wait": False})
        assert received == JsonContent(json={"n": 1})
        await a.invoke("messaging", "enable", {})
        await b.invoke("messaging", "enable", {})
        await a.invoke(
            "messaging",
            "send",
            {"to_participant_id": b.participant_id, "type": "hi", "message_json": "{}", "attachment_base64": "AAE="},
        )
        message = await b.next_event(ev.MessageReceived)
        while message.type != "hi":
            message = await b.next_event(ev.MessageReceived)
        assert message.attachment == b"\x00\x01"
        with pytest.raises(RoomException) as info:
            await a.invoke("storage", "download_url", {"path": "../x", "download": None})
        assert info.value.code == 3004


async def test_streams(local_server, anyio_backend) -> None:
    url = local_server.room_url("anyio-room")
    async with RoomConnection.open(url, mint(local_server.credentials, "anyio-room", name="w")) as watcher:
        async with RoomConnection.open(url, mint(local_server.credentials, "anyio-room", name="x")) as writer:
            async with watcher.stream_call("developer", "logs") as logs:
                assert await logs.response() == CONTROL_OPEN
                await writer.invoke("developer", "log", {"type": "t", "data": {"on": anyio_backend}})
                chunk = await logs.next_chunk()
                assert isinstance(chunk, BinaryContent) and chunk.headers == {"type": "t"}
