"""What client and server sessions share: ids, packet I/O, the event queue, closing."""

from __future__ import annotations

import enum
from typing import Any, Iterable, Mapping

import msgspec

from ..content import Content, JsonContent, content_from_header, is_content_header
from ..envelope import JsonStyle, pack_message, unpack_message
from ..errors import ConnectionLost, EnvelopeError, ErrorCode, FramingError, LocalProtocolError
from ..framing import DEFAULT_MAX_MESSAGE_SIZE, Message, PacketReader, PacketWriter
from ..jsondepth import MAX_JSON_DEPTH
from ..messages import ToolCallChunk
from .events import Event, SessionClosed


class SessionState(enum.Enum):
    CONNECTING = "connecting"
    READY = "ready"
    CLOSED = "closed"


_CLOSED = SessionState.CLOSED


class Session:
    """Sans-IO base: feed packets in, take events and packets out.

    `receive_packet` raises `FramingError` for packets that break framing (the adapter decides
    whether to drop the connection); every other problem becomes an event. Outgoing messages
    accumulate until `packets_to_send()`, which returns the packets of all of them so the
    adapter can write them in one go.
    """

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        json_style: JsonStyle = JsonStyle.COMPACT,
    ) -> None:
        self._reader = PacketReader(max_message_size)
        self._writer = PacketWriter()
        self._last_message_id = 0
        self._events: list[Event] = []
        self._json_style = json_style
        self.state = SessionState.CONNECTING
        self.close_reason: str | None = None
        self.close_code: int | None = None

    # --- output ---------------------------------------------------------------------------

    def next_message_id(self) -> int:
        """Ids this side originates: a per-connection counter whose first value is 1."""
        self._last_message_id += 1
        return self._last_message_id

    def packets_to_send(self) -> list[bytes]:
        """Every packet queued since the last call, in order (one socket write's worth)."""
        return self._writer.flush()

    @property
    def has_packets_to_send(self) -> bool:
        return len(self._writer) > 0

    @property
    def queued_packets(self) -> int:
        """Packets queued and not yet taken by `packets_to_send()`."""
        return len(self._writer)

    def discard_queued(self) -> int:
        """Drop every queued packet (the connection is being given up); returns how many."""
        return len(self._writer.flush())

    def _send(
        self,
        type: str,
        header: Mapping[str, Any] | msgspec.Struct,
        payload: bytes = b"",
        message_id: int | None = None,
    ) -> int:
        self._ensure_open()
        if message_id is None:
            message_id = self.next_message_id()
        self._writer.add(message_id, type, pack_message(header, payload, style=self._json_style))
        return message_id

    def _send_content(self, type: str, message_id: int, content: Content) -> None:
        if self.state is _CLOSED:
            self._ensure_open()
        self._writer.add(message_id, type, pack_message(content.header(), content.data, style=self._json_style))

    def _ensure_open(self) -> None:
        if self.state is SessionState.CLOSED:
            raise ConnectionLost(
                f"room connection is disconnected: {self.close_reason}",
                code=ErrorCode.INVALID_STATE,
            )

    # --- input ----------------------------------------------------------------------------

    def receive_packet(self, packet: bytes | bytearray | memoryview) -> None:
        """Feed one packet (one WebSocket binary message). Packets after close are ignored."""
        if self.state is SessionState.CLOSED:
            return
        message = self._reader.receive_packet(packet)
        if message is not None:
            self._dispatch(message)

    def receive_packets(self, packets: Iterable[bytes | bytearray | memoryview]) -> None:
        """Feed a batch of packets (e.g. all read from the socket in one go)."""
        if self.state is SessionState.CLOSED:
            return
        try:
            messages = self._reader.receive_packets(packets)
        except FramingError as error:
            for message in error.completed:
                self._dispatch(message)
            raise
        for message in messages:
            self._dispatch(message)

    def receive_message(self, message: Message) -> None:
        """Feed an already reassembled message (for transports that frame by themselves)."""
        if self.state is not SessionState.CLOSED:
            self._dispatch(message)

    def events_received(self) -> list[Event]:
        """Every event since the last call, in order."""
        events, self._events = self._events, []
        return events

    def _dispatch(self, message: Message) -> None:
        raise NotImplementedError

    # --- closing --------------------------------------------------------------------------

    def connection_closed(self, reason: str, code: int | None = None) -> None:
        """The transport is gone. Every pending item gets a failure event, then `SessionClosed`."""
        if self.state is SessionState.CLOSED:
            return
        self.state = SessionState.CLOSED
        self.close_reason = reason
        self.close_code = code
        self._writer.flush()
        self._fail_pending(reason)
        self._events.append(SessionClosed(reason, code))

    def _fail_pending(self, reason: str) -> None:
        raise NotImplementedError


def decode_chunk_message(data: bytes, limit: int = MAX_JSON_DEPTH) -> tuple[ToolCallChunk, Content | dict[str, Any]]:
    """Header and chunk of a `*_chunk` message. A `chunk` that is an object with a non-content
    `type` (a progress event) comes back as that dict; a malformed content chunk raises."""
    header, payload = unpack_message(data, limit)
    try:
        chunk_message = msgspec.convert(header, type=ToolCallChunk)
    except msgspec.ValidationError as error:
        raise EnvelopeError(f"invalid chunk message: {error}") from None
    chunk = chunk_message.chunk
    if is_content_header(chunk):
        return chunk_message, content_from_header(chunk, payload)
    if isinstance(chunk, dict):
        return chunk_message, chunk
    raise EnvelopeError("chunk must be an object")


def decode_arguments(arguments: Any, payload: bytes) -> Content:
    """Tool arguments: a content header, or (legacy) a plain object taken as JSON input."""
    if is_content_header(arguments):
        return content_from_header(arguments, payload)
    if isinstance(arguments, dict) and "type" not in arguments:
        if payload:
            raise EnvelopeError("legacy tool arguments cannot carry a payload")
        return JsonContent(json=arguments)
    if isinstance(arguments, dict):
        return content_from_header(arguments, payload)
    raise EnvelopeError("tool arguments must be a content object")


def not_pending(kind: str, ident: object) -> LocalProtocolError:
    return LocalProtocolError(f"{kind} {ident!r} is not pending on this session")
