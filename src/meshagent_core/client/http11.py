"""A lean HTTP/1.1 client for plain-HTTP servers such as the local one: h11 over AnyIO sockets
(Trio or asyncio), with kept-alive connections. `Meshagent` sends its calls to `http://` base
URLs through it; `https://` (the cloud) and an `http=` client of the caller's go through httpx.

Why: REST calls to the local server are small and many, and most of their client-side cost was
httpx's general-purpose machinery (its client layer, then httpcore's connection pool). Against
our server, one `list_projects` cost 0.70–0.84 ms of client CPU through httpx and about half
through this (`benchmarks/rest.py` compares the whole client with the official one).

Connections are pooled per origin: a request takes an idle connection or opens one, and puts
it back once the answer has been read to the end. At most `max_connections` are in use at once
(further requests wait, within their timeout) and kept idle per origin. A
kept-alive connection that the server closed while it sat idle fails on reuse before any byte
of an answer arrives: the request is then sent again on a new connection, once (the server
never saw it). Every failure (refused, reset, timed out, a malformed answer) is a
`TransportFailed` saying what happened.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import anyio
import h11

if TYPE_CHECKING:
    from anyio.abc import ByteStream

READ_SIZE = 64 * 1024
#: Connections per origin in use at once (as aiohttp's default); more requests wait their turn.
DEFAULT_MAX_CONNECTIONS = 100

Headers = list[tuple[bytes, bytes]]


class TransportFailed(Exception):
    """The request could not be sent or its answer not read."""


class _Stale(Exception):
    """A reused connection closed before any byte of the answer: the server dropped it idle."""


class _Connection:
    def __init__(self, stream: "ByteStream") -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.reused = False  # a request was answered on it already
        self.answered = False  # bytes of the current answer have arrived

    async def receive_event(self, deadline: float) -> object:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as error:
                raise TransportFailed(f"malformed answer: {error}") from None
            if event is not h11.NEED_DATA:
                return event
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    data = await self.stream.receive(READ_SIZE)
            except TimeoutError:
                raise TransportFailed("timed out waiting for the answer") from None
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                data = b""
            if not data and self.reused and not self.answered:
                raise _Stale()
            self.answered = True
            self.h11.receive_data(data)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self.stream.aclose()
            except Exception:  # already broken: nothing to tell
                pass


class Http11Pool:
    """See the module docstring."""

    def __init__(self, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self.max_connections = max_connections
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._in_use: dict[tuple[str, int], anyio.Semaphore] = {}  # made in the event loop, on first use
        self._closed = False

    async def request(
        self, method: str, host: str, port: int, target: str, headers: Headers, body: bytes | None, *, timeout: float = math.inf
    ) -> tuple[int, bytes]:
        """Send one request; its answer's status and body. `target` is the percent-encoded path
        and query; `Host` and `Content-Length` are added."""
        if self._closed:
            raise TransportFailed("the client is closed")
        deadline = anyio.current_time() + timeout
        head = [(b"host", f"{host}:{port}".encode()), *headers, (b"content-length", str(len(body or b"")).encode())]
        origin = (host, port)
        turn = self._in_use.get(origin)
        if turn is None:
            turn = self._in_use[origin] = anyio.Semaphore(self.max_connections)
        try:
            with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                await turn.acquire()
        except TimeoutError:
            raise TransportFailed(f"timed out waiting for one of the {self.max_connections} connections") from None
        try:
            while True:
                connection = await self._acquire(origin, deadline)
                try:
                    status, answer = await self._exchange(connection, method, target, head, body, deadline)
                except _Stale:
                    await connection.aclose()
                    continue
                except BaseException:
                    await connection.aclose()
                    raise
                await self._release(origin, connection)
                return status, answer
        finally:
            turn.release()

    async def _exchange(
        self, connection: _Connection, method: str, target: str, head: Headers, body: bytes | None, deadline: float
    ) -> tuple[int, bytes]:
        data = connection.h11.send(h11.Request(method=method, target=target, headers=head))
        if body:
            data += connection.h11.send(h11.Data(data=body))
        data += connection.h11.send(h11.EndOfMessage())
        try:
            with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                await connection.stream.send(data)
        except TimeoutError:
            raise TransportFailed("timed out sending the request") from None
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as error:
            if connection.reused:
                raise _Stale() from None
            raise TransportFailed(f"sending failed: {error or type(error).__name__}") from None
        connection.answered = False
        response = await connection.receive_event(deadline)
        if not isinstance(response, h11.Response):
            raise TransportFailed(f"a {type(response).__name__} instead of an answer")
        chunks = []
        while not isinstance(event := await connection.receive_event(deadline), h11.EndOfMessage):
            if isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
        return response.status_code, b"".join(chunks)

    async def _acquire(self, origin: tuple[str, int], deadline: float) -> _Connection:
        idle = self._idle.get(origin)
        if idle:
            return idle.pop()
        try:
            with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                stream = await anyio.connect_tcp(*origin)
        except TimeoutError:
            raise TransportFailed(f"timed out connecting to {origin[0]}:{origin[1]}") from None
        except OSError as error:
            raise TransportFailed(f"cannot connect to {origin[0]}:{origin[1]}: {error.strerror or error}") from None
        return _Connection(stream)

    async def _release(self, origin: tuple[str, int], connection: _Connection) -> None:
        h = connection.h11
        idle = self._idle.setdefault(origin, [])
        if self._closed or len(idle) >= self.max_connections or h.our_state is not h11.DONE or h.their_state is not h11.DONE:
            await connection.aclose()  # the server asked to close it, or there is no room for it
            return
        h.start_next_cycle()
        connection.reused = True
        idle.append(connection)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()


__all__ = ["Http11Pool", "TransportFailed"]
