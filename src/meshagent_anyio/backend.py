"""The client's `Backend` on AnyIO (asyncio or Trio underneath)."""

from __future__ import annotations

import math
import ssl
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import anyio
import anyio.abc
import anyio.to_thread

from meshagent_core.client.backend import ByteStream

T = TypeVar("T")

stream_errors = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream)
Event = anyio.Event
open_task_group = anyio.create_task_group
move_on_after = anyio.move_on_after
fail_after = anyio.fail_after
sleep = anyio.sleep
current_time = anyio.current_time
Lock = anyio.Lock
open_signal_receiver = anyio.open_signal_receiver


def open_memory_channel(max_buffer_size: float) -> tuple[Any, Any]:
    return anyio.create_memory_object_stream(math.inf if max_buffer_size == math.inf else int(max_buffer_size))


@contextmanager
def shielded(timeout: float) -> Iterator[anyio.CancelScope]:
    with anyio.CancelScope(shield=True, deadline=anyio.current_time() + timeout) as scope:
        yield scope


async def run_sync_in_thread(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a worker thread. A cancellation that arrives meanwhile does not
    interrupt it: the caller waits for the function to return (nothing is left running behind
    its back) and is cancelled at its next checkpoint."""
    return await anyio.to_thread.run_sync(function, *args)


class _Stream:
    """AnyIO's byte stream under the `ByteStream` names (EOF as `b""`)."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream

    async def receive_some(self, max_bytes: int) -> bytes:
        try:
            return await self._stream.receive(max_bytes)
        except anyio.EndOfStream:
            return b""

    async def send_all(self, data: bytes) -> None:
        await self._stream.send(data)

    async def send_eof(self) -> None:
        try:
            await self._stream.send_eof()
        except NotImplementedError:  # TLS streams cannot half-close
            pass

    async def aclose(self) -> None:
        await self._stream.aclose()


async def open_tcp_stream(host: str, port: int, ssl_context: ssl.SSLContext | None) -> ByteStream:
    if ssl_context is None:
        return _Stream(await anyio.connect_tcp(host, port))
    return _Stream(await anyio.connect_tcp(host, port, ssl_context=ssl_context, tls_standard_compatible=False))


class _Listener:
    """An AnyIO socket listener whose connections come as `_Stream`s."""

    def __init__(self, listener: anyio.abc.SocketListener) -> None:
        self._listener = listener
        self.port: int = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def accept(self) -> ByteStream:
        return _Stream(await self._listener.accept())

    async def aclose(self) -> None:
        await self._listener.aclose()


async def open_tcp_listeners(host: str, port: int) -> list[_Listener]:
    multi = await anyio.create_tcp_listener(local_host=host, local_port=port)
    return [_Listener(listener) for listener in multi.listeners]
