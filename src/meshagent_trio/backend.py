"""The client's `Backend` on Trio: Trio's own primitives and streams, unwrapped."""

from __future__ import annotations

import os
import ssl
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import trio

from meshagent_core.client.backend import ByteStream

T = TypeVar("T")

stream_errors = (trio.BrokenResourceError, trio.ClosedResourceError)
Event = trio.Event
open_task_group = trio.open_nursery
move_on_after = trio.move_on_after
fail_after = trio.fail_after
sleep = trio.sleep
current_time = trio.current_time
Lock = trio.StrictFIFOLock
open_signal_receiver = trio.open_signal_receiver


def open_memory_channel(max_buffer_size: float) -> tuple[Any, Any]:
    return trio.open_memory_channel(max_buffer_size)


@contextmanager
def shielded(timeout: float) -> Iterator[trio.CancelScope]:
    with trio.CancelScope(shield=True) as scope:
        scope.deadline = trio.current_time() + timeout
        yield scope


async def run_sync_in_thread(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a worker thread. A cancellation that arrives meanwhile does not
    interrupt it: the caller waits for the function to return (nothing is left running behind
    its back) and is cancelled at its next checkpoint."""
    return await trio.to_thread.run_sync(function, *args)


class _SocketStream:
    """A `trio.SocketStream` with `send_nowait`: a send the socket takes at once completes in
    the calling task with no checkpoint (`trio.SocketStream.send_all` always yields after
    sending). Whatever the socket does not take at once is sent by Trio's own stream, which
    keeps owning the socket.

    `receive_some` reads the socket directly too. After a read that emptied the socket it
    waits for readability first: an answer is rarely there already, and trying anyway costs a
    failed system call per read (Trio's stream always tries first)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._emptied = True  # the last read took everything the socket had

    def _fileno(self) -> int:
        fd = self._stream.socket.fileno()
        if fd == -1:
            raise trio.ClosedResourceError("the stream is closed")
        return fd

    def send_nowait(self, data: bytes | memoryview) -> int:
        """Send what the socket takes without waiting; returns how many bytes."""
        try:
            return os.write(self._fileno(), data)
        except BlockingIOError:
            return 0
        except OSError as error:
            raise trio.BrokenResourceError(f"socket send failed: {error}") from error

    async def receive_some(self, max_bytes: int) -> bytes:
        socket = self._stream.socket
        self._fileno()  # closed: raise, rather than wait on nothing
        waited = self._emptied
        if waited:
            await trio.lowlevel.wait_readable(socket)
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                data = os.read(self._fileno(), max_bytes)
                break
            except BlockingIOError:
                await trio.lowlevel.wait_readable(socket)
                waited = True
            except OSError as error:
                raise trio.BrokenResourceError(f"socket receive failed: {error}") from error
        self._emptied = len(data) < max_bytes
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return data

    async def send_all(self, data: bytes) -> None:
        with memoryview(data) as view:
            sent = self.send_nowait(view) if view else 0
            if sent < len(view):
                await self._stream.send_all(view[sent:])

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


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
        return _SocketStream(await trio.open_tcp_stream(host, port))
    return _TlsStream(await trio.open_ssl_over_tcp_stream(host, port, ssl_context=ssl_context))


class _Listener:
    """A `trio.SocketListener` whose connections come as `_SocketStream`s."""

    def __init__(self, listener: trio.SocketListener) -> None:
        self._listener = listener
        self.port: int = listener.socket.getsockname()[1]

    async def accept(self) -> ByteStream:
        return _SocketStream(await self._listener.accept())

    async def aclose(self) -> None:
        await self._listener.aclose()


async def open_tcp_listeners(host: str, port: int) -> list[_Listener]:
    listeners = await trio.open_tcp_listeners(port, host=host)
    first = listeners[0].socket.getsockname()[1]
    if port == 0 and any(listener.socket.getsockname()[1] != first for listener in listeners):
        # The OS chose a port per address: bind the other addresses to the first one's.
        addresses = [listener.socket.getsockname()[0] for listener in listeners[1:]]
        for listener in listeners[1:]:
            await listener.aclose()
        listeners = listeners[:1]
        try:
            for address in addresses:
                listeners += await trio.open_tcp_listeners(first, host=address)
        except BaseException:
            for listener in listeners:
                await listener.aclose()
            raise
    return [_Listener(listener) for listener in listeners]
