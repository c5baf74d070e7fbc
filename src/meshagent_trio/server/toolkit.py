"""What a built-in toolkit handler sees: one `ToolCall` per `room.invoke_tool`.

A handler is `async def handler(call: ToolCall) -> Content | None`. Returning answers the call
(None = `empty`). For a streamed result the handler calls `await call.open_stream()`, then
`await call.send(chunk)` as often as it likes; returning ends the stream with `control/close`.
Raising `RoomException(text, code)` answers with `error` content (or, once the stream is open,
an `error` chunk and a close). Streamed input is read with `async for chunk in call.input()`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, TypeVar

import msgspec
import trio

from meshagent_core import CONTROL_CLOSE, CONTROL_OPEN, Content, ControlContent, EmptyContent, ErrorCode, ErrorContent, JsonContent, RoomException
from meshagent_core.tokens import ApiScope

if TYPE_CHECKING:
    from .rooms.participant import Participant
    from .rooms.room import Room

log = logging.getLogger("meshagent_trio.server")

T = TypeVar("T")
Handler = Callable[["ToolCall"], Awaitable["Content | None"]]

#: Input chunks a call may have queued before its handler reads them (a hard cap: the
#: connection stops reading once a call holds `INPUT_HIGH_WATER`, so only the chunks of one
#: socket read can go past that).
INPUT_BUFFER = 4096
#: Queued input chunks at which the connection pauses reading until the handler catches up
#: (below `INPUT_LOW_WATER`): a client streaming faster than a tool consumes is slowed by TCP.
INPUT_HIGH_WATER = 128
INPUT_LOW_WATER = 32


class Toolkit:
    """A named set of tool handlers."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tools: dict[str, Handler] = {}

    def tool(self, name: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.tools[name] = handler
            return handler

        return register


def permission_denied(message: str = "you do not have permission to perform the requested action") -> RoomException:
    return RoomException(message, code=ErrorCode.PERMISSION_DENIED)


def invalid_request(message: str) -> RoomException:
    return RoomException(message, code=ErrorCode.INVALID_REQUEST)


@dataclass(eq=False)
class ToolCall:
    room: "Room"
    caller: "Participant"
    request_id: int
    toolkit: str
    tool: str
    arguments: Content
    tool_call_id: str
    on_behalf_of_id: str | None = None
    stream_opened: bool = False
    finished: bool = False
    _overflowed: bool = field(default=False, repr=False)
    _input_send: trio.MemorySendChannel[Content | RoomException] | None = field(default=None, repr=False)
    _input_receive: trio.MemoryReceiveChannel[Content | RoomException] | None = field(default=None, repr=False)
    _input_drained: trio.Event | None = field(default=None, repr=False)
    _handler_ended: bool = field(default=False, repr=False)

    @property
    def scope(self) -> ApiScope | None:
        """The caller's `api` grant (None: the token grants no room API at all)."""
        return self.caller.scope

    @property
    def has_input_stream(self) -> bool:
        return isinstance(self.arguments, ControlContent) and self.arguments.is_open

    def json_arguments(self, type: type[T]) -> T:
        """The `json` arguments decoded into `type` (a msgspec Struct); 1002 when they don't fit."""
        if not isinstance(self.arguments, JsonContent):
            raise invalid_request(f"{self.toolkit}.{self.tool} expects json arguments")
        try:
            return msgspec.convert(self.arguments.json, type=type)
        except msgspec.ValidationError as error:
            raise invalid_request(f"invalid arguments for {self.toolkit}.{self.tool}: {error}") from None

    # --- input stream ---------------------------------------------------------------------

    def _open_input(self) -> None:
        self._input_send, self._input_receive = trio.open_memory_channel(INPUT_BUFFER)

    @property
    def input_backlog(self) -> int:
        """Input chunks queued and not yet read by the handler."""
        if self._input_send is None or self._handler_ended:
            return 0
        return self._input_send.statistics().current_buffer_used

    async def wait_input_drained(self) -> None:
        """Wait until the handler has read its queued input down to `INPUT_LOW_WATER` (or the
        call ended)."""
        while self.input_backlog > INPUT_LOW_WATER:
            self._input_drained = trio.Event()
            await self._input_drained.wait()

    def _after_read(self) -> None:
        if self._input_drained is not None and self.input_backlog <= INPUT_LOW_WATER:
            self._release_input_waiter()

    def _release_input_waiter(self) -> None:
        if self._input_drained is not None:
            self._input_drained.set()
            self._input_drained = None

    def _feed_input(self, chunk: Content | RoomException | None) -> None:
        """Called by the connection: a chunk, an error, or None for a normal close."""
        if self._input_send is None or self._overflowed:
            return
        if chunk is None:
            self._input_send.close()
            return
        try:
            self._input_send.send_nowait(chunk)
        except trio.WouldBlock:
            self._overflowed = True
            self._input_send.close()
        except trio.ClosedResourceError:
            pass

    async def input(self) -> AsyncIterator[Content]:
        """The input chunks, until the caller closes the input stream."""
        if self._input_receive is None:
            raise invalid_request(f"{self.toolkit}.{self.tool} expects a streamed input")
        async for item in self._input_receive:
            self._after_read()
            if isinstance(item, RoomException):
                raise item
            yield item
        if self._overflowed:
            raise invalid_request(f"more than {INPUT_BUFFER} input chunks were sent ahead of the tool")

    async def next_input(self) -> Content | None:
        """The next input chunk, or None once the input stream is closed."""
        if self._input_receive is None:
            raise invalid_request(f"{self.toolkit}.{self.tool} expects a streamed input")
        try:
            item = await self._input_receive.receive()
            self._after_read()
        except trio.EndOfChannel:
            if self._overflowed:
                raise invalid_request(f"more than {INPUT_BUFFER} input chunks were sent ahead of the tool") from None
            return None
        if isinstance(item, RoomException):
            raise item
        return item

    # --- output ---------------------------------------------------------------------------

    async def open_stream(self) -> None:
        """Answer the call with `control/open`: the result is a stream of chunks."""
        if self.stream_opened or self.finished:
            raise RuntimeError("the call was already answered")
        self.stream_opened = True
        self.caller.respond(self.request_id, CONTROL_OPEN)
        await self.caller.writable()

    async def send(self, chunk: Content | dict[str, Any]) -> None:
        """One chunk of the streamed result (waits while the caller's connection is backed up)."""
        if not self.stream_opened or self.finished:
            raise RuntimeError("open_stream() first")
        self.caller.send_response_chunk(self.tool_call_id, chunk)
        await self.caller.writable()

    def push(self, chunk: Content | dict[str, Any]) -> None:
        """One chunk of the streamed result that someone else caused (fan-out): never waits on
        the caller; a caller that cannot keep up is evicted (see `Participant.send_event`)."""
        if not self.stream_opened or self.finished:
            raise RuntimeError("open_stream() first")
        self.caller.send_fan_out_chunk(self.tool_call_id, chunk)

    def answer(self, result: Content | None = None) -> None:
        """Answer the call now, before the handler returns (e.g. to send events that must
        follow the answer); the handler's return value is then ignored."""
        self._finish(result)

    def _finish(self, result: Content | None) -> None:
        if self.finished:
            return
        self.finished = True
        if self.stream_opened:
            self.caller.send_response_chunk(self.tool_call_id, CONTROL_CLOSE)
        else:
            self.caller.respond(self.request_id, result if result is not None else EmptyContent())

    def _fail(self, error: RoomException) -> None:
        if self.finished:
            return
        self.finished = True
        content = ErrorContent(text=error.message, code=error.code)
        if self.stream_opened:
            self.caller.send_response_chunk(self.tool_call_id, content)
            self.caller.send_response_chunk(self.tool_call_id, CONTROL_CLOSE)
        else:
            self.caller.respond(self.request_id, content)


async def run_tool_call(handler: Handler, call: ToolCall) -> None:
    """Run a handler and answer its call exactly once, whatever happens."""
    try:
        await _run_handler(handler, call)
    finally:
        call._handler_ended = True  # a reader waiting for this call's input to drain stops waiting
        call._release_input_waiter()


def is_bug(error: BaseException) -> bool:
    """Whether `error` is a failure to contain (answer one call, or close one connection)
    rather than control flow to let through: any `Exception`, and a native extension's panic.
    pyo3's `PanicException` (pycrdt raises it on values Yjs cannot hold) derives from
    `BaseException` so that `except Exception` cannot swallow it; for the server it is still
    one failed request, not a reason for every room to stop."""
    if isinstance(error, BaseExceptionGroup):
        return all(is_bug(inner) for inner in error.exceptions)
    return isinstance(error, Exception) or type(error).__name__ == "PanicException"


async def _run_handler(handler: Handler, call: ToolCall) -> None:
    try:
        result = await handler(call)
    except RoomException as error:
        call._fail(error)
    except trio.Cancelled:
        raise
    except BaseException as error:  # a bug in a handler must not take the room down
        if not is_bug(error):
            raise
        call._fail(unexpected_failure(f"{call.toolkit}.{call.tool}", error, call.caller))
    else:
        call._finish(result)


def unexpected_failure(what: str, error: BaseException, caller: "Participant") -> RoomException:
    """The answer to a request whose handler raised something it did not mean to: logged in
    full here with the room and the caller, told to the client without server paths or
    internals (an `OSError` gives its reason, anything else its type)."""
    log.error("%s failed in room %s for %r", what, caller.room.name, caller, exc_info=error)
    reason = error.strerror if isinstance(error, OSError) and error.strerror else f"internal error ({type(error).__name__})"
    return RoomException(f"{what} failed: {reason}", code=ErrorCode.OPERATION_FAILED)


def error_content(error: RoomException) -> ErrorContent:
    return ErrorContent(text=error.message, code=error.code)


__all__ = ["unexpected_failure", "error_content", "Handler", "ToolCall", "Toolkit", "invalid_request", "permission_denied", "run_tool_call", "CONTROL_CLOSE"]
