"""`Http11Pool`, the lean HTTP/1.1 client `Meshagent` uses for plain-HTTP servers, against a real
server in a thread whose every answer follows a script: kept-alive connections are reused,
concurrent requests get their own (at most `max_connections`), a connection the server closed
while idle is replaced without the caller noticing, and every failure is a `TransportFailed`
that says what happened. On Trio and on asyncio."""

from __future__ import annotations

import queue
import socket
import socketserver
import threading
from collections import deque
from contextlib import contextmanager
from typing import Iterator

import anyio
import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshagent_core.client.http11 import Http11Pool, TransportFailed

#: What the server does with a request: answer and keep the connection, answer with
#: `Connection: close`, answer and then close without saying so (as a server dropping an idle
#: connection does), never answer, or answer something that is not HTTP.
BEHAVIOURS = ("keep", "close", "drop_after", "silent", "garbage")


class ScriptedServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.script: deque[str] = deque()
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.lock = threading.Lock()
        self.bodies: "queue.Queue[bytes]" = queue.Queue()

    def next_behaviour(self) -> str:
        with self.lock:
            return self.script.popleft() if self.script else "keep"


class ScriptedHandler(socketserver.BaseRequestHandler):
    server: ScriptedServer

    def handle(self) -> None:
        server = self.server
        with server.lock:
            server.connections += 1
            server.open_now += 1
            server.most_open = max(server.most_open, server.open_now)
        try:
            self._serve(server)
        finally:
            with server.lock:
                server.open_now -= 1

    def _serve(self, server: ScriptedServer) -> None:
        connection = h11.Connection(h11.SERVER)
        sock: socket.socket = self.request
        while True:
            body = b""
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    data = sock.recv(65536)
                    connection.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.ConnectionClosed):
                    return
                if isinstance(event, h11.Data):
                    body += event.data
                if isinstance(event, h11.EndOfMessage):
                    break
            server.bodies.put(body)
            behaviour = server.next_behaviour()
            if behaviour == "silent":
                sock.recv(1)  # until the client gives up and closes
                return
            if behaviour == "garbage":
                sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                return
            answer = b"echo:" + body
            headers = [("content-length", str(len(answer)))] + ([("connection", "close")] if behaviour == "close" else [])
            sock.sendall(connection.send(h11.Response(status_code=200, headers=headers)) + connection.send(h11.Data(data=answer)) + connection.send(h11.EndOfMessage()))
            if behaviour in ("close", "drop_after"):
                return
            connection.start_next_cycle()


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with scripted_server() as server:
        yield server


async def post(pool: Http11Pool, server: ScriptedServer, body: bytes, *, timeout: float = 30.0) -> tuple[int, bytes]:
    return await pool.request("POST", "127.0.0.1", server.server_address[1], "/echo", [(b"content-type", b"text/plain")], body, timeout=timeout)


@pytest.mark.anyio
async def test_sequential_requests_share_one_kept_alive_connection(server: ScriptedServer) -> None:
    pool = Http11Pool()
    try:
        for i in range(20):
            assert await post(pool, server, f"call {i}".encode()) == (200, f"echo:call {i}".encode())
    finally:
        await pool.aclose()
    assert server.connections == 1


@pytest.mark.anyio
async def test_a_connection_the_server_dropped_while_idle_is_replaced_unnoticed(server: ScriptedServer) -> None:
    server.script.extend(["drop_after", "close", "keep"])
    pool = Http11Pool()
    try:
        for i in range(4):
            assert await post(pool, server, b"x%d" % i) == (200, b"echo:x%d" % i)
    finally:
        await pool.aclose()
    assert server.connections == 3  # after the drop and after `Connection: close`


@pytest.mark.anyio
async def test_concurrent_requests_use_at_most_max_connections(server: ScriptedServer) -> None:
    pool = Http11Pool(max_connections=4)
    answers: dict[int, tuple[int, bytes]] = {}

    async def one(i: int) -> None:
        answers[i] = await post(pool, server, b"%d" % i)

    try:
        async with anyio.create_task_group() as group:
            for i in range(40):
                group.start_soon(one, i)
    finally:
        await pool.aclose()
    assert answers == {i: (200, b"echo:%d" % i) for i in range(40)}
    assert server.most_open <= 4


@pytest.mark.anyio
async def test_failures_say_what_happened(server: ScriptedServer) -> None:
    pool = Http11Pool()
    try:
        server.script.append("silent")
        with pytest.raises(TransportFailed, match="timed out waiting for the answer"):
            await post(pool, server, b"hello", timeout=0.2)
        server.script.append("garbage")
        with pytest.raises(TransportFailed, match="malformed answer"):
            await post(pool, server, b"hello")
        assert await post(pool, server, b"still fine") == (200, b"echo:still fine")
    finally:
        await pool.aclose()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens here once closed
    refused = Http11Pool()
    with pytest.raises(TransportFailed, match=f"cannot connect to 127.0.0.1:{port}"):
        await refused.request("GET", "127.0.0.1", port, "/", [], None, timeout=5)
    await refused.aclose()
    with pytest.raises(TransportFailed, match="the client is closed"):
        await post(pool, server, b"after close")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=st.lists(st.sampled_from(("keep", "close", "drop_after")), max_size=12))
def test_any_mix_of_kept_closed_and_dropped_connections_answers_every_request(script: list[str]) -> None:
    with scripted_server() as server:
        server.script.extend(script)

        async def run() -> list[tuple[int, bytes]]:
            pool = Http11Pool()
            try:
                return [await post(pool, server, b"r%d" % i) for i in range(len(script) + 1)]
            finally:
                await pool.aclose()

        answers = anyio.run(run)
        assert answers == [(200, b"echo:r%d" % i) for i in range(len(script) + 1)]
        bodies = [server.bodies.get_nowait() for _ in range(server.bodies.qsize())]
        assert bodies == [b"r%d" % i for i in range(len(script) + 1)]  # each sent once: no request repeated
