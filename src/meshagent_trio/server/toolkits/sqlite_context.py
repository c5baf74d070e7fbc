"""What every tool of the `sqlite` toolkit starts from: the caller's database (checked against
its grant) and the tables in it."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from meshagent_core import ErrorCode, RoomException

from ..toolkit import ToolCall, invalid_request
from .data_streams import StreamRules
from .sqlite_access import Access, sqlite_grant
from .sqlite_files import Database, DatabaseKey, databases_of
from .sqlite_types import column_field, pyarrow, quote_identifier

#: The sqlite toolkit's streams: strict headers, binary pulls only, one pull in flight at a time
#: (the TypeScript client loses a pull when two arrive while it sends a chunk, and then waits
#: forever).
RULES = StreamRules(toolkit="sqlite")
#: Longest table or column name.
MAX_NAME = 256


@dataclass
class Target:
    """A database the caller may use, and its rights there."""

    database: Database
    access: Access

    @property
    def key(self) -> DatabaseKey:
        return self.database.key


def access_for(call: ToolCall, name: str, namespace: list[str] | None) -> Access:
    """The caller's rights on database `name` (1002 for an invalid name, 1001 without a grant)."""
    return Access(sqlite_grant(call), DatabaseKey.of(name, namespace), namespace)


async def open_database(call: ToolCall, name: str, namespace: list[str] | None, flag: str | None, what: str) -> Target:
    """The existing database `name` (1003 otherwise), after checking the database-level `flag`
    of the caller's grant (1001)."""
    access = access_for(call, name, namespace)
    if flag is not None:
        access.database_flag(flag, what)
    database = await databases_of(call.room).get(access.key)
    return Target(database, access)


def check_table_name(name: Any, what: str = "table name") -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or any(ord(char) < 32 for char in name):
        raise invalid_request(f"invalid {what} {name!r}")
    if name.lower().startswith("sqlite_"):
        raise invalid_request(f"invalid {what} {name!r}: names starting with sqlite_ are SQLite's own")
    return name


def missing_table(key: DatabaseKey, table: str) -> RoomException:
    return RoomException(f"table {table!r} does not exist in database {key.show()!r}", code=ErrorCode.NOT_FOUND)


def table_exists(connection: sqlite3.Connection, table: str) -> bool:
    row = connection.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return row is not None


def table_names(connection: sqlite3.Connection) -> list[str]:
    rows = connection.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ).fetchall()
    return [row[0] for row in rows]


def table_columns(connection: sqlite3.Connection, key: DatabaseKey, table: str) -> list[tuple[str, str | None, bool]]:
    """(name, declared type, NOT NULL) of each column of `table`; 1003 when it does not exist."""
    if not table_exists(connection, table):
        raise missing_table(key, table)
    rows = connection.execute(f"PRAGMA table_info({quote_identifier(table)})").fetchall()
    return [(row[1], row[2] or None, bool(row[3])) for row in rows]


def schema_of(columns: list[tuple[str, str | None, bool]]) -> Any:
    """The Arrow schema of a table's columns (protocol/room-apis.md §13.2)."""
    pa = pyarrow()
    return pa.schema([column_field(name, declared, not_null) for name, declared, not_null in columns])


__all__ = [
    "RULES",
    "Target",
    "access_for",
    "check_table_name",
    "missing_table",
    "open_database",
    "schema_of",
    "table_columns",
    "table_exists",
    "table_names",
]
