"""The `sqlite` toolkit's database and table tools (protocol/room-apis.md §13.1): list, create,
settings, flush, drop and inspect databases; list, drop, rename and inspect tables; add and drop
columns."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec
import trio

from meshagent_core import BinaryContent, Content, ErrorCode, JsonContent, RoomException
from meshagent_core.toolkits.arrow_ipc import ArrowDataError, read_schema_blob, schema_blob
from meshagent_core.toolkits.sqlite import (
    AddColumnsHeaders,
    CreateDatabaseInput,
    DatabaseDetails,
    DatabaseInput,
    DatabaseSettings,
    DropColumnsInput,
    DropDatabaseInput,
    DropTableInput,
    ListDatabasesInput,
    ListDatabasesOutput,
    ListTablesInput,
    ListTablesOutput,
    RenameTableInput,
    TableInput,
    UpdateDatabaseSettingsInput,
)

from ..toolkit import ToolCall, invalid_request
from .open_queries import queries_of
from .sqlite_access import Authorizer, run_authorized, sqlite_grant
from .sqlite_context import (
    access_for,
    check_table_name,
    missing_table,
    open_database,
    schema_of,
    table_columns,
    table_exists,
    table_names,
)
from .sqlite_files import DatabaseKey, already_exists, check_namespace, databases_of, not_found, size_bytes
from .sqlite_sql import sql_error
from .sqlite_types import column_definition, pyarrow, quote_identifier


def _json(value: msgspec.Struct) -> JsonContent:
    return JsonContent(json=msgspec.to_builtins(value))


async def list_databases(call: ToolCall) -> Content:
    grant = sqlite_grant(call)
    arguments = call.json_arguments(ListDatabasesInput)
    if not grant.can_list_databases():
        raise RoomException("you do not have permission to list databases", code=ErrorCode.PERMISSION_DENIED)
    namespace = check_namespace(arguments.namespace)
    names = await databases_of(call.room).list(namespace)
    if grant.databases is not None:
        names = [name for name in names if grant._matching_databases(name, arguments.namespace)]  # noqa: SLF001
    return _json(ListDatabasesOutput(databases=names))


def _close_queries(call: ToolCall, key: DatabaseKey) -> None:
    queries_of(call.room, "sqlite").close_where(lambda query: query.tag == key)


async def create_database(call: ToolCall) -> None:
    arguments = call.json_arguments(CreateDatabaseInput)
    access = access_for(call, arguments.name, arguments.namespace)
    grant = access.grant
    if not grant.can_create_database() or (grant.databases is not None and not grant._matching_databases(arguments.name, arguments.namespace)):  # noqa: SLF001
        raise RoomException(f"you do not have permission to create database {access.key.show()!r}", code=ErrorCode.PERMISSION_DENIED)
    settings = DatabaseSettings(
        replication_mode=arguments.replication_mode or "synchronous", flush_interval_ms=arguments.flush_interval_ms or 1000
    )
    databases = databases_of(call.room)
    async with databases.lock:
        if await databases.exists(access.key):
            if arguments.mode == "create":
                raise already_exists(access.key)
            if arguments.mode == "create_if_not_exists":
                return
            access.database_flag("drop", "replace the database")
            _close_queries(call, access.key)
            await databases.remove(access.key)
        await databases.create(access.key, settings)


async def get_database_settings(call: ToolCall) -> Content:
    arguments = call.json_arguments(DatabaseInput)
    target = await open_database(call, arguments.name, arguments.namespace, "inspect", "read the settings")
    return _json(target.database.settings)


async def update_database_settings(call: ToolCall) -> Content:
    arguments = call.json_arguments(UpdateDatabaseSettingsInput)
    target = await open_database(call, arguments.name, arguments.namespace, "execute", "change the settings")
    current = target.database.settings
    settings = DatabaseSettings(
        replication_mode=arguments.replication_mode or current.replication_mode,
        flush_interval_ms=arguments.flush_interval_ms or current.flush_interval_ms,
    )
    await target.database.update_settings(settings)
    return _json(settings)


async def flush_database(call: ToolCall) -> Content:
    """Checkpoint the WAL into the database file (which syncs it): every commit so far is durable,
    also in `asynchronous` mode. Answers `json {}`."""
    arguments = call.json_arguments(DatabaseInput)
    target = await open_database(call, arguments.name, arguments.namespace, "execute", "flush the database")
    await target.database.checkpoint()
    return JsonContent(json={})


async def drop_database(call: ToolCall) -> None:
    arguments = call.json_arguments(DropDatabaseInput)
    access = access_for(call, arguments.name, arguments.namespace)
    access.database_flag("drop", "drop the database")
    databases = databases_of(call.room)
    async with databases.lock:
        _close_queries(call, access.key)
        if not await databases.remove(access.key) and not arguments.ignore_missing:
            raise not_found(access.key)


async def inspect_database(call: ToolCall) -> Content:
    arguments = call.json_arguments(DatabaseInput)
    target = await open_database(call, arguments.name, arguments.namespace, "inspect", "inspect the database")
    tables = await target.database.read(table_names)
    size = await trio.to_thread.run_sync(size_bytes, target.database.path)
    return _json(DatabaseDetails(name=arguments.name, namespace=arguments.namespace, tables=len(tables), size_bytes=size))


async def list_tables(call: ToolCall) -> Content:
    arguments = call.json_arguments(ListTablesInput)
    target = await open_database(call, arguments.database, arguments.namespace, "list_tables", "list the tables")
    tables = await target.database.read(table_names)
    return _json(ListTablesOutput(tables=[table for table in tables if target.access.can("access", table)]))


async def drop_table(call: ToolCall) -> None:
    arguments = call.json_arguments(DropTableInput)
    target = await open_database(call, arguments.database, arguments.namespace, None, "")
    target.access.table("alter", arguments.name)

    def drop(connection: sqlite3.Connection) -> None:
        if not table_exists(connection, arguments.name):
            if arguments.ignore_missing:
                return
            raise missing_table(target.key, arguments.name)
        # Under the caller's authorizer: foreign keys may cascade into other tables.
        sql = f"DROP TABLE {quote_identifier(arguments.name)}"
        try:
            run_authorized(connection, Authorizer(target.access), lambda: connection.execute(sql))
        except sqlite3.Error as error:
            raise sql_error(error) from None

    await target.database.write(drop)


def _execute(connection: sqlite3.Connection, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
    try:
        return connection.execute(sql, parameters)
    except sqlite3.Error as error:
        raise sql_error(error) from None


async def rename_table(call: ToolCall) -> None:
    arguments = call.json_arguments(RenameTableInput)
    target = await open_database(call, arguments.database, arguments.namespace, None, "")
    new_name = check_table_name(arguments.new_name)
    target.access.table("alter", arguments.name)
    target.access.table("alter", new_name)

    def rename(connection: sqlite3.Connection) -> None:
        if not table_exists(connection, arguments.name):
            raise missing_table(target.key, arguments.name)
        if table_exists(connection, new_name):
            raise RoomException(f"table {new_name!r} already exists in database {target.key.show()!r}", code=ErrorCode.ALREADY_EXISTS)
        _execute(connection, f"ALTER TABLE {quote_identifier(arguments.name)} RENAME TO {quote_identifier(new_name)}")

    await target.database.write(rename)


async def inspect(call: ToolCall) -> Content:
    """`binary` with headers `{"kind": "schema"}` and the table's Arrow schema blob."""
    arguments = call.json_arguments(TableInput)
    target = await open_database(call, arguments.database, arguments.namespace, "inspect", "inspect tables")
    target.access.table("access", arguments.table)
    columns = await target.database.read(lambda connection: table_columns(connection, target.key, arguments.table))
    return BinaryContent(headers={"kind": "schema"}, data=schema_blob(schema_of(columns)))


async def add_columns(call: ToolCall) -> None:
    """Binary argument: headers `{database, table, namespace, content_type}`, data a schema blob
    of the new columns (added in one transaction)."""
    if not isinstance(call.arguments, BinaryContent):
        raise invalid_request("sqlite.add_columns expects a binary argument holding an Arrow schema")
    try:
        headers = msgspec.convert(call.arguments.headers, type=AddColumnsHeaders)
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid arguments for sqlite.add_columns: {error}") from None
    target = await open_database(call, headers.database, headers.namespace, None, "")
    target.access.table("alter", headers.table)
    pyarrow()
    try:
        schema = read_schema_blob(call.arguments.data)
    except ArrowDataError as error:
        raise invalid_request(f"sqlite.add_columns needs an Arrow schema blob: {error}") from None
    if len(schema) == 0:
        raise invalid_request("sqlite.add_columns needs at least one column")
    definitions = [column_definition(field) for field in schema]

    def add(connection: sqlite3.Connection) -> None:
        existing = {name for name, _, _ in table_columns(connection, target.key, headers.table)}
        for field, definition in zip(schema, definitions):
            if field.name in existing:
                raise RoomException(f"column {field.name!r} already exists in table {headers.table!r}", code=ErrorCode.ALREADY_EXISTS)
            _execute(connection, f"ALTER TABLE {quote_identifier(headers.table)} ADD COLUMN {definition}")

    await target.database.write(add)


async def drop_columns(call: ToolCall) -> None:
    arguments = call.json_arguments(DropColumnsInput)
    target = await open_database(call, arguments.database, arguments.namespace, None, "")
    target.access.table("alter", arguments.table)

    def drop(connection: sqlite3.Connection) -> None:
        existing = {name for name, _, _ in table_columns(connection, target.key, arguments.table)}
        for column in arguments.columns:
            if column not in existing:
                raise invalid_request(f"no such column: {column!r} in table {arguments.table!r}")
            _execute(connection, f"ALTER TABLE {quote_identifier(arguments.table)} DROP COLUMN {quote_identifier(column)}")

    await target.database.write(drop)


TOOLS = {
    "list_databases": list_databases,
    "create_database": create_database,
    "get_database_settings": get_database_settings,
    "update_database_settings": update_database_settings,
    "flush_database": flush_database,
    "drop_database": drop_database,
    "inspect_database": inspect_database,
    "list_tables": list_tables,
    "drop_table": drop_table,
    "rename_table": rename_table,
    "inspect": inspect,
    "add_columns": add_columns,
    "drop_columns": drop_columns,
}

__all__ = ["TOOLS"]
