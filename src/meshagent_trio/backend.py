"""The client's `Backend` on Trio: Trio's own primitives and streams, unwrapped."""

from __future__ import annotations

import ssl
from contextlib import contextmanager
from typing import Any, Iterator

import trio

from meshagent_core.client.backend import ByteStream

stream_errors = (trio.BrokenResourceError, trio.ClosedResourceError)
Event = trio.Event
open_task_group = trio.open_nursery
move_on_after = trio.move_on_after
fail_after = trio.fail_after
sleep = trio.sleep
current_time = trio.current_time
Lock = trio.StrictFIFOLock


def open_memory_channel(max_buffer_size: float) -> tuple[Any, Any]:
    return trio.open_memory_channel(max_buffer_size)


@contextmanager
def shielded(timeout: float) -> Iterator[trio.CancelScope]:
    with trio.CancelScope(shield=True) as scope:
        scope.deadline = trio.current_time() + timeout
        yield scope


class _TlsStream:
    """trio.SSLStream has no send_eof; a TLS close is the end of the stream."""

    def __init__(self, stream: trio.SSLStream) -> None:
        self._stream = stream

    async def receive_some(self, max_bytes: int) -> bytes:
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes) -> None:
        await self._stream.send_all(data)

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        await self._stream.aclose()


async def open_tcp_stream(host: str, port: int, ssl_context: ssl.SSLContext | None) -> ByteStream:
    if ssl_context is None:
        return await trio.open_tcp_stream(host, port)
    return _TlsStream(await trio.open_ssl_over_tcp_stream(host, port, ssl_context=ssl_context))
