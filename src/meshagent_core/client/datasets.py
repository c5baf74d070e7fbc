"""`room.datasets`: the room's Lance tables (protocol/room-apis.md §14), as the official 0.56
`DatasetsClient`.

Same method names, keyword arguments and return types as the official client: schemas are
`pyarrow.Schema`, rows `pyarrow.Table` / `pyarrow.RecordBatch` or record dicts (converted through
the table's schema, fetched with `inspect`, as the official client does; values as in
`meshagent_core.toolkits.records`), results `pyarrow.Table`s; `search_stream`, `sql_stream`,
`read_sql_query` and `watch_table` are async iterators. `pyarrow` is imported on first use
(`pip install 'meshagent-trio[data]'`); Arrow bytes are encoded and decoded in worker threads.

Writes are pull-driven streams (`data_streams`): `insert_stream` / `merge_stream` /
`create_table_from_data_stream` read their chunks (tables, batches, or an async iterable of
them) only as fast as the server asks, and a source that fails or a cancelled call leaves the
table unchanged. Answers are validated as strictly as the official client validates them: a
wrong content type or shape raises `RoomException` 1100 "unexpected return type from
datasets.<operation>".

Use `async with` around the async iterators (or exhaust them) so their calls are closed, e.g.
`async with room.datasets.search_stream(table="t") as batches: async for batch in batches: …`.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import msgspec

from ..content import BinaryContent, ControlCloseStatus, ControlContent, EmptyContent, ErrorContent, JsonContent
from ..toolkits.arrow_ipc import ARROW_STREAM, ArrowDataError, normalize_schema, read_schema_blob, require_pyarrow, schema_blob
from ..toolkits.dataset import (
    ERROR_PREFIX,
    JSON_ROWS_PER_CHUNK,
    TOOLKIT,
    BranchEntry,
    CountOutput,
    IndexEntry,
    ListTablesOutput,
    OptimizeOutput,
    SchemaHeaders,
    StatsOutput,
    VersionEntry,
)
from ..toolkits.dataset_arrow import rows_to_table
from ..toolkits.records import DatasetRecord, DatasetRows, encode_record_value
from .calls import CallIterator, expect_stream_open
from .data_streams import read_arrow_stream, send_arrow_stream
from .datasets_answers import RULES, Namespace, _concat, _is_pull, _json_answer, _json_object, _lax, _parse_time, _tagged, _unexpected
from .datasets_models import (
    DatasetIndexConfig,
    DatasetOptimizeConfig,
    DatasetOptimizeResult,
    DatasetTableStats,
    TableBranch,
    TableIndex,
    TableVersion,
    where_clause,
)
from .datasets_queries import DatasetQueries
from .participants import SubClient

def _table_name(name: str) -> str:
    normalized = name.strip()
    if not normalized:
        raise ValueError("table name must not be empty")
    return normalized


def _schema(schema: Any) -> Any:
    """A `pyarrow.Schema`, or a dict of column name → `pyarrow.DataType` / `pyarrow.Field`."""
    return None if schema is None else normalize_schema(schema, label="dataset schema field")


def _metadata_entries(metadata: Mapping[str, Any] | None) -> list[dict[str, str]] | None:
    if metadata is None:
        return None
    return [
        {"key": str(key), "value": value if isinstance(value, str) else json.dumps(encode_record_value(value))}
        for key, value in metadata.items()
    ]


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


class DatasetsClient(DatasetQueries, SubClient):
    """`room.datasets`: create, change, search and query the room's Lance tables.

    Tables live in namespaces (`namespace=["team"]`; None is the root) and branches
    (`branch="exp"`; None is `main`). Failures raise `RoomException` with the server's code:
    1003 a missing table, branch, version or query, 1004 an existing table or branch, 1002 input
    the table refuses (unknown column, wrong type, bad SQL), 1001 not permitted.
    """

    async def _invoke(self, operation: str, arguments: Mapping[str, Any] | BinaryContent) -> Any:
        return await self.room.invoke(TOOLKIT, operation, arguments)

    async def _thread(self, function: Any, *args: Any) -> Any:
        return await self.room.backend.run_sync_in_thread(function, *args)

    # --- tables -----------------------------------------------------------------------------

    async def list_tables(self, *, namespace: Namespace = None, branch: str | None = None) -> list[str]:
        """The names of the tables in `namespace` (on `branch`)."""
        response = await self._invoke("list_tables", {"namespace": namespace, "branch": branch})
        return _json_answer(response, ListTablesOutput, "list_tables").tables

    async def inspect(self, *, table: str, namespace: Namespace = None, branch: str | None = None, version: int | None = None) -> Any:
        """The table's `pyarrow.Schema` (with its field and schema metadata), at `version`."""
        response = await self._invoke("inspect", {"table": table, "namespace": namespace, "branch": branch, "version": version})
        if not isinstance(response, BinaryContent):
            raise _unexpected("inspect")
        _tagged(response.headers, SchemaHeaders, "inspect")
        try:
            return await self._thread(read_schema_blob, response.data)
        except ArrowDataError:
            raise _unexpected("inspect") from None

    async def _create_table(
        self, *, name: str, data: Any, schema: Any, mode: str | None, namespace: Namespace, branch: str | None, metadata: Mapping[str, Any] | None
    ) -> None:
        normalized = _table_name(name)
        arrow_schema = _schema(schema)
        if arrow_schema is not None and metadata is not None:
            arrow_schema = arrow_schema.with_metadata(
                {**(arrow_schema.metadata or {}), **{str(key).encode(): str(value).encode() for key, value in metadata.items()}}
            )
        if _is_records(data):
            data = await self._thread(rows_to_table, data, arrow_schema)
        start = {
            "kind": "start",
            "name": normalized,
            "mode": mode,
            "namespace": namespace,
            "branch": branch,
            "metadata": _metadata_entries(metadata),
        }
        await send_arrow_stream(self.room, RULES, "create_table", start, schema=arrow_schema, chunks=data)

    async def create_table_with_schema(
        self,
        *,
        name: str,
        schema: Any = None,
        data: Any = None,
        mode: str | None = "create",
        namespace: Namespace = None,
        branch: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Create a table of `schema` (a `pyarrow.Schema`, or a dict of column → type), with
        `data` (tables, batches or record dicts) as its first rows. `mode`: `create` (an
        existing table is an error, 1004), `overwrite`, `create_if_not_exists`. `metadata`
        goes into the schema's metadata."""
        await self._create_table(name=name, data=data, schema=schema, mode=mode, namespace=namespace, branch=branch, metadata=metadata)

    async def create_table_from_data(
        self,
        *,
        name: str,
        data: Any = None,
        mode: str | None = "create",
        namespace: Namespace = None,
        branch: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Create a table whose schema is that of `data` (tables or batches)."""
        await self._create_table(name=name, data=data, schema=None, mode=mode, namespace=namespace, branch=branch, metadata=metadata)

    async def create_table_from_data_stream(
        self,
        *,
        name: str,
        chunks: Any,
        schema: Any = None,
        mode: str | None = "create",
        namespace: Namespace = None,
        branch: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Create a table from `chunks` (an iterable or async iterable of tables / batches),
        read only as fast as the server pulls; nothing is created if `chunks` fails."""
        start = {
            "kind": "start",
            "name": name,
            "mode": mode,
            "namespace": namespace,
            "branch": branch,
            "metadata": _metadata_entries(metadata),
        }
        await send_arrow_stream(self.room, RULES, "create_table", start, schema=_schema(schema), chunks=chunks)

    async def create_table_from_json_data(
        self,
        *,
        name: str,
        data: DatasetRows | None = None,
        mode: str | None = "create",
        namespace: Namespace = None,
        branch: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Create a table from record dicts sent as JSON rows (§12.1 values, 128 rows per
        chunk); the server infers the schema from the first chunk."""
        rows = [] if data is None else (data if isinstance(data, list) else [data])
        chunks = [rows[index : index + JSON_ROWS_PER_CHUNK] for index in range(0, len(rows), JSON_ROWS_PER_CHUNK)]
        start = {
            "kind": "start",
            "name": _table_name(name),
            "mode": mode,
            "namespace": namespace,
            "branch": branch,
            "metadata": _metadata_entries(metadata),
        }
        await self._send_json_rows("create_table", start, chunks)

    async def _send_json_rows(self, tool: str, start: dict[str, Any], chunks: list[DatasetRows]) -> None:
        pending = iter(chunks)
        async with self.room.stream_call(TOOLKIT, tool) as call:
            try:
                call.send(JsonContent(json=start))
                await expect_stream_open(call, toolkit=ERROR_PREFIX, operation=tool)
                stream = call.chunks()
                try:
                    async for chunk in stream:
                        if isinstance(chunk, ErrorContent):
                            raise chunk.to_exception()
                        if isinstance(chunk, ControlContent) or not _is_pull(chunk):
                            raise _unexpected(tool)
                        rows = next(pending, None)
                        if rows is None:
                            call.close_input()
                            continue
                        call.send(JsonContent(json=_rows_chunk(rows)))
                finally:
                    await stream.aclose()  # type: ignore[attr-defined]
            except BaseException as error:
                call.close_input(ControlCloseStatus.INVALID_DATA.value, f"{tool} abandoned by the client: {type(error).__name__}")
                raise

    async def drop_table(self, *, name: str, ignore_missing: bool = False, namespace: Namespace = None, branch: str | None = None) -> None:
        """Drop a table (on a branch: that branch of it)."""
        await self._invoke("drop_table", {"name": name, "ignore_missing": ignore_missing, "namespace": namespace, "branch": branch})

    async def rename_table(self, *, name: str, new_name: str, namespace: Namespace = None, branch: str | None = None) -> None:
        await self._invoke("rename_table", {"name": name, "new_name": new_name, "namespace": namespace, "branch": branch})

    # --- columns and rows -----------------------------------------------------------------------

    async def add_columns(self, *, table: str, new_columns: Any, namespace: Namespace = None, branch: str | None = None) -> None:
        """Add columns: a dict of name → SQL expression over the existing columns (`"'x'"`,
        `"id * 2"`), or a schema (dict of name → type, or `pyarrow.Schema`) of all-null
        columns."""
        pa = require_pyarrow()
        if isinstance(new_columns, pa.Schema) or all(isinstance(value, (pa.DataType, pa.Field)) for value in new_columns.values()):
            blob = await self._thread(schema_blob, _schema(new_columns))
            headers = {"table": table, "namespace": namespace, "branch": branch, "content_type": ARROW_STREAM}
            response = await self._invoke("add_columns", BinaryContent(headers=headers, data=blob))
        else:
            columns = [{"name": name, "value_sql": value} for name, value in new_columns.items()]
            response = await self._invoke("add_columns", {"table": table, "columns": columns, "namespace": namespace, "branch": branch})
        if not isinstance(response, EmptyContent):
            raise _unexpected("add_columns")

    async def drop_columns(self, *, table: str, columns: list[str], namespace: Namespace = None, branch: str | None = None) -> None:
        await self._invoke("drop_columns", {"table": table, "columns": columns, "namespace": namespace, "branch": branch})

    async def _chunks_for_table(self, table: str, chunks: Any, namespace: Namespace, branch: str | None) -> Any:
        if _is_records(chunks):
            schema = await self.inspect(table=table, namespace=namespace, branch=branch)
            return await self._thread(rows_to_table, chunks, schema)
        return chunks

    async def insert(self, *, table: str, records: Any, namespace: Namespace = None, branch: str | None = None) -> None:
        """Append `records` (a table, a batch, or record dicts) in one commit."""
        await self.insert_stream(table=table, chunks=records, namespace=namespace, branch=branch)

    async def insert_stream(self, *, table: str, chunks: Any, namespace: Namespace = None, branch: str | None = None) -> None:
        """Append the rows of `chunks` (tables / batches, plain or async iterable), read only as
        fast as the server pulls, in one commit: if `chunks` fails, nothing is inserted."""
        chunks = await self._chunks_for_table(table, chunks, namespace, branch)
        start = {"kind": "start", "table": table, "namespace": namespace, "branch": branch}
        await send_arrow_stream(self.room, RULES, "insert", start, chunks=chunks)

    async def merge(self, *, table: str, on: str, records: Any, namespace: Namespace = None, branch: str | None = None) -> None:
        """Upsert `records`: rows whose `on` column matches an existing row replace it, the
        others are inserted."""
        await self.merge_stream(table=table, on=on, chunks=records, namespace=namespace, branch=branch)

    async def merge_stream(self, *, table: str, on: str, chunks: Any, namespace: Namespace = None, branch: str | None = None) -> None:
        chunks = await self._chunks_for_table(table, chunks, namespace, branch)
        start = {"kind": "start", "table": table, "on": on, "namespace": namespace, "branch": branch}
        await send_arrow_stream(self.room, RULES, "merge", start, chunks=chunks)

    async def update(self, *, table: str, where: str, values: DatasetRecord, namespace: Namespace = None, branch: str | None = None) -> None:
        """Set columns to `values` (record values) in the rows matching `where` (SQL)."""
        encoded = [{"column": column, "value_json": json.dumps(encode_record_value(value))} for column, value in values.items()]
        await self._invoke("update", {"table": table, "where": where, "values": encoded, "namespace": namespace, "branch": branch})

    async def delete(self, *, table: str, where: str, namespace: Namespace = None, branch: str | None = None) -> None:
        """Delete the rows matching `where` (SQL)."""
        await self._invoke("delete", {"table": table, "where": where, "namespace": namespace, "branch": branch})

    # --- reading -----------------------------------------------------------------------------

    def search_stream(
        self,
        *,
        table: str,
        text: str | None = None,
        vector: list[float] | None = None,
        where: str | dict[str, Any] | None = None,
        offset: int | None = None,
        limit: int | None = None,
        select: list[str] | None = None,
        namespace: Namespace = None,
        branch: str | None = None,
        version: int | None = None,
    ) -> CallIterator[Any]:
        """The search's result as `pyarrow.Table` batches: a vector search with `vector` (on the
        table's vector column), a full-text search with `text`, filtered by `where` (SQL, or a
        dict of column → value), `select`ed columns, `offset`/`limit`."""
        start = {
            "kind": "start",
            "table": table,
            "text": text,
            "vector": vector,
            "text_columns": None,
            "where": where_clause(where),
            "offset": offset,
            "limit": limit,
            "select": select,
            "namespace": namespace,
            "branch": branch,
            "version": version,
        }
        return read_arrow_stream(self.room, RULES, "search", start)

    async def search(
        self,
        *,
        table: str,
        text: str | None = None,
        vector: list[float] | None = None,
        where: str | dict[str, Any] | None = None,
        offset: int | None = None,
        limit: int | None = None,
        select: list[str] | None = None,
        namespace: Namespace = None,
        branch: str | None = None,
        version: int | None = None,
    ) -> Any:
        """`search_stream` as one `pyarrow.Table` (an empty table when nothing matched)."""
        stream = self.search_stream(
            table=table, text=text, vector=vector, where=where, offset=offset, limit=limit, select=select,
            namespace=namespace, branch=branch, version=version,
        )  # fmt: skip
        async with stream as batches:
            return _concat([batch async for batch in batches])

    async def count(
        self,
        *,
        table: str,
        text: str | None = None,
        vector: list[float] | None = None,
        where: str | dict[str, Any] | None = None,
        namespace: Namespace = None,
        branch: str | None = None,
        version: int | None = None,
    ) -> int:
        """Rows matching `where` (or the text / vector search)."""
        arguments = {
            "table": table,
            "text": text,
            "vector": vector,
            "text_columns": None,
            "where": where_clause(where),
            "namespace": namespace,
            "branch": branch,
            "version": version,
        }
        response = await self._invoke("count", arguments)
        return _json_answer(response, CountOutput, "count").count

    async def list_versions(self, *, table: str, namespace: Namespace = None, branch: str | None = None) -> list[TableVersion]:
        response = await self._invoke("list_versions", {"table": table, "namespace": namespace, "branch": branch})
        if not isinstance(response, JsonContent) or not isinstance(response.json, dict) or set(response.json) != {"versions"}:
            raise _unexpected("list_versions")
        entries = response.json["versions"]
        if not isinstance(entries, list):
            raise _unexpected("list_versions")
        versions = []
        for entry in entries:
            version = _lax(entry, VersionEntry, "list_versions")
            versions.append(
                TableVersion(
                    version=version.version,
                    timestamp=_parse_time(version.timestamp, "list_versions"),
                    metadata=_json_object(version.metadata_json, "list_versions"),
                )
            )
        return versions

    async def restore(self, *, table: str, version: int, namespace: Namespace = None, branch: str | None = None) -> None:
        """Make `version` the table's latest version again (a new version)."""
        await self._invoke("restore", {"table": table, "version": version, "namespace": namespace, "branch": branch})

    async def optimize(
        self, *, table: str, namespace: Namespace = None, branch: str | None = None, config: DatasetOptimizeConfig | None = None
    ) -> DatasetOptimizeResult:
        """Compact files, optimize indexes and (with `config.cleanup_old_versions`) remove old
        versions."""
        arguments = {"table": table, "namespace": namespace, "branch": branch, "config": msgspec.to_builtins(config) if config is not None else None}
        result = _json_answer(await self._invoke("optimize", arguments), OptimizeOutput, "optimize")
        compaction = _json_object(result.compaction_json, "optimize") if result.compaction_json is not None else result.compaction
        cleanup = _json_object(result.cleanup_json, "optimize") if result.cleanup_json is not None else result.cleanup
        return DatasetOptimizeResult(compaction=compaction, optimized_indices=result.optimized_indices, cleanup=cleanup)

    async def stats(
        self, *, table: str, namespace: Namespace = None, branch: str | None = None, version: int | None = None, max_rows_per_group: int | None = None
    ) -> DatasetTableStats:
        arguments = {"table": table, "namespace": namespace, "branch": branch, "version": version, "max_rows_per_group": max_rows_per_group}
        result = _json_answer(await self._invoke("stats", arguments), StatsOutput, "stats")
        dataset = _json_object(result.dataset_json, "stats") if result.dataset_json is not None else result.dataset
        data = _json_object(result.data_json, "stats") if result.data_json is not None else result.data
        if not isinstance(dataset, dict) or not isinstance(data, dict):
            raise _unexpected("stats")
        return DatasetTableStats(dataset=dataset, data=data)

    async def create_index(self, *, table: str, config: DatasetIndexConfig, namespace: Namespace = None, branch: str | None = None) -> None:
        """Build a vector (`IVF_PQ`, …), scalar (`BTREE`, `BITMAP`, …) or full-text
        (`INVERTED`/`FTS`) index; named `<column>_idx` unless `config.name` says."""
        await self._invoke("create_index", {"table": table, "config": msgspec.to_builtins(config), "namespace": namespace, "branch": branch})

    async def list_indexes(self, *, table: str, namespace: Namespace = None, branch: str | None = None, version: int | None = None) -> list[TableIndex]:
        response = await self._invoke("list_indexes", {"table": table, "namespace": namespace, "branch": branch, "version": version})
        if not isinstance(response, JsonContent) or not isinstance(response.json, dict) or set(response.json) != {"indexes"}:
            raise _unexpected("list_indexes")
        entries = response.json["indexes"]
        if not isinstance(entries, list):
            raise _unexpected("list_indexes")
        indexes = []
        for item in entries:
            entry = _lax(item, IndexEntry, "list_indexes")
            indexes.append(
                TableIndex(
                    name=entry.name,
                    columns=entry.columns,
                    type=entry.type,
                    fields=entry.fields,
                    type_url=entry.type_url,
                    num_rows_indexed=entry.num_rows_indexed,
                    num_segments=entry.num_segments,
                    total_size_bytes=entry.total_size_bytes,
                    details=_json_object(entry.details_json, "list_indexes"),
                    statistics=_json_object(entry.statistics_json, "list_indexes"),
                )
            )
        return indexes

    async def drop_index(self, *, table: str, name: str, namespace: Namespace = None, branch: str | None = None) -> None:
        await self._invoke("drop_index", {"table": table, "name": name, "namespace": namespace, "branch": branch})

    async def list_branches(self, *, namespace: Namespace = None) -> list[TableBranch]:
        response = await self._invoke("list_branches", {"namespace": namespace})
        if not isinstance(response, JsonContent) or not isinstance(response.json, dict) or set(response.json) != {"branches"}:
            raise _unexpected("list_branches")
        entries = response.json["branches"]
        if not isinstance(entries, list):
            raise _unexpected("list_branches")
        branches = []
        for item in entries:
            if not isinstance(item, dict):
                raise _unexpected("list_branches")
            try:
                entry = msgspec.convert(item, type=BranchEntry)
            except msgspec.ValidationError:
                raise _unexpected("list_branches") from None
            created = _parse_time(entry.created_at, "list_branches") if entry.created_at is not None else None
            branches.append(TableBranch(entry.name, entry.parent_branch, entry.parent_version, created, entry.manifest_size))
        return branches

    async def create_branch(self, *, branch: str, from_branch: str | None = None, namespace: Namespace = None) -> None:
        """Branch every table of `namespace` (from `from_branch`, default `main`)."""
        await self._invoke("create_branch", {"branch": branch, "from_branch": from_branch, "namespace": namespace})

    async def delete_branch(self, *, branch: str, namespace: Namespace = None) -> None:
        await self._invoke("delete_branch", {"branch": branch, "namespace": namespace})


def _rows_chunk(rows: DatasetRows) -> dict[str, Any]:
    return {
        "kind": "rows",
        "rows": [{"columns": [{"name": str(key), "value": encode_record_value(value)} for key, value in row.items()]} for row in rows],
    }



__all__ = ["DatasetsClient"]
