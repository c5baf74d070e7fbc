"""Running the caller's SQL for the `sqlite` toolkit (protocol/room-apis.md §13.3, §13.4).

Everything here is blocking (it runs in worker threads) except where marked. Parameters are a
list (for `?`) or an object (for `:name`), each value a JSON scalar or a record value wrapper
(protocol/room-apis.md §12.1). A `where` is a SQL expression (compiled with the rest of the
statement: one statement only, under the caller's authorizer) or an object of column → value,
turned into `"column" = ?` terms joined by `AND` (`IS NULL` for null) with bound parameters.

Result columns: a query's types come from the declared types of the table columns it reads
directly — found by compiling the query as a temporary view on its own connection, its
parameters replaced by NULL (`declared_types`) — and, for expressions, from the values of the
first batch (`sqlite_types`). Batches hold at most `BATCH_ROWS` rows and about
`BATCH_BYTES` bytes.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any, Callable, Sequence

from meshagent_core import ErrorCode, RoomException
from meshagent_core.toolkits.records import DatasetExpression, decode_record_value

from ..toolkit import invalid_request
from .sqlite_access import Authorizer, run_authorized
from .sqlite_types import BatchBuilder, arrow_type, pyarrow, quote_identifier, sql_value

#: Most rows in one batch of a read stream.
BATCH_ROWS = 8192
#: Most rows read to infer the types of a query's expression columns (which take the type of
#: their first non-null value).
SETTLE_ROWS = 256
#: About the most bytes of values in one batch of a read stream.
BATCH_BYTES = 4 * 1024 * 1024
#: Most bytes of rows a statement that changes the database may return (they are kept in
#: memory: `INSERT … RETURNING`, queries inside `execute_sql_batch`).
MAX_RESULT_BYTES = 64 * 1024 * 1024


def sql_error(error: sqlite3.Error, what: str = "the statement") -> RoomException:
    """An SQLite error as the caller sees it: constraint and SQL errors are 1002, a locked or
    busy database 1009, an interrupted one 1008."""
    text = str(error)
    if isinstance(error, sqlite3.OperationalError) and "interrupted" in text:
        return RoomException(f"{what} was interrupted", code=ErrorCode.OPERATION_FAILED)
    if isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return RoomException(f"{what} failed: {text}", code=ErrorCode.TIMEOUT)
    return RoomException(f"{what} failed: {text}", code=ErrorCode.INVALID_REQUEST)


# --- parameters and where ---------------------------------------------------------------------


def _parameter(value: Any) -> Any:
    try:
        decoded = decode_record_value(value)
    except ValueError as error:
        raise invalid_request(f"invalid SQL parameter {value!r:.80}: {error}") from None
    if isinstance(decoded, DatasetExpression):
        raise invalid_request("an expression cannot be a SQL parameter")
    return sql_value(decoded)


def parameters(params: Any) -> list[Any] | dict[str, Any]:
    """The caller's `params` as values to bind."""
    if params is None:
        return []
    if isinstance(params, list):
        return [_parameter(value) for value in params]
    if isinstance(params, dict):
        return {str(name): _parameter(value) for name, value in params.items()}
    raise invalid_request("params must be a list, an object or null")


def where_clause(where: Any, params: Any, columns: Sequence[str]) -> tuple[str, list[Any] | dict[str, Any]]:
    """` WHERE …` (or nothing) and the parameters to bind with it."""
    if where is None or (isinstance(where, str) and not where.strip()):
        return "", parameters(params)
    if isinstance(where, str):
        return f" WHERE ({where})", parameters(params)
    if not isinstance(where, dict):
        raise invalid_request("where must be a SQL expression, an object of column values, or null")
    if params is not None:
        raise invalid_request("params cannot be combined with a where object (its values are the parameters)")
    terms: list[str] = []
    values: list[Any] = []
    for column, value in where.items():
        if column not in columns:
            raise invalid_request(f"no such column: {column!r}")
        decoded = _parameter(value)
        if decoded is None:
            terms.append(f"{quote_identifier(column)} IS NULL")
        else:
            terms.append(f"{quote_identifier(column)} = ?")
            values.append(decoded)
    return (f" WHERE {' AND '.join(terms)}" if terms else ""), values


# --- declared types of a query's columns -------------------------------------------------------


def _scan_quoted(sql: str, start: int, close: str) -> int:
    """The index after the quoted token starting at `start` (a doubled closing quote escapes)."""
    index = start + 1
    while index < len(sql):
        if sql[index] == close:
            if close != "]" and index + 1 < len(sql) and sql[index + 1] == close:
                index += 2
                continue
            return index + 1
        index += 1
    return len(sql)


def without_parameters(sql: str) -> tuple[str, str]:
    """(`sql` with every parameter replaced by NULL, its first keyword in upper case) — a scan of
    SQLite's tokens: quoted strings and identifiers and comments are kept as they are."""
    out: list[str] = []
    first = ""
    index, length = 0, len(sql)
    while index < length:
        char = sql[index]
        if char in "'\"`[":
            end = _scan_quoted(sql, index, "]" if char == "[" else char)
        elif sql.startswith("--", index):
            end = sql.find("\n", index)
            end = length if end < 0 else end
        elif sql.startswith("/*", index):
            end = sql.find("*/", index + 2)
            end = length if end < 0 else end + 2
        elif char == "?":
            end = index + 1
            while end < length and sql[end].isdigit():
                end += 1
            out.append("NULL")
            index = end
            continue
        elif char in ":@$" and index + 1 < length and (sql[index + 1].isalnum() or sql[index + 1] == "_"):
            end = index + 1
            while end < length and (sql[end].isalnum() or sql[end] == "_"):
                end += 1
            out.append("NULL")
            index = end
            continue
        elif char.isalpha() or char == "_":
            end = index
            while end < length and (sql[end].isalnum() or sql[end] in "_$"):
                end += 1
            if not first:
                first = sql[index:end].upper()
        else:
            end = index + 1
        out.append(sql[index:end])
        index = end
    return "".join(out), first


def declared_types(connection: sqlite3.Connection, sql: str) -> list[str | None] | None:
    """The declared type of each result column of `sql` (None for an expression), or None when
    the query cannot be compiled as a view. Only compiles (nothing runs); call it before the
    statement starts on `connection`. Never raises for the query's sake."""
    text, first = without_parameters(sql)
    if first not in ("SELECT", "WITH", "VALUES"):
        return None
    view = f"meshagent_probe_{uuid.uuid4().hex}"
    try:
        connection.execute(f"CREATE TEMP VIEW {view} AS {text}")
    except sqlite3.Error:
        return None
    try:
        rows = connection.execute(f"PRAGMA temp.table_info({view})").fetchall()
    except sqlite3.Error:  # e.g. a view over a table that does not exist
        return None
    finally:
        connection.execute(f"DROP VIEW IF EXISTS temp.{view}")
    return [row[2] or None for row in rows]


def result_types(probe: list[str | None] | None, description: Sequence[Any]) -> list[Any]:
    """The Arrow type of each result column (None: inferred from the values)."""
    if probe is None or len(probe) != len(description):
        return [None] * len(description)
    return [arrow_type(declared) for declared in probe]


# --- cursors -------------------------------------------------------------------------------------


def _row_bytes(row: Sequence[Any]) -> int:
    return sum(len(value) if isinstance(value, (str, bytes)) else 8 for value in row)


class SqliteCursor:
    """An open query on its own connection (a `QueryCursor`: see `open_queries`). The first
    rows are read when it opens, to settle the types of expression columns."""

    def __init__(
        self, connection: sqlite3.Connection, cursor: sqlite3.Cursor, builder: BatchBuilder, *, release: Callable[[sqlite3.Connection], None] | None = None
    ) -> None:
        self._connection = connection
        self._cursor = cursor
        self._builder = builder
        #: What becomes of the connection when the cursor closes (default: closed).
        self._release = release
        self._pending: list[tuple[Any, ...]] | None = None
        self._done = False
        self._fetched = False  # a first batch went out (an empty one when there are no rows)
        if not builder.settled:
            self._pending = self._settling_rows()
            builder.settle(self._pending)
        self.schema = builder.schema()

    def _settling_rows(self) -> list[tuple[Any, ...]]:
        """The first rows, read until every untyped column has shown a value (or
        `SETTLE_ROWS` rows, or the end): enough to infer their types, and no more."""
        unknown = {index for index, data_type in enumerate(self._builder.types) if data_type is None}
        rows: list[tuple[Any, ...]] = []
        try:
            while unknown and len(rows) < SETTLE_ROWS:
                row = self._cursor.fetchone()
                if row is None:
                    self._done = True
                    break
                rows.append(row)
                unknown = {index for index in unknown if row[index] is None}
        except sqlite3.Error as error:
            raise sql_error(error, "the query") from None
        return rows

    def _read(self, max_rows: int) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        size = 0
        try:
            while len(rows) < max_rows and size < BATCH_BYTES and not self._done:
                part = self._cursor.fetchmany(min(256, max_rows - len(rows)))
                if not part:
                    self._done = True
                    break
                rows.extend(part)
                size += sum(_row_bytes(row) for row in part)
        except sqlite3.Error as error:
            raise sql_error(error, "the query") from None
        return rows

    def fetch(self, max_rows: int | None) -> Any:
        limit = BATCH_ROWS if max_rows is None or max_rows <= 0 else min(max_rows, BATCH_ROWS)
        if self._pending is not None:
            rows, self._pending = self._pending, None
            if len(rows) > limit:
                rows, self._pending = rows[:limit], rows[limit:]
        else:
            rows = self._read(limit)
        if not rows and self._fetched:
            return None
        self._fetched = True
        return self._builder.batch(rows)

    def interrupt(self) -> None:
        self._connection.interrupt()

    @property
    def exhausted(self) -> bool:
        """Every row was handed out: the next `fetch` answers None."""
        return self._done and self._pending is None and self._fetched

    def close(self) -> None:
        try:
            self._cursor.close()
        finally:
            if self._release is not None:
                self._release(self._connection)
            else:
                self._connection.close()


class MemoryCursor:
    """A query result kept in memory (rows of a statement that changed the database)."""

    def __init__(self, schema: Any, batches: list[Any]) -> None:
        self.schema = schema
        self._batches = batches or [_empty_batch(schema)]  # no rows: one empty batch carries the columns

    def fetch(self, max_rows: int | None) -> Any:
        if not self._batches:
            return None
        batch = self._batches.pop(0)
        if max_rows is not None and 0 < max_rows < batch.num_rows:
            self._batches.insert(0, batch.slice(max_rows))
            batch = batch.slice(0, max_rows)
        return batch

    def interrupt(self) -> None:
        pass

    def close(self) -> None:
        self._batches = []


def read_all(cursor: sqlite3.Cursor, builder: BatchBuilder, budget: list[int]) -> MemoryCursor:
    """Every row of `cursor` as batches in memory, charged to `budget[0]` bytes (1008 when they
    exceed it)."""
    rows: list[tuple[Any, ...]] = []
    for row in cursor:
        budget[0] -= _row_bytes(row)
        if budget[0] < 0:
            raise RoomException(f"the statement returned more than {MAX_RESULT_BYTES} bytes of rows", code=ErrorCode.OPERATION_FAILED)
        rows.append(row)
    builder.settle(rows)
    batches = [builder.batch(rows[offset : offset + BATCH_ROWS]) for offset in range(0, len(rows), BATCH_ROWS)]
    return MemoryCursor(builder.schema(), batches)


def _empty_batch(schema: Any) -> Any:
    pa = pyarrow()
    return pa.RecordBatch.from_arrays([pa.array([], field.type) for field in schema], schema=schema)


# --- running statements ------------------------------------------------------------------------

#: What `try_read` answers for a statement that would change the database.
WRITES = object()


def try_read(
    connection: sqlite3.Connection, authorizer: Authorizer, query: str, params: Any, release: Callable[[sqlite3.Connection], None] | None = None
) -> Any:
    """Compile and start `query` on `connection` as a read: a `SqliteCursor` when it returns
    rows, `0` (rows affected) when it returns none, or `WRITES` when it would change the
    database (nothing was done). Raises 1002 for bad SQL or refused access. The connection
    belongs to the returned cursor; in every other case the caller closes it."""
    bound = parameters(params)
    probe = declared_types(connection, query)
    authorizer.read_only = True
    try:
        cursor = run_authorized(connection, authorizer, lambda: connection.execute(query, bound))
    except RoomException:
        if authorizer.wrote:
            return WRITES
        raise
    except sqlite3.Error as error:
        raise sql_error(error) from None
    if cursor.description is None:
        cursor.close()
        return 0
    builder = BatchBuilder([column[0] for column in cursor.description], result_types(probe, cursor.description))
    return SqliteCursor(connection, cursor, builder, release=release)


def run_write(connection: sqlite3.Connection, authorizer: Authorizer, query: str, params: Any, budget: list[int], *, want_rows: bool) -> Any:
    """Run `query` on the writer (inside the caller's transaction): a `MemoryCursor` of its rows
    when it returns rows and `want_rows`, else the rows it changed (an int)."""
    bound = parameters(params)
    probe = declared_types(connection, query) if want_rows else None
    authorizer.read_only = False
    try:
        cursor = run_authorized(connection, authorizer, lambda: connection.execute(query, bound))
        if cursor.description is not None and want_rows:
            builder = BatchBuilder([column[0] for column in cursor.description], result_types(probe, cursor.description))
            return read_all(cursor, builder, budget)
        for _ in cursor:  # finish the statement (RETURNING rows nobody asked for)
            pass
        return max(cursor.rowcount, 0)
    except sqlite3.Error as error:
        raise sql_error(error) from None


__all__ = [
    "BATCH_BYTES",
    "BATCH_ROWS",
    "MAX_RESULT_BYTES",
    "WRITES",
    "MemoryCursor",
    "SqliteCursor",
    "declared_types",
    "parameters",
    "read_all",
    "result_types",
    "run_write",
    "sql_error",
    "try_read",
    "where_clause",
    "without_parameters",
]
