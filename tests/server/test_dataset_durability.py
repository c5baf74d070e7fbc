"""Durability of the `dataset` toolkit across SIGKILL.

The server runs as a subprocess on a data directory; our raw connection drives insert and
create streams chunk by chunk. The server is killed with SIGKILL in the middle of a stream (after
some chunks were pulled and received, none committed), and again right after an input close
(committed or not: the kill races the commit), then restarted on the same directory. Afterwards
every acknowledged write is there with exactly its rows, a stream that was cut is absent as a
whole (never some of its chunks), a table whose creation was cut does not exist, nothing of the
interrupted writes is left in staging, and the tables take new writes.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Iterator

import pyarrow as pa
import pytest
import trio

from meshagent_core import BinaryContent, ControlContent, ErrorContent
from meshagent_core.tokens import ApiScope
from meshagent_core.toolkits.arrow_ipc import ARROW_STREAM, read_stream, stream_bytes
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server.process import LocalServerProcess
from roomtest import mint

ROOM = "durable-datasets"
DATA = {"kind": "data", "content_type": ARROW_STREAM}


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[LocalServerProcess]:
    with LocalServerProcess(tmp_path / "data", log_path=tmp_path / "server.log") as server:
        yield server


@asynccontextmanager
async def connect(server: LocalServerProcess) -> AsyncIterator[RoomConnection]:
    async with RoomConnection.open(server.room_url(ROOM), mint(server.credentials, ROOM, scope=ApiScope.full())) as room:
        yield room


def chunk(start: int, count: int) -> BinaryContent:
    ids = pa.array(range(start, start + count), pa.int64())
    return BinaryContent(headers=dict(DATA), data=stream_bytes(pa.table({"id": ids, "payload": [f"row {n} " * 20 for n in range(start, start + count)]})))


async def write(room: RoomConnection, tool: str, start: dict, chunks: list[BinaryContent], *, mid=None, before_ack=None) -> bool:
    """A write stream; True once acknowledged (the server closed it after our input close).
    `mid` is awaited after the third chunk was sent and pulled past, `before_ack` right after
    the input close."""
    async with room.stream_call("dataset", tool) as stream:
        stream.send(BinaryContent(headers={"kind": "start", "namespace": None, "branch": None, **start}))
        response = await stream.response()
        assert isinstance(response, ControlContent) and response.is_open, response
        for index, data in enumerate(chunks):
            pull = await stream.next_chunk()
            assert isinstance(pull, BinaryContent) and pull.headers == {"kind": "pull"}, pull
            stream.send(data)
            if index == 3 and mid is not None:
                await stream.next_chunk()  # the server has taken chunk 3 and wants more
                await mid()
                return False
        await stream.next_chunk()
        stream.close_input()
        if before_ack is not None:
            await before_ack()
            return False
        last = await stream.next_chunk()
        if isinstance(last, ErrorContent):
            raise last.to_exception()
        return last is None


async def ids(room: RoomConnection, table: str = "t") -> list[int]:
    search = {"kind": "start", "table": table, "text": None, "vector": None, "text_columns": None, "where": None, "offset": None, "limit": None, "select": ["id"], "namespace": None, "branch": None, "version": None}
    found: list[int] = []
    async with room.stream_call("dataset", "search") as stream:
        stream.send(BinaryContent(headers=search))
        await stream.response()
        while True:
            stream.send(BinaryContent(headers={"kind": "pull"}))
            item = await stream.next_chunk()
            if item is None:
                return sorted(found)
            found.extend(read_stream(item.data).column("id").to_pylist())


async def kill(server: LocalServerProcess) -> None:
    await trio.to_thread.run_sync(server.kill)


async def restart(server: LocalServerProcess) -> None:
    await trio.to_thread.run_sync(server.restart)


async def attempt(room: RoomConnection, **kwargs) -> bool:
    try:
        return await write(room, **kwargs)
    except Exception:  # the connection died with the server
        return False


@pytest.mark.trio
async def test_writes_survive_sigkill(server_process: LocalServerProcess) -> None:
    server = server_process
    async with connect(server) as room:
        assert await write(room, "create_table", {"name": "t", "mode": "create", "metadata": None}, [chunk(0, 500), chunk(500, 500)])
        assert await write(room, "insert", {"table": "t"}, [chunk(1000, 500)])
        acknowledged = list(range(1500))

        async def kill_server() -> None:
            await kill(server)

        # Round 1: killed in the middle of an insert and of a create (chunks received, nothing committed).
        assert not await attempt(room, tool="insert", start={"table": "t"}, chunks=[chunk(5000 + 100 * n, 100) for n in range(8)], mid=kill_server)
    await restart(server)
    async with connect(server) as room:
        assert await ids(room) == acknowledged
        create = {"name": "half", "mode": "create", "metadata": None}
        assert not await attempt(room, tool="create_table", start=create, chunks=[chunk(100 * n, 100) for n in range(8)], mid=kill_server)
    await restart(server)
    async with connect(server) as room:
        listed = await room.invoke("dataset", "list_tables", {"namespace": None, "branch": None})
        assert listed.json == {"tables": ["t"]}
        assert await ids(room) == acknowledged

        # Round 2: killed right after the input close: all of the stream or none of it.
        racing = list(range(9000, 9300))
        await attempt(room, tool="insert", start={"table": "t"}, chunks=[chunk(9000, 100), chunk(9100, 100), chunk(9200, 100)], before_ack=kill_server)
    await restart(server)
    async with connect(server) as room:
        after = await ids(room)
        assert after in (acknowledged, sorted(acknowledged + racing))
        assert await write(room, "insert", {"table": "t"}, [chunk(20_000, 10)])  # the table takes writes
        assert await ids(room) == sorted(after + list(range(20_000, 20_010)))
    staging = Path(server.data_dir) / "rooms" / ROOM / "datasets" / "_staging"
    assert not staging.exists() or not any(staging.iterdir())  # swept when the store was first used
