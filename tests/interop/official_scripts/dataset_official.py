"""The official 0.56 `room.datasets` (runs under the OFFICIAL interpreter, never ours).

`python dataset_official.py live`: every tool of the `dataset` toolkit against our server
(MESHAGENT_API_URL, MESHAGENT_API_KEY, SCENARIO_ROOM as in `_official.py`), refused input with
the error the official client raises, and the connection still working afterwards. Prints one
JSON line of observations (rows as `_plain` makes them JSON).

`python dataset_official.py answers`: reads a JSON list of cases from stdin, each
`{"op": <DatasetsClient method>, "args": {...}, "content": <content>}` where content is
`{"type": "json", "json": ...}`, `{"type": "empty"}`, `{"type": "text", "text": ...}` or
`{"type": "binary", "headers": {...}, "data": <base64>}`; hands each answer to the official
client (its room's `invoke` returns it) and prints per case `{"ok": <result as JSON>}` or
`{"error": [message, code]}`.

`python dataset_official.py records`: a line-oriented process: each input line is a JSON list of
wire rows (§12.1 values); each output line is, per row, `{"decoded": <described values>,
"encoded": <the official encode_records of the decoded row>}` or `{"raises": <message>}`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import uuid
from datetime import date, datetime
from typing import Any

import pyarrow as pa
from meshagent.api import RoomException
from meshagent.api.messaging import BinaryContent, EmptyContent, JsonContent, TextContent
from meshagent.api.room_server_client import (
    DatasetIndexConfig,
    DatasetJson,
    DatasetOptimizeConfig,
    DatasetsClient,
    DatasetStruct,
    SqlTableReference,
    decode_records,
    encode_records,
)


def _plain(value: Any) -> Any:
    """A value from Arrow or the record codec as JSON, typed where JSON has no type."""
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, DatasetStruct):
        return {"struct": {key: _plain(item) for key, item in value.fields.items()}}
    if isinstance(value, DatasetJson):
        return {"json": value.to_json()}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value != value:
        return {"float": "nan"}
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return {"float": str(value)}
    if hasattr(value, "expression"):
        return {"expression": value.expression}
    return value


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(_plain(table.to_pylist()), key=lambda row: json.dumps(row, sort_keys=True))


async def live() -> dict:
    from _official import connect, expect_error, observed, step, timed

    async with connect("official") as room:
        datasets = room.datasets
        observed["empty"] = await timed("list_tables", datasets.list_tables())
        schema = pa.schema([pa.field("id", pa.int64(), nullable=False, metadata={b"role": b"key"}), pa.field("name", pa.string())], metadata={b"s": b"1"})
        await timed("create_table_with_schema", datasets.create_table_with_schema(name="people", schema=schema, data=pa.table({"id": [1, 2], "name": ["ann", "bob"]}), metadata={"kind": "demo"}))
        inspected = await timed("inspect", datasets.inspect(table="people"))
        observed["inspect"] = {"names": inspected.names, "metadata": {k.decode(): v.decode() for k, v in (inspected.metadata or {}).items()}, "id_metadata": {k.decode(): v.decode() for k, v in inspected.field("id").metadata.items()}}
        await timed("insert records", datasets.insert(table="people", records=[{"id": 3, "name": "cy"}]))
        await timed("insert arrow", datasets.insert(table="people", records=pa.table({"id": [4], "name": ["dee"]})))

        async def chunks():
            for n in (5, 6):
                yield pa.table({"id": [n], "name": [f"n{n}"]})

        await timed("insert_stream", datasets.insert_stream(table="people", chunks=chunks()))
        await timed("update", datasets.update(table="people", where="id = 1", values={"name": "Ann"}))
        await timed("delete", datasets.delete(table="people", where="id = 6"))
        await timed("merge", datasets.merge(table="people", on="id", records=pa.table({"id": [2, 7], "name": ["Bob", "eve"]})))
        observed["rows"] = _rows(await timed("search", datasets.search(table="people")))
        observed["search_where_dict"] = _rows(await timed("search dict", datasets.search(table="people", where={"name": "eve"}, select=["id"])))
        observed["search_limit"] = (await timed("search limit", datasets.search(table="people", limit=2, offset=1))).num_rows
        observed["search_nothing"] = (await timed("search nothing", datasets.search(table="people", where="id > 100"))).num_columns
        observed["count"] = await timed("count", datasets.count(table="people", where="id > 2"))
        versions = await timed("list_versions", datasets.list_versions(table="people"))
        observed["versions"] = [version.version for version in versions]
        observed["version_metadata"] = versions[0].metadata
        observed["rows_v1"] = _rows(await timed("search v1", datasets.search(table="people", version=1)))

        await timed("create json", datasets.create_table_from_json_data(name="things", namespace=["ns"], data=[{"id": n, "blob": bytes([n]), "key": uuid.UUID(int=n), "day": date(2026, 1, 1 + n % 28), "tags": ["x", str(n)], "point": DatasetStruct({"x": n})} for n in range(200)]))
        observed["things"] = _rows(await timed("search json", datasets.search(table="things", namespace=["ns"], where="id < 2")))
        observed["tables_ns"] = await timed("list ns", datasets.list_tables(namespace=["ns"]))

        n = 300
        vectors = pa.FixedSizeListArray.from_arrays(pa.array([float((i * 7 + j) % 11) for i in range(n) for j in range(8)], pa.float32()), 8)
        await timed("create docs", datasets.create_table_from_data(name="docs", data=pa.table({"id": list(range(n)), "text": [["red apple", "green pear", "blue sky"][i % 3] for i in range(n)], "embedding": vectors})))
        await timed("btree", datasets.create_index(table="docs", config=DatasetIndexConfig(column="id", index_type="BTREE")))
        await timed("fts", datasets.create_index(table="docs", config=DatasetIndexConfig(column="text", index_type="INVERTED")))
        await timed("ivf", datasets.create_index(table="docs", config=DatasetIndexConfig(column="embedding", index_type="IVF_PQ", num_partitions=2, num_sub_vectors=2)))
        indexes = await timed("list_indexes", datasets.list_indexes(table="docs"))
        observed["indexes"] = sorted((index.name, index.columns, index.num_rows_indexed) for index in indexes)
        observed["vector_rows"] = (await timed("vector search", datasets.search(table="docs", vector=[0.0] * 8, limit=3))).num_rows
        observed["text_count"] = await timed("text count", datasets.count(table="docs", text="apple"))
        await timed("drop_index", datasets.drop_index(table="docs", name="id_idx"))
        await timed("add sql columns", datasets.add_columns(table="docs", new_columns={"label": "'x'"}))
        await timed("add schema columns", datasets.add_columns(table="docs", new_columns={"note": pa.string()}))
        await timed("drop_columns", datasets.drop_columns(table="docs", columns=["note"]))
        observed["docs_columns"] = (await timed("inspect docs", datasets.inspect(table="docs"))).names
        optimized = await timed("optimize", datasets.optimize(table="docs", config=DatasetOptimizeConfig(cleanup_old_versions=True, older_than_seconds=0)))
        observed["optimize"] = {"optimized_indices": optimized.optimized_indices, "compaction": sorted(optimized.compaction or {}), "cleanup": sorted(optimized.cleanup or {})}
        stats = await timed("stats", datasets.stats(table="docs"))
        observed["stats"] = {"dataset": sorted(stats.dataset), "data": sorted(stats.data)}

        observed["sql"] = _rows(await timed("sql", datasets.sql(query="SELECT name FROM people WHERE id = $id", params=pa.table({"id": [7]}))))
        observed["sql_ref"] = _rows(await timed("sql ref", datasets.sql(query="SELECT count(*) AS n FROM t", tables=[SqlTableReference(name="things", namespace=["ns"], alias="t")])))
        opened = await timed("open_sql_query", datasets.open_sql_query(query="SELECT id FROM docs ORDER BY id"))
        batches = [batch async for batch in datasets.read_sql_query(query_id=opened.query_id)]
        observed["read_sql_query"] = sum(batch.num_rows for batch in batches)
        await timed("close_sql_query", datasets.close_sql_query(query_id=opened.query_id))
        idle = await timed("open idle", datasets.open_sql_query(query="SELECT 1"))
        observed["cancel"] = [(await datasets.cancel_sql_query(query_id=idle.query_id)).status, (await datasets.cancel_sql_query(query_id=idle.query_id)).status]
        executed = await timed("execute_sql statement", datasets.execute_sql(query="INSERT INTO people VALUES (8, 'h')"))
        observed["execute_sql"] = type(executed).__name__, getattr(executed, "rows_affected", None)
        observed["execute_sql_statement"] = await timed("execute_sql_statement", datasets.execute_sql_statement(query="DELETE FROM people WHERE id >= $id", params=pa.table({"id": [8]})))

        await timed("create_branch", datasets.create_branch(branch="exp"))
        await timed("insert on branch", datasets.insert(table="people", branch="exp", records=pa.table({"id": [100], "name": ["branch"]})))
        observed["branch_counts"] = [await datasets.count(table="people"), await datasets.count(table="people", branch="exp")]
        observed["branches"] = [(branch.name, branch.parent_branch) for branch in await timed("list_branches", datasets.list_branches())]
        await timed("delete_branch", datasets.delete_branch(branch="exp"))

        events = []

        async def watch() -> None:
            async for event in datasets.watch_table(table="people", poll_interval_seconds=0.05):
                events.append(event)
                if event.kind == "ready" and event.phase == "initial":
                    await datasets.insert(table="people", records=pa.table({"id": [50], "name": ["watched"]}))
                if event.kind == "ready" and event.phase == "delta":
                    return

        await timed("watch_table", watch())
        observed["watch"] = [(event.kind, event.phase, event.change_type, _rows(event.table) if event.table is not None else None) for event in events if event.phase == "delta"]

        await timed("restore", datasets.restore(table="people", version=1))
        observed["restored"] = _rows(await datasets.search(table="people"))
        await timed("rename_table", datasets.rename_table(name="people", new_name="persons"))
        await timed("drop_table", datasets.drop_table(name="persons"))
        await timed("drop missing", datasets.drop_table(name="persons", ignore_missing=True))

        step("errors")
        observed["errors"] = {
            "missing_table": await expect_error("missing", datasets.search(table="missing")),
            "exists": await expect_error("exists", datasets.create_table_from_data(name="docs", data=pa.table({"a": [1]}))),
            "where_injection": await expect_error("injection", datasets.delete(table="docs", where="id = 1; DROP TABLE docs")),
            "type_mismatch": await expect_error("type mismatch", datasets.update(table="docs", where="id = 1", values={"id": "abc"})),
            "unknown_column": await expect_error("unknown column", datasets.insert(table="docs", records=pa.table({"nope": [1]}))),
            "sql_syntax": await expect_error("sql syntax", datasets.sql(query="SELEC 1")),
            "sql_update": await expect_error("sql update", datasets.execute_sql_statement(query="UPDATE docs SET id = 1")),
            "unknown_query": await expect_error("unknown query", _read(datasets, "nope")),
            "close_unknown": await expect_error("close unknown", datasets.close_sql_query(query_id="nope")),
            "missing_branch": await expect_error("missing branch", datasets.list_tables(branch="nope")),
        }
        observed["still_working"] = await timed("after errors", datasets.list_tables())
        observed["docs_count"] = await datasets.count(table="docs")
    return observed


async def _read(datasets: DatasetsClient, query_id: str) -> list:
    return [batch async for batch in datasets.read_sql_query(query_id=query_id)]


# --- answers -----------------------------------------------------------------------------------


class _AnsweringRoom:
    def __init__(self, content: Any) -> None:
        self.content = content

    async def invoke(self, **_: Any) -> Any:
        return self.content


def _content(data: dict[str, Any]) -> Any:
    if data["type"] == "json":
        return JsonContent(json=data["json"])
    if data["type"] == "text":
        return TextContent(text=data["text"])
    if data["type"] == "binary":
        return BinaryContent(headers=data["headers"], data=base64.b64decode(data["data"]))
    return EmptyContent()


def _result(value: Any) -> Any:
    if isinstance(value, pa.Schema):
        return {"schema": value.names}
    if isinstance(value, list):
        return [_result(item) for item in value]
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump())
    if hasattr(value, "__dataclass_fields__"):
        return {name: _result(getattr(value, name)) for name in value.__dataclass_fields__}
    return _plain(value)


async def _answer(case: dict[str, Any]) -> dict[str, Any]:
    client = DatasetsClient(room=_AnsweringRoom(_content(case["content"])))
    try:
        return {"ok": _result(await getattr(client, case["op"])(**case["args"]))}
    except RoomException as error:
        return {"error": [str(error), int(error.code) if error.code is not None else None]}
    except Exception as error:  # noqa: BLE001 - what the official client lets escape
        return {"escapes": type(error).__name__}


async def answers() -> list[dict[str, Any]]:
    return [await _answer(case) for case in json.loads(sys.stdin.read())]


def records() -> None:
    for line in sys.stdin:
        out = []
        for row in json.loads(line):
            try:
                decoded = decode_records([row])[0]
                out.append({"decoded": _plain(decoded), "encoded": encode_records([decoded])[0]})
            except Exception as error:  # noqa: BLE001 - the refusal is what we compare
                out.append({"raises": str(error)})
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "live":
        from _official import run

        run(live)
    elif mode == "records":
        records()
    else:
        print(json.dumps(asyncio.run(asyncio.wait_for(answers(), 60))), flush=True)
