"""The room server's side of one participant's connection.

The server session answers each client request exactly once (`respond`), streams tool output
(`send_response_chunk`), pushes events, and routes calls to the participant when it hosts a
toolkit (`send_tool_call`), tracking each routed call until the host finishes it or leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import msgspec

from ..content import Content, ContentHeader, ControlContent, EmptyContent, ErrorContent, _with_payload, to_content, unpack_content
from ..envelope import split_message, unpack_message
from ..errors import ConnectionLost, EnvelopeError, ErrorCode, LocalProtocolError, RemoteProtocolError, RoomException
from ..framing import Message
from ..jsondepth import MAX_RELAYED_DEPTH, BoundedDecoder
from .. import messages as m
from .base import Session, SessionState, decode_arguments, decode_chunk_message, not_pending
from .events import (
    AttributesSet,
    HostCallFailed,
    HostChunk,
    HostResponse,
    HostStreamClosed,
    MalformedMessage,
    RequestChunk,
    RequestReceived,
    RequestStreamClosed,
    ToolInvoked,
)


_invoke_decoder = BoundedDecoder(m.InvokeTool, MAX_RELAYED_DEPTH)
_EMPTY = EmptyContent()


class _ContentInvoke(msgspec.Struct, kw_only=True):
    """`InvokeTool` with its `arguments` decoded as a content header in the same pass (what
    clients send today). Whatever does not decode this way takes the general path, which
    decides exactly as before."""

    toolkit: str
    tool: str
    participant_id: str | None = None
    on_behalf_of_id: str | None = None
    arguments: ContentHeader
    tool_call_id: str


_content_invoke_decoder = BoundedDecoder(_ContentInvoke, MAX_RELAYED_DEPTH)


@dataclass(slots=True)
class _RoutedCall:
    toolkit: str
    tool_call_id: str
    answered: bool = False


class ServerSession(Session):
    """Sans-IO server session for one connection."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._open_requests: set[int] = set()
        self._input_streams: set[str] = set()
        self._routed: dict[int, _RoutedCall] = {}

    @property
    def open_requests(self) -> frozenset[int]:
        """Client requests not answered yet."""
        return frozenset(self._open_requests)

    def is_open_request(self, request_id: int) -> bool:
        """Whether `request_id` awaits its answer (`open_requests` without the copy)."""
        return request_id in self._open_requests

    @property
    def routed_calls(self) -> frozenset[int]:
        """Calls routed to this participant that it has not finished."""
        return frozenset(self._routed)

    # --- handshake and events -------------------------------------------------------------

    def send_room_ready(self, room_name: str, room_url: str, session_id: str) -> None:
        self._send(m.ROOM_READY, m.RoomReady(room_name, room_url, session_id))

    def send_connected(self, participant_id: str, attributes: Mapping[str, Any]) -> None:
        """`connected/init`; after `room_ready` this completes the client's handshake."""
        self._send(m.CONNECTED, {"type": "init", "participantId": participant_id, "attributes": dict(attributes)})
        self.state = SessionState.READY

    def send_room_status(self, **fields: Any) -> None:
        self._send(m.ROOM_STATUS, fields)

    def send_event(self, type: str, header: Mapping[str, Any] | msgspec.Struct, payload: bytes = b"") -> None:
        """A one-way server event (`messaging.send`, `storage.file.updated`, …)."""
        self._send(type, header, payload)

    # --- answering requests ---------------------------------------------------------------

    def respond(self, request_id: int, content: Content | Mapping[str, Any] | str | None) -> None:
        """The one `__response__` to a client request."""
        try:
            self._open_requests.remove(request_id)
        except KeyError:
            raise not_pending("request", request_id) from None
        self._send_content(m.RESPONSE, request_id, to_content(content))

    def send_response_chunk(
        self,
        tool_call_id: str,
        chunk: Content | Mapping[str, Any],
        *,
        toolkit: str | None = None,
        tool: str | None = None,
    ) -> None:
        """A chunk of a tool's output stream to the caller (end it with `control/close`)."""
        if isinstance(chunk, Mapping):
            header = m.ToolCallChunk(tool_call_id=tool_call_id, chunk=dict(chunk), toolkit=toolkit, tool=tool)
            self._send(m.TOOL_CALL_RESPONSE_CHUNK, header)
            return
        header = m.ToolCallChunk(tool_call_id=tool_call_id, chunk=chunk.header(), toolkit=toolkit, tool=tool)
        self._send(m.TOOL_CALL_RESPONSE_CHUNK, header, chunk.data)

    # --- routing calls to a hosting participant -------------------------------------------

    def send_tool_call(
        self,
        toolkit: str,
        name: str,
        arguments: Content,
        *,
        caller_id: str,
        tool_call_id: str,
        on_behalf_of_id: str | None = None,
    ) -> int:
        """Route a call to this participant's toolkit; returns the call id its answers reuse."""
        header = m.ToolCall(
            name=name,
            arguments=arguments.header(),
            caller_id=caller_id,
            on_behalf_of_id=on_behalf_of_id,
            tool_call_id=tool_call_id,
        )
        call_id = self._send(m.tool_call_type(toolkit), header, arguments.data)
        self._routed[call_id] = _RoutedCall(toolkit, tool_call_id)
        return call_id

    def send_tool_call_input(self, toolkit: str, tool_call_id: str, chunk: Content) -> None:
        """Forward a caller's input chunk to the host."""
        header = m.ToolCallChunk(tool_call_id=tool_call_id, chunk=chunk.header())
        self._send(m.tool_call_request_chunk_type(toolkit), header, chunk.data)

    def cancel_routed_call(self, call_id: int) -> None:
        """Stop tracking a routed call (its caller went away); later answers are dropped."""
        self._routed.pop(call_id, None)

    # --- input ----------------------------------------------------------------------------

    def _dispatch(self, message: Message) -> None:
        type = message.type
        if type == m.RESPONSE:
            return  # e.g. a client acknowledging a forwarded chunk: the server awaits no answers
        if type == m.INVOKE_TOOL:
            self._on_invoke(message)
        elif type == m.TOOL_CALL_REQUEST_CHUNK:
            self._on_request_chunk(message)
        elif type == m.SET_ATTRIBUTES:
            self._on_set_attributes(message)
        elif type == m.TOOL_CALL_RESPONSE:
            self._on_host_response(message)
        elif type == m.TOOL_CALL_RESPONSE_CHUNK:
            self._on_host_chunk(message)
        else:
            self._on_request(message)

    def _open_request(self, message: Message) -> bool:
        if message.id in self._open_requests:
            self._events.append(
                MalformedMessage(message.id, message.type, RemoteProtocolError(f"request id {message.id} is already in use"))
            )
            return False
        self._open_requests.add(message.id)
        return True

    def _refuse(self, message: Message, error: Exception) -> None:
        """Answer an undecodable request with an error, so the caller never waits forever."""
        self._events.append(MalformedMessage(message.id, message.type, error))
        if self._open_request(message):
            self.respond(message.id, ErrorContent(text=str(error), code=ErrorCode.INVALID_REQUEST))

    def _on_invoke(self, message: Message) -> None:
        try:
            header_bytes, payload = split_message(message.data)
            try:
                invoke = _content_invoke_decoder.decode(header_bytes)
                arguments = _with_payload(invoke.arguments, payload)
            except msgspec.DecodeError:
                try:
                    invoke = _invoke_decoder.decode(header_bytes)
                except msgspec.DecodeError:
                    # What strict JSON refuses (NaN, lone surrogates) or what does not fit: the
                    # general path accepts the former and names the problem of the latter.
                    header, payload = unpack_message(message.data, MAX_RELAYED_DEPTH)
                    invoke = msgspec.convert(header, type=m.InvokeTool)
                arguments = decode_arguments(invoke.arguments, payload)
        except (EnvelopeError, msgspec.ValidationError) as error:
            self._refuse(message, error if isinstance(error, EnvelopeError) else EnvelopeError(str(error)))
            return
        if not self._open_request(message):
            return
        # Positional (in field order): a third cheaper than keywords for this frozen dataclass.
        event = ToolInvoked(
            message.id,  # request_id
            invoke.toolkit,
            invoke.tool,
            arguments,
            invoke.tool_call_id,
            invoke.participant_id,
            invoke.on_behalf_of_id,
        )
        if event.input_stream:
            self._input_streams.add(invoke.tool_call_id)
        self._events.append(event)

    def _on_request(self, message: Message) -> None:
        try:
            header, payload = unpack_message(message.data, MAX_RELAYED_DEPTH)
        except EnvelopeError as error:
            self._refuse(message, error)
            return
        if self._open_request(message):
            self._events.append(RequestReceived(message.id, message.type, header, payload))

    def _on_request_chunk(self, message: Message) -> None:
        # Every input chunk is acknowledged with an `empty` (or, when it cannot be read, an
        # `error`) `__response__` on its own message id: the TypeScript client sends each chunk
        # as a request and waits for that answer before sending the next; the Python clients
        # drop answers to ids they are not waiting for.
        try:
            header, chunk = decode_chunk_message(message.data, MAX_RELAYED_DEPTH)
            if not isinstance(chunk, ControlContent) and isinstance(chunk, dict):
                raise EnvelopeError("input chunk must be content")
        except EnvelopeError as error:
            self._events.append(MalformedMessage(message.id, message.type, error))
            self._send_content(m.RESPONSE, message.id, ErrorContent(text=str(error), code=ErrorCode.INVALID_REQUEST))
            return
        self._send_content(m.RESPONSE, message.id, _EMPTY)
        tool_call_id = header.tool_call_id
        if isinstance(chunk, ControlContent) and chunk.is_close:
            self._input_streams.discard(tool_call_id)
            self._events.append(RequestStreamClosed(tool_call_id, chunk.status_code, chunk.message))
        else:
            self._events.append(RequestChunk(tool_call_id, chunk))  # type: ignore[arg-type]

    def _on_set_attributes(self, message: Message) -> None:
        try:
            header, _ = unpack_message(message.data, MAX_RELAYED_DEPTH)
        except EnvelopeError as error:
            self._events.append(MalformedMessage(message.id, message.type, error))
            return
        self._events.append(AttributesSet(header))

    def _on_host_response(self, message: Message) -> None:
        call = self._routed.get(message.id)
        if call is None or call.answered:
            self._events.append(
                MalformedMessage(message.id, message.type, RemoteProtocolError(f"no routed call {message.id} awaits a response"))
            )
            return
        try:
            content = unpack_content(message.data, MAX_RELAYED_DEPTH)
        except EnvelopeError as error:
            del self._routed[message.id]
            self._events.append(
                HostCallFailed(message.id, call.tool_call_id, RoomException(f"the toolkit host sent an undecodable response: {error}", code=ErrorCode.INVALID_REQUEST))
            )
            return
        call.answered = True
        if not (isinstance(content, ControlContent) and content.is_open):
            del self._routed[message.id]
        self._events.append(HostResponse(message.id, content))

    def _on_host_chunk(self, message: Message) -> None:
        call = self._routed.get(message.id)
        if call is None:
            self._events.append(
                MalformedMessage(message.id, message.type, RemoteProtocolError(f"no routed call {message.id} is in progress"))
            )
            return
        try:
            _, chunk = decode_chunk_message(message.data, MAX_RELAYED_DEPTH)
        except EnvelopeError as error:
            del self._routed[message.id]
            self._events.append(
                HostCallFailed(message.id, call.tool_call_id, RoomException(f"unable to unpack tool call response chunk payload: {error}", code=ErrorCode.INVALID_REQUEST))
            )
            return
        if isinstance(chunk, ControlContent) and chunk.is_close:
            del self._routed[message.id]
            self._events.append(HostStreamClosed(message.id, call.tool_call_id, chunk.status_code, chunk.message))
            return
        self._events.append(HostChunk(message.id, call.tool_call_id, chunk))

    # --- closing --------------------------------------------------------------------------

    def _fail_pending(self, reason: str) -> None:
        for call_id, call in list(self._routed.items()):
            self._events.append(
                HostCallFailed(
                    call_id,
                    call.tool_call_id,
                    ConnectionLost(
                        f"the participant hosting toolkit {call.toolkit} left before the call completed: {reason}",
                        code=ErrorCode.OPERATION_FAILED,
                    ),
                )
            )
        self._routed.clear()
        self._open_requests.clear()
        self._input_streams.clear()


__all__ = ["ServerSession", "LocalProtocolError"]
