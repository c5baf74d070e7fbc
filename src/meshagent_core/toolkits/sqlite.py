"""`sqlite` toolkit contract (protocol/room-apis.md §13): per-room SQLite databases.

Unary inputs and answers, the headers of the binary arguments (`add_columns`, `execute_sql`,
…), and the chunk headers of the streams (`create_table`, `insert`, `search`,
`read_sql_query`, `backup`, `restore`). One definition for the client and the server.

The official client validates every answer of this toolkit strictly — no extra keys, and no
coercion (`"1"` or `true` is not an int) — except `get_database_settings` /
`update_database_settings`, whose extra keys it ignores. `meshagent_core.client.calls.decode_strict`
does that with these Structs. Stream chunk headers are tagged Structs (`tag_field="kind"`):
`msgspec.to_builtins(header)` gives the `headers` of a `binary` chunk.

The wire shapes of open queries shared with the `dataset` toolkit (`close_sql_query`,
`cancel_sql_query`, `read_sql_query`'s start, statement answers) are in `sql_queries`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from .sql_queries import CancelOutput, QueryIdInput, ReadQueryStart, RowsAffectedOutput, StatementOutput

TOOLKIT = "sqlite"

#: How `create_database` and `create_table` treat an existing name.
CreateMode = Literal["create", "overwrite", "create_if_not_exists"]
ReplicationMode = Literal["synchronous", "asynchronous"]
#: Bytes in one `backup` / `restore` data chunk at most (and at least 1).
TRANSFER_CHUNK_SIZE = 256 * 1024
#: Where SQL parameters go: a list for `?` placeholders, an object for `:name` ones, or null.
SqlParams = list[Any] | dict[str, Any] | None
#: A `where`: a SQL expression, or an object of column → value (equality; null is `IS NULL`).
Where = str | dict[str, Any] | None

FlushInterval = Annotated[int, msgspec.Meta(ge=1, le=3_600_000)]


# --- databases -------------------------------------------------------------------------------


class ListDatabasesInput(msgspec.Struct):
    namespace: list[str] | None = None


class ListDatabasesOutput(msgspec.Struct):
    databases: list[str]


class CreateDatabaseInput(msgspec.Struct, omit_defaults=True):
    """`create_database`: `replication_mode` and `flush_interval_ms` are sent only when set."""

    name: str
    namespace: list[str] | None = None
    mode: CreateMode = "create"
    replication_mode: ReplicationMode | None = None
    flush_interval_ms: FlushInterval | None = None


class DatabaseInput(msgspec.Struct):
    """`get_database_settings`, `flush_database`, `inspect_database`."""

    name: str
    namespace: list[str] | None = None


class UpdateDatabaseSettingsInput(msgspec.Struct, omit_defaults=True):
    name: str
    namespace: list[str] | None = None
    replication_mode: ReplicationMode | None = None
    flush_interval_ms: FlushInterval | None = None


class DatabaseSettings(msgspec.Struct):
    """`get_database_settings` / `update_database_settings` (the official client ignores extra
    keys here, and fills in the defaults)."""

    replication_mode: ReplicationMode = "synchronous"
    flush_interval_ms: FlushInterval = 1000


class DropDatabaseInput(msgspec.Struct):
    name: str
    namespace: list[str] | None = None
    ignore_missing: bool = False


class DatabaseDetails(msgspec.Struct):
    """`inspect_database` (strict)."""

    name: str
    namespace: list[str] | None = None
    tables: int | None = None
    size_bytes: int | None = None


# --- tables ----------------------------------------------------------------------------------


class ListTablesInput(msgspec.Struct):
    database: str
    namespace: list[str] | None = None


class ListTablesOutput(msgspec.Struct):
    tables: list[str]


class DropTableInput(msgspec.Struct):
    database: str
    name: str
    ignore_missing: bool = False
    namespace: list[str] | None = None


class RenameTableInput(msgspec.Struct):
    database: str
    name: str
    new_name: str
    namespace: list[str] | None = None


class TableInput(msgspec.Struct):
    """`inspect`: answered `binary` with an Arrow schema blob."""

    database: str
    table: str
    namespace: list[str] | None = None


class AddColumnsHeaders(msgspec.Struct):
    """Headers of `add_columns`' binary argument (its data: a schema blob of the new columns)."""

    database: str
    table: str
    namespace: list[str] | None = None
    content_type: str | None = None


class DropColumnsInput(msgspec.Struct):
    database: str
    table: str
    columns: list[str]
    namespace: list[str] | None = None


# --- rows ------------------------------------------------------------------------------------


class ColumnValue(msgspec.Struct):
    """One `update` value: `value_json` is JSON text of a record value
    (protocol/room-apis.md §12.1)."""

    column: str
    value_json: str


class UpdateInput(msgspec.Struct):
    database: str
    table: str
    values: list[ColumnValue]
    where: Where = None
    params: SqlParams = None
    namespace: list[str] | None = None


class FilterInput(msgspec.Struct):
    """`delete` and `count`."""

    database: str
    table: str
    where: Where = None
    params: SqlParams = None
    namespace: list[str] | None = None


class CountOutput(msgspec.Struct):
    count: int


# --- SQL -------------------------------------------------------------------------------------


class SqlHeaders(msgspec.Struct):
    """Headers of the binary argument of `execute_sql`, `open_sql_query` and
    `execute_sql_statement` (empty data)."""

    database: str
    query: str
    params: SqlParams = None
    namespace: list[str] | None = None


class QueryOpened(msgspec.Struct, tag_field="kind", tag="query"):
    """Headers of the `binary` answer that opened a query (data: its schema blob); strict."""

    query_id: str


class SqlCommand(msgspec.Struct):
    query: str
    params: SqlParams = None


class ExecuteSqlBatchInput(msgspec.Struct):
    database: str
    commands: list[SqlCommand]
    namespace: list[str] | None = None


class BatchQuery(msgspec.Struct, tag_field="kind", tag="query"):
    """A batch result that opened a query (`schema_base64`: its schema blob in base64)."""

    query_id: str
    schema_base64: str


BatchResult = StatementOutput | BatchQuery


class BatchOutput(msgspec.Struct):
    results: list[BatchResult]


# --- streams ---------------------------------------------------------------------------------


class CreateTableStart(msgspec.Struct, tag_field="kind", tag="start"):
    """Start of `create_table` (data: a schema blob, or empty to take the first chunk's)."""

    database: str
    name: str
    mode: CreateMode = "create"
    namespace: list[str] | None = None


class InsertStart(msgspec.Struct, tag_field="kind", tag="start"):
    database: str
    table: str
    namespace: list[str] | None = None


class SearchStart(msgspec.Struct, tag_field="kind", tag="start"):
    database: str
    table: str
    where: Where = None
    params: SqlParams = None
    offset: int | None = None
    limit: int | None = None
    select: list[str] | None = None
    namespace: list[str] | None = None


class TransferStart(msgspec.Struct, tag_field="kind", tag="start"):
    """Start of `backup` and `restore` (empty data)."""

    database: str
    namespace: list[str] | None = None


class TransferData(msgspec.Struct, tag_field="kind", tag="data"):
    """A chunk of 1…`TRANSFER_CHUNK_SIZE` bytes of the database file."""


Sha256Hex = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class TransferComplete(msgspec.Struct, tag_field="kind", tag="complete"):
    """The end of a transfer (empty data): the size and SHA-256 of every byte sent; `restore`'s
    server echoes the caller's once the database is stored."""

    size: Annotated[int, msgspec.Meta(ge=0)]
    sha256: Sha256Hex


class TransferAbort(msgspec.Struct, tag_field="kind", tag="abort"):
    """`restore`: the caller's source failed; nothing is stored."""


__all__ = [
    "TOOLKIT",
    "TRANSFER_CHUNK_SIZE",
    "AddColumnsHeaders",
    "BatchOutput",
    "BatchQuery",
    "BatchResult",
    "CancelOutput",
    "ColumnValue",
    "CountOutput",
    "CreateDatabaseInput",
    "CreateMode",
    "CreateTableStart",
    "DatabaseDetails",
    "DatabaseInput",
    "DatabaseSettings",
    "DropColumnsInput",
    "DropDatabaseInput",
    "DropTableInput",
    "ExecuteSqlBatchInput",
    "FilterInput",
    "InsertStart",
    "ListDatabasesInput",
    "ListDatabasesOutput",
    "ListTablesInput",
    "ListTablesOutput",
    "QueryIdInput",
    "QueryOpened",
    "ReadQueryStart",
    "RenameTableInput",
    "ReplicationMode",
    "RowsAffectedOutput",
    "SearchStart",
    "SqlCommand",
    "SqlHeaders",
    "SqlParams",
    "StatementOutput",
    "TableInput",
    "TransferAbort",
    "TransferComplete",
    "TransferData",
    "TransferStart",
    "UpdateDatabaseSettingsInput",
    "UpdateInput",
    "Where",
]
