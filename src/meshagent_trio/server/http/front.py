"""Accepting connections: limits, request heads, routing.

Every connection must deliver a complete request head within `request_head_timeout` (bytes
that never form a request line are dropped the same way) and may hold at most
`max_request_head` bytes of it; malformed HTTP gets a 400 (or 431) before the close. At most
`connection_limit` connections are served at once: beyond it a new one gets a 503 and is closed,
so the descriptors left over stay free for storage and databases. A failure while serving one
connection is logged and ends that connection only.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import urlsplit

import h11
import trio

from ..config import ServerConfig

log = logging.getLogger("meshagent_trio.server")


@dataclass
class Request:
    """A request head, read and parsed; `connection` still holds what came after it."""

    stream: trio.SocketStream
    connection: h11.Connection
    event: h11.Request
    method: str
    path: str
    query: str
    headers: dict[str, str]


#: Answers one request. Returns True when the connection may serve another request after it.
Route = Callable[[Request], Awaitable[bool]]


def raise_descriptor_limit() -> int:
    """Raise this process's open-file limit to its hard limit; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


class HttpFront:
    """Serves HTTP connections, handing each request to `route`."""

    def __init__(self, config: ServerConfig, route: Route) -> None:
        self.config = config
        self.route = route
        self.open_connections = 0
        self.connection_limit = config.connection_limit(raise_descriptor_limit())

    async def handle(self, stream: trio.SocketStream) -> None:
        self.open_connections += 1
        try:
            if self.open_connections > self.connection_limit:
                await _refuse_busy(stream)
                return
            await self._serve(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:
            log.exception("HTTP connection failed")
        finally:
            self.open_connections -= 1
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _serve(self, stream: trio.SocketStream) -> None:
        config = self.config
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_request_head)
        while True:
            event: h11.Request | None = None
            with trio.move_on_after(config.request_head_timeout):
                try:
                    event = await _next_request(stream, connection)
                except h11.RemoteProtocolError as error:
                    if connection.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        status = error.error_status_hint if error.error_status_hint >= 400 else 400
                        await respond(stream, connection, status, f"malformed HTTP request: {error}\n")
                    return
            if not isinstance(event, h11.Request):
                return  # closed, or no request head in time: dropped
            if len(event.target) + sum(len(name) + len(value) + 4 for name, value in event.headers.raw_items()) > config.max_request_head:
                # h11 bounds only a head still incomplete after a read; this bounds one that
                # arrived whole.
                await respond(stream, connection, 431, "request head too large\n")
                return
            target = urlsplit(event.target.decode("latin-1"))
            request = Request(
                stream=stream,
                connection=connection,
                event=event,
                method=event.method.decode("latin-1"),
                path=target.path,
                query=target.query,
                headers={name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers},
            )
            if not await self.route(request):
                return
            with trio.move_on_after(config.request_head_timeout) as waited:
                await _finish_request(stream, connection)
            if waited.cancelled_caught:
                return
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()


async def _next_request(stream: trio.SocketStream, connection: h11.Connection) -> h11.Request | None:
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            connection.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            return event
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def respond(stream: trio.SocketStream, connection: h11.Connection, status: int, body: str) -> None:
    """A plain-text response; error statuses other than 404 close the connection."""
    data = body.encode()
    headers = [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(data)))]
    if status >= 400 and status != 404:
        headers.append(("connection", "close"))
    await stream.send_all(
        connection.send(h11.Response(status_code=status, headers=headers)) + connection.send(h11.Data(data=data)) + connection.send(h11.EndOfMessage())
    )


class BodyTooLarge(Exception):
    """The request body is larger than allowed."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, at most `limit` bytes (`BodyTooLarge` beyond; nothing more is read).
    The caller bounds the time it takes."""
    connection, parts, size = request.connection, [], 0
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(int(declared))
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await request.stream.receive_some(65536)
            connection.receive_data(data)
            if not data and connection.their_state is h11.SEND_BODY:
                raise trio.BrokenResourceError("the connection closed in the middle of a request body")
            continue
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > limit:
                raise BodyTooLarge(size)
            parts.append(bytes(event.data))
            continue
        if isinstance(event, h11.EndOfMessage) or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
            return b"".join(parts)


async def respond_json(
    stream: trio.SocketStream, connection: h11.Connection, status: int, body: bytes, headers: list[tuple[str, str]] | None = None
) -> None:
    """A JSON response (`application/json`, as the official client requires to read a body)."""
    fields = [("content-type", "application/json"), ("content-length", str(len(body))), *(headers or [])]
    await stream.send_all(
        connection.send(h11.Response(status_code=status, headers=fields)) + connection.send(h11.Data(data=body)) + connection.send(h11.EndOfMessage())
    )


async def _refuse_busy(stream: trio.SocketStream) -> None:
    body = b"the server is at its connection limit; try again later\n"
    head = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\n"
    with trio.move_on_after(1):
        await stream.send_all(head + b"content-length: %d\r\n\r\n" % len(body) + body)


async def _finish_request(stream: trio.SocketStream, connection: h11.Connection) -> None:
    """Read what is left of the request (its body) so the connection can be reused."""
    while connection.their_state is h11.SEND_BODY:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data:
                return
            connection.receive_data(data)


__all__ = ["BodyTooLarge", "HttpFront", "Request", "Route", "raise_descriptor_limit", "read_body", "respond", "respond_json"]
