"""The WebSocket transport on Trio: `meshagent_core.client.websocket` bound to the Trio backend."""

from __future__ import annotations

import ssl

import trio

from meshagent_core.client import websocket as _transport
from meshagent_core.client.websocket import (
    MAX_WEBSOCKET_MESSAGE,
    HandshakeRejected,
    WebSocketClosed,
    WebSocketConnection,
)

from . import backend


async def connect_websocket(
    url: str, *, headers: dict[str, str] | None = None, ssl_context: ssl.SSLContext | None = None
) -> WebSocketConnection:
    """Open a WebSocket to `url`; `HandshakeRejected` carries the HTTP status of a refusal."""
    return await _transport.connect_websocket(backend, url, headers=headers, ssl_context=ssl_context)  # type: ignore[arg-type]


async def accept_websocket(stream: backend.ByteStream, request_bytes: bytes) -> WebSocketConnection:
    """Complete the upgrade of an HTTP request already read (and authorised) by the caller.

    A plain `trio.SocketStream` is given the backend's non-blocking send, so an answer the
    socket takes at once leaves without a checkpoint (see `WebSocketConnection.send_queued_nowait`)."""
    if isinstance(stream, trio.SocketStream):
        stream = backend._SocketStream(stream)
    return await _transport.accept_websocket(backend, stream, request_bytes)  # type: ignore[arg-type]


__all__ = [
    "MAX_WEBSOCKET_MESSAGE",
    "HandshakeRejected",
    "WebSocketClosed",
    "WebSocketConnection",
    "accept_websocket",
    "connect_websocket",
]
