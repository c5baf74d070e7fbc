"""`room.datasets` against the real local server (real Lance, real DuckDB), on Trio and on AnyIO
(asyncio and Trio): tables, rows, columns, versions, indexes and search; refused input with its
code and text, changing nothing, the connection still working afterwards; grants.
SQL, branches and `watch_table` are in `test_datasets_sql.py`."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from meshagent_core import RoomException
from meshagent_core.client.datasets_models import DatasetIndexConfig, DatasetOptimizeConfig
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import DatasetGrant, TableGrant
from meshagent_core.toolkits.records import DatasetExpression, DatasetJson, DatasetStruct
from roomtest import mint

#: `arrow.json` where pyarrow has it (19+), else the JSON text itself.
JSON_TYPE = pa.json_() if hasattr(pa, "json_") else pa.string()

pytestmark = pytest.mark.anyio

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False, metadata={b"role": b"key"}),
        pa.field("name", pa.string()),
        pa.field("score", pa.float64()),
    ],
    metadata={b"origin": b"test"},
)


def _room(name: str, client_variant: tuple[str, str]) -> str:
    return f"datasets-{name}-{'-'.join(client_variant)}"


async def _rows(datasets, table: str, **arguments) -> list[dict]:
    result = await datasets.search(table=table, **arguments)
    return sorted(result.to_pylist(), key=lambda row: row.get("id", 0))


async def _refused(call, code: int, text: str | None = None) -> RoomException:
    with pytest.raises(RoomException) as info:
        await call
    assert info.value.code == code, (info.value.code, str(info.value))
    if text is not None:
        assert text in str(info.value), str(info.value)
    return info.value


async def test_tables_rows_and_versions(client_module, client_variant, local_server) -> None:
    room_name = _room("rows", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        datasets = room.datasets
        assert await datasets.list_tables() == []
        await datasets.create_table_with_schema(
            name="people", schema=SCHEMA, data=pa.table({"id": [1, 2], "name": ["ann", "bob"], "score": [1.5, 2.5]}), metadata={"kind": "demo"}
        )
        schema = await datasets.inspect(table="people")
        assert schema.field("id").metadata == {b"role": b"key"} and not schema.field("id").nullable
        assert schema.metadata == {b"origin": b"test", b"kind": b"demo"}
        assert await datasets.list_tables() == ["people"]

        # Record dicts are converted through the table's schema; Arrow in any column order.
        await datasets.insert(table="people", records=[{"id": 3, "name": "cy", "score": 3}])
        await datasets.insert(table="people", records=pa.table({"score": [4.0], "id": [4]}))

        async def batches():
            for n in (5, 6):
                yield pa.record_batch({"id": pa.array([n], pa.int64()), "name": [f"n{n}"], "score": [float(n)]})

        await datasets.insert_stream(table="people", chunks=batches())
        assert await datasets.count(table="people") == 6
        assert await datasets.count(table="people", where={"name": "bob"}) == 1
        assert [row["id"] for row in await _rows(datasets, "people", where="score > 2.6")] == [3, 4, 5, 6]
        assert (await datasets.search(table="people", where={"id": 4}, select=["name"])).to_pylist() == [{"name": None}]
        assert len((await datasets.search(table="people", limit=2, offset=1)).to_pylist()) == 2
        nothing = await datasets.search(table="people", where="id > 100")
        assert nothing.num_rows == 0 and nothing.num_columns == 0  # no chunk at all: an empty table

        await datasets.update(table="people", where="id = 1", values={"name": "Ann", "score": 9.5})
        await datasets.delete(table="people", where="id >= 5")
        await datasets.merge(table="people", on="id", records=[{"id": 2, "name": "Bob", "score": 0.5}, {"id": 7, "name": "eve", "score": 7.0}])
        assert await _rows(datasets, "people") == [
            {"id": 1, "name": "Ann", "score": 9.5},
            {"id": 2, "name": "Bob", "score": 0.5},
            {"id": 3, "name": "cy", "score": 3.0},
            {"id": 4, "name": None, "score": 4.0},
            {"id": 7, "name": "eve", "score": 7.0},
        ]

        versions = await datasets.list_versions(table="people")
        assert [version.version for version in versions] == list(range(1, len(versions) + 1))
        assert versions[0].timestamp.tzinfo is not None and versions[0].metadata["total_rows"] == "2"
        await datasets.restore(table="people", version=1)
        assert [row["id"] for row in await _rows(datasets, "people")] == [1, 2]
        assert [row["id"] for row in await _rows(datasets, "people", version=3)] == [1, 2, 3, 4]
        assert await datasets.count(table="people", version=2) == 3

        # Create modes.
        await _refused(datasets.create_table_from_data(name="people", data=pa.table({"id": [1]})), 1004, "table 'people' already exists")
        await datasets.create_table_from_data(name="people", data=pa.table({"x": [1]}), mode="create_if_not_exists")
        assert (await datasets.inspect(table="people")).names == ["id", "name", "score"]
        await datasets.create_table_from_data(name="people", data=pa.table({"id": [10], "name": ["new"], "score": [0.0]}), mode="overwrite")
        assert [row["id"] for row in await _rows(datasets, "people")] == [10]

        await datasets.rename_table(name="people", new_name="persons")
        assert await datasets.list_tables() == ["persons"]
        await datasets.drop_table(name="persons")
        await datasets.drop_table(name="persons", ignore_missing=True)
        await _refused(datasets.drop_table(name="persons"), 1003, "table 'persons' does not exist")
        assert await datasets.list_tables() == []


async def test_json_rows_and_namespaces(client_module, client_variant, local_server) -> None:
    room_name = _room("json", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        datasets = room.datasets
        key = uuid.UUID("12345678-1234-5678-1234-567812345678")
        moment = datetime(2026, 4, 9, 12, 30, 45, tzinfo=timezone.utc)
        rows = [
            {
                "id": n,
                "blob": bytes([n % 256, 255]),
                "key": key,
                "day": date(2026, 4, 1) + timedelta(days=n),
                "at": moment,
                "tags": ["a", f"t{n}"],
                "point": DatasetStruct({"x": n, "y": "why"}),
                "doc": DatasetJson({"nested": [n, None, True]}),
            }
            for n in range(300)  # three JSON chunks of at most 128 rows
        ]
        await datasets.create_table_from_json_data(name="things", data=rows, namespace=["team", "a"])
        assert await datasets.list_tables() == []
        assert await datasets.list_tables(namespace=["team", "a"]) == ["things"]
        schema = await datasets.inspect(table="things", namespace=["team", "a"])
        assert schema.field("key").type == pa.uuid() and schema.field("doc").type == JSON_TYPE
        got = sorted((await datasets.search(table="things", namespace=["team", "a"], where="id < 2")).to_pylist(), key=lambda row: row["id"])
        assert json.loads(got[1].pop("doc")) == {"nested": [1, None, True]}  # Lance keeps JSON compact
        assert got[1] == {
            "id": 1,
            "blob": b"\x01\xff",
            "key": key,
            "day": date(2026, 4, 2),
            "at": moment,
            "tags": ["a", "t1"],
            "point": {"x": 1, "y": "why"},
        }
        assert await datasets.count(table="things", namespace=["team", "a"]) == 300

        # `update` takes every kind of record value, and SQL the server evaluates.
        later = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        other = uuid.UUID(int=7)
        values = {
            "blob": b"\x00new",
            "key": other,
            "day": date(2031, 5, 6),
            "at": later,
            "tags": ["p", "q", "r"],
            "point": DatasetStruct({"x": -1, "y": "updated"}),
            "doc": DatasetJson({"k": "v"}),
            "id": DatasetExpression("id + 1000"),
        }
        await datasets.update(table="things", namespace=["team", "a"], where="id = 3", values=values)
        (updated,) = (await datasets.search(table="things", namespace=["team", "a"], where="id = 1003")).to_pylist()
        assert json.loads(updated.pop("doc")) == {"k": "v"}
        assert updated == {"id": 1003, "blob": b"\x00new", "key": other, "day": date(2031, 5, 6), "at": later, "tags": ["p", "q", "r"], "point": {"x": -1, "y": "updated"}}
        with pytest.raises(RoomException) as refused:
            await datasets.update(table="things", namespace=["team", "a"], where="id = 4", values={"id": DatasetExpression("1; DROP TABLE things")})
        assert refused.value.code == 1002 and "single SQL expression" in str(refused.value)

        # Streamed creation from an async source, with a schema given up front.
        async def chunks():
            for start in range(0, 30, 10):
                yield pa.table({"n": pa.array(range(start, start + 10), pa.int32())})

        await datasets.create_table_from_data_stream(name="numbers", chunks=chunks(), schema=pa.schema([("n", pa.int32())]), namespace=["team"])
        assert await datasets.count(table="numbers", namespace=["team"]) == 30
        await datasets.create_table_with_schema(name="empty", schema={"a": pa.int32(), "b": pa.field("b", pa.string())})
        assert (await datasets.inspect(table="empty")).names == ["a", "b"] and await datasets.count(table="empty") == 0


async def test_columns_indexes_and_search(client_module, client_variant, local_server) -> None:
    room_name = _room("indexes", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        datasets = room.datasets
        n = 300
        vectors = pa.FixedSizeListArray.from_arrays(pa.array([float((i * 7 + j) % 11) for i in range(n) for j in range(8)], pa.float32()), 8)
        words = ["red apple", "green pear", "blue sky"]
        await datasets.create_table_from_data(
            name="docs", data=pa.table({"id": pa.array(range(n), pa.int64()), "text": [words[i % 3] for i in range(n)], "embedding": vectors})
        )
        await datasets.create_index(table="docs", config=DatasetIndexConfig(column="id", index_type="BTREE"))
        await datasets.create_index(table="docs", config=DatasetIndexConfig(column="text", index_type="INVERTED"))
        await datasets.create_index(table="docs", config=DatasetIndexConfig(column="embedding", index_type="IVF_PQ", num_partitions=2, num_sub_vectors=2))
        indexes = {index.name: index for index in await datasets.list_indexes(table="docs")}
        assert sorted(indexes) == ["embedding_idx", "id_idx", "text_idx"]
        assert indexes["id_idx"].columns == ["id"] and indexes["id_idx"].num_rows_indexed == n
        assert isinstance(indexes["embedding_idx"].details, dict) and isinstance(indexes["id_idx"].statistics, dict)

        found = await datasets.search(table="docs", vector=[float(j % 11) for j in range(8)], limit=3, select=["id"])
        assert found.num_rows == 3 and "_distance" in found.column_names
        assert (await datasets.search(table="docs", vector=[0.0] * 8, where="id < 10", limit=50)).num_rows <= 10
        text = await datasets.search(table="docs", text="apple", limit=500, select=["id", "text"])
        assert text.num_rows == 100 and set(text.column("text").to_pylist()) == {"red apple"}
        assert await datasets.count(table="docs", text="pear") == 100

        await datasets.add_columns(table="docs", new_columns={"label": "'x'", "double": "id * 2"})
        await datasets.add_columns(table="docs", new_columns={"note": pa.string()})
        row = (await datasets.search(table="docs", where={"id": 5}, select=["id", "label", "double", "note"])).to_pylist()
        assert row == [{"id": 5, "label": "x", "double": 10, "note": None}]
        await datasets.drop_columns(table="docs", columns=["label", "note"])
        assert (await datasets.inspect(table="docs")).names == ["id", "text", "embedding", "double"]

        await datasets.drop_index(table="docs", name="id_idx")
        assert sorted(index.name for index in await datasets.list_indexes(table="docs")) == ["embedding_idx", "text_idx"]
        await datasets.delete(table="docs", where="id >= 200")
        result = await datasets.optimize(table="docs", config=DatasetOptimizeConfig(cleanup_old_versions=True, older_than_seconds=0))
        assert result.optimized_indices is True and isinstance(result.compaction, dict) and isinstance(result.cleanup, dict)
        assert result.cleanup["old_versions"] >= 1
        stats = await datasets.stats(table="docs")
        assert stats.dataset["num_fragments"] >= 1 and [field["id"] for field in stats.data["fields"]][:2] == [0, 1]
        assert await datasets.count(table="docs") == 200


async def test_refused_input_changes_nothing(client_module, client_variant, local_server) -> None:
    room_name = _room("refused", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        datasets = room.datasets
        await datasets.create_table_with_schema(name="t", schema=SCHEMA, data=pa.table({"id": [1], "name": ["a"], "score": [1.0]}))

        async def unchanged() -> None:
            assert len(await datasets.list_versions(table="t")) == 1
            assert await _rows(datasets, "t") == [{"id": 1, "name": "a", "score": 1.0}]

        cases = [
            (lambda: datasets.search(table="missing"), 1003, "table 'missing' does not exist"),
            (lambda: datasets.insert(table="missing", records=pa.table({"id": [1]})), 1003, "table 'missing' does not exist"),
            (lambda: datasets.count(table="t", where="nope = 1"), 1002, "nope"),
            (lambda: datasets.search(table="t", select=["nope"]), 1002, "unknown column 'nope'"),
            (lambda: datasets.search(table="t", where="id = 1; DROP TABLE t"), 1002, "single SQL expression"),
            (lambda: datasets.delete(table="t", where="id = 1; DELETE FROM t"), 1002, "single SQL expression"),
            (lambda: datasets.update(table="t", where="id = 1", values={"id": "abc"}), 1002, "Cannot cast string 'abc'"),
            (lambda: datasets.update(table="t", where="id = 1", values={"nope": 1}), 1002, "unknown column 'nope'"),
            (lambda: datasets.insert(table="t", records=pa.table({"id": ["x"]})), 1002, "column 'id' holds string"),
            (lambda: datasets.insert(table="t", records=pa.table({"id": [2], "extra": [1]})), 1002, "unknown column 'extra'"),
            (lambda: datasets.insert(table="t", records=pa.table({"name": ["no id"]})), 1002, "column 'id' is missing and may not be null"),
            (lambda: datasets.merge(table="t", on="nope", records=pa.table({"id": [1]})), 1002, "unknown column 'nope' to merge on"),
            (lambda: datasets.drop_columns(table="t", columns=["nope"]), 1002, "unknown column 'nope'"),
            (lambda: datasets.add_columns(table="t", new_columns={"id": "1"}), 1002, "column 'id' already exists"),
            (lambda: datasets.add_columns(table="t", new_columns={"bad": "nope + 1"}), 1002, "datasets.add_columns failed"),
            (lambda: datasets.create_index(table="t", config=DatasetIndexConfig(column="nope", index_type="BTREE")), 1002, "unknown column 'nope'"),
            (lambda: datasets.drop_index(table="t", name="nope"), 1002, "no index named 'nope'"),
            (lambda: datasets.restore(table="t", version=99), 1003, "version 99"),
            (lambda: datasets.search(table="t", version=99), 1003, "version 99"),
            (lambda: datasets.search(table="t", vector=[1.0, 2.0]), 1002, "vector column"),
            (lambda: datasets.search(table="t", text="x"), 1002, "INVERTED index"),
            (lambda: datasets.create_table_from_data(name="../escape", data=pa.table({"a": [1]})), 1002, "invalid table name"),
            (lambda: datasets.list_tables(namespace=["_hidden"]), 1002, "may not start with '_'"),
            (lambda: datasets.create_table_from_json_data(name="j", data=[{"a": 1}] * 128 + [{"a": "x"}]), 1002, "column 'a'"),
            (lambda: datasets.create_table_from_json_data(name="j"), 1002, "needs a schema or at least one row"),
            (lambda: datasets.inspect(table="t", branch="nope"), 1003, "branch 'nope' does not exist"),
        ]
        for call, code, text in cases:
            await _refused(call(), code, text)
            await unchanged()
        assert await datasets.list_tables() == ["t"]  # "j" was not created either

        # A source that fails halfway leaves the table as it was (one commit at the end).
        async def failing():
            yield pa.table({"id": [5], "name": ["five"], "score": [5.0]})
            raise OSError("the source broke")

        with pytest.raises(OSError, match="the source broke"):
            await datasets.insert_stream(table="t", chunks=failing())
        await unchanged()
        with pytest.raises(ValueError, match="table name must not be empty"):
            await datasets.create_table_from_data(name=" ", data=pa.table({"a": [1]}))


async def test_grants(client_module, client_variant, local_server) -> None:
    room_name = _room("grants", client_variant)
    url = local_server.room_url(room_name)
    async with client_module.connect(url, mint(local_server.credentials, room_name)) as admin:
        await admin.datasets.create_table_from_data(name="open", data=pa.table({"id": [1]}))
        await admin.datasets.create_table_from_data(name="secret", data=pa.table({"id": [2]}))
    reader = ApiScope(dataset=DatasetGrant(tables=[TableGrant(name="open", read=True)]))
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="reader", scope=reader)) as room:
        datasets = room.datasets
        assert await datasets.list_tables() == ["open"]
        assert (await datasets.search(table="open")).to_pylist() == [{"id": 1}]
        await _refused(datasets.search(table="secret"), 1001, "you do not have permission to read table 'secret'")
        await _refused(datasets.insert(table="open", records=pa.table({"id": [3]})), 1001, "permission to write table 'open'")
        await _refused(datasets.drop_table(name="open"), 1001, "permission to alter table 'open'")
        await _refused(datasets.create_branch(branch="b"), 1001, "every table of the namespace")
        assert (await datasets.sql(query="SELECT count(*) AS n FROM open")).to_pylist() == [{"n": 1}]
        await _refused(datasets.sql(query="SELECT * FROM secret"), 1002, "secret")  # not visible to the query
        assert await datasets.count(table="open") == 1
    no_datasets = ApiScope(storage=ApiScope.full().storage)
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="nobody", scope=no_datasets)) as room:
        await _refused(room.datasets.list_tables(), 1001, "the token does not grant the dataset API")
