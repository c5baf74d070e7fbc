"""The `sqlite` toolkit's streams at the chunk level, over real sockets (our raw connection, so
malformed chunks can be sent): the pull discipline of write and read streams, restore's checks,
streams and open queries that their callers abandon, and cancelling a running query."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import trio

from meshagent_core import BinaryContent, ErrorContent, JsonContent, TextContent
from meshagent_core.toolkits.arrow_ipc import read_stream, schema_blob, stream_bytes
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server.toolkits.open_queries import queries_of
from datatest import DATA, PULL, ROOM, fails, join, opened



async def sql(room: RoomConnection, query: str, params: Any = None) -> Any:
    return await room.invoke("sqlite", "execute_sql", BinaryContent(headers={"database": "app", "query": query, "params": params, "namespace": None}))


async def count(room: RoomConnection, table: str = "t") -> int:
    return (await room.invoke("sqlite", "count", {"database": "app", "table": table, "where": None, "params": None, "namespace": None})).json["count"]


async def prepare(room: RoomConnection) -> None:
    await room.invoke("sqlite", "create_database", {"name": "app", "namespace": None, "mode": "create"})
    await sql(room, "CREATE TABLE t (id INTEGER)")


def insert_start() -> BinaryContent:
    return BinaryContent(headers={"kind": "start", "database": "app", "table": "t", "namespace": None})


def rows(*values: int) -> BinaryContent:
    return BinaryContent(headers=dict(DATA), data=stream_bytes(pa.table({"id": pa.array(values, pa.int64())})))


async def rest(stream) -> list[Any]:
    return [chunk async for chunk in stream.chunks()]


async def first_error(stream) -> ErrorContent:
    """The first `error` chunk of the rest of the stream (pulls before it are skipped)."""
    for chunk in await rest(stream):
        if isinstance(chunk, ErrorContent):
            return chunk
        assert isinstance(chunk, BinaryContent) and chunk.headers == {"kind": "pull"}, chunk
    raise AssertionError("the stream ended without an error")


async def send_rows(stream, *chunks: BinaryContent) -> int:
    """Answer each pull with the next chunk, then end the input; the pulls received."""
    pulls = 0
    waiting = list(chunks)
    while (chunk := await stream.next_chunk()) is not None:
        assert isinstance(chunk, BinaryContent) and chunk.headers == {"kind": "pull"}, chunk
        pulls += 1
        if waiting:
            stream.send(waiting.pop(0))
        else:
            stream.close_input()
    return pulls


async def test_write_streams_keep_the_pull_discipline(server, credentials) -> None:
    async with join(server, credentials) as room:
        await prepare(room)
        async with room.stream_call("sqlite", "insert") as stream:  # data before the start
            stream.send(rows(1))
            error = await fails(1002, opened(stream))
            assert "start chunk" in error.message
        async with room.stream_call("sqlite", "insert") as stream:  # chunks nobody pulled
            stream.send(insert_start())
            for values in ((1,), (2,), (3,)):  # sent at once, before any pull
                stream.send(rows(*values))
            await opened(stream)
            error = await first_error(stream)
            assert error.code == 1002 and "was sent without a pull" in error.text
        async with room.stream_call("sqlite", "insert") as stream:  # a text chunk where data belongs
            stream.send(insert_start())
            await opened(stream)
            await stream.next_chunk()
            stream.send(TextContent(text="rows"))
            assert (await first_error(stream)).code == 1002
        async with room.stream_call("sqlite", "insert") as stream:  # strict data headers
            stream.send(insert_start())
            await opened(stream)
            await stream.next_chunk()
            stream.send(BinaryContent(headers={"kind": "data", "content_type": "text/csv"}, data=b"id\n1"))
            assert (await first_error(stream)).code == 1002
        async with room.stream_call("sqlite", "insert") as stream:  # bytes that are not Arrow
            stream.send(insert_start())
            await opened(stream)
            await stream.next_chunk()
            stream.send(BinaryContent(headers=dict(DATA), data=b"not arrow"))
            assert "Arrow" in (await first_error(stream)).text
        async with room.stream_call("sqlite", "insert") as stream:  # an abnormal end of the input
            stream.send(insert_start())
            await opened(stream)
            await stream.next_chunk()
            stream.send(rows(1, 2, 3))
            assert (await stream.next_chunk()).headers == {"kind": "pull"}
            stream.close_input(1007, "changed my mind")
            assert "changed my mind" in (await first_error(stream)).text
        assert await count(room) == 0  # nothing of any failed stream was kept

        async with room.stream_call("sqlite", "insert") as stream:  # the good path, chunk by chunk
            stream.send(insert_start())
            await opened(stream)
            assert await send_rows(stream, rows(1, 2), rows(3)) == 2 + 1  # one per chunk, and one answered by the end
        assert await count(room) == 3


async def test_read_streams_answer_each_pull_once(server, credentials) -> None:
    async with join(server, credentials) as room:
        await prepare(room)
        await sql(room, "INSERT INTO t VALUES (1), (2)")
        start = {"kind": "start", "database": "app", "table": "t", "where": None, "params": None, "offset": None, "limit": None, "select": None, "namespace": None}
        async with room.stream_call("sqlite", "search") as stream:
            stream.send(BinaryContent(headers=start))
            await opened(stream)
            stream.send(PULL)
            data = await stream.next_chunk()
            assert data.headers == {"kind": "data"}  # exactly: the official client is strict
            assert read_stream(data.data).to_pylist() == [{"id": 1}, {"id": 2}]
            stream.send(PULL)
            assert await stream.next_chunk() is None  # the next pull is answered by the end
        async with room.stream_call("sqlite", "search") as stream:  # a data chunk is not a pull
            stream.send(BinaryContent(headers=start))
            await opened(stream)
            stream.send(BinaryContent(headers={"kind": "data"}))
            chunks = await rest(stream)
            assert isinstance(chunks[0], ErrorContent) and chunks[0].code == 1002
        async with room.stream_call("sqlite", "search") as stream:  # a json pull is not the sqlite pull
            stream.send(BinaryContent(headers=start))
            await opened(stream)
            stream.send(JsonContent(json={"kind": "pull"}))
            chunks = await rest(stream)
            assert isinstance(chunks[0], ErrorContent) and chunks[0].code == 1002
        assert await count(room) == 2


async def test_create_table_takes_the_schema_of_the_start_or_of_the_first_chunk(server, credentials) -> None:
    async with join(server, credentials) as room:
        await prepare(room)
        schema = pa.schema([pa.field("a", pa.int32(), nullable=False), pa.field("b", pa.string())])
        start = {"kind": "start", "database": "app", "name": "withschema", "mode": "create", "namespace": None}
        async with room.stream_call("sqlite", "create_table") as stream:
            stream.send(BinaryContent(headers=start, data=schema_blob(schema)))
            await opened(stream)
            await send_rows(stream)
        answer = await room.invoke("sqlite", "inspect", {"database": "app", "table": "withschema", "namespace": None})
        assert isinstance(answer, BinaryContent) and pa.ipc.open_stream(answer.data).schema.equals(schema)
        async with room.stream_call("sqlite", "create_table") as stream:  # neither: refused, nothing made
            stream.send(BinaryContent(headers={**start, "name": "nothing"}))
            await opened(stream)
            await stream.next_chunk()
            stream.close_input()
            assert "needs a schema" in (await first_error(stream)).text
        tables = (await room.invoke("sqlite", "list_tables", {"database": "app", "namespace": None})).json["tables"]
        assert tables == ["t", "withschema"]


async def _restore(room: RoomConnection, name: str, frames: list[BinaryContent]) -> list[Any]:
    """Send `frames` one per pull (stops early on anything but a pull); the chunks received."""
    received: list[Any] = []
    async with room.stream_call("sqlite", "restore") as stream:
        stream.send(BinaryContent(headers={"kind": "start", "database": name, "namespace": None}))
        await opened(stream)
        for frame in frames:
            chunk = await stream.next_chunk()
            received.append(chunk)
            if not (isinstance(chunk, BinaryContent) and chunk.headers == {"kind": "pull"}):
                return received
            stream.send(frame)
        received.extend(await rest(stream))
    return received


def _complete(data: bytes, *, size: int | None = None, sha256: str | None = None) -> BinaryContent:
    return BinaryContent(headers={"kind": "complete", "size": len(data) if size is None else size, "sha256": sha256 or hashlib.sha256(data).hexdigest()})


async def _backup(room: RoomConnection, name: str) -> bytes:
    parts: list[bytes] = []
    async with room.stream_call("sqlite", "backup") as stream:
        stream.send(BinaryContent(headers={"kind": "start", "database": name, "namespace": None}))
        await opened(stream)
        while True:
            stream.send(PULL)
            chunk = await stream.next_chunk()
            if chunk.headers["kind"] == "complete":
                assert chunk.headers == {"kind": "complete", "size": len(b"".join(parts)), "sha256": hashlib.sha256(b"".join(parts)).hexdigest()}
                return b"".join(parts)
            assert chunk.headers == {"kind": "data"} and 0 < len(chunk.data) <= 262144
            parts.append(chunk.data)


def _violating_database(folder: Path) -> bytes:
    """A SQLite file whose rows break a foreign key (written with enforcement off)."""
    path = folder / "violating.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE child (id INTEGER, parent INTEGER REFERENCES parent(id));"
        "INSERT INTO child VALUES (1, 99);"
    )
    connection.commit()
    connection.close()
    return path.read_bytes()


async def test_restore_verifies_everything_before_storing(server, credentials, tmp_path: Path) -> None:
    violating = _violating_database(tmp_path)
    async with join(server, credentials) as room:
        await prepare(room)
        await sql(room, "INSERT INTO t VALUES (7)")
        data = await _backup(room, "app")
        frame = BinaryContent(headers={"kind": "data"}, data=data)
        cases = {
            "wrong sha256": [frame, _complete(data, sha256="0" * 64)],
            "wrong size": [frame, _complete(data, size=len(data) + 1)],
            "abort": [frame, BinaryContent(headers={"kind": "abort"})],
            "data after complete": [frame, _complete(data)],
            "oversized frame": [BinaryContent(headers={"kind": "data"}, data=b"x" * 262145)],
            "empty frame": [BinaryContent(headers={"kind": "data"}, data=b"")],
            "unknown kind": [BinaryContent(headers={"kind": "push"}, data=data)],
            "extra header": [BinaryContent(headers={"kind": "data", "offset": 0}, data=data)],
            "truncated": [BinaryContent(headers={"kind": "data"}, data=data[: len(data) // 2]), _complete(data[: len(data) // 2])],
            "not sqlite": [BinaryContent(headers={"kind": "data"}, data=b"x" * 4096), _complete(b"x" * 4096)],
            "foreign keys": [BinaryContent(headers={"kind": "data"}, data=violating), _complete(violating)],
        }
        for case, frames in cases.items():
            if case == "data after complete":
                async with room.stream_call("sqlite", "restore") as stream:
                    stream.send(BinaryContent(headers={"kind": "start", "database": "copy", "namespace": None}))
                    await opened(stream)
                    await stream.next_chunk()
                    stream.send(frame)
                    await stream.next_chunk()
                    stream.send(_complete(data))
                    stream.send(BinaryContent(headers={"kind": "data"}, data=b"more"))
                    received = await rest(stream)
            else:
                received = await _restore(room, "copy", frames)
            errors = [chunk for chunk in received if isinstance(chunk, ErrorContent)]
            assert errors and errors[0].code == 1002, (case, received)
            if case == "foreign keys":
                assert "foreign key violation" in errors[0].text
            listed = (await room.invoke("sqlite", "list_databases", {"namespace": None})).json["databases"]
            assert listed == ["app"], case

        received = await _restore(room, "copy", [frame, _complete(data)])
        assert received[-1].headers == _complete(data).headers  # the echo: stored durably
        assert (await room.invoke("sqlite", "count", {"database": "copy", "table": "t", "where": None, "params": None, "namespace": None})).json == {"count": 1}
        async with room.stream_call("sqlite", "restore") as stream:  # an existing name: before anything is sent
            stream.send(BinaryContent(headers={"kind": "start", "database": "copy", "namespace": None}))
            error = await fails(1004, opened(stream))
            assert "already exists" in error.message


async def test_abandoned_streams_and_queries_are_cleaned_up(server, credentials) -> None:
    async with join(server, credentials) as room:
        await prepare(room)
    async with join(server, credentials, name="leaver") as leaver:
        stream_context = leaver.stream_call("sqlite", "insert")
        stream = await stream_context.__aenter__()
        stream.send(insert_start())
        await opened(stream)
        await stream.next_chunk()
        stream.send(rows(1, 2, 3))
        assert (await stream.next_chunk()).headers == {"kind": "pull"}  # received, not committed
        for _ in range(3):
            query = await sql(leaver, "SELECT * FROM t")
            assert query.headers["kind"] == "query"
        queries = queries_of(server.room(ROOM), "sqlite")
        assert len(queries) == 3
        # Leaving without ending the stream or closing the queries.
    with trio.fail_after(5):
        while len(queries) != 0:
            await trio.sleep(0.01)
    async with join(server, credentials) as room:
        with trio.fail_after(5):  # the abandoned stream's write lock is free again
            assert await count(room) == 0
            await sql(room, "INSERT INTO t VALUES (1)")
        assert await count(room) == 1


async def test_open_queries_are_bounded_and_owned(server, credentials) -> None:
    async with join(server, credentials) as room, join(server, credentials, name="bob") as bob:
        await prepare(room)
        queries = queries_of(server.room(ROOM), "sqlite")
        ids = [(await sql(room, "SELECT 1")).headers["query_id"] for _ in range(queries.limit)]
        error = await fails(1008, sql(room, "SELECT 1"))
        assert "too many open sql queries" in error.message
        assert (await sql(bob, "SELECT 1")).headers["kind"] == "query"  # a limit per participant
        async with bob.stream_call("sqlite", "read_sql_query") as stream:  # not bob's query
            stream.send(BinaryContent(headers={"kind": "start", "query_id": ids[0]}))
            await fails(1003, opened(stream))
        assert (await bob.invoke("sqlite", "cancel_sql_query", {"query_id": ids[0]})).json == {"status": "not_cancellable"}
        await room.invoke("sqlite", "close_sql_query", {"query_id": ids[0]})
        assert (await sql(room, "SELECT 1")).headers["kind"] == "query"


COUNTING = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)"


async def test_cancel_interrupts_a_running_query(server, credentials) -> None:
    async with join(server, credentials) as room:
        await prepare(room)
        # Opening the query reads its first row, a hundred million rows in.
        query = (await sql(room, f"{COUNTING} SELECT i FROM n WHERE i % 100000 = 0")).headers
        async with room.stream_call("sqlite", "read_sql_query") as stream:
            stream.send(BinaryContent(headers={"kind": "start", "query_id": query["query_id"]}))
            await opened(stream)
            stream.send(PULL)
            assert read_stream((await stream.next_chunk()).data).to_pylist() == [{"i": 100000}]  # read when it opened
            stream.send(PULL)
            await trio.sleep(0.2)  # the next batch is being read in a worker thread (for minutes)
            status = (await room.invoke("sqlite", "cancel_sql_query", {"query_id": query["query_id"]})).json
            assert status == {"status": "cancelling"}
            with trio.fail_after(5):
                chunks = await rest(stream)
            assert isinstance(chunks[0], ErrorContent) and chunks[0].code == 1008 and "cancelled" in chunks[0].text
        assert (await room.invoke("sqlite", "cancel_sql_query", {"query_id": query["query_id"]})).json == {"status": "not_cancellable"}
        assert await count(room) == 0  # the connection keeps working


async def test_a_step_that_runs_too_long_is_interrupted(server, credentials, monkeypatch) -> None:
    from meshagent_trio.server.toolkits import open_queries

    monkeypatch.setattr(open_queries, "STEP_TIMEOUT", 0.3)
    async with join(server, credentials) as room:
        await prepare(room)
        with trio.fail_after(5):
            error = await fails(1009, sql(room, f"{COUNTING} SELECT count(*) FROM n"))
            assert "ran for more than 0.3 seconds" in error.message
            error = await fails(1009, sql(room, f"INSERT INTO t {COUNTING} SELECT i FROM n"))
        assert await count(room) == 0  # the interrupted insert was rolled back


async def test_leaving_interrupts_the_callers_statements(server, credentials) -> None:
    async with join(server, credentials) as room:
        await prepare(room)
        async with join(server, credentials, name="leaver") as leaver:
            async with trio.open_nursery() as nursery:
                # An endless insert holds the database's writer...
                nursery.start_soon(sql, leaver, f"INSERT INTO t {COUNTING} SELECT i FROM n")
                await trio.sleep(0.3)
                nursery.cancel_scope.cancel()  # (a unary call cannot be cancelled on the wire)
        # ...until its caller leaves: then it is interrupted and rolled back.
        with trio.fail_after(5):
            await sql(room, "INSERT INTO t VALUES (1)")
        assert await count(room) == 1
