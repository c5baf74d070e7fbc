"""The HTTP front under abuse: request heads that never complete, malformed and oversized heads,
more connections than the server serves, and a descriptor limit that is small. The server drops
or refuses the offender and everyone else carries on."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

import meshagent_trio
from meshagent_core import RoomException
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Server, ServerConfig
from meshagent_trio.server.process import LocalServerProcess
from meshagent_trio.websocket import HandshakeRejected, connect_websocket
from roomtest import mint, room_url

#: A safety net so a hang fails instead of blocking the suite; never an assertion about time.
LIMIT = 15

HEAD_TIMEOUT = 0.5
MAX_CONNECTIONS = 20


async def start_server(nursery: trio.Nursery, tmp_path: Path, credentials, **limits: Any) -> Server:
    server = Server(ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, **limits))
    await nursery.start(server.serve)
    return server


@pytest.fixture
async def quick_server(tmp_path: Path, credentials, nursery) -> Server:
    """Request heads must arrive within half a second."""
    return await start_server(nursery, tmp_path, credentials, request_head_timeout=HEAD_TIMEOUT)


@pytest.fixture
async def small_house(tmp_path: Path, credentials, nursery) -> Server:
    """At most 20 connections; idle ones are kept long enough to fill the house."""
    return await start_server(nursery, tmp_path, credentials, request_head_timeout=60, max_connections=MAX_CONNECTIONS)


async def open_raw(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port)


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    """Everything the server sends until it closes (a reset after the data counts as the close)."""
    data = b""
    try:
        while chunk := await stream.receive_some(65536):
            data += chunk
    except trio.BrokenResourceError:
        pass
    return data


async def get_root(port: int) -> bytes:
    stream = await open_raw(port)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return await read_until_closed(stream)


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


async def until(condition: Any) -> None:
    while not condition():
        await trio.sleep(0.01)


# --- request-head deadline ---------------------------------------------------------------------


SLOW_STARTS = {
    "unfinished head": b"GET / HTTP/1.1\r\nHost: x\r\n",
    "4 KB without a line end": b"z" * 4096,
    "nothing at all": b"",
}


@pytest.mark.parametrize("sent", SLOW_STARTS.values(), ids=SLOW_STARTS.keys())
async def test_a_head_that_never_completes_is_dropped_after_the_deadline(quick_server, sent: bytes) -> None:
    with trio.fail_after(LIMIT):
        stalled = await open_raw(quick_server.port)
        opened = trio.current_time()
        await stalled.send_all(sent)
        # While it hangs, the server serves others.
        assert status_of(await get_root(quick_server.port)) == 200
        data = await read_until_closed(stalled)
        print(f"dropped after {trio.current_time() - opened:.2f}s (request_head_timeout {HEAD_TIMEOUT}s)")
    assert data == b"", data[:200]  # dropped without an answer


async def test_a_head_that_arrives_in_parts_within_the_deadline_is_answered(quick_server) -> None:
    """The deadline is for the whole head, not a reason to drop a head that is merely split."""
    with trio.fail_after(LIMIT):
        stream = await open_raw(quick_server.port)
        await stream.send_all(b"GET / HTTP/1.1\r\n")
        await trio.sleep(HEAD_TIMEOUT / 5)
        await stream.send_all(b"Host: x\r\n")
        await trio.sleep(HEAD_TIMEOUT / 5)
        await stream.send_all(b"\r\n")
        response = b""
        while not response.endswith(b"\r\n\r\nok\n"):
            response += await stream.receive_some(65536)
    assert status_of(response) == 200
    await stream.aclose()


async def test_the_deadline_covers_the_whole_head_not_each_read(quick_server) -> None:
    """A client trickling one byte at a time (slowloris) is dropped at the same deadline."""
    with trio.fail_after(LIMIT):
        stalled = await open_raw(quick_server.port)
        opened = trio.current_time()
        head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Padding: " + b"p" * 200
        closed_after: float | None = None
        try:
            for byte in head:
                await stalled.send_all(bytes([byte]))
                await trio.sleep(0.05)
        except trio.BrokenResourceError:
            closed_after = trio.current_time() - opened
    # Dropped while it was still trickling: a deadline per read would have kept it open.
    assert closed_after is not None, "the trickled head was accepted in full"
    print(f"trickling client dropped after {closed_after:.2f}s (request_head_timeout {HEAD_TIMEOUT}s)")
    assert status_of(await get_root(quick_server.port)) == 200


async def test_an_idle_keep_alive_connection_is_dropped_after_the_deadline_without_another_answer(quick_server) -> None:
    with trio.fail_after(LIMIT):
        stream = await open_raw(quick_server.port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = b""
        while not response.endswith(b"\r\n\r\nok\n"):
            response += await stream.receive_some(65536)
        assert status_of(response) == 200
        answered = trio.current_time()
        rest = await read_until_closed(stream)
    assert rest == b"", rest  # HEAD: a second "HTTP/1.1 200 ... ok" for the same request
    print(f"idle keep-alive connection dropped {trio.current_time() - answered:.2f}s after its answer")


async def test_a_missed_head_deadline_is_not_logged_as_a_server_failure(quick_server, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="meshagent_trio")
    with trio.fail_after(LIMIT):
        stalled = await open_raw(quick_server.port)
        await stalled.send_all(SLOW_STARTS["unfinished head"])
        assert await read_until_closed(stalled) == b""
        await trio.sleep(0.05)  # the server task finishes its connection
    failures = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not failures, [(record.getMessage(), record.exc_info and repr(record.exc_info[1])) for record in failures]


# --- malformed and oversized heads -------------------------------------------------------------


MALFORMED = {
    "not HTTP": (b"HELLO THERE\r\n\r\n", 400),
    "TLS hello": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 500, 400),
    "bad header line": (b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
    "two hosts": (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    "bad content-length": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", 400),
    # more than one read (64 KiB) of head: the part read is already over max_request_head
    "oversized header": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431),
    "oversized, no line end": (b"a" * 20_000, 431),
}


@pytest.mark.parametrize(("sent", "status"), MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_heads_get_an_error_status_before_the_close(server, sent: bytes, status: int) -> None:
    with trio.fail_after(LIMIT):
        stream = await open_raw(server.port)
        try:
            await stream.send_all(sent)
        except trio.BrokenResourceError:
            pass  # refused before all of it was read: the answer is still there to read
        response = await read_until_closed(stream)  # also: the server closes (no waiting for more)
    assert status_of(response) == status, response[:300]
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    assert str(server.config.data_dir).encode() not in body
    assert status_of(await get_root(server.port)) == 200


async def test_a_complete_head_over_the_limit_is_refused_too(tmp_path: Path, credentials, nursery) -> None:
    server = await start_server(nursery, tmp_path, credentials, max_request_head=1024)
    with trio.fail_after(LIMIT):
        stream = await open_raw(server.port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n")
        response = await read_until_closed(stream)
    assert status_of(response) == 431, response[:200]  # HEAD: 200


# --- the connection limit ----------------------------------------------------------------------


async def test_connections_past_the_limit_get_503_and_members_keep_working(small_house, credentials) -> None:
    server = small_house
    payload = os.urandom(300_000)
    with trio.fail_after(LIMIT):
        async with meshagent_trio.connect(room_url(server), mint(credentials, name="member")) as member:
            await member.storage.upload(path="before.bin", data=b"x")
            idle = [await open_raw(server.port) for _ in range(MAX_CONNECTIONS - 1)]
            await until(lambda: server.http.open_connections == MAX_CONNECTIONS)

            # The house is full: a new HTTP request and a new participant are turned away.
            refused = await get_root(server.port)
            assert status_of(refused) == 503, refused[:300]
            assert b"retry-after:" in refused.lower()
            with pytest.raises(HandshakeRejected) as info:
                await connect_websocket(room_url(server), headers={"Authorization": "Bearer " + mint(credentials, name="late")})
            assert info.value.status == 503

            # The member already inside is served as usual.
            await member.storage.upload(path="full/house.bin", data=payload)
            assert (await member.storage.download(path="full/house.bin")).data == payload
            assert {entry.name for entry in await member.storage.list(path="")} == {"before.bin", "full"}

            # Once some leave, newcomers are served again.
            for stream in idle[:5]:
                await stream.aclose()
            await until(lambda: server.http.open_connections == MAX_CONNECTIONS - 5)
            assert status_of(await get_root(server.port)) == 200
            async with RoomConnection.open(room_url(server), mint(credentials, name="later")) as later:
                assert await later.invoke("storage", "exists", {"path": "full/house.bin"})
            for stream in idle[5:]:
                await stream.aclose()


async def test_refused_connections_do_not_count_against_the_limit(small_house) -> None:
    """503s close at once: after a burst of refusals the server is back to its idle count."""
    server = small_house
    with trio.fail_after(LIMIT):
        idle = [await open_raw(server.port) for _ in range(MAX_CONNECTIONS)]
        await until(lambda: server.http.open_connections == MAX_CONNECTIONS)
        for _ in range(50):
            assert status_of(await get_root(server.port)) == 503
        await until(lambda: server.http.open_connections == MAX_CONNECTIONS)
        for stream in idle:
            await stream.aclose()
        await until(lambda: server.http.open_connections == 0)
        assert status_of(await get_root(server.port)) == 200


# --- a real server process with a small descriptor limit ---------------------------------------

DESCRIPTOR_LIMIT = 256
#: More than the process could hold open, were every one accepted.
OFFERED_CONNECTIONS = 320

_LIMITED_SERVE = (
    "import resource, sys\n"
    "limit = int(sys.argv[1])\n"
    "resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))\n"
    "from meshagent_trio.cli import main\n"
    "raise SystemExit(main(sys.argv[2:]))\n"
)


class LimitedServerProcess(LocalServerProcess):
    """`meshagent-trio serve` run with RLIMIT_NOFILE lowered (soft and hard) before it starts."""

    def __init__(self, *args: Any, descriptor_limit: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.descriptor_limit = descriptor_limit

    def command(self) -> list[str]:
        serve = super().command()
        assert serve[1:4] == ["-m", "meshagent_trio", "serve"], serve
        return [self.python, "-c", _LIMITED_SERVE, str(self.descriptor_limit), *serve[3:]]


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_a_small_descriptor_limit_gives_503s_not_emfile(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with LimitedServerProcess(data_dir, descriptor_limit=DESCRIPTOR_LIMIT, server_args=["--log-level", "INFO"]) as server:
        credentials = server.credentials
        limits = open(f"/proc/{server.pid}/limits").read()
        assert any(line.startswith("Max open files") and f"{DESCRIPTOR_LIMIT}" in line for line in limits.splitlines()), limits
        texts: list[str] = []  # everything the server told a client in words
        payloads = {f"kept/{n}.bin": os.urandom(50_000 + n) for n in range(12)}
        with trio.fail_after(45):
            async with meshagent_trio.connect(server.room_url("r"), mint(credentials, "r", name="member")) as member:
                await member.storage.upload(path="first.bin", data=b"1")

                # Idle, half-sent requests until the house is full and beyond.
                streams: list[trio.SocketStream] = []
                for _ in range(OFFERED_CONNECTIONS):
                    stream = await open_raw(server.port)
                    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
                    streams.append(stream)
                answers: dict[int, bytes] = {}

                async def answer_of(index: int, stream: trio.SocketStream) -> None:
                    with trio.move_on_after(2):
                        answers[index] = await read_until_closed(stream)

                async with trio.open_nursery() as nursery:
                    for index, stream in enumerate(streams):
                        nursery.start_soon(answer_of, index, stream)
                refused = list(answers.values())
                held = OFFERED_CONNECTIONS - len(answers)  # waiting for the rest of their head
                # Each one is either held or told 503: none dropped without a word.
                assert refused and all(data and status_of(data) == 503 for data in refused), refused[:3]
                assert held >= 16, held
                texts += [data.decode("latin-1") for data in refused]
                assert open_descriptors(server.pid) < DESCRIPTOR_LIMIT

                # The member inside is served while the house is full: uploads, at once too.
                async with trio.open_nursery() as nursery:
                    for path, data in payloads.items():
                        nursery.start_soon(lambda p=path, d=data: member.storage.upload(path=p, data=d))
                for path, data in payloads.items():
                    assert (await member.storage.download(path=path)).data == data
                refused_now = await get_root(server.port)  # the house was full all along
                assert status_of(refused_now) == 503, refused_now[:200]
                # Errors it is told carry no server paths.
                for failing in (
                    lambda: member.storage.download(path="missing/file.bin"),
                    lambda: member.storage.upload(path="first.bin", data=b"again"),
                    lambda: member.storage.list(path="first.bin"),
                ):
                    with pytest.raises(RoomException) as info:
                        await failing()
                    texts.append(str(info.value))
                for stream in streams:
                    await stream.aclose()
        log = server.log(None)
    assert "Too many open files" not in log and "EMFILE" not in log, log[-3000:]
    for text in texts:
        assert str(data_dir) not in text and str(data_dir.resolve()) not in text, text
    print(f"held {held} of {OFFERED_CONNECTIONS} half-sent requests, refused {len(refused)} with 503")
