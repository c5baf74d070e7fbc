"""WebSocket transport: the `websockets` sans-IO protocol driven by a backend's byte stream.

One room packet is one WebSocket binary message. `send_packets` frames a whole batch and
writes it with a single `send_all` (DESIGN.md, "Measured decisions"); `receive_packets` reads a
large chunk, feeds it all to the protocol and returns every packet it completed. The same code
runs on Trio and on AnyIO: it awaits only the `Backend` and the stream it is given.

Outgoing bytes go through one ordered queue. `queue_packets` frames packets into it without any
I/O, and `send_queued_nowait` hands the socket what it takes at once, when the stream offers a
non-blocking `send_nowait` (the Trio backend's TCP stream does) and no task is in the middle of
a write: a caller can then send its request with no task switch and no checkpoint, and being
synchronous, it cannot be cancelled halfway through a frame. Whatever is left waits for a
`flush()`, which a single task at a time runs.

Data frames are framed and parsed here rather than by `websockets` (which builds a `Frame` and
runs a generator per frame, and draws each client mask with its own `getrandom` call): an
unfragmented binary frame, the only kind the room protocol uses, costs a few slices. Everything
else (control frames, text, fragments, reserved bits, wrong masking, oversized frames) is handed
to the `websockets` protocol, byte for byte, at a frame boundary, so its checks, close handshake
and error codes apply unchanged; after anything but a complete control frame it parses the rest
of the connection itself. No extension is ever offered, so frames carry raw packets.
"""

from __future__ import annotations

import os
import ssl
import struct
from typing import Sequence

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode, apply_mask
from websockets.protocol import CLOSED, OPEN, Protocol
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from .backend import Backend, ByteStream

#: Largest WebSocket message accepted. Room packets are at most 1036 bytes; the rest is room
#: for long message type strings.
MAX_WEBSOCKET_MESSAGE = 64 * 1024
#: Bytes asked for per socket read. Below glibc malloc's default mmap threshold (128 KiB): a
#: larger read buffer, shrunk to what arrived, can cost mmap, mremap, munmap and page faults
#: on every read, for the life of the process (measured on the server, 3 system calls a call).
READ_SIZE = 64 * 1024
#: Client frame masks drawn from the OS at a time (one `getrandom` per 1,024 frames).
MASK_POOL_SIZE = 4096
CLOSE_TIMEOUT = 5.0

_FIN_BINARY = 0x82  # first byte of an unfragmented binary frame without reserved bits
_MASKED = 0x80  # the mask bit of a frame's second byte
_FIRST_CONTROL_OPCODE = 0x8
_MAX_CONTROL_PAYLOAD = 125
_HEAD_16 = struct.Struct(">BBH")
_HEAD_64 = struct.Struct(">BBQ")
_HEAD_END = b"\r\n\r\n"


class WebSocketClosed(Exception):
    """The connection is closed; `code`/`reason` are the close frame's (1006 without one)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"websocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class HandshakeRejected(Exception):
    """The server answered the upgrade with an HTTP error."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"websocket upgrade refused with HTTP {status}: {body}")
        self.status = status
        self.body = body


class WebSocketConnection:
    """An open WebSocket carrying room packets."""

    def __init__(self, backend: Backend, stream: ByteStream, protocol: Protocol) -> None:
        self._backend = backend
        self._stream = stream
        self._protocol = protocol
        self._outgoing: list[bytes] = []  # framed bytes not yet handed to the stream, in order
        self._eof_pending = False  # the protocol asked for a half-close after `_outgoing`
        self._writing = False  # a task is inside `send_all`: others only append to `_outgoing`
        self._send_failed: WebSocketClosed | None = None
        self._write_done = backend.Event()
        self._send_nowait = getattr(stream, "send_nowait", None)
        self._fragments: list[bytes] = []
        self._fragmented = False
        self._closed: WebSocketClosed | None = None
        self._pending: list[bytes] = []  # packets that arrived with the handshake
        # Set by `_start_frames` once the handshake is done (see the module docstring).
        self._parse_here = False  # incoming frames are parsed by `_parse_frames`
        self._frame_here = False  # outgoing packets are framed by `_frame_packets`
        self._input_rest = b""  # the start of an incomplete frame, for `_parse_frames`
        self._mask_pool = b""
        self._mask_used = 0
        self._mask_input = _MASKED if isinstance(protocol, ServerProtocol) else 0
        self._max_input = protocol.max_message_size if protocol.max_message_size is not None else 1 << 63

    @property
    def closed(self) -> bool:
        return self._closed is not None or self._protocol.state is CLOSED

    @property
    def can_send_nowait(self) -> bool:
        """Whether `send_queued_nowait` can send anything (the stream has a non-blocking send)."""
        return self._send_nowait is not None

    async def send_packets(self, packets: Sequence[bytes]) -> None:
        """Send each packet as one binary message, all in one write."""
        self.queue_packets(packets)
        await self.flush()

    def queue_packets(self, packets: Sequence[bytes]) -> None:
        """Frame each packet as one binary message, after everything queued before (no I/O:
        `send_queued_nowait` or `flush` sends them)."""
        if self._protocol.state is not OPEN:
            raise self._closed_error()
        if self._frame_here:
            self._take_output()  # what the protocol queued itself (a pong) goes first
            self._frame_packets(packets)
            return
        send = self._protocol.send_binary
        for packet in packets:
            send(packet)
        self._take_output()

    def _frame_packets(self, packets: Sequence[bytes]) -> None:
        """Append each packet to `_outgoing` as an unfragmented binary frame, masked (with a
        fresh random key per frame, drawn in one call for the batch) when this is a client."""
        out = self._outgoing
        if self._mask_input:  # a server: frames go out unmasked
            for packet in packets:
                size = len(packet)
                if size < 126:
                    out.append(bytes((_FIN_BINARY, size)))
                elif size < 65536:
                    out.append(_HEAD_16.pack(_FIN_BINARY, 126, size))
                else:
                    out.append(_HEAD_64.pack(_FIN_BINARY, 127, size))
                out.append(packet)
            return
        keys = self._masks(len(packets))
        for index, packet in enumerate(packets):
            size = len(packet)
            key = keys[4 * index : 4 * index + 4]
            if size < 126:
                out.append(bytes((_FIN_BINARY, _MASKED | size)) + key)
            elif size < 65536:
                out.append(_HEAD_16.pack(_FIN_BINARY, _MASKED | 126, size) + key)
            else:
                out.append(_HEAD_64.pack(_FIN_BINARY, _MASKED | 127, size) + key)
            out.append(apply_mask(packet, key))

    def _masks(self, count: int) -> bytes:
        """`count` fresh 4-byte masking keys, from a pool of OS random bytes (RFC 6455 §5.3 asks
        for unpredictable keys, not for a system call per frame)."""
        needed = 4 * count
        if needed > len(self._mask_pool) - self._mask_used:
            self._mask_pool = os.urandom(max(MASK_POOL_SIZE, needed))
            self._mask_used = 0
        start = self._mask_used
        self._mask_used = start + needed
        return self._mask_pool[start : start + needed]

    def send_queued_nowait(self) -> bool:
        """Hand the stream as much of the queue as it takes without waiting; True when nothing
        is left to send. Sends nothing while another task is writing (that task sends the rest)
        or when the stream has no non-blocking send."""
        if not self._outgoing:
            return not self._eof_pending
        if self._writing or self._send_nowait is None or self._send_failed is not None:
            return False
        data = self._outgoing[0] if len(self._outgoing) == 1 else b"".join(self._outgoing)
        try:
            sent = self._send_nowait(data)
        except self._backend.stream_errors:
            self._lost()
            return False
        if sent == len(data):
            self._outgoing.clear()
            return not self._eof_pending
        self._outgoing[:] = [data[sent:]]
        return False

    def _take_output(self) -> None:
        chunks = self._protocol.data_to_send()
        if chunks:
            if chunks[-1] == b"":  # SEND_EOF: half-close once the bytes before it are out
                self._eof_pending = True
                chunks = [chunk for chunk in chunks if chunk]
            self._outgoing.extend(chunks)

    @property
    def has_output(self) -> bool:
        """Whether bytes are queued for `flush()` (e.g. a pong `receive_packets(flush=False)`
        left)."""
        return bool(self._outgoing) or self._eof_pending

    async def receive_packets(self, *, flush: bool = True) -> list[bytes]:
        """The packets of the next read (at least one). Raises `WebSocketClosed` at the end.
        What the protocol answers by itself (pongs) is sent before returning, unless `flush` is
        False: it then waits for the caller's `flush()` (see `has_output`)."""
        if self._pending:
            packets, self._pending = self._pending, []
            return packets
        while True:
            if self._closed is not None:
                raise self._closed
            try:
                data = await self._stream.receive_some(READ_SIZE)
            except self._backend.stream_errors:
                data = b""
            if data and self._parse_here:
                packets = self._parse_frames(data)
            else:
                if data:
                    self._protocol.receive_data(data)
                else:
                    self._protocol.receive_eof()
                packets = self._take_packets(self._protocol.events_received())
            if self._protocol.close_rcvd is not None or self._protocol.state is CLOSED:
                # The peer is leaving. Tell the caller first; our close reply is sent by close(),
                # after the caller has dealt with the departure.
                self._closed = self._closed_error()
                if packets:
                    return packets
                raise self._closed
            self._take_output()  # pongs
            if flush and (self._outgoing or self._eof_pending):
                await self.flush()
            if packets:
                return packets

    def _start_frames(self, data: bytes) -> list[bytes]:
        """The handshake is done and the protocol has seen nothing after it: from here on, frames
        are parsed and built here (unless an extension was negotiated). `data` is what arrived
        after the handshake; returns the packets it completes."""
        if self._protocol.state is OPEN and not self._protocol.extensions:
            self._parse_here = self._frame_here = True
            return self._parse_frames(data) if data else []
        if data:
            self._protocol.receive_data(data)
        return self._take_packets(self._protocol.events_received())

    def _parse_frames(self, data: bytes | bytearray) -> list[bytes]:
        """The packets of the complete frames in `data` (after any incomplete frame kept from the
        last call). Complete control frames go to the protocol (pings, the close handshake); on
        anything else that is not an unfragmented binary frame of the right masking and size,
        the protocol gets the rest of the bytes and parses this connection from then on."""
        if self._input_rest:
            data = self._input_rest + data
            self._input_rest = b""
        elif type(data) is not bytes:
            data = bytes(data)
        packets: list[bytes] = []
        size = len(data)
        position = 0
        mask = self._mask_input
        limit = self._max_input
        while size - position >= 2:
            first = data[position]
            second = data[position + 1]
            length = second & 0x7F
            start = position + 2
            if length == 126:
                if size - start < 2:
                    break
                length = (data[start] << 8) | data[start + 1]
                start += 2
            elif length == 127:
                if size - start < 8:
                    break
                length = int.from_bytes(data[start : start + 8], "big")
                start += 8
            if second & _MASKED:
                start += 4
            end = start + length
            if first == _FIN_BINARY and second & _MASKED == mask and length <= limit:
                if end > size:
                    break
                if mask:
                    view = memoryview(data)
                    packets.append(apply_mask(view[start:end], view[start - 4 : start]))
                else:
                    packets.append(data[start:end])
                position = end
                continue
            if first & 0x0F >= _FIRST_CONTROL_OPCODE and length <= _MAX_CONTROL_PAYLOAD:
                if end > size:
                    break
                self._protocol.receive_data(data[position:end])
                packets.extend(self._take_packets(self._protocol.events_received()))
                position = end
                if self._protocol.state is OPEN:
                    continue
            # Not ours to parse (or the connection is closing): the protocol takes over.
            self._parse_here = False
            if position < size:
                self._protocol.receive_data(data[position:])
                packets.extend(self._take_packets(self._protocol.events_received()))
            return packets
        if position < size:
            self._input_rest = data[position:]
        return packets

    def _take_packets(self, events: list[object]) -> list[bytes]:
        packets: list[bytes] = []
        for event in events:
            if not isinstance(event, Frame):
                continue
            opcode = event.opcode
            if opcode is Opcode.BINARY and event.fin and not self._fragmented:
                packets.append(event.data)
            elif opcode is Opcode.BINARY or (opcode is Opcode.CONT and self._fragmented):
                self._fragmented = not event.fin
                self._fragments.append(event.data)
                if event.fin:
                    packets.append(b"".join(self._fragments))
                    self._fragments.clear()
            elif opcode is Opcode.TEXT or opcode is Opcode.CONT:
                # The room protocol is binary only (protocol/wire.md §2.3).
                self._protocol.fail(1003, "text frames are not part of the room protocol")
        return packets

    async def flush(self) -> None:
        """Send everything queued, waiting while the socket is full. Only one task writes at a
        time; a task that finds another one writing waits until that one has sent its bytes.
        Raises `WebSocketClosed` when the connection is lost."""
        self._take_output()
        while self._outgoing or self._eof_pending:
            if self._send_failed is not None:
                raise self._send_failed
            if self._writing:
                await self._write_done.wait()
                continue
            if self.send_queued_nowait():
                return
            self._writing = True
            try:
                while self._outgoing:
                    data = b"".join(self._outgoing)
                    self._outgoing.clear()
                    try:
                        await self._stream.send_all(data)
                    except self._backend.stream_errors:
                        raise
                    except BaseException:  # cancelled
                        # Part of a frame may be out: nothing more can follow it on this
                        # stream, not even a close frame (the peer sees the TCP close).
                        self._lost("a write was interrupted")
                        raise
                if self._eof_pending:
                    self._eof_pending = False
                    await self._stream.send_eof()
            except self._backend.stream_errors:
                raise self._lost() from None
            finally:
                self._writing = False
                done, self._write_done = self._write_done, self._backend.Event()
                done.set()
        if self._send_failed is not None:  # the task that was writing our bytes failed
            raise self._send_failed

    def _lost(self, reason: str = "connection lost") -> WebSocketClosed:
        """The stream failed while sending: what is queued is dropped, every later send fails."""
        self._send_failed = WebSocketClosed(1006, reason)
        self._closed = self._closed or self._send_failed
        self._outgoing.clear()
        self._eof_pending = False
        return self._send_failed

    async def send_close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (if none was sent yet) without waiting for the peer's: for when
        another task is reading and will get it. `close()` then completes the handshake."""
        if self._protocol.state is OPEN:
            self._protocol.send_close(code, reason)
            try:
                await self.flush()
            except WebSocketClosed:
                pass

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close handshake: send a close frame, wait (bounded) for the peer's, drop the socket."""
        await self.send_close(code, reason)
        try:
            with self._backend.move_on_after(CLOSE_TIMEOUT):
                while self._protocol.close_rcvd is None and self._protocol.state is not CLOSED:
                    await self.receive_packets()
        except WebSocketClosed:
            pass
        try:
            await self.flush()  # e.g. the reply to the peer's close frame
        except WebSocketClosed:
            pass
        self._closed = self._closed or WebSocketClosed(code, reason)
        try:
            await self._stream.aclose()
        except self._backend.stream_errors:
            pass

    async def abort(self) -> None:
        """Drop the TCP connection without a close frame (a peer sees code 1006)."""
        self._closed = self._closed or WebSocketClosed(1006, "aborted")
        await self._stream.aclose()

    def _closed_error(self) -> WebSocketClosed:
        if self._closed is not None:
            return self._closed
        received = self._protocol.close_rcvd
        if received is not None:  # also before our reply is sent, when close_code is still None
            return WebSocketClosed(received.code, received.reason)
        return WebSocketClosed(self._protocol.close_code or 1006, self._protocol.close_reason or "")


# --- server side -----------------------------------------------------------------------------


async def accept_websocket(backend: Backend, stream: ByteStream, request_bytes: bytes) -> WebSocketConnection:
    """Complete the upgrade of an HTTP request already read (and authorised) by the caller.

    `request_bytes` is the raw request head plus anything read after it."""
    protocol = ServerProtocol(max_size=MAX_WEBSOCKET_MESSAGE)
    head_end = request_bytes.find(_HEAD_END)
    head_end = len(request_bytes) if head_end < 0 else head_end + len(_HEAD_END)
    protocol.receive_data(request_bytes[:head_end])
    events = protocol.events_received()
    request = events[0] if events else None
    if request is None or protocol.handshake_exc is not None:
        raise HandshakeRejected(400, "not a WebSocket upgrade request")
    response = protocol.accept(request)
    protocol.send_response(response)
    connection = WebSocketConnection(backend, stream, protocol)
    await connection.flush()
    if response.status_code != 101:
        await stream.aclose()
        raise HandshakeRejected(response.status_code, (response.body or b"").decode("utf-8", "replace"))
    connection._pending.extend(connection._start_frames(request_bytes[head_end:]))
    return connection


# --- client side -----------------------------------------------------------------------------


async def connect_websocket(
    backend: Backend,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> WebSocketConnection:
    """Open a WebSocket to `url` (`ws://` or `wss://`). Raises `HandshakeRejected` on an HTTP
    error answer (e.g. 403 for a refused token)."""
    uri = parse_uri(url)
    if uri.secure and ssl_context is None:
        ssl_context = ssl.create_default_context()
    stream = await backend.open_tcp_stream(uri.host, uri.port, ssl_context if uri.secure else None)
    protocol = ClientProtocol(uri, max_size=MAX_WEBSOCKET_MESSAGE)
    request = protocol.connect()
    for name, value in (headers or {}).items():
        request.headers[name] = value
    protocol.send_request(request)
    connection = WebSocketConnection(backend, stream, protocol)
    try:
        await connection.flush()
        # The protocol is fed the response head only: frames that arrive in the same read as
        # the 101 response are left for `_start_frames`. A refusal's body is fed to it as well.
        head = b""
        after_head = b""
        head_done = False
        while protocol.state is not OPEN:
            data = await stream.receive_some(READ_SIZE)
            if not data:
                protocol.receive_eof()
            elif head_done:
                protocol.receive_data(data)
            else:
                searched = max(0, len(head) - len(_HEAD_END) + 1)
                head += data
                end = head.find(_HEAD_END, searched)
                if end < 0:
                    protocol.receive_data(data)
                else:
                    end += len(_HEAD_END)
                    head_done = True
                    protocol.receive_data(head[len(head) - len(data) : end])
                    after_head = head[end:]
                    if protocol.state is not OPEN and after_head:
                        protocol.receive_data(after_head)
            events = protocol.events_received()
            if protocol.handshake_exc is not None:
                raise _rejection(protocol.handshake_exc)
            connection._pending.extend(connection._take_packets(events))
            if not data and protocol.state is not OPEN:
                raise HandshakeRejected(0, "connection closed during the upgrade")
        connection._pending.extend(connection._start_frames(after_head))
    except BaseException:
        with backend.shielded(CLOSE_TIMEOUT):
            await stream.aclose()
        raise
    return connection


def _rejection(error: Exception) -> HandshakeRejected:
    if isinstance(error, InvalidStatus):
        response = error.response
        return HandshakeRejected(response.status_code, (response.body or b"").decode("utf-8", "replace"))
    return HandshakeRejected(0, str(error))


__all__ = [
    "HandshakeRejected",
    "MAX_WEBSOCKET_MESSAGE",
    "WebSocketClosed",
    "WebSocketConnection",
    "accept_websocket",
    "connect_websocket",
]
