"""The values `room.messaging` yields (`RoomMessage`, `PresenceEvent`, the stream endings) and
messaging streams on either end: `MessagingStream` and the recipient's
`IncomingMessagingStreamRequest` (protocol/room-apis.md §3.5). `MessagingClient` in `messaging`
creates and routes them."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import msgspec

from ..content import CONTROL_CLOSE, JsonContent
from ..errors import ConnectionLost, ErrorCode, RoomException
from ..toolkits.messaging import (
    StreamClientDisconnected,
    StreamClosed,
    StreamInput,
    StreamMessage,
    StreamOutput,
    decode_attachment,
    encode_attachment,
    encode_message,
)
from .feeds import close_receiver
from .participants import RemoteParticipant

if TYPE_CHECKING:
    from .connection import ToolCallStream
    from .messaging import MessagingClient

log = logging.getLogger("meshagent_core.client.messaging")

# --- what the iterators yield -----------------------------------------------------------------


class RoomMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message from another participant (the official `RoomMessage`): `messages()` yields
    them, and so does a `MessagingStream`. `attachment` is the raw bytes (`b""` for a
    `messaging.send` message without one, None for a stream message without one)."""

    from_participant_id: str
    type: str
    message: dict[str, Any]
    attachment: bytes | None = None


class MessagingStreamClientDisconnected(msgspec.Struct, frozen=True, kw_only=True):
    """The other end of a messaging stream closed it or left (then the stream ends)."""

    stream_id: str
    participant_id: str


class MessagingStreamClosed(msgspec.Struct, frozen=True, kw_only=True):
    """A messaging stream ended for `reason` (`client_disconnected`, `error`,
    `protocol_error`, …); `message` says why."""

    stream_id: str
    reason: str
    message: str | None = None


#: What a `MessagingStream` yields (the official union).
MessagingStreamEvent = RoomMessage | MessagingStreamClientDisconnected | MessagingStreamClosed

#: `PresenceEvent.type` values: the official `MessagingClient` event names.
PARTICIPANT_ADDED = "participant_added"
PARTICIPANT_REMOVED = "participant_removed"
PARTICIPANT_ATTRIBUTES_UPDATED = "participant_attributes_updated"
MESSAGING_ENABLED_EVENT = "messaging_enabled"
ONLINE = "online"
OFFLINE = "offline"


class PresenceEvent(msgspec.Struct, frozen=True):
    """A presence change, named as the official client's event (`participant_added`,
    `participant_removed`, `participant_attributes_updated` with the `participant`;
    `messaging_enabled`, `online`, `offline` without one)."""

    type: str
    participant: RemoteParticipant | None = None


# --- incoming stream calls (the recipient's side of `messaging.stream`) -----------------------

AWAITING_INITIAL = "awaiting_initial"
PENDING = "pending"
ACCEPTED = "accepted"
TERMINAL = "terminal"


class IncomingCall:
    __slots__ = ("call_id", "tool_call_id", "caller_id", "state", "request", "stream")

    def __init__(self, call_id: int, tool_call_id: str, caller_id: str) -> None:
        self.call_id = call_id
        self.tool_call_id = tool_call_id
        self.caller_id = caller_id
        self.state = AWAITING_INITIAL
        self.request: IncomingMessagingStreamRequest | None = None
        self.stream: MessagingStream | None = None


class IncomingMessagingStreamRequest:
    """A messaging stream another participant wants to open to this one (from
    `stream_requests()`): its first message is `type`, `message`, `attachment`. Answer with
    `accept()` (a `MessagingStream`) or `reject(message=...)`."""

    def __init__(
        self,
        *,
        client: "MessagingClient",
        call: IncomingCall,
        stream_id: str,
        from_participant_id: str,
        type: str,
        message: dict[str, Any],
        attachment: bytes | None,
    ) -> None:
        self._client = client
        self._call = call
        self.stream_id = stream_id
        self.from_participant_id = from_participant_id
        self.type = type
        self.message = message
        self.attachment = attachment
        self._accepted = False
        self._closed = False
        self._close_reason: str | None = None
        self._close_message: str | None = None

    @property
    def accepted(self) -> bool:
        return self._accepted

    @property
    def closed(self) -> bool:
        """True once the request can no longer be answered (rejected, withdrawn, room closed)."""
        return self._closed

    @property
    def close_reason(self) -> str | None:
        return self._close_reason

    @property
    def close_message(self) -> str | None:
        return self._close_message

    def _mark_closed(self, *, reason: str, message: str | None) -> None:
        self._closed = True
        self._close_reason = reason
        self._close_message = message

    async def accept(self) -> "MessagingStream":
        """Open the stream; the initiator's `stream()` returns. Raises `RoomException`
        (INVALID_STATE) if the request is no longer pending."""
        return self._client._accept_stream_request(self)

    async def reject(self, *, message: str | None = None) -> None:
        """Refuse the stream: the initiator's `stream()` raises `RoomException` with `message`
        (default "messaging stream rejected")."""
        self._client._reject_stream_request(self, message=message)

    def __repr__(self) -> str:
        return f"<IncomingMessagingStreamRequest {self.stream_id} from {self.from_participant_id} {self.type!r}>"


# --- streams ------------------------------------------------------------------------------------


class MessagingStream:
    """An open messaging stream between two participants (protocol/room-apis.md §3.5), on either end.

    `send_message(type=, message=, attachment=)` sends to the other end; `receive()` (or
    `async for event in stream`) gives what arrives: `RoomMessage`s, then possibly a
    `MessagingStreamClientDisconnected` or `MessagingStreamClosed` when the stream ends, after
    which `receive()` returns None. `close()` ends it for both ends; `async with stream:` closes
    it on exit."""

    def __init__(
        self,
        *,
        client: "MessagingClient",
        stream_id: str,
        remote_participant_id: str,
        call: "ToolCallStream | None" = None,
        call_exit: Any = None,
        incoming: IncomingCall | None = None,
    ) -> None:
        self._client = client
        self._stream_id = stream_id
        self._remote_participant_id = remote_participant_id
        self._call = call  # initiator: the `messaging.stream` call
        self._call_exit = call_exit  # initiator: leaves the call's context manager
        self._incoming = incoming  # recipient: the hosted call
        self._events_send, self._events = client.room.backend.open_memory_channel(math.inf)
        self._receiver_closed = False
        self._closed = False
        self._reader_scope: Any = None

    @property
    def stream_id(self) -> str:
        return self._stream_id

    @property
    def remote_participant_id(self) -> str:
        return self._remote_participant_id

    @property
    def closed(self) -> bool:
        return self._closed

    # --- sending ----------------------------------------------------------------------------

    def send_message_nowait(self, *, type: str, message: dict[str, Any], attachment: bytes | None = None) -> None:
        """Send a message to the other end (queued for the socket at once)."""
        if self._closed:
            raise RoomException("the messaging stream is closed", code=ErrorCode.INVALID_STATE)
        connection = self._client.room._connection_or_raise()
        if self._call is not None:
            chunk = StreamInput(type=type, message_json=encode_message(message), attachment_base64=encode_attachment(attachment))
            self._call.send(JsonContent(json=msgspec.to_builtins(chunk)))
        else:
            assert self._incoming is not None
            if self._incoming.state is not ACCEPTED:
                raise RoomException("the messaging stream is not accepted", code=ErrorCode.INVALID_STATE)
            out = StreamMessage(type=type, message=message, attachment_base64=encode_attachment(attachment))
            connection.send_tool_call_chunk(self._incoming.call_id, JsonContent(json=msgspec.to_builtins(out)))

    async def send_message(self, *, type: str, message: dict[str, Any], attachment: bytes | None = None) -> None:
        """Send a message to the other end. Raises `RoomException` (INVALID_STATE) once the
        stream is closed."""
        self.send_message_nowait(type=type, message=message, attachment=attachment)

    # --- receiving --------------------------------------------------------------------------

    async def receive(self) -> MessagingStreamEvent | None:
        """The next event, or None once the stream has ended and everything was received
        (after `close()`: at once)."""
        if not self._receiver_closed:
            async for event in self._events:
                return event  # type: ignore[no-any-return]
            self._receiver_closed = close_receiver(self._events)
        return None

    def __aiter__(self) -> "MessagingStream":
        return self

    async def __anext__(self) -> MessagingStreamEvent:
        event = await self.receive()
        if event is None:
            raise StopAsyncIteration
        return event

    def _push(self, event: MessagingStreamEvent) -> None:
        if not self._closed:
            try:
                self._events_send.send_nowait(event)
            except Exception:
                pass

    def _finish(self) -> None:
        """The stream is over: no more events (those buffered are still received)."""
        if not self._closed:
            self._closed = True
            self._events_send.close()
            self._client._streams.discard(self)

    # --- closing ----------------------------------------------------------------------------

    async def close(self) -> None:
        """End the stream for both ends (the other end gets `MessagingStreamClientDisconnected`)."""
        if self._closed:
            return
        self._finish()
        self._receiver_closed = close_receiver(self._events)
        if self._call is not None:
            if self._reader_scope is not None:
                self._reader_scope.cancel()
            await self._leave_call()
        else:
            call = self._incoming
            assert call is not None
            if call.state is ACCEPTED:
                call.state = TERMINAL
                self._client._incoming_calls.pop(call.tool_call_id, None)
                connection = self._client.room.connection
                if connection is not None and not connection.closed:
                    try:
                        connection.send_tool_call_chunk(call.call_id, CONTROL_CLOSE)
                    except Exception:
                        log.debug("messaging stream %s: close not sent", self._stream_id, exc_info=True)

    async def __aenter__(self) -> "MessagingStream":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def _leave_call(self) -> None:
        exit, self._call_exit = self._call_exit, None
        if exit is not None:
            await exit(None, None, None)  # closes the input: the server tells the other end

    async def _read_output(self) -> None:
        """Initiator: the recipient's chunks as events (a task owned by the room)."""
        assert self._call is not None
        with self._client.room.backend.move_on_after(math.inf) as scope:
            self._reader_scope = scope
            if self._closed:
                return
            try:
                await self._relay_output(self._call)
            except Exception as error:  # a failed stream never takes the room down
                self._push(MessagingStreamClosed(stream_id=self._stream_id, reason="error", message=str(error)))
            self._finish()
            await self._leave_call()

    async def _relay_output(self, call: "ToolCallStream") -> None:
        disconnected = MessagingStreamClientDisconnected(stream_id=self._stream_id, participant_id=self._remote_participant_id)
        try:
            async for chunk in call.chunks():
                if not isinstance(chunk, JsonContent) or not isinstance(chunk.json, dict):
                    raise RoomException("unexpected chunk from messaging.stream", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE)
                try:
                    output = msgspec.convert(chunk.json, type=StreamOutput)
                except msgspec.ValidationError:
                    raise RoomException(
                        "unexpected chunk from messaging.stream", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE
                    ) from None
                if isinstance(output, StreamMessage):
                    attachment = decode_attachment(output.attachment_base64) if output.attachment_base64 else None
                    self._push(
                        RoomMessage(
                            from_participant_id=self._remote_participant_id,
                            type=output.type,
                            message=output.message,
                            attachment=attachment,
                        )
                    )
                elif isinstance(output, StreamClientDisconnected):
                    self._push(MessagingStreamClientDisconnected(stream_id=self._stream_id, participant_id=output.participant_id))
                elif isinstance(output, StreamClosed):
                    self._push(MessagingStreamClosed(stream_id=self._stream_id, reason=output.reason, message=output.message))
                    return
                else:  # a second `accepted`
                    raise RoomException("unexpected chunk from messaging.stream", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE)
        except ConnectionLost:
            self._push(disconnected)
            return
        # `control/close` from the server (or the connection ended): the other end is gone.
        self._push(disconnected)

    def __repr__(self) -> str:
        side = "outgoing" if self._call is not None else "incoming"
        return f"<MessagingStream {self._stream_id} {side} with {self._remote_participant_id}{' closed' if self._closed else ''}>"


__all__ = [
    "ACCEPTED",
    "AWAITING_INITIAL",
    "IncomingCall",
    "IncomingMessagingStreamRequest",
    "MESSAGING_ENABLED_EVENT",
    "MessagingStream",
    "MessagingStreamClientDisconnected",
    "MessagingStreamClosed",
    "MessagingStreamEvent",
    "OFFLINE",
    "ONLINE",
    "PARTICIPANT_ADDED",
    "PARTICIPANT_ATTRIBUTES_UPDATED",
    "PARTICIPANT_REMOVED",
    "PENDING",
    "PresenceEvent",
    "RoomMessage",
    "TERMINAL",
]
