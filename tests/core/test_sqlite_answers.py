"""`room.sqlite` reads the server's answers as strictly as the official 0.56 client: each case
the official client's tests refuse is refused here with 1100 "unexpected return type from
sqlite.<operation>" (and `error` chunks surface with their own code), and the wire shapes of the
contract round-trip (Hypothesis)."""

from __future__ import annotations

import base64
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import msgspec
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core import BinaryContent, ControlContent, EmptyContent, ErrorContent, JsonContent, RoomException, TextContent
from meshagent_core.client.sqlite import SqliteClient, SqliteSqlCommand
from meshagent_core.toolkits import sqlite as contract
from meshagent_core.toolkits.arrow_ipc import schema_blob, stream_bytes

SCHEMA = schema_blob(pa.schema([pa.field("id", pa.int64())]))


class FakeStream:
    """A streamed call whose server side is a list of chunks (None: the stream closes)."""

    def __init__(self, chunks: list[Any]) -> None:
        self._chunks = list(chunks)
        self.sent: list[Any] = []

    async def response(self) -> Any:
        return ControlContent(method="open")

    def send(self, chunk: Any) -> None:
        self.sent.append(chunk)

    def close_input(self, status_code: int = 1000, message: str | None = None) -> None:
        self.sent.append(ControlContent(method="close", status_code=status_code, message=message))

    async def chunks(self) -> AsyncIterator[Any]:
        for chunk in self._chunks:
            yield chunk


class FakeRoom:
    def __init__(self, answer: Any = None, chunks: list[Any] | None = None) -> None:
        self.answer = answer
        self.chunks = chunks or []
        self.backend = self

    async def run_sync_in_thread(self, function: Any, *args: Any) -> Any:
        return function(*args)

    async def invoke(self, toolkit: str, tool: str, arguments: Any = None) -> Any:
        assert toolkit == "sqlite"
        return self.answer

    @asynccontextmanager
    async def stream_call(self, toolkit: str, tool: str) -> AsyncIterator[FakeStream]:
        yield FakeStream(self.chunks)


async def refused(call: Any, operation: str) -> None:
    with pytest.raises(RoomException) as raised:
        result = call()
        if hasattr(result, "__aiter__"):
            async with result:
                async for _ in result:
                    pass
        else:
            await result
    assert raised.value.code == 1100, raised.value
    assert raised.value.message == f"unexpected return type from sqlite.{operation}"


def client(answer: Any = None, chunks: list[Any] | None = None) -> SqliteClient:
    return SqliteClient(FakeRoom(answer, chunks))  # type: ignore[arg-type]


async def test_unary_answers_are_validated_strictly() -> None:
    await refused(lambda: client(TextContent(text="unexpected")).list_databases(), "list_databases")
    await refused(lambda: client(JsonContent(json={"databases": ["app", 2]})).list_databases(), "list_databases")
    await refused(lambda: client(JsonContent(json={"tables": ["records"], "extra": True})).list_tables(database="app"), "list_tables")
    details = {"name": "app", "namespace": ["team"], "tables": "1", "size_bytes": 1024}
    await refused(lambda: client(JsonContent(json=details)).inspect_database(name="app"), "inspect_database")
    await refused(lambda: client(JsonContent(json={"count": "1"})).count(database="app", table="t"), "count")
    await refused(lambda: client(JsonContent(json={"count": True})).count(database="app", table="t"), "count")
    await refused(lambda: client(JsonContent(json={"rows_affected": "2"})).update(database="a", table="t", where="id = ?", values={"x": 1}), "update")
    await refused(lambda: client(JsonContent(json={"rows_affected": "2"})).delete(database="a", table="t", where="id = ?"), "delete")
    await refused(lambda: client(JsonContent(json={"kind": "statement", "rows_affected": "3"})).execute_sql(database="a", query="q"), "execute_sql")
    await refused(lambda: client(JsonContent(json={"rows_affected": "3"})).execute_sql_statement(database="a", query="q"), "execute_sql_statement")
    await refused(lambda: client(JsonContent(json={"status": "bad"})).cancel_sql_query(query_id="q"), "cancel_sql_query")
    await refused(lambda: client(BinaryContent(headers={"query_id": "q"}, data=SCHEMA)).open_sql_query(database="a", query="q"), "open_sql_query")
    await refused(lambda: client(BinaryContent(headers={"kind": "query", "query_id": 123}, data=SCHEMA)).execute_sql(database="a", query="q"), "execute_sql")
    await refused(lambda: client(BinaryContent(headers={"kind": "query", "query_id": ""}, data=SCHEMA)).execute_sql(database="a", query="q"), "execute_sql")
    await refused(lambda: client(BinaryContent(headers={"kind": "query", "query_id": "q", "x": 1}, data=SCHEMA)).execute_sql(database="a", query="q"), "execute_sql")
    await refused(lambda: client(EmptyContent()).execute_sql(database="a", query="q"), "execute_sql")
    await refused(lambda: client(JsonContent(json={})).create_database(name="a"), "create_database")
    await refused(lambda: client(JsonContent(json={})).close_sql_query(query_id="q"), "close_sql_query")
    await refused(lambda: client(EmptyContent()).flush_database(name="a"), "flush_database")
    await refused(lambda: client(JsonContent(json={})).inspect(database="a", table="t"), "inspect")
    await refused(lambda: client(BinaryContent(data=b"not arrow")).inspect(database="a", table="t"), "inspect")
    await refused(lambda: client(JsonContent(json={"flush_interval_ms": 0})).get_database_settings(name="a"), "get_database_settings")

    # What the official client accepts is accepted: settings ignore extra keys and fill defaults.
    settings_ = await client(JsonContent(json={"flush_interval_ms": 500, "extra": 1})).get_database_settings(name="a")
    assert (settings_.replication_mode, settings_.flush_interval_ms) == ("synchronous", 500)
    details["tables"] = 1
    assert (await client(JsonContent(json=details)).inspect_database(name="app")).tables == 1


BATCH_CASES = [
    {"results": []},
    {"results": [{"kind": "unexpected"}]},
    {"results": [{"kind": "statement", "rows_affected": True}]},
    {"results": [{"kind": "statement", "rows_affected": 1, "extra": 1}]},
    {"results": [{"kind": "query", "query_id": "", "schema_base64": ""}]},
    {"results": [{"kind": "query", "query_id": "x", "schema_base64": "%%%"}]},
    {"results": [{"kind": "query", "query_id": "x", "schema_base64": "YQ=="}]},
    {"results": [], "extra": 1},
]


@pytest.mark.parametrize("payload", BATCH_CASES)
async def test_batch_results_are_validated_strictly(payload: dict) -> None:
    await refused(lambda: client(JsonContent(json=payload)).execute_sql_batch(database="a", commands=[SqliteSqlCommand("SELECT 1")]), "execute_sql_batch")


async def test_batch_results_in_order() -> None:
    answer = {"results": [{"kind": "statement", "rows_affected": 1}, {"kind": "query", "query_id": "q", "schema_base64": base64.b64encode(SCHEMA).decode()}]}
    results = await client(JsonContent(json=answer)).execute_sql_batch(database="a", commands=[SqliteSqlCommand("x"), SqliteSqlCommand("y")])
    assert results[0].rows_affected == 1 and results[1].query_id == "q" and results[1].schema.names == ["id"]


async def test_stream_chunks_are_validated_strictly() -> None:
    table = pa.table({"id": [1]})
    await refused(lambda: client(chunks=[BinaryContent(headers={"kind": "data"})]).create_table_from_data(database="a", name="t", data=table), "create_table")
    await refused(lambda: client(chunks=[BinaryContent(headers={"kind": "pull", "chunk_size": 1})]).insert(database="a", table="t", records=table), "insert")
    await refused(lambda: client(chunks=[JsonContent(json={"kind": "pull"})]).insert(database="a", table="t", records=table), "insert")
    await refused(lambda: client(chunks=[BinaryContent(headers={"kind": "pull"})]).search_stream(database="a", table="t"), "search")
    await refused(lambda: client(chunks=[BinaryContent(headers={"kind": "data", "content_type": "x"}, data=stream_bytes(table))]).search_stream(database="a", table="t"), "search")
    await refused(lambda: client(chunks=[BinaryContent(headers={"kind": "data"}, data=b"junk")]).read_sql_query(query_id="q"), "read_sql_query")
    for call in (
        lambda c: c.insert(database="a", table="t", records=table),
        lambda c: c.search(database="a", table="t"),
    ):
        with pytest.raises(RoomException) as raised:
            await call(client(chunks=[ErrorContent(text="write failed", code=1002)]))
        assert (raised.value.message, raised.value.code) == ("write failed", 1002)
    found = await client(chunks=[BinaryContent(headers={"kind": "data"}, data=stream_bytes(table))]).search(database="a", table="t")
    assert found.to_pylist() == [{"id": 1}]


async def test_transfers_check_completion() -> None:
    with pytest.raises(RoomException, match="interrupted before completion"):
        [chunk async for chunk in client(chunks=[BinaryContent(headers={"kind": "data"}, data=b"x")]).backup(database="a")]
    bad = BinaryContent(headers={"kind": "complete", "size": 1, "sha256": "0" * 64})
    with pytest.raises(RoomException, match="size or SHA-256 mismatch"):
        [chunk async for chunk in client(chunks=[BinaryContent(headers={"kind": "data"}, data=b"x"), bad]).backup(database="a")]

    async def source() -> AsyncIterator[bytes]:
        yield b"data"

    mismatched = BinaryContent(headers={"kind": "complete", "size": 5, "sha256": "0" * 64})
    pull = BinaryContent(headers={"kind": "pull"})
    with pytest.raises(RoomException, match="does not match upload"):
        await client(chunks=[pull, pull, mismatched]).restore(database="a", source=source())
    with pytest.raises(RoomException, match="ended without durable completion"):
        await client(chunks=[pull]).restore(database="a", source=source())


SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
TEXT = st.text(max_size=12)
NAMESPACE = st.none() | st.lists(TEXT, max_size=3)
PARAMS = st.none() | st.lists(SCALARS, max_size=4) | st.dictionaries(TEXT, SCALARS, max_size=4)
WHERE = st.none() | TEXT | st.dictionaries(TEXT, SCALARS, max_size=3)
COUNTS = st.none() | st.integers(0, 2**40)
STRATEGIES = {
    contract.CreateDatabaseInput: st.builds(
        contract.CreateDatabaseInput, name=TEXT, namespace=NAMESPACE, mode=st.sampled_from(["create", "overwrite", "create_if_not_exists"]),
        replication_mode=st.none() | st.sampled_from(["synchronous", "asynchronous"]), flush_interval_ms=st.none() | st.integers(1, 3_600_000),
    ),
    contract.UpdateInput: st.builds(
        contract.UpdateInput, database=TEXT, table=TEXT, values=st.lists(st.builds(contract.ColumnValue, column=TEXT, value_json=TEXT), max_size=3),
        where=WHERE, params=PARAMS, namespace=NAMESPACE,
    ),
    contract.SearchStart: st.builds(
        contract.SearchStart, database=TEXT, table=TEXT, where=WHERE, params=PARAMS, offset=COUNTS, limit=COUNTS,
        select=st.none() | st.lists(TEXT, max_size=3), namespace=NAMESPACE,
    ),
    contract.CreateTableStart: st.builds(contract.CreateTableStart, database=TEXT, name=TEXT, mode=st.sampled_from(["create", "overwrite"]), namespace=NAMESPACE),
    contract.ExecuteSqlBatchInput: st.builds(
        contract.ExecuteSqlBatchInput, database=TEXT, commands=st.lists(st.builds(contract.SqlCommand, query=TEXT, params=PARAMS), max_size=3), namespace=NAMESPACE
    ),
    contract.BatchOutput: st.builds(
        contract.BatchOutput,
        results=st.lists(
            st.builds(contract.StatementOutput, rows_affected=st.integers(0, 2**40))
            | st.builds(contract.BatchQuery, query_id=TEXT, schema_base64=TEXT),
            max_size=3,
        ),
    ),
    contract.DatabaseDetails: st.builds(contract.DatabaseDetails, name=TEXT, namespace=NAMESPACE, tables=COUNTS, size_bytes=COUNTS),
    contract.TransferComplete: st.builds(contract.TransferComplete, size=st.integers(0, 2**40), sha256=st.from_regex(r"\A[0-9a-f]{64}\Z")),
}  # fmt: skip


@settings(deadline=None, max_examples=100)
@given(data=st.data(), struct=st.sampled_from(list(STRATEGIES)))
def test_contract_structs_round_trip(data: st.DataObject, struct: type) -> None:
    value = data.draw(STRATEGIES[struct])
    wire = msgspec.json.encode(value)
    assert msgspec.json.decode(wire, type=struct) == value
    assert msgspec.convert(msgspec.to_builtins(value), type=struct) == value
