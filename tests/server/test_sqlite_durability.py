"""Durability of `sqlite` databases across SIGKILL (the server as a subprocess, killed in the
middle of an insert stream and restarted on the same data directory).

An insert stream is one transaction, acknowledged when the server closes the stream normally
after our input close. Afterwards every acknowledged stream's rows are there, the stream that
was in flight is there completely or not at all (never in part), the database passes SQLite's
integrity check, and the server keeps serving it.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Iterator

import pyarrow as pa
import pytest
import trio

from meshagent_core import BinaryContent, ControlContent
from meshagent_core.toolkits.arrow_ipc import ARROW_STREAM, stream_bytes
from meshagent_core.tokens import ApiScope
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server.process import LocalServerProcess
from roomtest import mint

ROOM = "durable-sqlite"
ROWS_PER_CHUNK = 500
WINDOW = 1  # pulls the server keeps in flight


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[LocalServerProcess]:
    with LocalServerProcess(tmp_path / "data", log_path=tmp_path / "server.log") as server:
        yield server


@asynccontextmanager
async def connect(server: LocalServerProcess) -> AsyncIterator[RoomConnection]:
    async with RoomConnection.open(server.room_url(ROOM), mint(server.credentials, ROOM, scope=ApiScope.full())) as room:
        yield room


def chunk(first: int) -> BinaryContent:
    ids = pa.array(range(first, first + ROWS_PER_CHUNK), pa.int64())
    table = pa.table({"id": ids, "label": pa.array([f"row {i}" for i in range(first, first + ROWS_PER_CHUNK)])})
    return BinaryContent(headers={"kind": "data", "content_type": ARROW_STREAM}, data=stream_bytes(table))


async def insert(room: RoomConnection, first: int, chunks: int, *, kill_after_data: LocalServerProcess | None = None, kill_after_close: LocalServerProcess | None = None) -> None:
    """An insert stream of `chunks` chunks starting at id `first`, each sent on a pull; returns
    once acknowledged. With `kill_after_data`, the server is killed once it has stored every
    chunk in the stream's transaction (before our input close); with `kill_after_close`, right
    after our input close (before the answer)."""
    async with room.stream_call("sqlite", "insert") as call:
        call.send(BinaryContent(headers={"kind": "start", "database": "app", "table": "items", "namespace": None}))
        response = await call.response()
        assert isinstance(response, ControlContent) and response.is_open
        sent = pulls = 0
        while (pull := await call.next_chunk()) is not None:
            assert pull.headers == {"kind": "pull"}
            pulls += 1
            if sent < chunks:
                call.send(chunk(first + sent * ROWS_PER_CHUNK))
                sent += 1
            elif pulls == chunks + WINDOW:  # a pull after the last chunk was stored
                if kill_after_data is not None:
                    await trio.to_thread.run_sync(kill_after_data.kill)
                    return
                call.close_input()
                if kill_after_close is not None:
                    await trio.to_thread.run_sync(kill_after_close.kill)
                    return
        # closed normally after our input close: committed


async def sql(room: RoomConnection, query: str) -> list[tuple]:
    answer = await room.invoke("sqlite", "execute_sql_statement", BinaryContent(headers={"database": "app", "query": query, "params": None, "namespace": None}))
    return answer.json


async def rows(room: RoomConnection) -> list[int]:
    """The ids in the table, and a check that the database file is sound."""
    answer = await room.invoke("sqlite", "execute_sql", BinaryContent(headers={"database": "app", "query": "PRAGMA integrity_check", "params": None, "namespace": None}))
    query_id = answer.headers["query_id"]
    async with room.stream_call("sqlite", "read_sql_query") as call:
        call.send(BinaryContent(headers={"kind": "start", "query_id": query_id}))
        await call.response()
        call.send(BinaryContent(headers={"kind": "pull"}))
        checked = pa.ipc.open_stream((await call.next_chunk()).data).read_all().to_pylist()
    assert checked == [{"integrity_check": "ok"}]
    await room.invoke("sqlite", "close_sql_query", {"query_id": query_id})
    answer = await room.invoke("sqlite", "count", {"database": "app", "table": "items", "where": None, "params": None, "namespace": None})
    total = answer.json["count"]
    beyond = await room.invoke("sqlite", "count", {"database": "app", "table": "items", "where": "id >= ?", "params": [total], "namespace": None})
    assert beyond.json["count"] == 0  # the ids are exactly 0 … total-1: whole streams, in order
    return total


async def test_sigkill_loses_only_the_unacknowledged_insert_stream(server_process: LocalServerProcess) -> None:
    server = server_process
    with trio.fail_after(60):
        async with connect(server) as room:
            await room.invoke("sqlite", "create_database", {"name": "app", "namespace": None, "mode": "create"})
            await sql(room, "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL)")
            acknowledged = 0
            for stream in range(3):
                await insert(room, acknowledged, 2)
                acknowledged += 2 * ROWS_PER_CHUNK
            try:
                await insert(room, acknowledged, 3, kill_after_data=server)
            except Exception:  # noqa: BLE001 - the connection dies with the server
                pass
        await trio.to_thread.run_sync(server.restart)
        async with connect(server) as room:
            assert await rows(room) == acknowledged  # the stream in flight is gone, the rest is intact
            await insert(room, acknowledged, 1)  # and the database takes writes again
            acknowledged += ROWS_PER_CHUNK
            try:
                await insert(room, acknowledged, 2, kill_after_close=server)
            except Exception:  # noqa: BLE001
                pass
        await trio.to_thread.run_sync(server.restart)
        async with connect(server) as room:
            # Killed between our input close and the answer: committed or not, never in part.
            assert await rows(room) in (acknowledged, acknowledged + 2 * ROWS_PER_CHUNK)
            tables = await room.invoke("sqlite", "list_tables", {"database": "app", "namespace": None})
            assert tables.json == {"tables": ["items"]}
