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
"""

from __future__ import annotations

import ssl
from typing import Sequence

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import CLOSED, OPEN, Protocol
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from .backend import Backend, ByteStream

#: Largest WebSocket message accepted. Room packets are at most 1036 bytes; the rest is room
#: for long message type strings.
MAX_WEBSOCKET_MESSAGE = 64 * 1024
READ_SIZE = 256 * 1024
CLOSE_TIMEOUT = 5.0


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
        send = self._protocol.send_binary
        for packet in packets:
            send(packet)
        self._take_output()

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

    async def receive_packets(self) -> list[bytes]:
        """The packets of the next read (at least one). Raises `WebSocketClosed` at the end."""
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
            if self._outgoing or self._eof_pending:
                await self.flush()
            if packets:
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
                # The room protocol is binary only (ROOM_WIRE §1.3).
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
                    await self._stream.send_all(data)
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

    def _lost(self) -> WebSocketClosed:
        """The stream failed while sending: what is queued is dropped, every later send fails."""
        self._send_failed = WebSocketClosed(1006, "connection lost")
        self._closed = self._closed or self._send_failed
        self._outgoing.clear()
        self._eof_pending = False
        return self._send_failed

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close handshake: send a close frame, wait (bounded) for the peer's, drop the socket."""
        if self._protocol.state is OPEN:
            self._protocol.send_close(code, reason)
            try:
                await self.flush()
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
    protocol.receive_data(request_bytes)
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
        while protocol.state is not OPEN:
            data = await stream.receive_some(READ_SIZE)
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            events = protocol.events_received()
            if protocol.handshake_exc is not None:
                raise _rejection(protocol.handshake_exc)
            # Frames may arrive in the same read as the 101 response.
            connection._pending.extend(connection._take_packets(events))
            if not data and protocol.state is not OPEN:
                raise HandshakeRejected(0, "connection closed during the upgrade")
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
