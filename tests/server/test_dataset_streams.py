"""The `dataset` toolkit's streams at the chunk level, over real sockets (our raw connection, so
malformed and out-of-order chunks can be sent): the pull discipline of write streams (data
before the start, after the end, without a pull, not Arrow), streams, queries and watches that
their callers abandon, cancelling a running SQL query, and concurrent writers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import trio

from meshagent_core import messages
from meshagent_core import BinaryContent, ErrorContent, JsonContent, TextContent
from meshagent_core.toolkits.arrow_ipc import read_stream, stream_bytes
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server.toolkits.open_queries import queries_of
from datatest import DATA, PULL, ROOM, fails, join, opened



async def rest(stream) -> list[Any]:
    return [chunk async for chunk in stream.chunks()]


def rows(*values: int) -> BinaryContent:
    return BinaryContent(headers=dict(DATA), data=stream_bytes(pa.table({"id": pa.array(values, pa.int64())})))


def start(tool: str = "insert", **headers: Any) -> BinaryContent:
    if tool == "create_table":
        return BinaryContent(headers={"kind": "start", "name": "t", "mode": "create", "namespace": None, "branch": None, "metadata": None, **headers})
    return BinaryContent(headers={"kind": "start", "table": "t", "namespace": None, "branch": None, **headers})


async def insert(room: RoomConnection, *values: int) -> None:
    async with room.stream_call("dataset", "insert") as stream:
        stream.send(start())
        await opened(stream)
        assert (await stream.next_chunk()).headers == {"kind": "pull"}
        stream.send(rows(*values))
        assert (await stream.next_chunk()).headers == {"kind": "pull"}
        stream.close_input()
        assert await rest(stream) == []


async def count(room: RoomConnection, table: str = "t") -> int:
    answer = await room.invoke("dataset", "count", {"table": table, "text": None, "vector": None, "text_columns": None, "where": None, "namespace": None, "branch": None, "version": None})
    return answer.json["count"]


async def versions(room: RoomConnection) -> int:
    return len((await room.invoke("dataset", "list_versions", {"table": "t", "namespace": None, "branch": None})).json["versions"])


async def sql(room: RoomConnection, query: str) -> Any:
    return await room.invoke("dataset", "execute_sql", BinaryContent(headers={"query": query, "tables": [], "namespace": None, "branch": None}))


async def prepare(room: RoomConnection) -> None:
    async with room.stream_call("dataset", "create_table") as stream:
        stream.send(start("create_table"))
        await opened(stream)
        assert (await stream.next_chunk()).headers == {"kind": "pull"}
        stream.send(rows(1, 2))
        assert (await stream.next_chunk()).headers == {"kind": "pull"}
        stream.close_input()
        assert await rest(stream) == []


def datasets_dir(server) -> Path:
    return server.room(ROOM).data_dir / "datasets"


async def test_write_streams_keep_the_pull_discipline(server, credentials) -> None:
    async with join(server, credentials) as room:
        await prepare(room)
        async with room.stream_call("dataset", "insert") as stream:  # data before the start
            stream.send(rows(3))
            error = await fails(1002, opened(stream))
            assert "start chunk" in error.message
        async with room.stream_call("dataset", "insert") as stream:  # a chunk nobody pulled
            stream.send(start())
            await opened(stream)
            assert (await stream.next_chunk()).headers == {"kind": "pull"}
            stream.send(rows(3))
            stream.send(rows(4))
            chunks = await rest(stream)
            assert isinstance(chunks[0], ErrorContent) and chunks[0].code == 1002 and "without a pull" in chunks[0].text
        for bad in (TextContent(text="rows"), BinaryContent(headers={"kind": "data", "content_type": "text/csv"}, data=b"id\n1"), BinaryContent(headers=dict(DATA), data=b"not arrow")):
            async with room.stream_call("dataset", "insert") as stream:
                stream.send(start())
                await opened(stream)
                await stream.next_chunk()
                stream.send(bad)
                chunks = await rest(stream)
                assert isinstance(chunks[0], ErrorContent) and chunks[0].code == 1002, chunks
        async with room.stream_call("dataset", "insert") as stream:  # an abnormal end of the input
            stream.send(start())
            await opened(stream)
            await stream.next_chunk()
            stream.send(rows(5, 6))
            assert (await stream.next_chunk()).headers == {"kind": "pull"}
            stream.close_input(1007, "changed my mind")
            chunks = await rest(stream)
            assert isinstance(chunks[0], ErrorContent) and "changed my mind" in chunks[0].text
        async with room.stream_call("dataset", "create_table") as stream:  # json start, arrow data
            stream.send(JsonContent(json={"kind": "start", "name": "j", "mode": "create", "namespace": None, "branch": None, "metadata": None}))
            await opened(stream)
            await stream.next_chunk()
            stream.send(rows(1))
            chunks = await rest(stream)
            assert isinstance(chunks[0], ErrorContent) and "json {kind: rows" in chunks[0].text
        assert await count(room) == 2 and await versions(room) == 1  # nothing of any failed stream was kept

        async with room.stream_call("dataset", "insert") as stream:  # data after the end is dropped
            stream.send(start())
            await opened(stream)
            await stream.next_chunk()
            stream.send(rows(7))
            await stream.next_chunk()
            stream.close_input()
            assert await rest(stream) == []
            # Our session refuses to send after the close; the bytes go out anyway.
            room.session._send_chunk(messages.TOOL_CALL_REQUEST_CHUNK, None, stream.tool_call_id, rows(8, 9))
            room._kick()
        assert await count(room) == 3
        listed = await room.invoke("dataset", "list_tables", {"namespace": None, "branch": None})
        assert listed.json == {"tables": ["t"]}
        assert not any((datasets_dir(server) / "_staging").iterdir())


async def test_read_streams_take_binary_or_json_pulls(server, credentials) -> None:
    async with join(server, credentials) as room:
        await prepare(room)
        search = {"kind": "start", "table": "t", "text": None, "vector": None, "text_columns": None, "where": None, "offset": None, "limit": None, "select": None, "namespace": None, "branch": None, "version": None}
        async with room.stream_call("dataset", "search") as stream:
            stream.send(BinaryContent(headers=search))
            await opened(stream)
            stream.send(JsonContent(json={"kind": "pull"}))
            chunk = await stream.next_chunk()
            assert chunk.headers == DATA and read_stream(chunk.data).column("id").to_pylist() == [1, 2]
            stream.send(PULL)
            assert await stream.next_chunk() is None  # exhausted: the pull is answered by the close
        async with room.stream_call("dataset", "search") as stream:
            stream.send(BinaryContent(headers=search))
            await opened(stream)
            stream.send(BinaryContent(headers={"kind": "data"}))
            chunks = await rest(stream)
            assert isinstance(chunks[0], ErrorContent) and chunks[0].code == 1002 and "pull" in chunks[0].text


async def test_abandoned_streams_queries_and_watches_are_cleaned_up(server, credentials) -> None:
    async with join(server, credentials) as room:
        await prepare(room)
    async with join(server, credentials, name="leaver") as leaver:
        leaver_id = leaver.participant_id
        insert_context = leaver.stream_call("dataset", "insert")
        inserting = await insert_context.__aenter__()
        inserting.send(start())
        await opened(inserting)
        await inserting.next_chunk()
        inserting.send(rows(10, 11, 12))
        assert (await inserting.next_chunk()).headers == {"kind": "pull"}  # received, not committed
        create_context = leaver.stream_call("dataset", "create_table")
        creating = await create_context.__aenter__()
        creating.send(start("create_table", name="half"))
        await opened(creating)
        await creating.next_chunk()
        creating.send(rows(1))
        assert (await creating.next_chunk()).headers == {"kind": "pull"}
        assert any((datasets_dir(server) / "_staging").iterdir())  # being written
        watch_context = leaver.stream_call("dataset", "watch_table")
        watching = await watch_context.__aenter__()
        watching.send(BinaryContent(headers={"kind": "start", "table": "t", "namespace": None, "branch": None, "poll_interval_seconds": 0.05}))
        await opened(watching)
        for _ in range(3):
            query = await sql(leaver, "SELECT * FROM t")
            assert query.headers["kind"] == "query"
        queries = queries_of(server.room(ROOM), "dataset")
        assert len(queries) == 3
        await leaver.websocket.abort()  # the client vanishes mid-stream, without closing anything
    with trio.fail_after(10):
        while len(queries) or leaver_id in server.rooms[ROOM].participants or any((datasets_dir(server) / "_staging").iterdir()):
            await trio.sleep(0.01)
    async with join(server, credentials) as room:
        with trio.fail_after(10):
            assert await count(room) == 2 and await versions(room) == 1
            await insert(room, 3)  # nothing is left holding the table
        assert await count(room) == 3
        assert (await room.invoke("dataset", "list_tables", {"namespace": None, "branch": None})).json == {"tables": ["t"]}


async def test_a_running_query_is_cancelled(server, credentials) -> None:
    async with join(server, credentials) as room:
        query = await sql(room, "SELECT i FROM range(100000000000) t(i) WHERE i % 1000003 = 1000002")
        query_id = query.headers["query_id"]
        outcome: list[Any] = []

        async def read() -> None:
            async with room.stream_call("dataset", "read_sql_query") as stream:
                stream.send(BinaryContent(headers={"kind": "start", "query_id": query_id}))
                await opened(stream)
                stream.send(PULL)
                outcome.extend(await rest(stream))

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                queries = queries_of(server.room(ROOM), "dataset")
                while not queries.find(server.rooms[ROOM].participants[room.participant_id], query_id).busy:
                    await trio.sleep(0.01)
                status = await room.invoke("dataset", "cancel_sql_query", {"query_id": query_id})
                assert status.json == {"status": "cancelling"}
        assert isinstance(outcome[0], ErrorContent) and outcome[0].code == 1008 and "was cancelled" in outcome[0].text
        assert len(queries) == 0
        assert (await sql(room, "SELECT 42 AS n")).headers["kind"] == "query"  # the room goes on


async def test_concurrent_writers_all_commit(server, credentials) -> None:
    async with join(server, credentials) as room:
        await prepare(room)
        async with trio.open_nursery() as nursery:
            for start_value in range(100, 600, 100):
                nursery.start_soon(insert, room, *range(start_value, start_value + 10))
        assert await count(room) == 52
