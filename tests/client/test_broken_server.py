"""A server that breaks the room protocol: the client closes with 1002, fails what is pending
with `ConnectionLost`, and does not reconnect. Once while the reader task reads, once while a
caller reads its own answer. And a server that stops answering, even our close frame, while a
caller reads: leaving does not hang. The server here is a small fake built on our WebSocket
layer and the core's `ServerSession` (so it can send what no real server would), run by Trio in
a thread of its own; the client runs on Trio, and on AnyIO over asyncio and over Trio."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import partial
from typing import Any, Iterator

import anyio
import pytest
import trio

from meshagent_core import ConnectionLost
from meshagent_core.client.connection import _Outcome
from meshagent_core.session import ServerSession
from meshagent_core.session import events as ev
from meshagent_trio.websocket import WebSocketClosed, accept_websocket
from roomtest import record_own_reads

pytestmark = pytest.mark.anyio

#: Too short for a packet prefix: a `FramingError` at the client.
BROKEN_PACKET = b"\x00" * 5


class FakeRoom:
    """Answers the first `answered` requests, then sends `BROKEN_PACKET` instead of the next
    answer (or right after the session is ready when `answered` is None). Records the close
    code the client sends."""

    def __init__(self, answered: int | None, *, then_silent: bool = False) -> None:
        self.answered = answered
        self.then_silent = then_silent  # after `answered` answers, read and send nothing more
        self.close_codes: list[int] = []
        self.requests = 0

    async def serve(self, stream: trio.SocketStream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(4096)
        websocket = await accept_websocket(stream, head)
        session = ServerSession()
        session.send_room_ready("broken", "ws://127.0.0.1/rooms/broken", "session-1")
        session.send_connected("participant-1", {"name": "client"})
        await websocket.send_packets(session.packets_to_send())
        try:
            if self.answered is None:
                await websocket.send_packets([BROKEN_PACKET])
            while True:
                session.receive_packets(await websocket.receive_packets())
                for event in session.events_received():
                    if isinstance(event, ev.ToolInvoked):
                        self.requests += 1
                        if self.answered is not None and self.requests > self.answered:
                            if self.then_silent:
                                await trio.sleep_forever()
                            await websocket.send_packets([BROKEN_PACKET])
                        else:
                            session.respond(event.request_id, {"exists": False})
                await websocket.send_packets(session.packets_to_send())
        except WebSocketClosed as closed:
            self.close_codes.append(closed.code)
            await websocket.close()


@contextmanager
def fake_room(answered: int | None, *, then_silent: bool = False) -> Iterator[tuple[FakeRoom, str]]:
    """The fake server, serving in a thread with its own Trio loop, until the block ends."""
    room = FakeRoom(answered, then_silent=then_silent)
    started = threading.Event()
    running: dict[str, Any] = {}

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, room.serve, 0, host="127.0.0.1"))
            running.update(
                port=listeners[0].socket.getsockname()[1],
                token=trio.lowlevel.current_trio_token(),
                stop=nursery.cancel_scope.cancel,
            )
            started.set()

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    assert started.wait(10), "the fake server did not start"
    try:
        yield room, f"ws://127.0.0.1:{running['port']}/rooms/broken"
    finally:
        running["token"].run_sync_soon(running["stop"])
        thread.join(10)


async def closed_with(room: FakeRoom) -> list[int]:
    while not room.close_codes:
        await anyio.sleep(0.01)
    return room.close_codes


async def test_a_broken_packet_read_by_the_reader_task_closes_with_1002(client_module) -> None:
    with fake_room(answered=None) as (room, url), anyio.fail_after(10):
        with pytest.raises(ConnectionLost):
            async with client_module.connect(url, "any-token") as client:
                await client.storage.exists(path="a.txt")
        assert await closed_with(room) == [1002]


async def test_a_broken_answer_read_by_its_caller_fails_the_call_and_closes_with_1002(client_module) -> None:
    with fake_room(answered=1) as (room, url), anyio.fail_after(10):
        async with client_module.connect(url, "any-token") as client:
            assert await client.storage.exists(path="a.txt") is False
            reads = record_own_reads(client.connection)
            with pytest.raises(ConnectionLost):
                await client.storage.exists(path="b.txt")
            assert reads  # the second call read its own (broken) answer
            with pytest.raises(ConnectionLost):  # closed for good: no reconnect
                await client.storage.exists(path="c.txt")
        assert await closed_with(room) == [1002]
        assert room.requests == 2


async def test_closing_under_a_reading_caller_when_the_server_is_silent_does_not_hang(client_module) -> None:
    with fake_room(answered=1, then_silent=True) as (room, url), anyio.fail_after(10):
        async with client_module.connect(url, "any-token") as client:
            assert await client.storage.exists(path="a.txt") is False
            connection = client.connection

            async def close_once_reading() -> None:
                # The server has the request (and will never answer), and the caller reads.
                while room.requests < 2 or not isinstance(connection._socket_reader, _Outcome):
                    await anyio.sleep(0.001)
                connection.close_soon()

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(close_once_reading)
                with pytest.raises(ConnectionLost):
                    await client.storage.exists(path="b.txt")  # never answered
            assert connection.websocket.closed
