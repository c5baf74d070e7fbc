"""The participant's side of a room connection (protocol/wire.md §6, protocol/room-apis.md §6)."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

import msgspec

from ..content import CONTROL_OPEN, Content, ControlContent, ErrorContent, to_content, unpack_content
from ..envelope import unpack_message
from ..errors import ConnectionLost, EnvelopeError, ErrorCode, LocalProtocolError, RoomException
from ..framing import Message
from .. import messages as m
from .base import Session, SessionState, decode_arguments, decode_chunk_message, not_pending
from .events import (
    DeveloperLogReceived,
    FileDeleted,
    FileMoved,
    FileUpdated,
    MalformedMessage,
    MessageReceived,
    RequestFailed,
    ResponseChunk,
    ResponseReceived,
    ResponseStreamClosed,
    ResponseStreamFailed,
    RoomStatus,
    SessionReady,
    ToolCallCancelled,
    ToolCallInputChunk,
    ToolCallInputClosed,
    ToolCallReceived,
    UnhandledMessage,
)

#: Input chunks held for hosted calls whose `room.tool_call.<tk>` has not arrived yet.
MAX_EARLY_INPUT_CHUNKS = 256
#: Finished hosted calls remembered, so late input chunks for them are dropped, not held.
FINISHED_CALL_MEMORY = 1024
#: Low bits of a generated `tool_call_id` that count the session's calls (see `_new_tool_call_id`).
TOOL_CALL_COUNTER_BITS = 48
_TOOL_CALL_COUNTER_LIMIT = 1 << TOOL_CALL_COUNTER_BITS


class ToolInvocation(NamedTuple):
    request_id: int
    tool_call_id: str


@dataclass(slots=True)
class _HostedCall:
    toolkit: str
    tool_call_id: str
    answered: bool = False  # a response was sent; with streaming, chunks may still follow
    streaming: bool = False


class ClientSession(Session):
    """Sans-IO client session.

    Requests: `send_request` / `invoke_tool` return ids; each gets exactly one outcome event,
    `ResponseReceived` or `RequestFailed`. A `control/open` response opens an output stream
    whose chunks arrive as `ResponseChunk` and which ends with exactly one
    `ResponseStreamClosed` or `ResponseStreamFailed`.

    Hosting: `ToolCallReceived` events are answered with `respond_to_tool_call` and, for
    streamed output, `send_tool_call_chunk` ending in a `control/close`.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.room_name: str | None = None
        self.room_url: str | None = None
        self.session_id: str | None = None
        self.participant_id: str | None = None
        self.attributes: dict[str, Any] = {}
        self._room_ready: m.RoomReady | None = None
        self._init: m.Connected | None = None
        self._pending: dict[int, str | None] = {}  # request id -> tool_call_id of an invoke
        self._response_streams: dict[str, int] = {}  # tool_call_id -> request id
        self._input_streams: set[str] = set()
        self._hosted: dict[int, _HostedCall] = {}
        self._hosted_by_tool_call: dict[tuple[str, str], int] = {}
        self._early_input: dict[tuple[str, str], list[Content]] = {}
        self._early_input_count = 0
        self._finished_calls: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._tool_call_id_base = 0
        self._tool_call_count = _TOOL_CALL_COUNTER_LIMIT  # the first id draws a random base

    # --- requests -------------------------------------------------------------------------

    @property
    def pending_requests(self) -> frozenset[int]:
        return frozenset(self._pending)

    @property
    def open_response_streams(self) -> frozenset[str]:
        return frozenset(self._response_streams)

    def send_request(
        self, type: str, header: Mapping[str, Any] | msgspec.Struct, payload: bytes = b""
    ) -> int:
        """Send a request; its answer arrives as `ResponseReceived` or `RequestFailed`."""
        request_id = self._send(type, header, payload)
        self._pending[request_id] = None
        return request_id

    def invoke_tool(
        self,
        toolkit: str,
        tool: str,
        arguments: Content | Mapping[str, Any] | str | None = None,
        *,
        participant_id: str | None = None,
        on_behalf_of_id: str | None = None,
        tool_call_id: str | None = None,
        input_stream: bool = False,
    ) -> ToolInvocation:
        """`room.invoke_tool`. With `input_stream`, the input follows as `send_input_chunk`
        calls and ends with `close_input` (sent right away, without waiting for the answer)."""
        if tool_call_id is None:
            tool_call_id = self._new_tool_call_id()
        if input_stream:
            if arguments is not None:
                raise ValueError("a streamed input carries its data in chunks, not arguments")
            content: Content = CONTROL_OPEN
        else:
            content = to_content(arguments)
        if tool_call_id in self._input_streams or tool_call_id in self._response_streams:
            raise LocalProtocolError(f"tool call id {tool_call_id} is already in use")
        header = m.InvokeTool(
            toolkit=toolkit,
            tool=tool,
            participant_id=participant_id,
            on_behalf_of_id=on_behalf_of_id,
            arguments=content.header(),
            tool_call_id=tool_call_id,
        )
        request_id = self._send(m.INVOKE_TOOL, header, content.data)
        self._pending[request_id] = tool_call_id
        if input_stream:
            self._input_streams.add(tool_call_id)
        return ToolInvocation(request_id, tool_call_id)

    def _new_tool_call_id(self) -> str:
        """A fresh `tool_call_id`: 32 lowercase hex digits of a valid uuid4 whose low 48 bits
        are a per-session counter and the rest a random draw made once per 2**48 calls: ids of
        one draw never repeat, and a call costs no system call (`uuid4()` reads the OS random
        source every time, a measurable share of a small call's client CPU)."""
        self._tool_call_count += 1
        if self._tool_call_count >= _TOOL_CALL_COUNTER_LIMIT:
            self._tool_call_id_base = uuid.uuid4().int >> TOOL_CALL_COUNTER_BITS << TOOL_CALL_COUNTER_BITS
            self._tool_call_count = 0
        return f"{self._tool_call_id_base | self._tool_call_count:032x}"

    def send_input_chunk(self, tool_call_id: str, chunk: Content) -> None:
        """One chunk of a streamed tool input (`room.tool_call_request_chunk`, one-way)."""
        self._ensure_open()
        if tool_call_id not in self._input_streams:
            raise not_pending("input stream", tool_call_id)
        if isinstance(chunk, ControlContent):
            raise LocalProtocolError("end an input stream with close_input()")
        self._send_chunk(m.TOOL_CALL_REQUEST_CHUNK, None, tool_call_id, chunk)

    def close_input(self, tool_call_id: str, status_code: int = 1000, message: str | None = None) -> None:
        """End a streamed tool input with `control/close`."""
        self._ensure_open()
        if tool_call_id not in self._input_streams:
            raise not_pending("input stream", tool_call_id)
        self._input_streams.discard(tool_call_id)
        close = ControlContent(method="close", status_code=status_code, message=message)
        self._send_chunk(m.TOOL_CALL_REQUEST_CHUNK, None, tool_call_id, close)

    def abandon(self, request_id: int) -> None:
        """Give up on a request (the caller was cancelled): no outcome event will follow, a late
        answer is dropped, an open input stream is closed on the wire and an open output stream
        is forgotten."""
        tool_call_id = self._pending.pop(request_id, None)
        if tool_call_id is None:
            for tcid, rid in list(self._response_streams.items()):
                if rid == request_id:
                    tool_call_id = tcid
        if tool_call_id is None:
            return
        self._response_streams.pop(tool_call_id, None)
        if tool_call_id in self._input_streams and self.state is not SessionState.CLOSED:
            self.close_input(tool_call_id)
        self._input_streams.discard(tool_call_id)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Merge into the local attributes and send the change (`set_attributes`, one-way)."""
        self.attributes.update(attributes)
        self._send(m.SET_ATTRIBUTES, dict(attributes))

    # --- hosting --------------------------------------------------------------------------

    def respond_to_tool_call(self, call_id: int, content: Content | Mapping[str, Any] | str | None) -> None:
        """Answer a `ToolCallReceived`: a result, an `ErrorContent`, or `ControlContent(open)`
        followed by `send_tool_call_chunk` calls and a closing `control/close` chunk."""
        call = self._hosted.get(call_id)
        if call is None or call.answered:
            raise not_pending("hosted tool call", call_id)
        content = to_content(content)
        call.answered = True
        call.streaming = isinstance(content, ControlContent) and content.is_open
        self._send_content(m.TOOL_CALL_RESPONSE, call_id, content)
        if not call.streaming:
            self._finish_hosted(call_id)

    def send_tool_call_chunk(self, call_id: int, chunk: Content | Mapping[str, Any]) -> None:
        """A chunk of a hosted call's output, or a progress event (a plain dict). A
        `control/close` chunk ends the call."""
        call = self._hosted.get(call_id)
        if call is None:
            raise not_pending("hosted tool call", call_id)
        if isinstance(chunk, Mapping):
            self._send(
                m.TOOL_CALL_RESPONSE_CHUNK,
                m.ToolCallChunk(tool_call_id=call.tool_call_id, chunk=dict(chunk)),
                message_id=call_id,
            )
            return
        self._send_chunk(m.TOOL_CALL_RESPONSE_CHUNK, call_id, call.tool_call_id, chunk)
        if isinstance(chunk, ControlContent) and chunk.is_close:
            self._finish_hosted(call_id)

    def _send_chunk(self, type: str, message_id: int | None, tool_call_id: str, chunk: Content) -> None:
        header = m.ToolCallChunk(tool_call_id=tool_call_id, chunk=chunk.header())
        self._send(type, header, chunk.data, message_id=message_id)

    def _finish_hosted(self, call_id: int) -> None:
        call = self._hosted.pop(call_id)
        key = (call.toolkit, call.tool_call_id)
        self._hosted_by_tool_call.pop(key, None)
        self._finished_calls[key] = None
        if len(self._finished_calls) > FINISHED_CALL_MEMORY:
            self._finished_calls.popitem(last=False)

    # --- input ----------------------------------------------------------------------------

    def _dispatch(self, message: Message) -> None:
        type = message.type
        if type == m.RESPONSE:
            self._on_response(message)
        elif type == m.TOOL_CALL_RESPONSE_CHUNK:
            self._on_response_chunk(message)
        elif type.startswith(m.TOOL_CALL_REQUEST_CHUNK_PREFIX):
            self._on_input_chunk(message, type[len(m.TOOL_CALL_REQUEST_CHUNK_PREFIX) :])
        elif type.startswith(m.TOOL_CALL_PREFIX):
            self._on_tool_call(message, type[len(m.TOOL_CALL_PREFIX) :])
        else:
            handler = _EVENT_HANDLERS.get(type)
            if handler is None:
                self._events.append(UnhandledMessage(message.id, type, message.data))
                return
            try:
                handler(self, message)
            except EnvelopeError as error:
                self._events.append(MalformedMessage(message.id, type, error))
            except msgspec.ValidationError as error:
                self._events.append(MalformedMessage(message.id, type, EnvelopeError(f"invalid {type} message: {error}")))

    def _on_response(self, message: Message) -> None:
        if message.id not in self._pending:
            return  # late, duplicate, or abandoned: dropped as the official client does
        tool_call_id = self._pending.pop(message.id)
        try:
            content = unpack_content(message.data)
        except EnvelopeError as error:
            self._events.append(
                RequestFailed(message.id, RoomException(f"undecodable response: {error}", code=ErrorCode.INVALID_REQUEST))
            )
            return
        # An open input stream stays open after the answer: the caller still ends it with
        # close_input(), as the official client always sends the close chunk.
        if tool_call_id is not None and isinstance(content, ControlContent) and content.is_open:
            self._response_streams[tool_call_id] = message.id
        self._events.append(ResponseReceived(message.id, content))

    def _on_response_chunk(self, message: Message) -> None:
        try:
            header, chunk = decode_chunk_message(message.data)
        except EnvelopeError as error:
            self._fail_stream_of_bad_chunk(message, error)
            return
        tool_call_id = header.tool_call_id
        if isinstance(chunk, ControlContent) and chunk.is_close:
            if self._response_streams.pop(tool_call_id, None) is not None:
                self._events.append(ResponseStreamClosed(tool_call_id, chunk.status_code, chunk.message))
            return
        self._events.append(ResponseChunk(tool_call_id, chunk))

    def _fail_stream_of_bad_chunk(self, message: Message, error: EnvelopeError) -> None:
        try:
            header, _ = unpack_message(message.data)
            tool_call_id = header.get("tool_call_id")
        except EnvelopeError:
            tool_call_id = None
        if isinstance(tool_call_id, str) and tool_call_id in self._response_streams:
            del self._response_streams[tool_call_id]
            self._events.append(
                ResponseStreamFailed(
                    tool_call_id,
                    RoomException(
                        f"unable to unpack tool call response chunk payload: {error}",
                        code=ErrorCode.INVALID_REQUEST,
                    ),
                )
            )
        else:
            self._events.append(MalformedMessage(message.id, message.type, error))

    def _on_tool_call(self, message: Message, toolkit: str) -> None:
        try:
            header, payload = unpack_message(message.data)
            call = msgspec.convert(header, type=m.ToolCall)
            arguments = decode_arguments(call.arguments, payload)
        except (EnvelopeError, msgspec.ValidationError) as error:
            error = _as_envelope_error(error)
            self._events.append(MalformedMessage(message.id, message.type, error))
            if self.state is not SessionState.CLOSED:
                self._send_content(
                    m.TOOL_CALL_RESPONSE,
                    message.id,
                    ErrorContent(text=str(error), code=ErrorCode.INVALID_REQUEST),
                )
            return
        tool_call_id = call.tool_call_id or str(message.id)
        if message.id in self._hosted:
            self._events.append(
                MalformedMessage(message.id, message.type, EnvelopeError(f"tool call id {message.id} is already in progress"))
            )
            return
        key = (toolkit, tool_call_id)
        self._hosted[message.id] = _HostedCall(toolkit, tool_call_id)
        self._hosted_by_tool_call[key] = message.id
        self._finished_calls.pop(key, None)
        self._events.append(
            ToolCallReceived(
                call_id=message.id,
                toolkit=toolkit,
                name=call.name,
                arguments=arguments,
                caller_id=call.caller_id,
                on_behalf_of_id=call.on_behalf_of_id,
                tool_call_id=tool_call_id,
            )
        )
        for chunk in self._early_input.pop(key, []):
            self._early_input_count -= 1
            self._emit_input_chunk(toolkit, tool_call_id, chunk)

    def _on_input_chunk(self, message: Message, toolkit: str) -> None:
        try:
            header, chunk = decode_chunk_message(message.data)
        except EnvelopeError as error:
            self._events.append(MalformedMessage(message.id, message.type, error))
            return
        if not isinstance(chunk, _CONTENT_CLASSES):
            self._events.append(
                MalformedMessage(message.id, message.type, EnvelopeError("input chunk must be content"))
            )
            return
        key = (toolkit, header.tool_call_id)
        if key in self._hosted_by_tool_call:
            self._emit_input_chunk(toolkit, header.tool_call_id, chunk)
        elif key in self._finished_calls:
            return
        elif self._early_input_count >= MAX_EARLY_INPUT_CHUNKS:
            self._events.append(
                MalformedMessage(
                    message.id,
                    message.type,
                    EnvelopeError(f"too many input chunks for calls that have not arrived (limit {MAX_EARLY_INPUT_CHUNKS})"),
                )
            )
        else:
            self._early_input.setdefault(key, []).append(chunk)
            self._early_input_count += 1

    def _emit_input_chunk(self, toolkit: str, tool_call_id: str, chunk: Content) -> None:
        if isinstance(chunk, ControlContent) and chunk.is_close:
            self._events.append(ToolCallInputClosed(toolkit, tool_call_id, chunk.status_code, chunk.message))
        else:
            self._events.append(ToolCallInputChunk(toolkit, tool_call_id, chunk))

    # --- events ---------------------------------------------------------------------------

    def _on_room_ready(self, message: Message) -> None:
        self._room_ready = _decode(message, m.RoomReady)
        self._maybe_ready()

    def _on_connected(self, message: Message) -> None:
        connected = _decode(message, m.Connected)
        if connected.type != "init":
            return
        if not isinstance(connected.participant_id, str) or not isinstance(connected.attributes, dict):
            raise EnvelopeError("connected/init needs a string participantId and an attributes object")
        self._init = connected
        self._maybe_ready()

    def _maybe_ready(self) -> None:
        if self._room_ready is None or self._init is None:
            return
        ready, init = self._room_ready, self._init
        self.room_name, self.room_url, self.session_id = ready.room_name, ready.room_url, ready.session_id
        self.participant_id = init.participant_id
        # After a reconnect, local values win over what the server remembered.
        self.attributes = {**init.attributes, **self.attributes}
        first = self.state is SessionState.CONNECTING
        self.state = SessionState.READY
        if first:
            self._events.append(
                SessionReady(ready.room_name, ready.room_url, ready.session_id, init.participant_id, dict(self.attributes))
            )

    def _on_room_status(self, message: Message) -> None:
        header, _ = unpack_message(message.data)
        self._events.append(RoomStatus(header))

    def _on_messaging_send(self, message: Message) -> None:
        header, payload = unpack_message(message.data)
        sent = msgspec.convert(header, type=m.MessagingSend)
        self._events.append(MessageReceived(sent.from_participant_id, sent.type, sent.message, payload))

    def _on_file_updated(self, message: Message) -> None:
        event = _decode(message, m.FileUpdated)
        self._events.append(FileUpdated(event.path, event.participant_id))

    def _on_file_deleted(self, message: Message) -> None:
        event = _decode(message, m.FileDeleted)
        self._events.append(FileDeleted(event.path, event.participant_id))

    def _on_file_moved(self, message: Message) -> None:
        event = _decode(message, m.FileMoved)
        self._events.append(FileMoved(event.source_path, event.destination_path, event.participant_id))

    def _on_developer_log(self, message: Message) -> None:
        event = _decode(message, m.DeveloperLog)
        self._events.append(DeveloperLogReceived(event.type, event.data))

    # --- closing --------------------------------------------------------------------------

    def _fail_pending(self, reason: str) -> None:
        for request_id in list(self._pending):
            self._events.append(
                RequestFailed(request_id, ConnectionLost(f"room connection closed before request completed: {reason}"))
            )
        for tool_call_id in list(self._response_streams):
            self._events.append(
                ResponseStreamFailed(tool_call_id, ConnectionLost(f"room connection closed before the stream ended: {reason}"))
            )
        for call_id, call in list(self._hosted.items()):
            self._events.append(ToolCallCancelled(call_id, call.tool_call_id))
        self._pending.clear()
        self._response_streams.clear()
        self._input_streams.clear()
        self._hosted.clear()
        self._hosted_by_tool_call.clear()
        self._early_input.clear()
        self._early_input_count = 0


_CONTENT_CLASSES = tuple(Content.__args__)  # type: ignore[attr-defined]


def _decode(message: Message, type: type[Any]) -> Any:
    header, _ = unpack_message(message.data)
    return msgspec.convert(header, type=type)


def _as_envelope_error(error: Exception) -> EnvelopeError:
    if isinstance(error, EnvelopeError):
        return error
    return EnvelopeError(str(error))


_EVENT_HANDLERS = {
    m.ROOM_READY: ClientSession._on_room_ready,
    m.CONNECTED: ClientSession._on_connected,
    m.ROOM_STATUS: ClientSession._on_room_status,
    m.MESSAGING_SEND: ClientSession._on_messaging_send,
    m.FILE_UPDATED: ClientSession._on_file_updated,
    m.FILE_DELETED: ClientSession._on_file_deleted,
    m.FILE_MOVED: ClientSession._on_file_moved,
    m.DEVELOPER_LOG: ClientSession._on_developer_log,
}
