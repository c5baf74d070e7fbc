"""Writes without a checkpoint: the Trio backend's `send_nowait`, and the WebSocket layer's one
ordered queue shared by sends from the calling task and a flushing task, under backpressure."""

from __future__ import annotations

import struct
from contextlib import asynccontextmanager
from typing import AsyncIterator

import pytest
import trio

from meshagent_trio import backend
from meshagent_trio.websocket import WebSocketConnection, accept_websocket, connect_websocket

PACKET = 1000


async def test_send_nowait_sends_what_the_socket_takes_and_keeps_order() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        accepted: list[trio.SocketStream] = []

        async def keep(stream: trio.SocketStream) -> None:
            accepted.append(stream)
            await trio.sleep_forever()

        nursery.start_soon(trio.serve_listeners, keep, listeners)
        sender = await backend.open_tcp_stream("127.0.0.1", listeners[0].socket.getsockname()[1], None)
        while not accepted:
            await trio.sleep(0.01)
        receiver = accepted[0]
        block = bytes(range(256)) * 256  # 64 KiB
        sent = bytearray()
        with trio.fail_after(10):
            while True:  # nobody reads yet: the socket fills up, then takes only part or nothing
                taken = sender.send_nowait(block)  # type: ignore[attr-defined]
                sent += block[:taken]
                if taken < len(block):
                    break
            assert sender.send_nowait(block) == 0  # type: ignore[attr-defined]  # full: no exception, no wait
            received = bytearray()

            async def read_all() -> None:
                while len(received) < len(sent) + len(block):
                    received.extend(await receiver.receive_some(1 << 20))

            async with trio.open_nursery() as reading:
                reading.start_soon(read_all)
                await sender.send_all(block)  # waits for room, then sends the rest
        assert bytes(received) == bytes(sent) + block
        await sender.aclose()
        with pytest.raises(trio.ClosedResourceError):
            sender.send_nowait(b"x")  # type: ignore[attr-defined]
        assert await receiver.receive_some(10) == b""
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def _websocket_pair() -> AsyncIterator[tuple[WebSocketConnection, WebSocketConnection]]:
    """Our client and our server end of one WebSocket over local TCP."""
    accepted: list[WebSocketConnection] = []

    async def serve(stream: trio.SocketStream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(4096)
        accepted.append(await accept_websocket(stream, head))
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, serve, listeners)
        client = await connect_websocket(f"ws://127.0.0.1:{port}/rooms/x")
        while not accepted:
            await trio.sleep(0.01)
        try:
            yield client, accepted[0]
        finally:
            with trio.move_on_after(5):
                async with trio.open_nursery() as closing:  # each end answers the other's close
                    closing.start_soon(client.close)
                    closing.start_soon(accepted[0].close)
            nursery.cancel_scope.cancel()


def _numbered(first: int, count: int) -> list[bytes]:
    return [struct.pack(">I", n) + b"\x00" * (PACKET - 4) for n in range(first, first + count)]


def _numbers(packets: list[bytes]) -> list[int]:
    return [struct.unpack(">I", packet[:4])[0] for packet in packets]


async def test_queued_sends_keep_their_order_while_another_task_flushes() -> None:
    async with _websocket_pair() as (client, server):
        with trio.fail_after(30):
            # 20 MB with nobody reading: more than the socket buffers hold.
            client.queue_packets(_numbered(0, 20_000))
            assert client.send_queued_nowait() is False  # part of it waits
            flushed = trio.Event()

            async def flush() -> None:
                await client.flush()
                flushed.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(flush)
                await trio.sleep(0.05)  # the flush is now waiting for the socket
                assert not flushed.is_set()
                client.queue_packets(_numbered(20_000, 100))
                assert client.send_queued_nowait() is False  # another task is writing: it sends these
                numbers: list[int] = []
                while len(numbers) < 20_100:
                    numbers.extend(_numbers(await server.receive_packets()))
            assert flushed.is_set()
            assert numbers == list(range(20_100))
            # Idle again: a small send goes out at once, from this task.
            client.queue_packets(_numbered(20_100, 1))
            assert client.send_queued_nowait() is True
            assert _numbers(await server.receive_packets()) == [20_100]
