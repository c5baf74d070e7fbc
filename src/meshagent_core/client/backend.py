"""The few concurrency primitives the client needs, as an interface an adapter implements.

Trio and AnyIO already agree on most shapes (events, task groups with `start_soon` and a
`cancel_scope`, shielded cancel scopes); what differs is gathered here: how a memory channel
signals its end, and the byte stream API (`receive_some` returning `b""` at EOF).
"""

from __future__ import annotations

import ssl
from typing import Any, AsyncContextManager, AsyncIterator, Awaitable, Callable, ContextManager, Protocol, TypeVar

T = TypeVar("T")


class ByteStream(Protocol):
    """A byte stream. It may also offer `send_nowait(data) -> int`: send what the socket takes
    without waiting and return how many bytes that was (the WebSocket layer then writes from
    the calling task when it can; see `WebSocketConnection.send_queued_nowait`)."""

    async def receive_some(self, max_bytes: int) -> bytes:
        """Up to `max_bytes`; `b""` at the end of the stream."""

    async def send_all(self, data: bytes) -> None: ...

    async def send_eof(self) -> None: ...

    async def aclose(self) -> None: ...


class Event(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> Any: ...


class CancelScope(Protocol):
    def cancel(self) -> None: ...


class TaskGroup(Protocol):
    cancel_scope: CancelScope

    def start_soon(self, function: Callable[..., Awaitable[Any]], *args: Any) -> None: ...


class Listener(Protocol):
    """A listening TCP socket (`Backend.open_tcp_listeners`)."""

    #: The port it is bound to (the one the OS chose when 0 was asked for).
    port: int

    async def accept(self) -> ByteStream:
        """The next connection. Raises one of `stream_errors` once the listener is closed, and
        `OSError` when accepting fails (e.g. out of file descriptors)."""

    async def aclose(self) -> None: ...


class Backend(Protocol):
    """What an adapter provides. `meshagent_trio.backend` and `meshagent_anyio.backend` are the
    two implementations (modules, used as objects)."""

    #: Exceptions a byte stream raises when the connection is gone.
    stream_errors: tuple[type[BaseException], ...]

    def Event(self) -> Event: ...

    def open_memory_channel(self, max_buffer_size: float) -> tuple[Any, Any]:
        """(send, receive): `send.send_nowait(item)`, `send.close()`; `receive` is async-iterable
        and its iteration ends when the send side is closed; `receive.receive_nowait()`,
        `receive.statistics().current_buffer_used` and `receive.close()` (after which receiving
        raises one of `stream_errors`)."""

    def open_task_group(self) -> AsyncContextManager[TaskGroup]: ...

    def shielded(self, timeout: float) -> ContextManager[Any]:
        """A scope that outside cancellation cannot interrupt, with a deadline of its own."""

    def move_on_after(self, seconds: float) -> ContextManager[Any]: ...

    def fail_after(self, seconds: float) -> ContextManager[Any]: ...

    async def sleep(self, seconds: float) -> None: ...

    async def run_sync_in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker thread, for blocking work (file I/O). A cancellation
        does not interrupt it: the caller waits for the function to return and is cancelled
        at its next checkpoint."""

    def current_time(self) -> float:
        """The event loop's clock (monotonic seconds)."""

    def Lock(self) -> AsyncContextManager[Any]: ...

    async def open_tcp_stream(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> ByteStream: ...

    async def open_tcp_listeners(self, host: str, port: int) -> list[Listener]:
        """Listen on `host` (a name or an address; `0.0.0.0` for every IPv4 interface) and
        `port` (0: one the OS chooses). One listener per address `host` resolves to, all on
        the same port."""

    def open_signal_receiver(self, *signals: int) -> ContextManager[AsyncIterator[int]]:
        """While the block runs, the `signals` are caught and arrive by the async iterator it
        yields (the main thread only)."""
