"""A participant's room connection: the core `ClientSession` over a WebSocket.

`RoomConnection.open(url, token)` is an async context manager; inside it a task group owns a
reader task (packets in, session events out) and a writer task (everything queued, one socket
write). The class awaits only its `backend` (an adapter binds one: `meshagent_trio`,
`meshagent_anyio`).
Requests resolve from their outcome events; chunks of a streamed result go to the call that
started it; every other event (messages, file events, calls into hosted toolkits, …) is
available from `events`. Leaving the block fails whatever is still pending; nothing outlives it.

One task at a time reads the socket (`_socket_reader`): usually the reader task, but a request
that is the only one in flight is read by its own caller, which saves the task switch from the
reader to the caller on every answer (a quarter of a small call's latency). When the reader
answers the only call in flight, it parks, so the caller's next call can read its own answer;
whoever stops reading wakes it again (`_resume_reader`). Every read, by either, routes
everything it brings.
"""

from __future__ import annotations

import math
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Mapping

import msgspec

from ..content import Content, ControlContent, ErrorContent
from ..errors import ConnectionLost, ErrorCode, FramingError, RoomException
from ..session import ClientSession
from ..session import events as ev
from .backend import Backend
from .websocket import WebSocketClosed, WebSocketConnection, connect_websocket


#: Messages left for the writer task after which a kick writes them itself (see `_kick`).
EAGER_WRITE_BATCH = 32


#: How long leaving waits for a caller reading its answer to get the server's close frame before
#: the socket is dropped under it.
CALLER_CLOSE_TIMEOUT = 1.0

#: `RoomConnection._socket_reader` while the reader task reads.
_READER_TASK = "reader task"


class _Outcome:
    __slots__ = ("done", "content", "error", "awaited")

    def __init__(self, backend: Backend) -> None:
        self.done = backend.Event()
        self.content: Content | None = None
        self.error: RoomException | None = None
        self.awaited = False  # a task waits in `_outcome` for it


class ToolCallStream:
    """A `room.invoke_tool` whose input and/or output is streamed."""

    def __init__(self, connection: "RoomConnection", request_id: int, tool_call_id: str, input_stream: bool) -> None:
        self._connection = connection
        self.request_id = request_id
        self.tool_call_id = tool_call_id
        self._input_open = input_stream
        self._chunks_send, self._chunks = connection.backend.open_memory_channel(math.inf)

    async def response(self) -> Content:
        """The call's answer: `ControlContent(open)` when the result is a stream; an `error`
        answer raises `RoomException`."""
        return _raise_for_error(await self._connection._outcome(self.request_id))

    def send(self, chunk: Content) -> None:
        self._connection.session.send_input_chunk(self.tool_call_id, chunk)
        self._connection._kick()

    def close_input(self, status_code: int = 1000, message: str | None = None) -> None:
        if self._input_open and not self._connection.closed:
            self._input_open = False
            self._connection.session.close_input(self.tool_call_id, status_code, message)
            self._connection._kick()

    async def chunks(self) -> AsyncIterator[Content | dict[str, Any]]:
        """The output chunks until the stream closes; an abnormal close raises."""
        while (chunk := await self.next_chunk()) is not None:
            yield chunk

    async def next_chunk(self) -> Content | dict[str, Any] | None:
        """The next output chunk, or None once the stream has closed normally; an abnormal
        close raises."""
        async for event in self._chunks:
            if isinstance(event, ev.ResponseChunk):
                return event.chunk
            if isinstance(event, ev.ResponseStreamClosed):
                if not event.normal:
                    raise RoomException(
                        event.message or "tool call stream closed abnormally",
                        code=ErrorCode.INVALID_REQUEST,
                        status_code=event.status_code,
                    )
                return None
            if isinstance(event, ev.ResponseStreamFailed):
                raise event.error
        return None


class RoomConnection:
    #: Set by the adapter's subclass.
    backend: Backend

    def __init__(self, websocket: WebSocketConnection, session: ClientSession) -> None:
        self.websocket = websocket
        self.session = session
        self.closed = False
        self.close_reason: str | None = None
        #: The close frame's code (1006: the transport was lost without one; None: we closed).
        self.close_code: int | None = None
        self._outcomes: dict[int, _Outcome] = {}
        self._streams: dict[str, ToolCallStream] = {}
        self._events_send, self.events = self.backend.open_memory_channel(math.inf)
        self._wakeup = self.backend.Event()
        self._deferred = 0  # kicks left to the writer since the last write
        self._ready = self.backend.Event()
        self.ready_event: ev.SessionReady | None = None
        #: Who reads the socket now: `_READER_TASK`, the `_Outcome` of a caller reading its own
        #: answer, or None (the reader task is parked, or about to read).
        self._socket_reader: object | None = None
        self._reader_parked: Any = None  # the event that wakes the parked reader task
        self._caller_done_reading: Any = None  # set when a caller stops reading
        #: The close frame to send when leaving (a protocol error from the server sends 1002).
        self._close_frame: tuple[int, str] = (1000, "")

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, token: str, **session_options: Any) -> AsyncIterator["RoomConnection"]:
        websocket = await connect_websocket(cls.backend, url, headers={"Authorization": f"Bearer {token}"})
        async with cls.over(websocket, **session_options) as connection:
            yield connection

    @classmethod
    @asynccontextmanager
    async def over(cls, websocket: WebSocketConnection, **session_options: Any) -> AsyncIterator["RoomConnection"]:
        """The room protocol over a WebSocket already open: `open` after its handshake, and the
        reverse form of a service call, where the room dialled us (protocol/webhooks.md §3)."""
        backend = cls.backend
        connection = cls(websocket, ClientSession(**session_options))
        try:
            async with backend.open_task_group() as nursery:
                connection._task_group = nursery
                nursery.start_soon(connection._reader)
                nursery.start_soon(connection._writer)
                try:
                    await connection._ready.wait()
                    if connection.ready_event is None:
                        raise ConnectionLost(f"the room closed before the session was ready: {connection.close_reason}")
                    yield connection
                finally:
                    nursery.cancel_scope.cancel()
                    connection._closed("room client was closed")
        finally:
            connection.events.close()
            with backend.shielded(2):
                try:
                    await connection._close_websocket()
                except (WebSocketClosed, *backend.stream_errors):
                    pass

    @property
    def participant_id(self) -> str:
        assert self.ready_event is not None
        return self.ready_event.participant_id

    # --- requests -------------------------------------------------------------------------

    async def request(self, type: str, header: Mapping[str, Any] | msgspec.Struct, payload: bytes = b"") -> Content:
        """Send a request and return its answer (an `error` answer raises `RoomException`)."""
        request_id = self._register(self.session.send_request(type, header, payload))
        return _raise_for_error(await self._outcome(request_id))

    async def invoke(
        self,
        toolkit: str,
        tool: str,
        arguments: Content | Mapping[str, Any] | str | None = None,
        *,
        participant_id: str | None = None,
        on_behalf_of_id: str | None = None,
    ) -> Content:
        """A unary `room.invoke_tool`; an `error` answer raises `RoomException`."""
        invocation = self.session.invoke_tool(
            toolkit, tool, arguments, participant_id=participant_id, on_behalf_of_id=on_behalf_of_id
        )
        self._register(invocation.request_id)
        return _raise_for_error(await self._outcome(invocation.request_id))

    @asynccontextmanager
    async def stream_call(
        self,
        toolkit: str,
        tool: str,
        arguments: Content | Mapping[str, Any] | str | None = None,
        *,
        input_stream: bool = True,
        participant_id: str | None = None,
        on_behalf_of_id: str | None = None,
    ) -> AsyncIterator[ToolCallStream]:
        """A `room.invoke_tool` with a streamed input and/or output. Leaving the block closes
        the input (as the official client always does) and forgets the call."""
        invocation = self.session.invoke_tool(
            toolkit,
            tool,
            None if input_stream else arguments,
            participant_id=participant_id,
            on_behalf_of_id=on_behalf_of_id,
            input_stream=input_stream,
        )
        self._register(invocation.request_id)
        call = ToolCallStream(self, invocation.request_id, invocation.tool_call_id, input_stream)
        self._streams[invocation.tool_call_id] = call
        try:
            yield call
        finally:
            self._streams.pop(invocation.tool_call_id, None)
            self._outcomes.pop(invocation.request_id, None)  # when `response()` was never awaited
            call._chunks_send.close()
            call._chunks.close()
            if not self.closed:
                call.close_input()
                self.session.abandon(invocation.request_id)
                self._kick()

    def _register(self, request_id: int) -> int:
        self._outcomes[request_id] = _Outcome(self.backend)
        self._kick()
        return request_id

    def close_soon(self) -> None:
        """End this connection from any task: its task group is cancelled and the socket closed
        with a close frame (`RoomConnection.open` leaves its block)."""
        task_group = getattr(self, "_task_group", None)
        if task_group is not None:
            task_group.cancel_scope.cancel()

    async def _outcome(self, request_id: int) -> Content:
        outcome = self._outcomes[request_id]
        outcome.awaited = True
        try:
            if not outcome.done.is_set():
                if self._socket_reader is None and len(self._outcomes) == 1:
                    await self._read_until(outcome)
                if not outcome.done.is_set():
                    await outcome.done.wait()
        except BaseException:
            if not outcome.done.is_set() and not self.closed:
                self.session.abandon(request_id)
                self._kick()
            raise
        finally:
            # Also when cancelled after the answer came: a settled outcome left behind would
            # make the reader task park for a caller that is gone.
            self._outcomes.pop(request_id, None)
            self._resume_reader()  # parked for this answer's caller, or while it read
        if outcome.error is not None:
            raise outcome.error
        assert outcome.content is not None
        return outcome.content

    # --- one-way --------------------------------------------------------------------------

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.session.set_attributes(attributes)
        self._kick()

    def respond_to_tool_call(self, call_id: int, content: Content | Mapping[str, Any] | str | None) -> None:
        self.session.respond_to_tool_call(call_id, content)
        self._kick()

    def send_tool_call_chunk(self, call_id: int, chunk: Content | Mapping[str, Any]) -> None:
        self.session.send_tool_call_chunk(call_id, chunk)
        self._kick()

    async def next_event(self, *types: type) -> ev.Event:
        """The next event of one of `types` from `events` (others are dropped)."""
        try:
            async for event in self.events:
                if not types or isinstance(event, types):
                    return event
        except self.backend.stream_errors:  # `events` is closed once `open()` has returned
            pass
        raise ConnectionLost(f"the connection closed: {self.close_reason}")

    # --- tasks ----------------------------------------------------------------------------

    def _kick(self) -> None:
        """Something was queued on the session. With at most one request in flight, it is
        sent from here when the socket takes it at once (no task switch; synchronous, so it
        cannot be cancelled halfway through a frame). Otherwise the writer task sends it, with
        everything else queued until it runs, in one write; but once `EAGER_WRITE_BATCH`
        messages are waiting they go out from here, so the server starts on them while the
        caller's other tasks are still making theirs."""
        if self.websocket.can_send_nowait:
            if len(self._outcomes) <= 1 and not self._wakeup.is_set():
                if self._send_now():
                    return
            else:
                self._deferred += 1
                if self._deferred >= EAGER_WRITE_BATCH:
                    self._send_now()
        self._wakeup.set()

    def _send_now(self) -> bool:
        """Send what the session has queued if the socket takes it at once; True when done."""
        self._deferred = 0
        websocket = self.websocket
        try:
            packets = self.session.packets_to_send()
            if packets:
                websocket.queue_packets(packets)
            return websocket.send_queued_nowait()
        except WebSocketClosed:
            return True  # the reader sees the end and closes the connection

    async def _writer(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup = self.backend.Event()
            self._deferred = 0
            try:
                packets = self.session.packets_to_send()
                if packets:
                    self.websocket.queue_packets(packets)
                await self.websocket.flush()
            except WebSocketClosed:
                return

    async def _reader(self) -> None:
        try:
            while True:
                while self._socket_reader is not None:  # a caller reads its own answer
                    await self._park_reader()
                self._socket_reader = _READER_TASK
                try:
                    connected = await self._read_once()
                finally:
                    self._socket_reader = None
                if not connected:
                    return
                if len(self._outcomes) == 1:
                    (outcome,) = self._outcomes.values()
                    if outcome.done.is_set() and outcome.awaited:
                        # The only call in flight is answered: its caller runs next and wakes us
                        # (in `_outcome`), after making its next call, if it makes one at once,
                        # which then reads its own answer.
                        await self._park_reader()
        finally:
            self._closed("connection closed")

    async def _park_reader(self) -> None:
        self._reader_parked = parked = self.backend.Event()
        try:
            await parked.wait()
        finally:
            self._reader_parked = None

    def _resume_reader(self) -> None:
        """Wake the parked reader task if nobody reads the socket (always safe to call)."""
        if self._socket_reader is None and self._reader_parked is not None:
            self._reader_parked.set()

    async def _read_until(self, outcome: _Outcome) -> None:
        """Read the socket in the calling task until `outcome` is settled or the connection ends
        (the caller owns the socket's reading meanwhile; see the module docstring)."""
        self._socket_reader = outcome
        try:
            while not outcome.done.is_set() and await self._read_once():
                pass
        finally:
            self._socket_reader = None  # `_outcome` wakes the reader task
            if self._caller_done_reading is not None:
                self._caller_done_reading.set()

    async def _read_once(self) -> bool:
        """One read from the socket, everything it brought routed; False once the connection
        is over (closed here when the server broke the protocol)."""
        try:
            packets = await self.websocket.receive_packets(flush=False)
        except WebSocketClosed as closed:
            if not self.closed:
                self.close_code = closed.code
                self._closed(str(closed))
            return False
        try:
            self.session.receive_packets(packets)
        except FramingError as error:
            self._route(self.session.events_received())
            self.close_code = 1002
            self._close_frame = (1002, "protocol error")
            self._closed(f"protocol error from the server: {error}")
            return False
        self._route(self.session.events_received())
        if self.websocket.has_output:  # e.g. a pong
            self._wakeup.set()
        return True

    async def _close_websocket(self) -> None:
        """The close handshake, once the reader and writer tasks have ended. A caller may still
        be reading its answer (the connection was closed from another task): it gets the
        server's close frame, and the handshake waits for it to stop reading."""
        if self._socket_reader is not None:
            self._caller_done_reading = self.backend.Event()
            await self.websocket.send_close(*self._close_frame)
            with self.backend.move_on_after(CALLER_CLOSE_TIMEOUT):
                if self._socket_reader is not None:
                    await self._caller_done_reading.wait()
            if self._socket_reader is not None:  # no close frame came: end its read
                await self.websocket.abort()
                return
        await self.websocket.close(*self._close_frame)

    def _closed(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.session.connection_closed(reason)
        self._route(self.session.events_received())
        self._events_send.close()
        self._ready.set()

    def _route(self, events: list[ev.Event]) -> None:
        for event in events:
            if isinstance(event, (ev.ResponseReceived, ev.RequestFailed)):
                outcome = self._outcomes.get(event.request_id)
                if outcome is not None:
                    if isinstance(event, ev.ResponseReceived):
                        outcome.content = event.content
                    else:
                        outcome.error = event.error
                    outcome.done.set()
            elif isinstance(event, (ev.ResponseChunk, ev.ResponseStreamClosed, ev.ResponseStreamFailed)):
                call = self._streams.get(event.tool_call_id)
                if call is not None:
                    call._chunks_send.send_nowait(event)
                    if not isinstance(event, ev.ResponseChunk):
                        # The stream is over: stray chunks for its id go to `events` from now on.
                        del self._streams[event.tool_call_id]
                        call._chunks_send.close()
                else:
                    self._events_send.send_nowait(event)
            elif isinstance(event, ev.SessionReady):
                self.ready_event = event
                self._ready.set()
            elif isinstance(event, ev.SessionClosed):
                for call in self._streams.values():
                    call._chunks_send.close()
            else:
                self._events_send.send_nowait(event)


def _raise_for_error(content: Content) -> Content:
    if isinstance(content, ErrorContent):
        raise content.to_exception()
    if isinstance(content, ControlContent) and content.is_close and content.is_abnormal_close:
        raise RoomException(content.message or "closed abnormally", code=ErrorCode.INVALID_REQUEST, status_code=content.status_code)
    return content
