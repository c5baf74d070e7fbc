"""The small HTTP/1.1 server of `meshagent_core.client.http_server`, over real sockets, on each
backend (Trio; AnyIO on asyncio and on Trio): keep-alive, and every bound (head time and size,
body size, connection count)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from meshagent_core.client.http_server import HttpLimits, HttpRequest, HttpResponse, Upgrade, json_response, serve_http

pytestmark = pytest.mark.anyio


async def echo(request: HttpRequest) -> HttpResponse | Upgrade:
    if request.path == "/boom":
        raise RuntimeError("a handler bug")
    if request.path == "/upgrade":

        async def takeover(stream: Any, request_bytes: bytes) -> None:
            await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + request_bytes.split(b"\r\n\r\n", 1)[1])

        return Upgrade(takeover)
    return json_response({"method": request.method, "path": request.path, "query": request.query, "body": request.body.decode()})


async def exchange(port: int, data: bytes, *, until: bytes = b"", timeout: float = 5) -> bytes:
    """Send `data` on a new connection; what comes back until `until` appears or the peer closes."""
    received = b""
    with anyio.fail_after(timeout):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            if data:
                await stream.send(data)
            while not (until and until in received):
                try:
                    received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    return received


async def test_requests_on_a_kept_alive_connection(client_module) -> None:
    async with serve_http(client_module.backend, echo, host="127.0.0.1", port=0) as server:
        assert server.port > 0
        requests = (
            b"POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
        )
        answer = await exchange(server.port, requests, until=b'"body": "hi"}')
        assert answer.count(b"HTTP/1.1 200 OK") == 2
        assert b'{"method": "POST", "path": "/a", "query": "x=1", "body": "abc"}' in answer
        head = await exchange(server.port, b"HEAD /c HTTP/1.1\r\nHost: h\r\n\r\nGET /d HTTP/1.1\r\nHost: h\r\n\r\n", until=b'"/d"')
        assert head.count(b"HTTP/1.1 200 OK") == 2 and b'"/c"' not in head  # HEAD: headers only
        failed = await exchange(server.port, b"GET /boom HTTP/1.1\r\nHost: h\r\n\r\nGET /e HTTP/1.1\r\nHost: h\r\n\r\n", until=b'"/e"')
        assert failed.startswith(b"HTTP/1.1 500 ") and b'"/e"' in failed  # logged; the connection goes on


async def test_bounds(client_module) -> None:
    limits = HttpLimits(
        request_head_timeout=0.3, max_request_head=1024, max_body=10, max_connections=2, keep_alive_timeout=0.3, body_timeout=0.3
    )
    async with serve_http(client_module.backend, echo, host="127.0.0.1", port=0, limits=limits) as server:
        port = server.port
        declared = await exchange(port, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n")
        assert declared.startswith(b"HTTP/1.1 413 ") and b"connection: close" in declared
        chunked = await exchange(port, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n")
        assert chunked.startswith(b"HTTP/1.1 413 ")
        continued = await exchange(port, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n", until=b"100 Continue")
        assert continued.startswith(b"HTTP/1.1 100 ")
        big_head = await exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"y" * 2000 + b"\r\n\r\n")
        assert big_head.startswith(b"HTTP/1.1 431 ")
        assert (await exchange(port, b"NOT HTTP\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        partial = await exchange(port, b"GET / HTTP/1.1\r\nHost")
        assert partial.startswith(b"HTTP/1.1 408 ")  # the head did not arrive in time
        assert await exchange(port, b"") == b""  # nothing sent: dropped after the head timeout
        slow_body = await exchange(port, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab")
        assert slow_body.startswith(b"HTTP/1.1 408 ")
        # Two connections held open; a third is turned away at once.
        async with await anyio.connect_tcp("127.0.0.1", port), await anyio.connect_tcp("127.0.0.1", port):
            await anyio.sleep(0.05)
            busy = await exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            assert busy.startswith(b"HTTP/1.1 503 ")
        kept = await exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", timeout=3)
        assert kept.startswith(b"HTTP/1.1 200 ")  # then closed after the keep-alive timeout


async def test_an_upgrade_takes_the_connection_over(client_module) -> None:
    async with serve_http(client_module.backend, echo, host="127.0.0.1", port=0) as server:
        head = b"GET /upgrade HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n"
        answer = await exchange(server.port, head + b"after the head", until=b"after the head")
        assert answer == b"HTTP/1.1 101 Switching Protocols\r\n\r\nafter the head"
        # A plain request to a handler answering with an Upgrade is refused.
        plain = await exchange(server.port, b"GET /upgrade HTTP/1.1\r\nHost: h\r\n\r\n", until=b"upgraded")
        assert plain.startswith(b"HTTP/1.1 400 ")


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_body"):
        HttpLimits(max_body=0)
    with pytest.raises(ValueError, match="request_head_timeout"):
        HttpLimits(request_head_timeout=0)
