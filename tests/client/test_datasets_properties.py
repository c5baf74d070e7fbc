"""Property tests of `room.datasets` against the real local server: random schemas and rows
round-trip through create, insert (Arrow and record dicts) and search unchanged; and the strict
reading of answers (code 1100, the official texts), checked directly on canned answers since the
real server never sends wrong ones (tests/interop/test_dataset_answers_interop.py checks that the
official client reads the same answers the same way)."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import meshagent_trio
from meshagent_core import BinaryContent, EmptyContent, JsonContent, RoomException, TextContent
from meshagent_core.client.datasets import DatasetsClient
from meshagent_core.toolkits.arrow_ipc import schema_blob
from roomtest import mint

ROOM = "datasets-properties"

_ints = {pa.int8(): 8, pa.int16(): 16, pa.int32(): 32, pa.int64(): 64}
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


def _values(data_type: pa.DataType) -> st.SearchStrategy[Any]:
    if data_type in _ints:
        bits = _ints[data_type]
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if data_type == pa.uint32():
        return st.integers(0, 2**32 - 1)
    if data_type == pa.float32():
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if data_type == pa.float64():
        return _finite
    if data_type == pa.bool_():
        return st.booleans()
    if data_type in (pa.string(), pa.large_string()):
        return _text
    if data_type in (pa.binary(), pa.large_binary()):
        return st.binary(max_size=12)
    if data_type == pa.date32():
        return st.dates(date(1970, 1, 1), date(2200, 1, 1))
    if pa.types.is_timestamp(data_type):
        return st.datetimes(datetime(1970, 1, 2), datetime(2200, 1, 1)).map(lambda moment: moment.replace(tzinfo=timezone.utc))
    if pa.types.is_fixed_size_list(data_type):
        return st.lists(st.floats(-1e6, 1e6, width=32), min_size=data_type.list_size, max_size=data_type.list_size)
    if pa.types.is_list(data_type):
        return st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=4)
    if pa.types.is_struct(data_type):
        return st.fixed_dictionaries({"a": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), "b": st.one_of(st.none(), _text)})
    raise AssertionError(data_type)


TYPES = [
    *_ints,
    pa.uint32(),
    pa.float32(),
    pa.float64(),
    pa.bool_(),
    pa.string(),
    pa.large_string(),
    pa.binary(),
    pa.large_binary(),
    pa.date32(),
    pa.timestamp("us", tz="UTC"),
    pa.list_(pa.int64()),
    pa.struct([("a", pa.int64()), ("b", pa.string())]),
    pa.list_(pa.float32(), 3),
]


@st.composite
def tables(draw: st.DrawFn) -> tuple[pa.Schema, list[dict[str, Any]]]:
    types = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=5))
    fields = [pa.field("id", pa.int64(), nullable=False)]
    for index, data_type in enumerate(types):
        nullable = draw(st.booleans()) and not pa.types.is_struct(data_type)
        fields.append(pa.field(f"c{index}", data_type, nullable=nullable, metadata={b"n": str(index).encode()}))
    schema = pa.schema(fields, metadata={b"generated": b"yes"})
    count = draw(st.integers(0, 6))
    rows = []
    for row_id in range(count):
        row: dict[str, Any] = {"id": row_id}
        for field in fields[1:]:
            values = _values(field.type)
            row[field.name] = draw(st.one_of(st.none(), values) if field.nullable else values)
        rows.append(row)
    return schema, rows


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, float) and isinstance(got, float):
        return expected == got or (math.isnan(expected) and math.isnan(got))
    if isinstance(expected, dict):
        return isinstance(got, dict) and expected.keys() == got.keys() and all(_same(expected[key], got[key]) for key in expected)
    if isinstance(expected, list):
        return isinstance(got, list) and len(expected) == len(got) and all(_same(a, b) for a, b in zip(expected, got))
    return expected == got


async def _round_trip(url: str, token: str, schema: pa.Schema, rows: list[dict[str, Any]], as_records: bool) -> list[dict[str, Any]]:
    async with meshagent_trio.connect(url, token) as room:
        datasets = room.datasets
        await datasets.create_table_with_schema(name="random", schema=schema, mode="overwrite")
        half = len(rows) // 2
        first = pa.Table.from_pylist(rows[:half], schema=schema)
        await datasets.insert(table="random", records=first)
        if rows[half:]:
            await datasets.insert(table="random", records=rows[half:] if as_records else pa.Table.from_pylist(rows[half:], schema=schema))
        inspected = await datasets.inspect(table="random")
        assert inspected.equals(schema, check_metadata=True), (inspected, schema)
        found = await datasets.search(table="random")
        return sorted(found.to_pylist(), key=lambda row: row["id"])


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=tables(), as_records=st.booleans())
def test_random_schemas_and_rows_round_trip(local_server, case, as_records: bool) -> None:
    schema, rows = case
    token = mint(local_server.credentials, ROOM)
    got = trio.run(_round_trip, local_server.room_url(ROOM), token, schema, rows, as_records)
    assert len(got) == len(rows)
    for expected, row in zip(rows, got):
        assert _same(expected, row), (expected, row)


# --- strict reading of answers -------------------------------------------------------------------


class _Answers:
    """A room whose unary calls are all answered with `content`."""

    def __init__(self, content: Any) -> None:
        self.content = content

    async def invoke(self, toolkit: str, tool: str, arguments: Any = None) -> Any:
        assert toolkit == "dataset"
        return self.content


def _version_entry(**overrides: Any) -> dict[str, Any]:
    return {"version": 1, "timestamp": "2025-01-01T00:00:00Z", "metadata_json": "{}", **overrides}


def _index_entry(**overrides: Any) -> dict[str, Any]:
    return {"name": "i", "columns": ["a"], "type": "BTree", "details_json": "{}", "statistics_json": "{}", **overrides}


BAD = [
    ("list_tables", {}, JsonContent(json={})),
    ("list_tables", {}, JsonContent(json={"tables": ["a", 2]})),
    ("list_tables", {}, JsonContent(json={"tables": [], "extra": 1})),
    ("list_tables", {}, EmptyContent()),
    ("inspect", {"table": "t"}, BinaryContent(headers={"kind": "data"}, data=schema_blob(pa.schema([])))),
    ("inspect", {"table": "t"}, BinaryContent(headers={"kind": "schema"}, data=b"not arrow")),
    ("inspect", {"table": "t"}, JsonContent(json={"kind": "schema"})),
    ("count", {"table": "t"}, JsonContent(json={"count": "many"})),
    ("count", {"table": "t"}, JsonContent(json={"count": 1, "more": 2})),
    ("list_versions", {"table": "t"}, JsonContent(json={"versions": [_version_entry(extra=1)]})),
    ("list_versions", {"table": "t"}, JsonContent(json={"versions": [_version_entry(metadata_json="[1]")]})),
    ("list_versions", {"table": "t"}, JsonContent(json={"versions": [_version_entry(timestamp="yesterday")]})),
    ("list_indexes", {"table": "t"}, JsonContent(json={"indexes": [_index_entry(details_json="nope")]})),
    ("list_indexes", {"table": "t"}, JsonContent(json={"indexes": [{"name": "i"}]})),
    ("list_branches", {}, JsonContent(json={"branches": [{"name": "b", "parent_version": "x"}]})),
    ("optimize", {"table": "t"}, JsonContent(json={"optimized_indices": True, "unknown": 1})),
    ("stats", {"table": "t"}, JsonContent(json={"dataset": {}})),
    ("stats", {"table": "t"}, JsonContent(json={"dataset_json": "[]", "data": {}})),
    ("cancel_sql_query", {"query_id": "q"}, JsonContent(json={"status": "bad"})),
    ("close_sql_query", {"query_id": "q"}, JsonContent(json={})),
    ("execute_sql_statement", {"query": "x"}, JsonContent(json={"rows_affected": "two"})),
    ("execute_sql_statement", {"query": "x"}, JsonContent(json={"kind": "statement", "rows_affected": 2})),
    ("execute_sql", {"query": "x"}, JsonContent(json={"rows_affected": 3})),
    ("execute_sql", {"query": "x"}, BinaryContent(headers={"query_id": "q"}, data=schema_blob(pa.schema([])))),
    ("execute_sql", {"query": "x"}, BinaryContent(headers={"kind": "query", "query_id": ""}, data=schema_blob(pa.schema([])))),
    ("open_sql_query", {"query": "x"}, BinaryContent(headers={"kind": "query", "query_id": 123}, data=schema_blob(pa.schema([])))),
    ("open_sql_query", {"query": "x"}, JsonContent(json={"kind": "statement", "rows_affected": 1})),
    ("add_columns", {"table": "t", "new_columns": {"a": "1"}}, JsonContent(json={})),
    ("list_tables", {}, TextContent(text="tables")),
]


@pytest.mark.parametrize(("operation", "arguments", "answer"), BAD, ids=[f"{case[0]}-{index}" for index, case in enumerate(BAD)])
def test_answers_the_official_client_refuses_are_code_1100(operation: str, arguments: dict, answer: Any) -> None:
    client = DatasetsClient(_Answers(answer))  # type: ignore[arg-type]
    client._thread = _inline  # type: ignore[method-assign]

    async def call() -> None:
        await getattr(client, operation)(**arguments)

    with pytest.raises(RoomException) as error:
        trio.run(call)
    assert (str(error.value), error.value.code) == (f"unexpected return type from datasets.{operation}", 1100)


async def _inline(function: Any, *args: Any) -> Any:
    return function(*args)


def test_good_answers_are_read() -> None:
    client = DatasetsClient(_Answers(None))  # type: ignore[arg-type]
    client._thread = _inline  # type: ignore[method-assign]

    async def read(answer: Any, operation: str, **arguments: Any) -> Any:
        client.room.content = answer  # type: ignore[attr-defined]
        return await getattr(client, operation)(**arguments)

    async def main() -> None:
        optimize = await read(JsonContent(json={"compaction_json": '{"files_added": 1}', "optimized_indices": True}), "optimize", table="t")
        assert optimize.compaction == {"files_added": 1} and optimize.optimized_indices and optimize.cleanup is None
        stats = await read(JsonContent(json={"dataset_json": '{"num_fragments": 1}', "data": {"fields": []}}), "stats", table="t")
        assert stats.dataset == {"num_fragments": 1}
        branches = await read(JsonContent(json={"branches": [{"name": "main", "parent_branch": None, "extra": 1}]}), "list_branches")
        assert branches[0].name == "main"
        versions = await read(JsonContent(json={"versions": [_version_entry(version=4)]}), "list_versions", table="t")
        assert versions[0].version == 4 and versions[0].timestamp == datetime(2025, 1, 1, tzinfo=timezone.utc)
        assert (await read(JsonContent(json={"status": "cancelling"}), "cancel_sql_query", query_id="q")).status == "cancelling"

    trio.run(main)
