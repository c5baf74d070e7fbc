"""Answering a `room.call` (protocol/webhooks.md §3, §4): the room client of a call, in either
form, and the wait for the room to let the callee go. Shared by `WebhookServer` and
`ServiceHost`, on every event loop.

* The POST form: the callee dials `room_url` with `token`, as any participant.
* The reverse form: the room dialled the callee (a WebSocket upgrade of the webhook request);
  the room protocol runs over that socket with the WebSocket roles swapped, and cannot be
  reopened from this side, so a lost socket ends the call (no reconnect).
"""

from __future__ import annotations

import logging
import signal
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

from ..errors import ConnectionLost
from ..webhooks import CallEvent
from .exception_groups import unwrap_group
from .http_server import HttpLimits, HttpRequest, HttpServer, serve_http
from .participants import RoomClosed
from .room import RoomClient, WebSocketClientProtocol
from .websocket import HandshakeRejected, WebSocketConnection, accept_websocket

log = logging.getLogger("meshagent_core.client.answering")

#: Seconds a call's room client keeps trying to reconnect after losing its connection (the POST
#: form) before the call ends.
RECONNECT_TIMEOUT = 30.0
#: Seconds a call's first connection may take.
CONNECT_TIMEOUT = 30.0


def dialled_room_client(room_client_class: type[RoomClient], event: CallEvent) -> RoomClient:
    """The room client of a POST-form call: it joins `event.room_url` with `event.token`."""
    protocol = WebSocketClientProtocol(url=event.room_url, token=event.token)
    return room_client_class(protocol=protocol, reconnect_timeout=RECONNECT_TIMEOUT, connect_timeout=CONNECT_TIMEOUT)


def reverse_room_client(room_client_class: type[RoomClient], websocket: WebSocketConnection, event: CallEvent) -> RoomClient:
    """The room client of a reverse-form call, over `websocket` (accepted from the room).
    `event.room_url` and `event.token` are only what the client reports about itself."""
    base = room_client_class.connection_class
    taken = False

    class ReverseConnection(base):  # type: ignore[valid-type, misc]
        @classmethod
        @asynccontextmanager
        async def open(cls, url: str, token: str, **options: Any) -> AsyncIterator[Any]:
            nonlocal taken
            if taken:
                raise ConnectionLost("the room's WebSocket to this service closed; it cannot be reopened from here")
            taken = True
            async with cls.over(websocket, **options) as connection:
                yield connection

    protocol = WebSocketClientProtocol(url=event.room_url, token=event.token)
    client = room_client_class(protocol=protocol, reconnect_timeout=0, connect_timeout=CONNECT_TIMEOUT)
    client.connection_class = ReverseConnection
    return client


#: Seconds leaving a server waits for its answered calls to leave their rooms (by default).
STOP_TIMEOUT = 10.0
#: What `run()` stops on.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGABRT, signal.SIGINT)


class CallServer:
    """What `WebhookServer` and `ServiceHost` share: an HTTP server answering calls, each a
    room client, run with `async with` (or `start()`/`stop()`, the same two halves from one
    task, or `run()` until a stop signal). A subclass gives `_handle` (the HTTP handler),
    `_listen_address()`, and may extend `_open` (more context on the stack before listening),
    `_announce` (once listening) and `_stopping` (after the calls left, before the HTTP server
    stops)."""

    #: The adapter's `RoomClient` (it carries the backend).
    room_client_class: type[RoomClient]
    #: Seconds leaving waits for the calls to leave their rooms.
    stop_timeout: float = STOP_TIMEOUT
    #: What the server is called in messages ("webhook server", "service host").
    kind = "server"
    limits: HttpLimits

    def _init_running(self) -> None:
        self._http: HttpServer | None = None
        self._stack: AsyncExitStack | None = None
        self._calls: CallTracker | None = None

    @property
    def backend(self) -> Any:
        return self.room_client_class.connection_class.backend

    @property
    def bound_port(self) -> int | None:
        """The port listened on while running (the OS's choice for port 0), else None."""
        return self._http.port if self._http is not None else None

    def _listen_address(self) -> tuple[str, int]:
        raise NotImplementedError

    async def _handle(self, request: HttpRequest) -> Any:
        raise NotImplementedError

    async def _open(self, stack: AsyncExitStack) -> None:
        pass

    def _announce(self) -> None:
        pass

    def _stopping(self) -> None:
        pass

    async def __aenter__(self) -> Any:
        if self._stack is not None:
            raise RuntimeError(f"the {self.kind} is already running")
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            self._calls = CallTracker(self.backend)
            await self._open(stack)
            host, port = self._listen_address()
            self._http = await stack.enter_async_context(serve_http(self.backend, self._handle, host=host, port=port, limits=self.limits))
        except BaseException:
            self._http = None
            await stack.aclose()
            raise
        self._stack = stack
        self._announce()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is None:
            return None
        calls = self._calls
        assert calls is not None
        with self.backend.shielded(self.stop_timeout + 1):
            if not await calls.stop(self.stop_timeout):
                log.warning("%d calls did not leave their rooms within %ss; cancelling them", calls.count, self.stop_timeout)
        self._stopping()
        try:
            return await stack.__aexit__(*exc_info)
        except BaseException as error:
            raise unwrap_group(error, exc_info[1]) from None
        finally:
            self._http = None

    async def start(self) -> None:
        """The first half of `async with`: listening (call `stop()` from the same task)."""
        await self.__aenter__()

    async def stop(self) -> None:
        """The second half of `async with`: every call leaves its room (bounded by
        `stop_timeout`), then the server stops listening."""
        await self.__aexit__(None, None, None)

    async def run(self) -> None:
        """Serve until SIGTERM, SIGABRT or SIGINT (the main thread only)."""
        with self.backend.open_signal_receiver(*STOP_SIGNALS) as signals:
            async with self:
                async for number in signals:
                    log.info("stopping on signal %s", signal.Signals(number).name)
                    break


async def answer_reverse(
    backend: Any,
    room_client_class: type[RoomClient],
    stream: Any,
    request_bytes: bytes,
    event: CallEvent,
    calls: "CallTracker",
    serve: Callable[[RoomClient], Awaitable[None]],
    what: str,
) -> None:
    """Answer a reverse-form call: accept the room's WebSocket on `stream` (whose request head
    is `request_bytes`), run `serve(room)` over it as one of `calls`, and log what fails
    (`what` names the call in the log)."""
    try:
        websocket = await accept_websocket(backend, stream, request_bytes)
    except HandshakeRejected as refused:
        log.info("reverse call %s refused: %s", what, refused)
        return
    calls.enter()
    try:
        async with reverse_room_client(room_client_class, websocket, event) as room:
            await serve(room)
    except Exception:
        log.exception("the reverse call %s from room %s failed", what, event.room_name)
    finally:
        calls.leave()


async def until_released(room: RoomClient, stopping: Any) -> str:
    """Wait for the first of: the room client closing for good (the room ended, the connection
    is lost for good, or a `dismiss` message, which closes it) — `"closed"`; or `stopping` (an
    event) — `"stopping"`."""
    closed = room.subscribe(RoomClosed)
    outcome = "stopping"
    try:
        if room._terminal is not None or room.closed:  # closed before the subscription
            return "closed"
        async with room.backend.open_task_group() as task_group:

            async def wait_closed() -> None:
                nonlocal outcome
                async for _ in closed:
                    break
                outcome = "closed"
                task_group.cancel_scope.cancel()

            async def wait_stopping() -> None:
                await stopping.wait()
                task_group.cancel_scope.cancel()

            task_group.start_soon(wait_closed)
            task_group.start_soon(wait_stopping)
    finally:
        closed.close()
    return outcome


class CallTracker:
    """The calls being answered: a count, an event set while there are none, and `stopping`
    (set when the server shuts down: every call leaves its room)."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.stopping = backend.Event()
        self._count = 0
        self._idle = backend.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return self._count

    def enter(self) -> None:
        self._count += 1
        if self._idle.is_set():
            self._idle = self._backend.Event()

    def leave(self) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()

    async def stop(self, timeout: float) -> bool:
        """Tell every call to leave and wait up to `timeout` seconds for them; True when all
        left in time."""
        self.stopping.set()
        with self._backend.move_on_after(timeout):
            await self._idle.wait()
        return self._count == 0


__all__ = [
    "CONNECT_TIMEOUT",
    "STOP_SIGNALS",
    "STOP_TIMEOUT",
    "CallServer",
    "answer_reverse",
    "RECONNECT_TIMEOUT",
    "CallTracker",
    "dialled_room_client",
    "reverse_room_client",
    "until_released",
]
