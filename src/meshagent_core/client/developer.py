"""`room.developer`: the room's developer log channel (protocol/room-apis.md §5), as the official 0.56
`DeveloperClient` (same method names and keyword arguments).

Decisions:

* `log(type=, data=)` is a coroutine, as in the official client.
* `info` / `warning` / `error` / `log_nowait` are fire-and-forget, as in the official client, so
  ported code that calls `room.developer.info("...")` without `await` still logs. They return a
  `LogRequest`, which may also be awaited to wait for the server's answer and see its error:
  `await room.developer.info("...")`. Entries are sent in call order, one after another, by a
  task the room owns; a failure nobody awaits is logged (logger `meshagent_core.client`).
  Entries still queued when the room closes are dropped (awaiting one raises `ConnectionLost`).
* `logs()` is an async iterator of `RoomLogEvent` and an async context manager:
  `async with room.developer.logs() as logs:` subscribes before the block starts (so entries
  logged inside the block are seen) and closes the stream on exit. The official
  `room.developer.on("log", fn)` callbacks are replaced by it (`on` raises
  `NotImplementedError`).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any, AsyncGenerator, Generator

import msgspec

from ..content import BinaryContent, ControlContent, ErrorContent
from ..errors import ConnectionLost, ErrorCode, RoomException
from ..jsondepth import BoundedDecoder
from ..toolkits.developer import TOOLKIT, LevelInput, LogInput
from .connection import RoomConnection
from .participants import SubClient

if TYPE_CHECKING:
    from .room import RoomClient
from .calls import READY, CallIterator, expect_stream_open, unexpected_response

log = logging.getLogger("meshagent_core.client")

_decode_json = BoundedDecoder().decode


class RoomLogEvent(msgspec.Struct, frozen=True):
    """One entry of the developer log: its `type` (`info`, `warning`, `error`, or the `type`
    given to `log`) and its `data` object (`{"message", "extra"}` for the levels)."""

    type: str
    data: dict[str, Any]


class LogRequest:
    """A log entry handed to the room by `info` / `warning` / `error` / `log_nowait`.

    Nothing needs to be done with it. `await request` waits until the server has answered and
    raises its error (e.g. `RoomException` code 1001 without a `developer` grant)."""

    def __init__(self, room: RoomClient, tool: str, arguments: dict[str, Any]) -> None:
        self.tool = tool
        self.arguments = arguments
        self._done = room.backend.Event()
        self._error: BaseException | None = None
        self._awaited = False

    @property
    def done(self) -> bool:
        """Whether the server has answered (or the entry was dropped)."""
        return self._done.is_set()

    def _finish(self, error: BaseException | None) -> None:
        if self._done.is_set():
            return
        self._error = error
        self._done.set()
        if error is not None and not self._awaited:
            log.warning("unable to write developer log %s: %s", self.tool, error)

    async def _wait(self) -> None:
        self._awaited = True
        await self._done.wait()
        if self._error is not None:
            raise self._error

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()


class LogStream(CallIterator[RoomLogEvent]):
    """`room.developer.logs()`: the room's log entries as they are written (the log has no
    history), until the room closes or the stream is closed."""

    async def __aenter__(self) -> "LogStream":
        await self._start()
        return self


class DeveloperClient(SubClient):
    """`room.developer`: write to and follow the room's developer log.

    Writing needs the token's `developer` grant, following also its `logs` flag (1001 when
    missing)."""

    def __init__(self, room: RoomClient) -> None:
        super().__init__(room)
        self._pending: deque[LogRequest] = deque()
        self._wakeup: Any = None
        self._sender_connection: RoomConnection | None = None

    async def log(self, *, type: str, data: dict) -> None:
        """Write an entry of `type` with the JSON object `data`, and wait for the answer."""
        await self.room.invoke(TOOLKIT, "log", msgspec.to_builtins(LogInput(type=type, data=data)))

    def log_nowait(self, *, type: str, data: dict) -> LogRequest:
        """`log` without waiting (fire-and-forget; the result may be awaited)."""
        return self._enqueue("log", msgspec.to_builtins(LogInput(type=type, data=data)))

    def info(self, message: str, *, extra: dict | None = None) -> LogRequest:
        """Write an `info` entry (fire-and-forget; the result may be awaited)."""
        return self._enqueue("info", msgspec.to_builtins(LevelInput(message=message, extra=extra or {})))

    def warning(self, message: str, *, extra: dict | None = None) -> LogRequest:
        """Write a `warning` entry (fire-and-forget; the result may be awaited)."""
        return self._enqueue("warning", msgspec.to_builtins(LevelInput(message=message, extra=extra or {})))

    def error(self, message: str, *, extra: dict | None = None) -> LogRequest:
        """Write an `error` entry (fire-and-forget; the result may be awaited)."""
        return self._enqueue("error", msgspec.to_builtins(LevelInput(message=message, extra=extra or {})))

    def logs(self) -> LogStream:
        """Follow the log: `async with room.developer.logs() as logs: async for event in logs:`
        (a plain `async for event in room.developer.logs():` works too; it subscribes on its
        first step)."""
        return LogStream(self._logs_body())

    def on(self, event_name: str, func: Any) -> None:
        """Not supported: callbacks are replaced by `logs()`."""
        raise NotImplementedError(
            f"room.developer.on({event_name!r}, ...) callbacks are not supported: iterate `room.developer.logs()` instead"
        )

    # --- fire-and-forget sender -----------------------------------------------------------

    def _enqueue(self, tool: str, arguments: dict[str, Any]) -> LogRequest:
        connection = self.room._connection_or_raise()
        request = LogRequest(self.room, tool, arguments)
        self._pending.append(request)
        if self._sender_connection is not connection:
            self._sender_connection = connection
            self._wakeup = self.room.backend.Event()
            self.room.start_soon(self._sender, connection)
        self._wakeup.set()
        return request

    async def _sender(self, connection: RoomConnection) -> None:
        """Send queued entries in order, one at a time, while `connection` is the room's."""
        current: LogRequest | None = None
        try:
            while True:
                while self._pending:
                    current = self._pending.popleft()
                    try:
                        await self.room.invoke(TOOLKIT, current.tool, current.arguments)
                    except Exception as error:
                        current._finish(error)
                    else:
                        current._finish(None)
                    current = None
                await self._wakeup.wait()
                self._wakeup = self.room.backend.Event()
        finally:
            if self._sender_connection is connection:
                self._sender_connection = None
                dropped = [current] if current is not None else []
                dropped.extend(self._pending)
                self._pending.clear()
                for request in dropped:
                    request._finish(ConnectionLost("the room closed before the developer log entry was sent", code=1006))

    # --- logs stream ----------------------------------------------------------------------

    async def _logs_body(self) -> AsyncGenerator[Any, None]:
        async with self.room.stream_call(TOOLKIT, "logs") as call:
            await expect_stream_open(call, toolkit=TOOLKIT, operation="logs")
            yield READY
            chunks = call.chunks()
            try:
                async for chunk in chunks:
                    yield _log_event(chunk)
            finally:
                await chunks.aclose()  # type: ignore[attr-defined]


def _log_event(chunk: Any) -> RoomLogEvent:
    if isinstance(chunk, ErrorContent):
        raise chunk.to_exception()
    if isinstance(chunk, ControlContent) or not isinstance(chunk, BinaryContent):
        raise unexpected_response(TOOLKIT, "logs")
    log_type = chunk.headers.get("type")
    if not isinstance(log_type, str):
        raise RoomException("developer.logs returned a chunk without a valid type", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE)
    try:
        data = _decode_json(chunk.data) if chunk.data else {}
    except (msgspec.DecodeError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise RoomException("developer.logs returned invalid JSON data", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE)
    return RoomLogEvent(type=log_type, data=data)


__all__ = ["DeveloperClient", "LogRequest", "LogStream", "RoomLogEvent"]
