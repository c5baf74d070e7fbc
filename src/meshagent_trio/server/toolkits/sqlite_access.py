"""Who may do what with the `sqlite` toolkit (protocol/room-apis.md §13.6): the caller's
`sqlite` grant (`SqliteGrant`, protocol/tokens.md §4), and an SQLite authorizer that holds every
statement made of the caller's SQL text (`execute_sql…`, `where` strings, expression values) to
that grant and to what the toolkit allows at all.

The authorizer is consulted by SQLite while it compiles a statement, for every table and column
the statement would read or write, so a `where` that reaches into another table, a view over a
forbidden table or a trigger body is checked like a direct read. Refused at compile time,
whatever the grant:

* `ATTACH` / `DETACH` (and `VACUUM`, which attaches): a statement may touch only its database;
* transaction control (`BEGIN`, `COMMIT`, `SAVEPOINT`, …): the server makes each call one
  transaction (`execute_sql_batch` for several statements);
* temporary tables, views, triggers and indexes (connections are shared between callers);
* `PRAGMA`s other than the informational ones listed in `READ_PRAGMAS` (and `user_version` /
  `application_id`, which may be set);
* `load_extension()`.

Statements are compiled one at a time (`sqlite3` refuses a second statement in one call), so a
`where` cannot smuggle in another statement.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, Callable

from meshagent_core import ErrorCode, RoomException
from meshagent_core.tokens.grants import SqliteGrant

from ..toolkit import ToolCall, permission_denied
from .sqlite_files import DatabaseKey

#: Tables SQLite keeps for itself: reading is allowed (a schema is not a secret to a caller that
#: may use the database); writes happen only as part of a DDL statement checked on its own.
INTERNAL_TABLES = frozenset(
    {"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema", "sqlite_sequence", "sqlite_stat1", "sqlite_stat4"}
)
#: Table-valued functions any statement may read.
FUNCTION_TABLES = frozenset({"json_each", "json_tree"})
#: PRAGMAs a statement may read (with their argument, when they take one).
READ_PRAGMAS = frozenset(
    {
        "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
        "foreign_key_check", "integrity_check", "quick_check", "user_version", "application_id", "page_count",
        "page_size", "freelist_count", "schema_version", "data_version", "collation_list", "function_list",
        "module_list", "pragma_list", "compile_options", "encoding", "foreign_keys", "journal_mode", "synchronous",
    }
)  # fmt: skip
SETTABLE_PRAGMAS = frozenset({"user_version", "application_id"})
#: PRAGMAs whose argument is a table name.
TABLE_PRAGMAS = frozenset({"table_info", "table_xinfo", "index_list", "foreign_key_list", "foreign_key_check"})

_DENY_ALWAYS = {
    sqlite3.SQLITE_ATTACH: "ATTACH and VACUUM are not allowed: a statement may use only its own database",
    sqlite3.SQLITE_DETACH: "DETACH is not allowed",
    sqlite3.SQLITE_TRANSACTION: "transaction statements are not allowed: each call is one transaction (use execute_sql_batch)",
    sqlite3.SQLITE_SAVEPOINT: "savepoints are not allowed: each call is one transaction (use execute_sql_batch)",
    sqlite3.SQLITE_CREATE_TEMP_INDEX: "temporary indexes are not allowed",
    sqlite3.SQLITE_CREATE_TEMP_TABLE: "temporary tables are not allowed",
    sqlite3.SQLITE_CREATE_TEMP_TRIGGER: "temporary triggers are not allowed",
    sqlite3.SQLITE_CREATE_TEMP_VIEW: "temporary views are not allowed",
    sqlite3.SQLITE_DROP_TEMP_INDEX: "temporary indexes are not allowed",
    sqlite3.SQLITE_DROP_TEMP_TABLE: "temporary tables are not allowed",
    sqlite3.SQLITE_DROP_TEMP_TRIGGER: "temporary triggers are not allowed",
    sqlite3.SQLITE_DROP_TEMP_VIEW: "temporary views are not allowed",
}
#: Actions that change the database (for telling a query from a statement).
_WRITES = frozenset(
    {
        sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE, sqlite3.SQLITE_CREATE_INDEX,
        sqlite3.SQLITE_CREATE_TABLE, sqlite3.SQLITE_CREATE_TRIGGER, sqlite3.SQLITE_CREATE_VIEW, sqlite3.SQLITE_DROP_INDEX,
        sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_DROP_TRIGGER, sqlite3.SQLITE_DROP_VIEW, sqlite3.SQLITE_ALTER_TABLE,
        sqlite3.SQLITE_REINDEX, sqlite3.SQLITE_ANALYZE, sqlite3.SQLITE_CREATE_VTABLE, sqlite3.SQLITE_DROP_VTABLE,
    }
)  # fmt: skip


def sqlite_grant(call: ToolCall) -> SqliteGrant:
    grant = call.scope.sqlite if call.scope is not None else None
    if grant is None:
        raise permission_denied("the token does not grant the sqlite API")
    return grant


class Access:
    """The caller's rights on one database."""

    def __init__(self, grant: SqliteGrant, key: DatabaseKey, namespace: list[str] | None) -> None:
        self.grant = grant
        self.key = key
        self.namespace = namespace
        self.database = key.name

    def _ns(self) -> dict[str, Any]:
        return {"database": self.database, "namespace": self.namespace}

    def require(self, allowed: bool, what: str) -> None:
        if not allowed:
            raise permission_denied(f"you do not have permission to {what}")

    def database_flag(self, flag: str, what: str) -> None:
        """Require a database-level flag (`drop`, `inspect`, `list_tables`, `create_table`,
        `execute`)."""
        check = {
            "drop": self.grant.can_drop_database,
            "inspect": self.grant.can_inspect_database,
            "list_tables": self.grant.can_list_tables,
            "create_table": self.grant.can_create_table,
            "execute": self.grant.can_execute,
        }[flag]
        self.require(check(**self._ns()), f"{what} in database {self.key.show()!r}")

    def can(self, action: str, table: str) -> bool:
        """`read`, `write`, `alter` or `access` on a table."""
        return bool(getattr(self.grant, f"can_{action}")(table=table, **self._ns()))

    def table(self, action: str, table: str) -> None:
        self.require(self.can(action, table), f"{action} table {table!r} of database {self.key.show()!r}")

    def unrestricted(self) -> bool:
        """Every table of the database allowed (what `backup` needs)."""
        if self.grant.databases is None:
            return True
        return any(
            grant.tables is None for grant in self.grant._matching_databases(self.database, self.namespace)  # noqa: SLF001
        )


@dataclass
class Authorizer:
    """An SQLite authorizer callback for the caller's SQL (see the module docstring).

    With `read_only`, any change is refused too, and `wrote` records that the statement would
    change something (the toolkit then runs it on the writer). `refusal` holds the reason of the
    last refusal, for the error the caller gets.
    """

    access: Access
    read_only: bool = False
    wrote: bool = False
    refusal: RoomException | None = field(default=None)

    def _deny(self, error: RoomException) -> int:
        self.refusal = error
        return sqlite3.SQLITE_DENY

    def _refuse(self, message: str) -> int:
        return self._deny(RoomException(message, code=ErrorCode.INVALID_REQUEST))

    def _forbid(self, action: str, table: str) -> int:
        return self._deny(
            permission_denied(f"you do not have permission to {action} table {table!r} of database {self.access.key.show()!r}")
        )

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
        if action in _DENY_ALWAYS:
            return self._refuse(_DENY_ALWAYS[action])
        if self.read_only and action in _WRITES and not (action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE) and arg1 in INTERNAL_TABLES):
            self.wrote = True
            return self._deny(RoomException("the statement changes the database", code=ErrorCode.INVALID_REQUEST))
        access = self.access
        if action == sqlite3.SQLITE_READ:
            table = arg1 or ""
            if table in INTERNAL_TABLES or table in FUNCTION_TABLES:
                return sqlite3.SQLITE_OK
            if table.startswith("pragma_"):
                return sqlite3.SQLITE_OK if table[len("pragma_") :] in READ_PRAGMAS else self._refuse(f"{table} is not allowed")
            return sqlite3.SQLITE_OK if access.can("read", table) else self._forbid("read", table)
        if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE):
            table = arg1 or ""
            if table in INTERNAL_TABLES:
                return sqlite3.SQLITE_OK
            if table.startswith("sqlite_"):
                return self._refuse(f"{table} cannot be changed")
            return sqlite3.SQLITE_OK if access.can("write", table) else self._forbid("write", table)
        if action in (sqlite3.SQLITE_CREATE_TABLE, sqlite3.SQLITE_CREATE_VIEW, sqlite3.SQLITE_CREATE_VTABLE):
            if not access.grant.can_create_table(database=access.database, namespace=access.namespace):
                return self._deny(permission_denied(f"you do not have permission to create tables in database {access.key.show()!r}"))
            return sqlite3.SQLITE_OK
        if action in (sqlite3.SQLITE_CREATE_INDEX, sqlite3.SQLITE_DROP_INDEX, sqlite3.SQLITE_CREATE_TRIGGER, sqlite3.SQLITE_DROP_TRIGGER):
            table = arg2 or ""
            return sqlite3.SQLITE_OK if table in INTERNAL_TABLES or access.can("alter", table) else self._forbid("alter", table)
        if action in (sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_DROP_VIEW, sqlite3.SQLITE_DROP_VTABLE):
            table = arg1 or ""
            return sqlite3.SQLITE_OK if access.can("alter", table) else self._forbid("alter", table)
        if action == sqlite3.SQLITE_ALTER_TABLE:
            table = arg2 or ""
            return sqlite3.SQLITE_OK if access.can("alter", table) else self._forbid("alter", table)
        if action == sqlite3.SQLITE_PRAGMA:
            return self._pragma((arg1 or "").lower(), arg2)
        if action == sqlite3.SQLITE_FUNCTION:
            if (arg2 or "").lower() == "load_extension":
                return self._refuse("load_extension is not allowed")
            return sqlite3.SQLITE_OK
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE, sqlite3.SQLITE_REINDEX, sqlite3.SQLITE_ANALYZE):
            return sqlite3.SQLITE_OK
        return self._refuse(f"this statement is not allowed (SQLite action {action})")

    def _pragma(self, name: str, argument: str | None) -> int:
        if name in SETTABLE_PRAGMAS:
            if argument is not None and self.read_only:
                self.wrote = True
                return self._deny(RoomException("the statement changes the database", code=ErrorCode.INVALID_REQUEST))
            return sqlite3.SQLITE_OK
        if name not in READ_PRAGMAS:
            return self._refuse(f"PRAGMA {name} is not allowed")
        if argument is not None and name in TABLE_PRAGMAS:
            return sqlite3.SQLITE_OK if self.access.can("access", argument) else self._forbid("inspect", argument)
        if argument is not None and name not in ("table_list", "integrity_check", "quick_check", "index_info", "index_xinfo"):
            return self._refuse(f"PRAGMA {name} may be read, not set")
        return sqlite3.SQLITE_OK


def run_authorized(connection: sqlite3.Connection, authorizer: Authorizer, work: Callable[[], Any]) -> Any:
    """`work()` with `authorizer` installed on `connection` (removed afterwards); a refusal is
    raised as the authorizer's `RoomException`."""
    authorizer.refusal = None
    connection.set_authorizer(authorizer)
    try:
        return work()
    except sqlite3.DatabaseError:
        if authorizer.refusal is not None:
            raise authorizer.refusal from None
        raise
    finally:
        connection.set_authorizer(None)


__all__ = ["Access", "Authorizer", "run_authorized", "sqlite_grant"]
