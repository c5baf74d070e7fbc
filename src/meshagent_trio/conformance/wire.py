"""A raw room connection for the wire checks: packets and envelopes by hand, over the project's
own WebSocket transport (`meshagent_trio.websocket`), with nothing in between that could hide
what the server sends (or fix what we send on purpose).

Incoming packets go through a strict reader (protocol/wire.md §3.6): data packets carry exactly 1,024
bytes except the last of a message, indices are consecutive, and the packets of one message
are never interleaved with another's (the official receiver cannot reassemble that). What
breaks these rules is recorded in `violations`, and the message in progress is dropped.
"""

from __future__ import annotations

import struct
import uuid
from collections import deque
from typing import Any, Mapping, NamedTuple

import msgspec
import trio

from meshagent_core import Content, encode_message, pack_message, unpack_content, unpack_message
from meshagent_core.framing import CHUNK_SIZE, DATA_PREFIX_SIZE, HEADER_PREFIX_SIZE

from ..websocket import HandshakeRejected, WebSocketClosed, WebSocketConnection, connect_websocket

RESPONSE = "__response__"
INVOKE_TOOL = "room.invoke_tool"
_HEADER = struct.Struct(">QII")
_DATA = struct.Struct(">QI")


class WireMessage(NamedTuple):
    id: int
    type: str
    data: bytes
    packets: int  # data packets it came in


class StrictReader:
    """Reassembles packets into messages and records every framing rule the sender broke."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self._reset()

    def _reset(self) -> None:
        self._id: int | None = None
        self._type = ""
        self._count = 0
        self._next = 0
        self._chunks: list[bytes] = []

    def _violation(self, text: str) -> None:
        self.violations.append(text)
        self._reset()

    def feed(self, packet: bytes) -> WireMessage | None:
        if len(packet) < DATA_PREFIX_SIZE:
            self._violation(f"a packet of {len(packet)} bytes (shorter than its 12-byte prefix)")
            return None
        message_id, index = _DATA.unpack_from(packet)
        if index == 0:
            if self._id is not None:
                self._violation(f"message {message_id} started while message {self._id} was incomplete (interleaved packets)")
            if len(packet) < HEADER_PREFIX_SIZE:
                self._violation(f"a header packet of {len(packet)} bytes (shorter than 16)")
                return None
            _, _, count = _HEADER.unpack_from(packet)
            try:
                type = packet[HEADER_PREFIX_SIZE:].decode("utf-8")
            except UnicodeDecodeError:
                self._violation(f"message {message_id}: its type is not UTF-8")
                return None
            if count == 0:
                return WireMessage(message_id, type, b"", 0)
            self._id, self._type, self._count, self._next, self._chunks = message_id, type, count, 1, []
            return None
        if self._id is None:
            self._violation(f"data packet {index} of message {message_id} with no message started")
            return None
        if message_id != self._id or index != self._next:
            self._violation(
                f"packet {index} of message {message_id} while packet {self._next} of message {self._id} was expected"
            )
            return None
        body = packet[DATA_PREFIX_SIZE:]
        last = index == self._count
        if not body or len(body) > CHUNK_SIZE or (not last and len(body) != CHUNK_SIZE):
            self._violation(
                f"data packet {index}/{self._count} of message {message_id} carries {len(body)} bytes "
                f"(every data packet but the last carries exactly {CHUNK_SIZE}, none is empty)"
            )
            return None
        self._chunks.append(body)
        if not last:
            self._next += 1
            return None
        message = WireMessage(self._id, self._type, b"".join(self._chunks), self._count)
        self._reset()
        return message


def header_packet(message_id: int, type: str, count: int) -> bytes:
    """A header packet announcing `count` data packets (whatever follows or not)."""
    return _HEADER.pack(message_id, 0, count) + type.encode("utf-8")


def invoke_header(toolkit: str, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A `room.invoke_tool` header with JSON `arguments` (protocol/wire.md §6.5)."""
    return {
        "toolkit": toolkit,
        "tool": tool,
        "participant_id": None,
        "on_behalf_of_id": None,
        "arguments": {"type": "json", "json": dict(arguments)},
        "tool_call_id": uuid.uuid4().hex,
    }


class RawConnection:
    """One WebSocket to a room, spoken to packet by packet (see the module docstring)."""

    def __init__(self, websocket: WebSocketConnection) -> None:
        self.websocket = websocket
        self.reader = StrictReader()
        self.received: deque[WireMessage] = deque()  # read, not yet taken
        self.close_code: int | None = None  # set once the server's close (or the loss) is seen
        self.close_reason = ""
        self.last_response: WireMessage | None = None  # the answer `invoke` decoded last
        self._next_id = 0

    @classmethod
    async def open(cls, url: str, token: str | None) -> "RawConnection":
        """Upgrade to `url` with `token` as the bearer (none when None). Raises
        `HandshakeRejected` with the HTTP status when the server refuses."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return cls(await connect_websocket(url, headers=headers))

    @property
    def violations(self) -> list[str]:
        return self.reader.violations

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # --- sending ------------------------------------------------------------------------------

    async def send_packets(self, packets: list[bytes]) -> None:
        await self.websocket.send_packets(packets)

    async def send_message(self, type: str, data: bytes, message_id: int | None = None) -> int:
        """Frame `data` as message `type` (1 KiB packets) and send it; returns its id."""
        message_id = self.new_id() if message_id is None else message_id
        await self.send_packets(encode_message(message_id, type, data))
        return message_id

    async def send(self, type: str, header: Mapping[str, Any], payload: bytes = b"") -> int:
        return await self.send_message(type, pack_message(header, payload))

    def invoke_packets(self, toolkit: str, tool: str, arguments: Mapping[str, Any]) -> tuple[int, list[bytes]]:
        """The id and packets of a `room.invoke_tool` with JSON arguments, not sent (to send
        them in one write with other packets)."""
        message_id = self.new_id()
        return message_id, encode_message(message_id, INVOKE_TOOL, pack_message(invoke_header(toolkit, tool, arguments)))

    async def invoke(self, toolkit: str, tool: str, arguments: Mapping[str, Any]) -> Content:
        """A unary `room.invoke_tool` with JSON arguments; its answer (error contents included)."""
        request_id = await self.send(INVOKE_TOOL, invoke_header(toolkit, tool, arguments))
        self.last_response = await self.response(request_id)
        return decode_content(self.last_response)

    # --- receiving ----------------------------------------------------------------------------

    async def receive(self) -> WireMessage:
        """The next message. Raises `WebSocketClosed` once the connection is over (its code in
        `close_code`: the close frame's, 1006 without one)."""
        while not self.received:
            if self.close_code is not None:
                raise WebSocketClosed(self.close_code, self.close_reason)
            try:
                packets = await self.websocket.receive_packets()
            except WebSocketClosed as closed:
                self.close_code, self.close_reason = closed.code, closed.reason
                continue
            for packet in packets:
                message = self.reader.feed(bytes(packet))
                if message is not None:
                    self.received.append(message)
        return self.received.popleft()

    async def response(self, request_id: int) -> WireMessage:
        """The `__response__` to `request_id`; other messages read meanwhile are skipped."""
        while True:
            message = await self.receive()
            if message.type == RESPONSE and message.id == request_id:
                return message

    async def handshake(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The headers of `room_ready` and `connected` (`type: init`), in whichever order they
        come (`room.status` and other messages before them are skipped)."""
        ready: dict[str, Any] | None = None
        init: dict[str, Any] | None = None
        while ready is None or init is None:
            message = await self.receive()
            if message.type == "room_ready":
                ready = unpack_message(message.data)[0]
            elif message.type == "connected":
                header = unpack_message(message.data)[0]
                if header.get("type") == "init":
                    init = header
        return ready, init

    async def closed(self) -> int:
        """Read (and drop) messages until the connection ends; its close code."""
        while True:
            try:
                await self.receive()
            except WebSocketClosed:
                return self.close_code if self.close_code is not None else 1006

    async def aclose(self) -> None:
        """Close (bounded, and also when the caller is being cancelled)."""
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                await self.websocket.close()
            except (WebSocketClosed, OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the transport is already gone: nothing left to close


def decode_content(message: WireMessage) -> Content:
    """The content a `__response__` carries (raises when it does not decode)."""
    return unpack_content(message.data)


def json_bytes(value: Any) -> bytes:
    return msgspec.json.encode(value)


__all__ = [
    "HandshakeRejected",
    "INVOKE_TOOL",
    "RESPONSE",
    "RawConnection",
    "StrictReader",
    "WebSocketClosed",
    "WireMessage",
    "decode_content",
    "header_packet",
    "invoke_header",
]
