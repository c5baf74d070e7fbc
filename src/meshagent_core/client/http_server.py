"""A small HTTP/1.1 server (h11) written once over the `Backend`: what `WebhookServer` and
`ServiceHost` listen with, on Trio and on AnyIO.

`serve_http(backend, handler, host=, port=)` listens while its block runs; `server.port` is the
bound port (the OS's choice when 0 was asked for). Each request is read whole (head and body)
and handed to `handler`, which answers with an `HttpResponse`, or with an `Upgrade` that takes
the connection over (a WebSocket).

Bounds (`HttpLimits`): a request head must arrive within `request_head_timeout` and hold at most
`max_request_head` bytes (else 408 / 431, or the connection is dropped when nothing came); a
body may hold at most `max_body` bytes (413, before reading it when its length is declared) and
must arrive within `body_timeout` (408); a kept-alive connection waits `keep_alive_timeout` for
its next request; answers are written within `send_timeout`. At most `max_connections` are
served at once: one more gets a 503 and is closed. A failure while serving one connection is
logged and ends that connection only.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import h11

from .backend import Backend, ByteStream, Listener

log = logging.getLogger("meshagent_core.client.http_server")

READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class HttpLimits:
    """How much a client may send, and how slowly (see the module docstring)."""

    request_head_timeout: float = 10.0
    max_request_head: int = 16 * 1024
    max_body: int = 1024 * 1024
    body_timeout: float = 30.0
    keep_alive_timeout: float = 75.0
    send_timeout: float = 30.0
    max_connections: int = 512

    def __post_init__(self) -> None:
        for name in ("request_head_timeout", "body_timeout", "keep_alive_timeout", "send_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        for name in ("max_request_head", "max_body", "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@dataclass
class HttpRequest:
    """A request, read whole. Header names are lower case; repeated headers are joined with
    `", "`."""

    method: str
    target: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    #: The request head as it came (for a WebSocket handshake).
    raw_head: bytes = b""

    @property
    def wants_upgrade(self) -> bool:
        return "upgrade" in self.headers


@dataclass
class HttpResponse:
    """An answer. `reason` is the status line's phrase (default: the standard one)."""

    status: int
    body: bytes = b""
    content_type: str | None = "text/plain; charset=utf-8"
    reason: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Upgrade:
    """Take the connection over: `await takeover(stream, request_bytes)`, where `request_bytes`
    is the request head and whatever arrived after it. The connection is closed after."""

    takeover: Callable[[ByteStream, bytes], Awaitable[None]]


Handler = Callable[[HttpRequest], Awaitable["HttpResponse | Upgrade"]]


def json_response(value: Any, status: int = 200) -> HttpResponse:
    """`value` as JSON text the way Python's `json.dumps` writes it by default (as aiohttp's
    `json_response`, which the official servers use)."""
    return HttpResponse(status, json.dumps(value).encode("utf-8"), "application/json; charset=utf-8")


def error_response(status: int, reason: str) -> HttpResponse:
    """An error as aiohttp writes one (`web.HTTPUnauthorized(reason=...)`): the reason is the
    status line's phrase, and the body is `"<status>: <reason>"`."""
    return HttpResponse(status, f"{status}: {reason}".encode("utf-8"), reason=reason)


class HttpServer:
    """A listening server; see `serve_http`."""

    def __init__(self, backend: Backend, handler: Handler, listeners: list[Listener], limits: HttpLimits) -> None:
        self.backend = backend
        self.handler = handler
        self.listeners = listeners
        self.limits = limits
        self.open_connections = 0

    @property
    def port(self) -> int:
        """The port listened on."""
        return self.listeners[0].port

    async def _accept(self, listener: Listener, task_group: Any) -> None:
        backend = self.backend
        while True:
            try:
                stream = await listener.accept()
            except backend.stream_errors:
                return  # closed
            except OSError as error:  # e.g. out of file descriptors: wait for some to free up
                log.warning("accepting a connection failed: %s", error)
                await backend.sleep(0.1)
                continue
            task_group.start_soon(self._handle, stream)

    async def _handle(self, stream: ByteStream) -> None:
        backend = self.backend
        self.open_connections += 1
        try:
            if self.open_connections > self.limits.max_connections:
                with backend.move_on_after(1):
                    await stream.send_all(_BUSY)
                return
            await self._serve(stream)
        except (_Gone, *backend.stream_errors):
            pass
        except Exception:
            log.exception("HTTP connection failed")
        finally:
            self.open_connections -= 1
            with backend.shielded(1):
                try:
                    await stream.aclose()
                except Exception:
                    pass

    async def _serve(self, stream: ByteStream) -> None:
        backend, limits = self.backend, self.limits
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_request_head)
        wait = limits.request_head_timeout
        while True:
            event: Any = None
            with backend.move_on_after(wait) as waited:
                try:
                    event = await _next_event(stream, connection)
                except h11.RemoteProtocolError as error:
                    if connection.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        status = error.error_status_hint if error.error_status_hint >= 400 else 400
                        await self._send(stream, connection, error_response(status, f"malformed HTTP request: {error}"), close=True)
                    return
            if not isinstance(event, h11.Request):
                if waited.cancelled_caught and connection.their_state is h11.IDLE and _has_partial_head(connection):
                    await self._send(stream, connection, error_response(408, "request head timeout"), close=True)
                return  # closed, or nothing in time: dropped
            head_size = len(event.target) + sum(len(name) + len(value) + 4 for name, value in event.headers.raw_items())
            if head_size > limits.max_request_head:
                # h11 bounds only a head still incomplete after a read; this bounds one that
                # arrived whole.
                await self._send(stream, connection, error_response(431, "request head too large"), close=True)
                return
            request = _request(event)
            if request.wants_upgrade:
                keep = await self._serve_upgrade(stream, connection, request)
            else:
                keep = await self._serve_plain(stream, connection, request)
            if not keep or connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()
            wait = limits.keep_alive_timeout

    async def _serve_plain(self, stream: ByteStream, connection: h11.Connection, request: HttpRequest) -> bool:
        limits = self.limits
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body:
            await self._send(stream, connection, _too_large(limits.max_body), close=True)
            return False
        if connection.they_are_waiting_for_100_continue:
            await self._send_all(stream, connection.send(h11.InformationalResponse(status_code=100, headers=[])))
        body: bytes | None = None
        try:
            with self.backend.move_on_after(limits.body_timeout):
                body = await _read_body(stream, connection, limits.max_body)
        except h11.RemoteProtocolError as error:
            await self._send(stream, connection, error_response(400, f"malformed HTTP request: {error}"), close=True)
            return False
        if body is None:
            await self._send(stream, connection, error_response(408, "request body timeout"), close=True)
            return False
        if isinstance(body, _TooLarge):
            await self._send(stream, connection, _too_large(limits.max_body), close=True)
            return False
        request.body = body
        response = await self._answer(request)
        if isinstance(response, Upgrade):  # only a request that asked for one may be upgraded
            response = error_response(400, "this request cannot be upgraded")
        await self._send(stream, connection, response, head_only=request.method == "HEAD")
        return True

    async def _serve_upgrade(self, stream: ByteStream, connection: h11.Connection, request: HttpRequest) -> bool:
        response = await self._answer(request)
        if isinstance(response, HttpResponse):
            # A refused upgrade: the connection cannot safely carry another request after it.
            await self._send(stream, connection, response, close=True)
            return False
        while (event := connection.next_event()) is not h11.PAUSED:
            if event is h11.NEED_DATA or isinstance(event, h11.Data):
                await self._send(stream, connection, error_response(400, "an upgrade request has no body"), close=True)
                return False
        trailing, _ = connection.trailing_data
        await response.takeover(stream, request.raw_head + bytes(trailing))
        return False

    async def _answer(self, request: HttpRequest) -> HttpResponse | Upgrade:
        try:
            return await self.handler(request)
        except Exception:
            log.exception("answering %s %s failed", request.method, request.path)
            return error_response(500, "Internal Server Error")

    async def _send(
        self, stream: ByteStream, connection: h11.Connection, response: HttpResponse, *, close: bool = False, head_only: bool = False
    ) -> None:
        headers = [(name, value) for name, value in response.headers]
        if response.content_type is not None:
            headers.append(("content-type", response.content_type))
        headers.append(("content-length", str(len(response.body))))
        if close:
            headers.append(("connection", "close"))
        head = h11.Response(status_code=response.status, headers=headers, reason=_reason(response))
        try:
            data = connection.send(head)
            if not head_only:  # a HEAD request's answer has the headers of a GET's, no body
                data += connection.send(h11.Data(data=response.body))
            data += connection.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return  # the connection is not in a state to answer (the client went away)
        await self._send_all(stream, data)

    async def _send_all(self, stream: ByteStream, data: bytes) -> None:
        with self.backend.move_on_after(self.limits.send_timeout) as scope:
            await stream.send_all(data)
        if scope.cancelled_caught:
            raise _Gone()


class _TooLarge:
    pass


class _Gone(Exception):
    """The client does not take our answer within `send_timeout`."""


_BUSY_BODY = b"the server is at its connection limit; try again later\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(_BUSY_BODY)
) + _BUSY_BODY


def _too_large(limit: int) -> HttpResponse:
    return error_response(413, f"request body larger than {limit} bytes")


def _reason(response: HttpResponse) -> bytes:
    if response.reason is None:
        try:
            return HTTPStatus(response.status).phrase.encode("ascii")
        except ValueError:
            return b""
    text = " ".join(response.reason.split())  # no CR/LF may reach the status line
    return text.encode("latin-1", "replace")


def _has_partial_head(connection: h11.Connection) -> bool:
    return bool(connection.trailing_data[0])


async def _next_event(stream: ByteStream, connection: h11.Connection) -> Any:
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive_some(READ_SIZE))
            continue
        return event


async def _read_body(stream: ByteStream, connection: h11.Connection, limit: int) -> bytes | _TooLarge:
    parts: list[bytes] = []
    size = 0
    while True:
        event = await _next_event(stream, connection)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > limit:
                return _TooLarge()
            parts.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(parts)
        elif isinstance(event, h11.ConnectionClosed):
            raise h11.RemoteProtocolError("the connection closed in the middle of a request body")
        else:  # PAUSED cannot happen without an upgrade
            return b"".join(parts)


def _request(event: h11.Request) -> HttpRequest:
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    target = event.target.decode("latin-1")
    parts = urlsplit(target)
    lines = [event.method + b" " + event.target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in event.headers.raw_items()]
    return HttpRequest(
        method=event.method.decode("latin-1"),
        target=target,
        path=parts.path,
        query=parts.query,
        headers=headers,
        body=b"",
        raw_head=b"\r\n".join(lines) + b"\r\n\r\n",
    )


@asynccontextmanager
async def serve_http(
    backend: Backend, handler: Handler, *, host: str, port: int, limits: HttpLimits | None = None
) -> AsyncIterator[HttpServer]:
    """Listen on `host`:`port` and serve `handler` while the block runs; leaving it stops
    listening and cancels the connections still open."""
    listeners = await backend.open_tcp_listeners(host, port)
    server = HttpServer(backend, handler, listeners, limits or HttpLimits())
    try:
        async with backend.open_task_group() as task_group:
            for listener in listeners:
                task_group.start_soon(server._accept, listener, task_group)
            try:
                yield server
            finally:
                task_group.cancel_scope.cancel()
    finally:
        with backend.shielded(1):
            for listener in listeners:
                try:
                    await listener.aclose()
                except Exception:
                    pass


__all__ = [
    "Handler",
    "HttpLimits",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "Upgrade",
    "error_response",
    "json_response",
    "serve_http",
]
