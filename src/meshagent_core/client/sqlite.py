"""`room.sqlite`: the room's SQLite databases (protocol/room-apis.md §13), as the official 0.56
`SqliteClient` — same method names, keyword arguments and return types (`pyarrow.Table` and
`pyarrow.Schema` for rows and schemas, `SqliteSqlQuery` / `SqliteSqlStatement` for executions).
`room.sqlite.database(name, namespace=...)` gives a `SqliteDatabaseClient` bound to one database.

Rows go in as `pyarrow.Table` / `pyarrow.RecordBatch` items (one, a list, or a plain or async
iterable of them — streamed, one piece per pull of the server, large tables cut into pieces of
about 8 MiB) or as a list of record dicts (converted with the table's schema from `inspect`).
Rows come out as async iterators of `pyarrow.Table` (`search_stream`, `sql_stream`,
`read_sql_query`) or whole tables (`search`, `sql`). Use `async with` on the iterators (or
exhaust them) so their calls close.

Answers are validated as strictly as the official client does (extra keys, wrong types): a
wrong one raises `RoomException` 1100 "unexpected return type from sqlite.<operation>".
`pyarrow` is imported on first use (`pip install 'meshagent-trio[data]'`).

Differences, all deliberate: `where` objects and `params` values may hold any record value
(bytes, dates, UUIDs, …; protocol/room-apis.md §12.1), encoded as the TypeScript client encodes
them; `restore` cuts source chunks larger than 256 KiB instead of refusing them.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncGenerator, AsyncIterable, Literal, Mapping, Union

import msgspec

from ..content import BinaryContent, EmptyContent, JsonContent
from ..errors import ErrorCode, RoomException
from ..toolkits.arrow_ipc import ARROW_STREAM, ArrowDataError, normalize_schema, read_schema_blob, require_pyarrow, schema_blob
from ..toolkits.records import DatasetJson, DatasetStruct, encode_record_value
from ..toolkits.sql_queries import CancelOutput, QueryIdInput, ReadQueryStart, RowsAffectedOutput, StatementOutput
from ..toolkits.sqlite import (
    TOOLKIT,
    BatchQuery,
    CountOutput,
    CreateTableStart,
    DatabaseDetails,
    DatabaseInput,
    DatabaseSettings,
    DropColumnsInput,
    DropDatabaseInput,
    DropTableInput,
    FilterInput,
    InsertStart,
    ListDatabasesInput,
    ListDatabasesOutput,
    ListTablesInput,
    ListTablesOutput,
    QueryOpened,
    RenameTableInput,
    SearchStart,
    TableInput,
    UpdateDatabaseSettingsInput,
)
from . import sqlite_transfer
from .calls import READY, CallIterator, decode_strict, expect_json, unexpected_response
from .data_streams import ArrowStreamRules, read_arrow_stream, send_arrow_stream
from .participants import SubClient

if TYPE_CHECKING:
    import pyarrow

    from .sqlite_database import SqliteDatabaseClient

#: The official client's name for the details `inspect_database` answers.
SqliteDatabaseDetails = DatabaseDetails
#: The official client's name for a database's settings.
SqliteReplicationSettings = DatabaseSettings
CreateMode = Literal["create", "overwrite", "create_if_not_exists"]

_RULES = ArrowStreamRules(toolkit=TOOLKIT)


@dataclass(frozen=True, slots=True)
class SqliteSqlCommand:
    """One command of `execute_sql_batch`."""

    query: str
    params: Any = None


@dataclass(frozen=True, slots=True)
class SqliteSqlQuery:
    """An open query: read it with `read_sql_query`, end it with `close_sql_query`."""

    schema: "pyarrow.Schema"
    query_id: str


@dataclass(frozen=True, slots=True)
class SqliteSqlStatement:
    """A statement that returned no rows."""

    rows_affected: int


SqliteSqlExecution = Union[SqliteSqlQuery, SqliteSqlStatement]


@dataclass(frozen=True, slots=True)
class SqliteSqlCancelResult:
    status: Literal["cancelled", "cancelling", "not_cancellable"]


def _wire(value: Any) -> Any:
    """A parameter or where value in its wire form (record values, protocol/room-apis.md §12.1)."""
    try:
        return encode_record_value(value)
    except TypeError as error:
        raise RoomException(str(error), code=ErrorCode.INVALID_REQUEST) from None


def wire_params(params: Any) -> Any:
    """`params` (a list, a mapping or None) with every value in its wire form."""
    if params is None:
        return None
    if isinstance(params, Mapping):
        return {str(name): _wire(value) for name, value in params.items()}
    if isinstance(params, (list, tuple)):
        return [_wire(value) for value in params]
    raise RoomException("params must be a list, a mapping or None", code=ErrorCode.INVALID_REQUEST)


def wire_where(where: Any) -> Any:
    if isinstance(where, Mapping):
        return {str(column): _wire(value) for column, value in where.items()}
    return where


def _arrow_value(value: Any, data_type: Any) -> Any:
    pa = require_pyarrow()
    if isinstance(value, DatasetJson):
        return json.dumps(value.value) if pa.types.is_string(data_type) else value.value
    if isinstance(value, DatasetStruct):
        return {key: _arrow_value(item, None) for key, item in value.fields.items()}
    if isinstance(value, uuid.UUID):
        return value.bytes if data_type is not None and pa.types.is_binary(data_type) else str(value)
    return value


def records_table(records: list[dict[str, Any]], schema: "pyarrow.Schema") -> "pyarrow.Table":
    """Record dicts as a table of the given table schema's columns that the records name."""
    pa = require_pyarrow()
    names: list[str] = []
    for record in records:
        for name in record:
            if name not in names:
                names.append(name)
    for name in names:
        if name not in schema.names:
            raise RoomException(f"the table has no column named {name!r}", code=ErrorCode.INVALID_REQUEST)
    fields = [schema.field(name) for name in names]
    rows = [{name: _arrow_value(record.get(name), field.type) for name, field in zip(names, fields)} for record in records]
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def _is_records(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and all(isinstance(item, dict) for item in data)


def _tagged(value: Any, type: Any, operation: str) -> Any:
    """`decode_strict` for a tagged Struct, whose tag must be present (the official models make
    `kind` a required literal)."""
    config = type.__struct_config__
    if not isinstance(value, dict) or value.get(config.tag_field) != config.tag:
        raise unexpected_response(TOOLKIT, operation)
    return decode_strict(value, type, toolkit=TOOLKIT, operation=operation)


def _schema_of(data: bytes, operation: str) -> "pyarrow.Schema":
    try:
        return read_schema_blob(data)
    except ArrowDataError:
        raise unexpected_response(TOOLKIT, operation) from None


class SqliteClient(SubClient):
    """`room.sqlite`: create, inspect, query and change the room's SQLite databases.

    Failures raise `RoomException` with the server's code: 1003 a database, table or query that
    does not exist, 1004 one that already exists, 1002 bad SQL or input (also a type that does
    not fit a column, or a refused statement), 1001 not permitted.
    """

    def database(self, name: str, *, namespace: list[str] | None = None) -> "SqliteDatabaseClient":
        """A client bound to the database `name` (in `namespace`)."""
        from .sqlite_database import SqliteDatabaseClient

        return SqliteDatabaseClient(client=self, database=name, namespace=namespace)

    async def _invoke(self, operation: str, arguments: msgspec.Struct | dict[str, Any]) -> Any:
        payload = arguments if isinstance(arguments, dict) else msgspec.to_builtins(arguments)
        return await self.room.invoke(TOOLKIT, operation, payload)

    async def _empty(self, operation: str, arguments: msgspec.Struct | dict[str, Any]) -> None:
        if not isinstance(await self._invoke(operation, arguments), EmptyContent):
            raise unexpected_response(TOOLKIT, operation)

    def _sql_argument(self, database: str, query: str, params: Any, namespace: list[str] | None) -> BinaryContent:
        return BinaryContent(headers={"database": database, "query": query, "params": wire_params(params), "namespace": namespace})

    # --- databases ------------------------------------------------------------------------

    async def list_databases(self, *, namespace: list[str] | None = None) -> list[str]:
        response = await self._invoke("list_databases", ListDatabasesInput(namespace=namespace))
        return expect_json(response, ListDatabasesOutput, toolkit=TOOLKIT, operation="list_databases").databases

    async def create_database(
        self,
        *,
        name: str,
        namespace: list[str] | None = None,
        mode: str = "create",
        replication_mode: Literal["synchronous", "asynchronous"] | None = None,
        flush_interval_ms: int | None = None,
    ) -> None:
        """Create the database `name`; `mode` says what to do when it exists (`create`: 1004,
        `create_if_not_exists`: nothing, `overwrite`: replace it)."""
        arguments = {"name": name, "namespace": namespace, "mode": mode}
        if replication_mode is not None:
            arguments["replication_mode"] = replication_mode
        if flush_interval_ms is not None:
            arguments["flush_interval_ms"] = flush_interval_ms
        await self._empty("create_database", arguments)

    async def _settings(self, operation: str, arguments: dict[str, Any]) -> DatabaseSettings:
        response = await self._invoke(operation, arguments)
        if not isinstance(response, JsonContent) or not isinstance(response.json, dict):
            raise unexpected_response(TOOLKIT, operation)
        known = {key: value for key, value in response.json.items() if key in DatabaseSettings.__struct_fields__}
        try:
            return msgspec.convert(known, type=DatabaseSettings)
        except msgspec.ValidationError:
            raise unexpected_response(TOOLKIT, operation) from None

    async def get_database_settings(self, *, name: str, namespace: list[str] | None = None) -> DatabaseSettings:
        return await self._settings("get_database_settings", {"name": name, "namespace": namespace})

    async def update_database_settings(
        self,
        *,
        name: str,
        namespace: list[str] | None = None,
        replication_mode: Literal["synchronous", "asynchronous"] | None = None,
        flush_interval_ms: int | None = None,
    ) -> DatabaseSettings:
        arguments = UpdateDatabaseSettingsInput(
            name=name, namespace=namespace, replication_mode=replication_mode, flush_interval_ms=flush_interval_ms
        )
        return await self._settings("update_database_settings", msgspec.to_builtins(arguments))

    async def flush_database(self, *, name: str, namespace: list[str] | None = None) -> None:
        """Make every commit so far durable (`asynchronous` databases)."""
        if not isinstance(await self._invoke("flush_database", DatabaseInput(name=name, namespace=namespace)), JsonContent):
            raise unexpected_response(TOOLKIT, "flush_database")

    async def drop_database(self, *, name: str, namespace: list[str] | None = None, ignore_missing: bool = False) -> None:
        await self._empty("drop_database", DropDatabaseInput(name=name, namespace=namespace, ignore_missing=ignore_missing))

    async def inspect_database(self, *, name: str, namespace: list[str] | None = None) -> DatabaseDetails:
        response = await self._invoke("inspect_database", DatabaseInput(name=name, namespace=namespace))
        return expect_json(response, DatabaseDetails, toolkit=TOOLKIT, operation="inspect_database")

    def backup(self, *, database: str, namespace: list[str] | None = None) -> CallIterator[bytes]:
        """The database file, streamed; its size and SHA-256 are verified at the end, so consume
        the whole iterator before using the bytes. Needs access to every table."""
        return sqlite_transfer.backup(self.room, database, namespace)

    async def restore(self, *, database: str, source: AsyncIterable[bytes], namespace: list[str] | None = None) -> None:
        """Make the new database `database` from the bytes of `source` (an existing name is
        1004). The server checks size, SHA-256, integrity and foreign keys before storing it."""
        await sqlite_transfer.restore(self.room, database, namespace, source)

    # --- tables ---------------------------------------------------------------------------

    async def list_tables(self, *, database: str, namespace: list[str] | None = None) -> list[str]:
        response = await self._invoke("list_tables", ListTablesInput(database=database, namespace=namespace))
        return expect_json(response, ListTablesOutput, toolkit=TOOLKIT, operation="list_tables").tables

    async def _create_table(self, *, database: str, name: str, data: Any, schema: Any, mode: Any, namespace: list[str] | None) -> None:
        arrow_schema = normalize_schema(schema) if schema is not None else None
        if _is_records(data):
            if arrow_schema is None:
                data = require_pyarrow().Table.from_pylist(data)
            else:
                data = records_table(data, arrow_schema)
        start = CreateTableStart(database=database, name=name, mode=mode or "create", namespace=namespace)
        await send_arrow_stream(self.room, _RULES, "create_table", msgspec.to_builtins(start), schema=arrow_schema, chunks=data)

    async def create_table_with_schema(
        self, *, database: str, name: str, schema: Any = None, data: Any = None, mode: CreateMode | None = "create", namespace: list[str] | None = None
    ) -> None:
        """Create the table `name` with columns from `schema` (a `pyarrow.Schema`, or a mapping of
        names to Arrow types or fields) and optional `data`, in one transaction."""
        await self._create_table(database=database, name=name, data=data, schema=schema, mode=mode, namespace=namespace)

    async def create_table_from_data(
        self, *, database: str, name: str, data: Any = None, mode: CreateMode | None = "create", namespace: list[str] | None = None
    ) -> None:
        """Create the table `name` with the columns of the first piece of `data`."""
        await self._create_table(database=database, name=name, data=data, schema=None, mode=mode, namespace=namespace)

    async def drop_table(self, *, database: str, name: str, ignore_missing: bool = False, namespace: list[str] | None = None) -> None:
        await self._empty("drop_table", DropTableInput(database=database, name=name, ignore_missing=ignore_missing, namespace=namespace))

    async def rename_table(self, *, database: str, name: str, new_name: str, namespace: list[str] | None = None) -> None:
        await self._empty("rename_table", RenameTableInput(database=database, name=name, new_name=new_name, namespace=namespace))

    async def inspect(self, *, database: str, table: str, namespace: list[str] | None = None) -> "pyarrow.Schema":
        response = await self._invoke("inspect", TableInput(database=database, table=table, namespace=namespace))
        if not isinstance(response, BinaryContent):
            raise unexpected_response(TOOLKIT, "inspect")
        return _schema_of(response.data, "inspect")

    async def add_columns(self, *, database: str, table: str, new_columns: Any, namespace: list[str] | None = None) -> None:
        headers = {"database": database, "table": table, "namespace": namespace, "content_type": ARROW_STREAM}
        response = await self.room.invoke(TOOLKIT, "add_columns", BinaryContent(headers=headers, data=schema_blob(normalize_schema(new_columns))))
        if not isinstance(response, EmptyContent):
            raise unexpected_response(TOOLKIT, "add_columns")

    async def drop_columns(self, *, database: str, table: str, columns: list[str], namespace: list[str] | None = None) -> None:
        await self._empty("drop_columns", DropColumnsInput(database=database, table=table, columns=list(columns), namespace=namespace))

    # --- rows -----------------------------------------------------------------------------

    async def insert(self, *, database: str, table: str, records: Any, namespace: list[str] | None = None) -> None:
        """Insert rows, in one transaction: tables or record batches (one, a list, or a plain or
        async iterable of them, streamed) or a list of record dicts."""
        if _is_records(records):
            records = records_table(records, await self.inspect(database=database, table=table, namespace=namespace))
        start = InsertStart(database=database, table=table, namespace=namespace)
        await send_arrow_stream(self.room, _RULES, "insert", msgspec.to_builtins(start), chunks=records)

    async def update(
        self, *, database: str, table: str, where: Any, values: Mapping[str, Any], params: Any = None, namespace: list[str] | None = None
    ) -> int:
        """Set `values` (column → record value) in the rows matching `where`; the rows changed."""
        arguments = {
            "database": database,
            "table": table,
            "where": wire_where(where),
            "values": [{"column": column, "value_json": json.dumps(_wire(value))} for column, value in values.items()],
            "params": wire_params(params),
            "namespace": namespace,
        }
        response = await self._invoke("update", arguments)
        return expect_json(response, RowsAffectedOutput, toolkit=TOOLKIT, operation="update").rows_affected

    async def delete(self, *, database: str, table: str, where: Any, params: Any = None, namespace: list[str] | None = None) -> int:
        arguments = FilterInput(database=database, table=table, where=wire_where(where), params=wire_params(params), namespace=namespace)
        response = await self._invoke("delete", arguments)
        return expect_json(response, RowsAffectedOutput, toolkit=TOOLKIT, operation="delete").rows_affected

    async def count(self, *, database: str, table: str, where: Any = None, params: Any = None, namespace: list[str] | None = None) -> int:
        arguments = FilterInput(database=database, table=table, where=wire_where(where), params=wire_params(params), namespace=namespace)
        response = await self._invoke("count", arguments)
        return expect_json(response, CountOutput, toolkit=TOOLKIT, operation="count").count

    def search_stream(
        self,
        *,
        database: str,
        table: str,
        where: Any = None,
        params: Any = None,
        offset: int | None = None,
        limit: int | None = None,
        select: list[str] | None = None,
        namespace: list[str] | None = None,
    ) -> CallIterator["pyarrow.Table"]:
        """The matching rows, one table per chunk the server sends."""
        start = SearchStart(
            database=database, table=table, where=wire_where(where), params=wire_params(params), offset=offset, limit=limit,
            select=select, namespace=namespace,
        )  # fmt: skip
        return read_arrow_stream(self.room, _RULES, "search", msgspec.to_builtins(start))

    async def search(
        self,
        *,
        database: str,
        table: str,
        where: Any = None,
        params: Any = None,
        offset: int | None = None,
        limit: int | None = None,
        select: list[str] | None = None,
        namespace: list[str] | None = None,
    ) -> "pyarrow.Table":
        """The matching rows as one table (`where`: a SQL expression with `params`, or a mapping
        of column → value; `select`: the columns, default all)."""
        stream = self.search_stream(
            database=database, table=table, where=where, params=params, offset=offset, limit=limit, select=select,
            namespace=namespace,
        )  # fmt: skip
        return await _collect(stream)

    # --- SQL ------------------------------------------------------------------------------

    def _query(self, response: Any, operation: str) -> SqliteSqlQuery:
        if not isinstance(response, BinaryContent):
            raise unexpected_response(TOOLKIT, operation)
        opened = _tagged(response.headers, QueryOpened, operation)
        if not opened.query_id:
            raise unexpected_response(TOOLKIT, operation)
        return SqliteSqlQuery(schema=_schema_of(response.data, operation), query_id=opened.query_id)

    async def execute_sql(self, *, database: str, query: str, params: Any = None, namespace: list[str] | None = None) -> SqliteSqlExecution:
        """Run one statement: a `SqliteSqlQuery` (open: read it, then close it) when it returns
        rows, else a `SqliteSqlStatement`."""
        response = await self.room.invoke(TOOLKIT, "execute_sql", self._sql_argument(database, query, params, namespace))
        if isinstance(response, JsonContent):
            statement = _tagged(response.json, StatementOutput, "execute_sql")
            return SqliteSqlStatement(rows_affected=statement.rows_affected)
        return self._query(response, "execute_sql")

    async def open_sql_query(self, *, database: str, query: str, params: Any = None, namespace: list[str] | None = None) -> SqliteSqlQuery:
        response = await self.room.invoke(TOOLKIT, "open_sql_query", self._sql_argument(database, query, params, namespace))
        return self._query(response, "open_sql_query")

    async def execute_sql_statement(self, *, database: str, query: str, params: Any = None, namespace: list[str] | None = None) -> int:
        """Run one statement; the rows it changed."""
        response = await self.room.invoke(TOOLKIT, "execute_sql_statement", self._sql_argument(database, query, params, namespace))
        return expect_json(response, RowsAffectedOutput, toolkit=TOOLKIT, operation="execute_sql_statement").rows_affected

    async def execute_sql_batch(
        self, *, database: str, commands: list[SqliteSqlCommand], namespace: list[str] | None = None
    ) -> list[SqliteSqlExecution]:
        """Run `commands` in order in one transaction (all or nothing: a failure is
        "command <index> failed: …"). Close the queries it returns."""
        arguments = {
            "database": database,
            "namespace": namespace,
            "commands": [{"query": command.query, "params": wire_params(command.params)} for command in commands],
        }
        response = await self._invoke("execute_sql_batch", arguments)
        if not isinstance(response, JsonContent) or not isinstance(response.json, dict) or set(response.json) != {"results"}:
            raise unexpected_response(TOOLKIT, "execute_sql_batch")
        results = response.json["results"]
        if not isinstance(results, list) or len(results) != len(commands):
            raise unexpected_response(TOOLKIT, "execute_sql_batch")
        return [_batch_result(result) for result in results]

    def sql_stream(self, *, database: str, query: str, params: Any = None, namespace: list[str] | None = None) -> CallIterator["pyarrow.Table"]:
        """The rows of a query, one table per chunk; the query is closed at the end."""
        return CallIterator(self._sql_body(database, query, params, namespace))

    async def _sql_body(self, database: str, query: str, params: Any, namespace: list[str] | None) -> AsyncGenerator[Any, None]:
        result = await self.execute_sql(database=database, query=query, params=params, namespace=namespace)
        if isinstance(result, SqliteSqlStatement):
            raise RoomException(
                f"SQL statement did not return rows; rows_affected={result.rows_affected}", code=ErrorCode.INVALID_REQUEST
            )
        yield READY
        try:
            async with self.read_sql_query(query_id=result.query_id) as batches:
                async for batch in batches:
                    yield batch
        finally:
            with self.room.backend.shielded(10):
                await self.close_sql_query(query_id=result.query_id)

    async def sql(self, *, database: str, query: str, params: Any = None, namespace: list[str] | None = None) -> "pyarrow.Table":
        """The rows of a query as one table."""
        return await _collect(self.sql_stream(database=database, query=query, params=params, namespace=namespace))

    def read_sql_query(self, *, query_id: str) -> CallIterator["pyarrow.Table"]:
        """The rows of an open query, one table per chunk."""
        return read_arrow_stream(self.room, _RULES, "read_sql_query", msgspec.to_builtins(ReadQueryStart(query_id=query_id)))

    async def close_sql_query(self, *, query_id: str) -> None:
        await self._empty("close_sql_query", QueryIdInput(query_id=query_id))

    async def cancel_sql_query(self, *, query_id: str) -> SqliteSqlCancelResult:
        response = await self._invoke("cancel_sql_query", QueryIdInput(query_id=query_id))
        return SqliteSqlCancelResult(status=expect_json(response, CancelOutput, toolkit=TOOLKIT, operation="cancel_sql_query").status)


def _batch_result(result: Any) -> SqliteSqlExecution:
    if not isinstance(result, dict):
        raise unexpected_response(TOOLKIT, "execute_sql_batch")
    if result.get("kind") == "statement":
        statement = _tagged(result, StatementOutput, "execute_sql_batch")
        return SqliteSqlStatement(rows_affected=statement.rows_affected)
    query = _tagged(result, BatchQuery, "execute_sql_batch")
    if not query.query_id:
        raise unexpected_response(TOOLKIT, "execute_sql_batch")
    try:
        blob = base64.b64decode(query.schema_base64, validate=True)
    except (binascii.Error, ValueError):
        raise unexpected_response(TOOLKIT, "execute_sql_batch") from None
    return SqliteSqlQuery(schema=_schema_of(blob, "execute_sql_batch"), query_id=query.query_id)


async def _collect(batches: CallIterator["pyarrow.Table"]) -> "pyarrow.Table":
    pa = require_pyarrow()
    async with batches:
        tables = [table async for table in batches]
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="default")


__all__ = [
    "SqliteClient",
    "SqliteDatabaseDetails",
    "SqliteReplicationSettings",
    "SqliteSqlCancelResult",
    "SqliteSqlCommand",
    "SqliteSqlExecution",
    "SqliteSqlQuery",
    "SqliteSqlStatement",
    "records_table",
]
