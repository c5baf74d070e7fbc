"""Random Arrow schemas and rows round-trip unchanged through `room.sqlite`: a table made from
the schema (`create_table_with_schema`), the rows inserted as a stream of batches, and `search`
and `sql` give back the same schema and rows (the canonical types of protocol/room-apis.md §13.2)."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pyarrow as pa
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import meshagent_trio
from roomtest import mint

_counter = itertools.count()

INT_RANGES = {
    pa.int8(): (-(2**7), 2**7 - 1),
    pa.int16(): (-(2**15), 2**15 - 1),
    pa.int32(): (-(2**31), 2**31 - 1),
    pa.int64(): (-(2**63), 2**63 - 1),
    pa.uint8(): (0, 2**8 - 1),
    pa.uint16(): (0, 2**16 - 1),
    pa.uint32(): (0, 2**32 - 1),
}
UTC = dt.timezone.utc
TIMES = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))


def values(data_type: pa.DataType) -> st.SearchStrategy:
    if data_type in INT_RANGES:
        low, high = INT_RANGES[data_type]
        return st.integers(low, high)
    if data_type == pa.bool_():
        return st.booleans()
    if data_type == pa.float64():
        return st.floats(allow_nan=False)  # SQLite has no NaN (it stores NULL)
    if data_type == pa.float32():
        return st.floats(width=32, allow_nan=False)
    if data_type == pa.string():
        return st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
    if data_type == pa.binary():
        return st.binary(max_size=20)
    if data_type == pa.date32():
        return st.dates(min_value=dt.date(1, 1, 1))
    if data_type == pa.timestamp("us"):
        return TIMES
    return TIMES.map(lambda moment: moment.replace(tzinfo=UTC))


TYPES = [*INT_RANGES, pa.bool_(), pa.float64(), pa.float32(), pa.string(), pa.binary(), pa.date32(), pa.timestamp("us"), pa.timestamp("us", tz="UTC")]
NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda name: not name.lower().startswith("sqlite_")
)


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    names = draw(st.lists(NAMES, min_size=1, max_size=6, unique_by=str.lower))  # SQLite names ignore case
    fields = [pa.field(name, draw(st.sampled_from(TYPES)), nullable=draw(st.booleans())) for name in names]
    count = draw(st.integers(0, 12))
    columns = []
    for field in fields:
        strategy = values(field.type)
        if field.nullable:
            strategy = st.none() | strategy
        columns.append(pa.array(draw(st.lists(strategy, min_size=count, max_size=count)), field.type))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def same(left: pa.Table, right: pa.Table) -> bool:
    if not left.schema.equals(right.schema):
        return False
    for a, b in zip(left.to_pylist(), right.to_pylist()):
        for key in a:
            x, y = a[key], b[key]
            if isinstance(x, float) and isinstance(y, float) and math.isinf(x) and math.isinf(y):
                continue
            if x != y:
                return False
    return left.num_rows == right.num_rows


@pytest.fixture(scope="module")
def sqlite_room(local_server):
    name = "sqlite-roundtrip"
    return local_server.room_url(name), mint(local_server.credentials, name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(table=tables(), split=st.integers(1, 5))
def test_random_tables_round_trip_through_insert_and_search(sqlite_room, table: pa.Table, split: int) -> None:
    url, token = sqlite_room
    name = f"t{next(_counter)}"

    async def run() -> None:
        async with meshagent_trio.connect(url, token) as room:
            db = room.sqlite.database("roundtrip")
            await db.create_database(mode="create_if_not_exists")
            await db.create_table_with_schema(name=name, schema=table.schema)
            await db.insert(table=name, records=table.to_batches(max_chunksize=split))
            found = await db.search(table=name)
            assert same(found, table), (found.to_pylist(), table.to_pylist())
            assert (await db.inspect(table=name)).equals(table.schema)
            quoted = '"' + name + '"'
            queried = await db.sql(query=f"SELECT * FROM {quoted}")
            assert [field.type for field in queried.schema] == [field.type for field in table.schema]
            assert queried.to_pylist() == found.to_pylist()
            assert await db.count(table=name) == table.num_rows
            await db.drop_table(name=name)

    async def bounded() -> None:
        with trio.fail_after(30):
            await run()

    trio.run(bounded)
