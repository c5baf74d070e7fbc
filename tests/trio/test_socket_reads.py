"""Reads: the Trio backend's `receive_some` (it reads the socket itself, waiting for readability
first after a read that emptied it), and `receive_packets(flush=False)`, which leaves the pong
it owes for the caller to send."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from meshagent_trio import backend
from test_socket_writes import _websocket_pair



async def _stream_pair() -> tuple[object, trio.SocketStream]:
    """Our backend's stream and a plain Trio stream at the other end of a local TCP connection."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    ours = await backend.open_tcp_stream("127.0.0.1", port, None)
    theirs = await listeners[0].accept()
    await listeners[0].aclose()
    return ours, theirs


async def test_receive_some_reads_what_arrives_in_order_and_then_the_end() -> None:
    ours, theirs = await _stream_pair()
    with trio.fail_after(10):
        data = bytes(range(256)) * 1024  # 256 KiB: several reads, some of them full
        async with trio.open_nursery() as nursery:
            nursery.start_soon(theirs.send_all, data)
            received = bytearray()
            while len(received) < len(data):
                chunk = await ours.receive_some(10_000)
                assert 0 < len(chunk) <= 10_000
                received += chunk
        assert received == data
        await theirs.aclose()
        assert await ours.receive_some(10_000) == b""
    await ours.aclose()


async def test_a_cancelled_receive_loses_nothing() -> None:
    ours, theirs = await _stream_pair()
    with trio.fail_after(10):
        with trio.move_on_after(0.05) as waited:
            await ours.receive_some(100)  # nothing was sent: it waits until cancelled
        assert waited.cancelled_caught
        await theirs.send_all(b"after")
        assert await ours.receive_some(100) == b"after"
    await ours.aclose()
    await theirs.aclose()


async def test_receive_some_is_a_checkpoint_even_when_data_is_waiting() -> None:
    ours, theirs = await _stream_pair()
    await theirs.send_all(b"x" * 100)
    await trio.sleep(0.05)
    assert await ours.receive_some(10) == b"x" * 10  # a full read: the next one tries first
    with trio.CancelScope() as scope:
        scope.cancel()
        await ours.receive_some(10)  # data is there, but a cancelled task does not take it
    assert scope.cancelled_caught
    assert await ours.receive_some(1000) == b"x" * 90
    await ours.aclose()
    await theirs.aclose()


async def test_closing_the_stream_wakes_a_waiting_receive() -> None:
    ours, theirs = await _stream_pair()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def receive() -> None:
                with pytest.raises(backend.stream_errors):
                    await ours.receive_some(100)

            nursery.start_soon(receive)
            await trio.testing.wait_all_tasks_blocked()
            await ours.aclose()
        with pytest.raises(backend.stream_errors):
            await ours.receive_some(100)
    await theirs.aclose()


async def test_a_reset_connection_is_a_stream_error() -> None:
    ours, theirs = await _stream_pair()
    theirs.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    await theirs.aclose()  # SO_LINGER 0: the close sends a reset
    with trio.fail_after(10), pytest.raises(backend.stream_errors):
        while await ours.receive_some(100):
            pass
    await ours.aclose()


async def test_receive_packets_without_flush_leaves_the_pong_queued() -> None:
    async with _websocket_pair() as (client, server):
        with trio.fail_after(10):
            server._protocol.send_ping(b"are you there")
            server.queue_packets([b"packet"])
            await server.flush()
            assert await client.receive_packets(flush=False) == [b"packet"]
            assert client.has_output
            assert client._outgoing[0][0] == 0x8A  # FIN + pong
            await client.flush()
            assert not client.has_output
