"""Durability of the local server across SIGKILL: uploads and queue sends.

The server runs as a subprocess (`python -m meshagent_trio serve --data-dir <dir>`); our client
(`RoomConnection`) drives it. The server is killed with SIGKILL in the middle of a stream of
uploads (and of queue sends), then restarted on the same data directory. An operation counts as
acknowledged only when the server said so: an upload when its stream closed normally after our
input close, a send when its `empty` answer arrived. Afterwards:

* every acknowledged upload is present with exactly its bytes; an upload that was in flight is
  either absent or complete (never torn); no temporary file is visible through `storage.list`
  or left on disk (`.meshagent-upload-*`) once the room's storage has been used again;
* every acknowledged queue send is receivable, in the order sent; the one send in flight at the
  kill may be there too (committed but not yet answered), right after them, and nothing else.

Loops are bounded; nothing asserts on timing.
"""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
import trio

from meshagent_core import BinaryContent, ControlContent, EmptyContent, ErrorContent, JsonContent, RoomException
from meshagent_core.tokens import ApiScope
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server.process import LocalServerProcess
from roomtest import mint

ROOM = "durable-room"
UPLOAD_TEMP_PREFIX = ".meshagent-upload-"  # reserved name (protocol/room-apis.md §2.1, protocol/tokens.md §5.3)


# --- the server as a subprocess ---------------------------------------------------------------
# LocalServerProcess blocks; from these Trio tests its process calls run in a worker thread.


async def kill(server: LocalServerProcess) -> None:
    """SIGKILL: no cleanup, no close frames, nothing flushed by the server itself."""
    await trio.to_thread.run_sync(server.kill)


async def restart(server: LocalServerProcess) -> None:
    """A new server process on the same data directory (and port, and credentials)."""
    await trio.to_thread.run_sync(server.restart)


@asynccontextmanager
async def connect(server: LocalServerProcess, name: str = "durable") -> AsyncIterator[RoomConnection]:
    token = mint(server.credentials, ROOM, name=name, scope=ApiScope.full())
    async with RoomConnection.open(server.room_url(ROOM), token) as room:
        yield room


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[LocalServerProcess]:
    with LocalServerProcess(tmp_path / "data", log_path=tmp_path / "server.log") as server:
        yield server


# --- storage over our client ------------------------------------------------------------------


async def upload(room: RoomConnection, path: str, data: bytes, *, overwrite: bool = False, before_ack=None, mid_data=None) -> None:
    """The pull-driven `storage.upload` (protocol/room-apis.md §2.4). Returns only once the server closed the
    stream normally after our input close: the upload is acknowledged. `mid_data` is awaited after
    the second data chunk, `before_ack` after the input close (both used to kill the server)."""
    async with room.stream_call("storage", "upload", input_stream=True) as call:
        call.send(
            BinaryContent(
                headers={
                    "kind": "start",
                    "path": path,
                    "overwrite": overwrite,
                    "name": path.rsplit("/", 1)[-1],
                    "mime_type": "application/octet-stream",
                    "size": len(data),
                },
                data=b"",
            )
        )
        response = await call.response()
        assert isinstance(response, ControlContent) and response.is_open, response
        offset = chunks_sent = 0
        while True:
            chunk = await call.next_chunk()
            if chunk is None:
                raise AssertionError(f"upload of {path}: the stream closed before the input was closed")
            if isinstance(chunk, ErrorContent):
                raise chunk.to_exception()
            assert isinstance(chunk, BinaryContent) and chunk.headers.get("kind") == "pull", chunk
            if offset >= len(data):
                call.close_input()
                break
            size = chunk.headers.get("chunk_size") or 64 * 1024
            call.send(BinaryContent(headers={"kind": "data"}, data=data[offset : offset + size]))
            offset += size
            chunks_sent += 1
            if chunks_sent == 2 and mid_data is not None:
                await mid_data()
        if before_ack is not None:
            await before_ack()
        last = await call.next_chunk()  # None: closed normally; an error chunk would come here
        if isinstance(last, ErrorContent):
            raise last.to_exception()
        assert last is None, f"upload of {path}: unexpected chunk after the input close: {last!r}"


async def download(room: RoomConnection, path: str) -> bytes:
    async with room.stream_call("storage", "download", input_stream=True) as call:
        call.send(BinaryContent(headers={"kind": "start", "path": path, "chunk_size": 256 * 1024}, data=b""))
        response = await call.response()
        assert isinstance(response, ControlContent) and response.is_open, response
        start = await call.next_chunk()
        assert isinstance(start, BinaryContent) and start.headers.get("kind") == "start", start
        size = start.headers["size"]
        received = bytearray()
        while len(received) < size:
            call.send(BinaryContent(headers={"kind": "pull"}, data=b""))
            chunk = await call.next_chunk()
            if isinstance(chunk, ErrorContent):
                raise chunk.to_exception()
            assert isinstance(chunk, BinaryContent) and chunk.headers.get("kind") == "data", chunk
            received += chunk.data
        assert await call.next_chunk() is None
        return bytes(received)


async def list_files(room: RoomConnection, path: str) -> list[dict]:
    result = await room.invoke("storage", "list", {"path": path})
    assert isinstance(result, JsonContent)
    return result.json["files"]


@dataclass
class UploadLedger:
    """What the server acknowledged, and what was attempted without an acknowledgement."""

    acked: dict[str, bytes] = field(default_factory=dict)
    #: path -> every version attempted but not acknowledged (may or may not have been committed)
    unacked: dict[str, list[bytes]] = field(default_factory=dict)
    #: path of the overwritten file -> its versions in attempt order, with ack flags
    versions: list[tuple[bytes, bool]] = field(default_factory=list)

    def attempt_failed(self, path: str, data: bytes) -> None:
        self.unacked.setdefault(path, []).append(data)


async def attempt(room: RoomConnection, ledger: UploadLedger, path: str, data: bytes, **options) -> bool:
    try:
        await upload(room, path, data, **options)
    except (RoomException, trio.BrokenResourceError, trio.ClosedResourceError):
        ledger.attempt_failed(path, data)
        return False
    ledger.acked[path] = data
    return True


def _payload(rng: random.Random, n: int) -> bytes:
    size = rng.choice([0, 1, 1000, 64 * 1024, 64 * 1024 + 1, 150_000, 300_000])
    return f"#{n}:".encode() + rng.randbytes(size)


async def verify_storage(server: LocalServerProcess, ledger: UploadLedger, same_path: str | None = None) -> None:
    async with connect(server, "verifier") as room:
        listed = await list_files(room, "up")  # first use of the room's storage after the restart
        names = {entry["name"] for entry in listed}
        assert not any(name.startswith(UPLOAD_TEMP_PREFIX) or ".tmp" in name for name in names), names
        for path, data in ledger.acked.items():
            if path == same_path:
                continue
            name = path.rsplit("/", 1)[-1]
            assert name in names, f"acknowledged upload {path} is missing after the restart"
            got = await download(room, path)
            assert got == data, f"acknowledged upload {path}: {len(got)} bytes back instead of {len(data)}"
        for entry in listed:
            path = f"up/{entry['name']}"
            if path in ledger.acked or path == same_path:
                continue
            # Not acknowledged, yet present: it must be complete, one of the versions attempted.
            got = await download(room, path)
            candidates = ledger.unacked.get(path, []) + ([v for v, _ in ledger.versions] if path == same_path else [])
            assert got in candidates, f"{path} is torn: {len(got)} bytes match no attempted upload"
            assert entry["size"] == len(got)
        if same_path is not None and ledger.versions:
            last_acked = max((i for i, (_, acked) in enumerate(ledger.versions) if acked), default=None)
            if last_acked is None and same_path.rsplit("/", 1)[-1] not in names:
                pass  # never acknowledged, never committed: absent is right
            else:
                got = await download(room, same_path)
                allowed = [v for i, (v, _) in enumerate(ledger.versions) if last_acked is None or i >= last_acked]
                assert got in allowed, f"{same_path} holds {len(got)} bytes: neither the last acknowledged version nor a later attempt"
    # On disk: no temporary file anywhere in the room's storage, and every file is one the API lists.
    storage = server.data_dir / "rooms" / ROOM / "storage"
    on_disk = {p.relative_to(storage).as_posix() for p in storage.rglob("*") if p.is_file()}
    leftovers = [p for p in on_disk if p.rsplit("/", 1)[-1].startswith(UPLOAD_TEMP_PREFIX)]
    assert not leftovers, f"temporary upload files left on disk after the restart: {leftovers}"
    assert on_disk == {f"up/{e['name']}" for e in listed if not e["is_folder"]}, "files on disk that the API does not list"


async def test_uploads_survive_sigkill(server_process: LocalServerProcess) -> None:
    server = server_process
    rng = random.Random(1234)
    ledger = UploadLedger()
    counter = iter(range(10_000))

    async def kill_server() -> None:
        await kill(server)

    # Round 1: a few acknowledged uploads, then a kill in the middle of an upload's data.
    async with connect(server) as room:
        for _ in range(5):
            n = next(counter)
            assert await attempt(room, ledger, f"up/f{n}.bin", _payload(rng, n))
        n = next(counter)
        big = f"#{n}:".encode() + rng.randbytes(400_000)
        assert not await attempt(room, ledger, f"up/f{n}.bin", big, mid_data=kill_server)
    await restart(server)
    await verify_storage(server, ledger)

    # Round 2: a kill after the input close, before the commit is acknowledged.
    async with connect(server) as room:
        for _ in range(3):
            n = next(counter)
            assert await attempt(room, ledger, f"up/f{n}.bin", _payload(rng, n))
        n = next(counter)
        await attempt(room, ledger, f"up/f{n}.bin", f"#{n}:".encode() + rng.randbytes(200_000), before_ack=kill_server)
    await restart(server)
    await verify_storage(server, ledger)

    # Round 3: three writers at once (one overwriting a single file again and again), killed
    # when enough uploads were acknowledged, wherever each writer happens to be.
    same = "up/same.bin"
    enough = trio.Event()
    acks = [0]

    async def writer(room: RoomConnection, seed: int) -> None:
        local = random.Random(seed)
        try:
            for _ in range(40):  # bounded; the kill normally comes first
                n = next(counter)
                if not await attempt(room, ledger, f"up/f{n}.bin", _payload(local, n)):
                    return
                acks[0] += 1
                if acks[0] >= 8:
                    enough.set()
        finally:
            enough.set()  # a writer that stops early must not leave the killer waiting

    async def overwriter(room: RoomConnection) -> None:
        local = random.Random(99)
        for version in range(40):
            data = f"v{version}:".encode() + local.randbytes(local.choice([10, 70_000, 200_000]))
            try:
                await upload(room, same, data, overwrite=True)
            except (RoomException, trio.BrokenResourceError, trio.ClosedResourceError):
                ledger.versions.append((data, False))
                return
            ledger.versions.append((data, True))

    async def killer() -> None:
        await enough.wait()
        await kill(server)

    async with connect(server, "w1") as r1, connect(server, "w2") as r2, connect(server, "w3") as r3:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer, r1, 1)
            nursery.start_soon(writer, r2, 2)
            nursery.start_soon(overwriter, r3)
            nursery.start_soon(killer)
    assert acks[0] >= 8, "the writers stopped before the kill"
    await restart(server)
    await verify_storage(server, ledger, same_path=same)

    # And once more, cleanly: a final restart changes nothing.
    await kill(server)
    await restart(server)
    await verify_storage(server, ledger, same_path=same)


# --- queues -----------------------------------------------------------------------------------


async def test_queue_sends_survive_sigkill(server_process: LocalServerProcess) -> None:
    server = server_process
    rng = random.Random(7)
    rounds: list[tuple[int, int]] = []  # (base, acknowledged count) per round

    for round_number in range(3):
        base = round_number * 1000
        acked = [0]
        enough = trio.Event()
        target = rng.choice([5, 20, 37])

        async def sender(room: RoomConnection) -> None:
            try:
                for i in range(500):  # bounded; the kill comes first
                    message = {"n": base + i, "pad": "x" * rng.randrange(2000)}
                    try:
                        answer = await room.invoke("queues", "send", {"name": "durable", "create": True, "message": message})
                    except (RoomException, trio.BrokenResourceError, trio.ClosedResourceError):
                        return
                    assert isinstance(answer, EmptyContent), answer
                    acked[0] = i + 1
                    if acked[0] >= target:
                        enough.set()
            finally:
                enough.set()

        async def killer() -> None:
            await enough.wait()
            await kill(server)

        async with connect(server, f"sender{round_number}") as room:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender, room)
                nursery.start_soon(killer)
        assert acked[0] >= target
        rounds.append((base, acked[0]))
        await restart(server)

    # Receive everything (bounded), in order.
    received: list[int] = []
    async with connect(server, "receiver") as room:
        for _ in range(sum(count for _, count in rounds) + len(rounds) + 5):
            answer = await room.invoke("queues", "receive", {"name": "durable", "create": False, "wait": False})
            if isinstance(answer, EmptyContent):
                break
            assert isinstance(answer, JsonContent), answer
            received.append(answer.json["n"])

    # Per round: 0..acked-1 in order, then perhaps the one send in flight at the kill.
    position = 0
    for base, count in rounds:
        expected = list(range(base, base + count))
        assert received[position : position + count] == expected, (
            f"round at {base}: acknowledged sends missing or out of order: {received[position:position + count + 1]}"
        )
        position += count
        if position < len(received) and received[position] == base + count:
            position += 1  # committed, killed before its answer went out
    assert position == len(received), f"unexpected messages after the acknowledged ones: {received[position:]}"
