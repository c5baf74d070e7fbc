"""The `sqlite` toolkit's row tools (protocol/room-apis.md §13.2, §13.3): `create_table` and
`insert` (write streams, each one transaction committed when the caller ends its input),
`update`, `delete`, `count`, and `search` (a read stream)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import msgspec
import trio

from meshagent_core import ErrorCode, JsonContent, RoomException
from meshagent_core.toolkits.arrow_ipc import ArrowDataError, read_schema_blob
from meshagent_core.toolkits.records import DatasetExpression, decode_record_value
from meshagent_core.toolkits.sql_queries import RowsAffectedOutput
from meshagent_core.toolkits.sqlite import CountOutput, CreateTableStart, FilterInput, InsertStart, SearchStart, UpdateInput

from ..toolkit import ToolCall, invalid_request
from .data_streams import arrow_chunk, receive_tables, serve_items, start_chunk
from .open_queries import run_interruptible
from .sqlite_access import Access, Authorizer, run_authorized
from .sqlite_context import RULES, check_table_name, missing_table, open_database, table_columns, table_exists
from .sqlite_files import Database
from .sqlite_sql import SqliteCursor, sql_error, where_clause
from .sqlite_types import (
    BatchBuilder,
    arrow_type,
    check_column,
    check_value,
    column_definition,
    column_values,
    pyarrow,
    quote_identifier,
    sql_value,
)

Columns = list[tuple[str, "str | None", bool]]


def _start(chunk: Any, type: type[Any]) -> Any:
    try:
        return msgspec.convert(chunk.headers, type=type)
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid start chunk: {error}") from None


# --- writing rows ------------------------------------------------------------------------------


def insert_rows(connection: sqlite3.Connection, access: Access, table: str, data: Any) -> int:
    """Insert the rows of the Arrow table `data` into `table` (blocking); the columns of `data`
    must exist in the table and fit their types (1002). The insert is compiled under the
    caller's authorizer, so the table's triggers can do only what the caller may."""
    key = access.key
    if data.num_rows == 0:
        return 0
    names = data.column_names
    if not names:
        raise invalid_request("rows to insert need at least one column")
    if len(set(names)) != len(names):
        raise invalid_request(f"the data names a column twice: {names}")
    declared = {name: declared for name, declared, _ in table_columns(connection, key, table)}
    columns = []
    for name in names:
        if name not in declared:
            raise invalid_request(f"table {table!r} has no column named {name!r}")
        target = arrow_type(declared[name])
        check_column(table, name, target, data.schema.field(name).type)
        columns.append(column_values(data.column(name), target, name))
    sql = f"INSERT INTO {quote_identifier(table)} ({', '.join(map(quote_identifier, names))}) VALUES ({', '.join('?' * len(names))})"
    try:
        run_authorized(connection, Authorizer(access), lambda: connection.executemany(sql, zip(*columns)))
    except sqlite3.Error as error:
        raise sql_error(error, "the insert") from None
    return data.num_rows


def _create(connection: sqlite3.Connection, table: str, definitions: list[str]) -> None:
    try:
        connection.execute(f"CREATE TABLE {quote_identifier(table)} ({', '.join(definitions)})")
    except sqlite3.Error as error:
        raise sql_error(error, "create_table") from None


def _definitions(schema: Any) -> list[str]:
    if len(schema) == 0:
        raise invalid_request("a table needs at least one column")
    if len(set(schema.names)) != len(schema.names):
        raise invalid_request(f"the schema names a column twice: {schema.names}")
    return [column_definition(field) for field in schema]


async def create_table(call: ToolCall) -> None:
    """Start `{database, name, mode, namespace}` with a schema blob (or none: the first data
    chunk's schema), then data chunks; one transaction."""
    start = await start_chunk(call, RULES)
    arguments = _start(start, CreateTableStart)
    name = check_table_name(arguments.name)
    target = await open_database(call, arguments.database, arguments.namespace, "create_table", "create tables")
    definitions: list[str] | None = None
    if start.data:
        pyarrow()
        try:
            definitions = _definitions(read_schema_blob(start.data))
        except ArrowDataError as error:
            raise invalid_request(f"the start chunk of create_table holds no Arrow schema: {error}") from None
    key = target.key
    async with target.database.transaction() as transaction:
        exists = await transaction.run(lambda connection: table_exists(connection, name))
        keep_existing = False
        if exists:
            if arguments.mode == "create":
                raise RoomException(f"table {name!r} already exists in database {key.show()!r}", code=ErrorCode.ALREADY_EXISTS)
            if arguments.mode == "create_if_not_exists":
                keep_existing = True
            else:
                target.access.table("alter", name)
                await transaction.run(lambda connection: connection.execute(f"DROP TABLE {quote_identifier(name)}"))
        created = keep_existing
        if definitions is not None and not keep_existing:
            await transaction.run(lambda connection: _create(connection, name, definitions))
            created = True
        await call.open_stream()
        async for data in receive_tables(call, RULES):
            if keep_existing:
                continue  # create_if_not_exists on an existing table: its rows are left alone
            if not created:
                first = _definitions(data.schema)
                await transaction.run(lambda connection: _create(connection, name, first))
                created = True
            await transaction.run(lambda connection, data=data: insert_rows(connection, target.access, name, data))
        if not created:
            raise invalid_request("create_table needs a schema or at least one chunk of data")


async def insert(call: ToolCall) -> None:
    """Start `{database, table, namespace}`, then data chunks; one transaction."""
    start = await start_chunk(call, RULES)
    arguments = _start(start, InsertStart)
    target = await open_database(call, arguments.database, arguments.namespace, None, "")
    target.access.table("write", arguments.table)
    key = target.key
    async with target.database.transaction() as transaction:
        if not await transaction.run(lambda connection: table_exists(connection, arguments.table)):
            raise missing_table(key, arguments.table)
        await call.open_stream()
        async for data in receive_tables(call, RULES):
            await transaction.run(lambda connection, data=data: insert_rows(connection, target.access, arguments.table, data))


# --- update, delete, count ---------------------------------------------------------------------


def _value(text: str, column: str) -> Any:
    try:
        return decode_record_value(json.loads(text))
    except (ValueError, TypeError) as error:
        raise invalid_request(f"invalid value_json for column {column!r}: {error}") from None


def _statement(connection: sqlite3.Connection, access: Access, sql: str, bound: Any) -> sqlite3.Cursor:
    try:
        return run_authorized(connection, Authorizer(access), lambda: connection.execute(sql, bound))
    except sqlite3.Error as error:
        raise sql_error(error) from None


def _update(connection: sqlite3.Connection, access: Access, arguments: UpdateInput) -> int:
    table = arguments.table
    columns = table_columns(connection, access.key, table)
    types = {name: arrow_type(declared) for name, declared, _ in columns}
    if not arguments.values:
        raise invalid_request("update needs at least one value")
    # (column, SQL expression) or (column, value to bind)
    settings: list[tuple[str, str | None, Any]] = []
    for item in arguments.values:
        if item.column not in types:
            raise invalid_request(f"no such column: {item.column!r} in table {table!r}")
        value = _value(item.value_json, item.column)
        if isinstance(value, DatasetExpression):
            settings.append((item.column, value.expression, None))
            continue
        check_value(table, item.column, types[item.column], value)
        settings.append((item.column, None, sql_value(value)))
    clause, bound = where_clause(arguments.where, arguments.params, list(types))
    named = isinstance(bound, dict)
    assignments: list[str] = []
    values: dict[str, Any] = {}
    positional: list[Any] = []
    for index, (column, expression, value) in enumerate(settings):
        if expression is not None:
            assignments.append(f"{quote_identifier(column)} = ({expression})")
        elif named:
            # Named parameters in the where: the values get names of their own.
            values[f"meshagent_value_{index}"] = value
            assignments.append(f"{quote_identifier(column)} = :meshagent_value_{index}")
        else:
            # The values' `?` come first in the text, so they take the first positions.
            positional.append(value)
            assignments.append(f"{quote_identifier(column)} = ?")
    if named:
        clash = set(values) & set(bound)
        if clash:
            raise invalid_request(f"parameter names reserved by the server: {sorted(clash)}")
        parameters_: Any = {**values, **bound}
    else:
        parameters_ = [*positional, *bound]
    sql = f"UPDATE {quote_identifier(table)} SET {', '.join(assignments)}{clause}"
    return max(_statement(connection, access, sql, parameters_).rowcount, 0)


async def update(call: ToolCall) -> JsonContent:
    arguments = call.json_arguments(UpdateInput)
    target = await open_database(call, arguments.database, arguments.namespace, None, "")
    target.access.table("write", arguments.table)
    rows = await target.database.write(lambda connection: _update(connection, target.access, arguments))
    return JsonContent(json=msgspec.to_builtins(RowsAffectedOutput(rows_affected=rows)))


async def delete(call: ToolCall) -> JsonContent:
    arguments = call.json_arguments(FilterInput)
    target = await open_database(call, arguments.database, arguments.namespace, None, "")
    target.access.table("write", arguments.table)

    def work(connection: sqlite3.Connection) -> int:
        columns = [name for name, _, _ in table_columns(connection, target.key, arguments.table)]
        clause, bound = where_clause(arguments.where, arguments.params, columns)
        sql = f"DELETE FROM {quote_identifier(arguments.table)}{clause}"
        return max(_statement(connection, target.access, sql, bound).rowcount, 0)

    rows = await target.database.write(work)
    return JsonContent(json=msgspec.to_builtins(RowsAffectedOutput(rows_affected=rows)))


async def count(call: ToolCall) -> JsonContent:
    arguments = call.json_arguments(FilterInput)
    target = await open_database(call, arguments.database, arguments.namespace, None, "")
    target.access.table("read", arguments.table)

    def work(connection: sqlite3.Connection) -> int:
        columns = [name for name, _, _ in table_columns(connection, target.key, arguments.table)]
        clause, bound = where_clause(arguments.where, arguments.params, columns)
        sql = f"SELECT count(*) FROM {quote_identifier(arguments.table)}{clause}"
        return int(_statement(connection, target.access, sql, bound).fetchone()[0])

    return JsonContent(json=msgspec.to_builtins(CountOutput(count=await target.database.read(work))))


# --- search ------------------------------------------------------------------------------------


def _open_search(connection: sqlite3.Connection, database: Database, access: Access, arguments: SearchStart) -> SqliteCursor:
    columns: Columns = table_columns(connection, access.key, arguments.table)
    by_name = {name: (declared, not_null) for name, declared, not_null in columns}
    selected = arguments.select if arguments.select is not None else [name for name, _, _ in columns]
    for name in selected:
        if name not in by_name:
            raise invalid_request(f"no such column: {name!r} in table {arguments.table!r}")
    if not selected:
        raise invalid_request("select names no column")
    for number, what in ((arguments.offset, "offset"), (arguments.limit, "limit")):
        if number is not None and number < 0:
            raise invalid_request(f"{what} must not be negative")
    clause, bound = where_clause(arguments.where, arguments.params, list(by_name))
    sql = f"SELECT {', '.join(map(quote_identifier, selected))} FROM {quote_identifier(arguments.table)}{clause}"
    if arguments.limit is not None or arguments.offset is not None:
        sql += f" LIMIT {arguments.limit if arguments.limit is not None else -1} OFFSET {arguments.offset or 0}"
    cursor = _statement(connection, access, sql, bound)
    builder = BatchBuilder(
        selected, [arrow_type(by_name[name][0]) for name in selected], [not by_name[name][1] for name in selected]
    )
    return SqliteCursor(connection, cursor, builder, release=database.give_back)


async def search(call: ToolCall) -> None:
    """Start `{database, table, where, params, offset, limit, select, namespace}`; then one
    batch per pull (an empty batch for no rows, so the columns are known)."""
    start = await start_chunk(call, RULES)
    arguments = _start(start, SearchStart)
    target = await open_database(call, arguments.database, arguments.namespace, None, "")
    target.access.table("read", arguments.table)
    database = target.database

    holder: list[Any] = []

    def open_and_read() -> tuple[SqliteCursor, Any]:
        # One worker-thread step: a point lookup opens, reads and closes here.
        connection = database.borrow()
        holder.append(connection)
        try:
            cursor = _open_search(connection, database, target.access, arguments)
        except BaseException:
            connection.close()
            raise
        first = cursor.fetch(None)
        if cursor.exhausted:
            cursor.close()
        return cursor, first

    def interrupt() -> None:
        if holder:
            holder[0].interrupt()

    cursor, first = await run_interruptible(open_and_read, interrupt=interrupt)
    try:
        await call.open_stream()
        pending = [first]

        async def produce(chunk_size: int | None) -> Any:
            if pending:
                return arrow_chunk(pending.pop(), RULES)
            if cursor.exhausted:
                return None
            batch = await run_interruptible(cursor.fetch, chunk_size, interrupt=cursor.interrupt)
            return None if batch is None else arrow_chunk(batch, RULES)

        await serve_items(call, RULES, produce)
    finally:
        if not cursor.exhausted:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(cursor.close)


TOOLS = {
    "create_table": create_table,
    "insert": insert,
    "update": update,
    "delete": delete,
    "count": count,
    "search": search,
}

__all__ = ["TOOLS", "insert_rows"]
