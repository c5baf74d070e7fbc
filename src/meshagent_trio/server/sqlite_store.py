"""A room's SQLite database (stdlib sqlite3 in a worker thread), shared by its toolkits.

One file per room, `<room.data_dir>/room.db`, in WAL mode with `synchronous=FULL`: once
`run()` returns, its transaction is on disk and survives a crash of the process (or of the
machine). Toolkits keep their own tables in it (prefix table names with the toolkit name) and
create them idempotently (`CREATE TABLE IF NOT EXISTS`) inside their first `run()`. Work runs
inside an explicit transaction: use `execute`/`executemany`, not `executescript` (which commits).

    store = room_store(room)
    count = await store.run(lambda db: db.execute("SELECT count(*) FROM t").fetchone()[0])
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

import trio

if TYPE_CHECKING:
    from .rooms.room import Room

T = TypeVar("T")

#: The database file of a room, under its data directory.
FILE_NAME = "room.db"
_STATE_KEY = "_sqlite_store"


class SqliteStore:
    """One SQLite connection, used by one worker thread at a time."""

    def __init__(self, path: Path, *, foreign_keys: bool = False) -> None:
        self.path = path
        #: enforce REFERENCES and ON DELETE (SQLite's default is off, per connection)
        self.foreign_keys = foreign_keys
        self._connection: sqlite3.Connection | None = None
        self._lock = trio.Lock()  # fair: work runs in the order it was asked for

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(connection)` in a worker thread, inside one transaction: committed (durably)
        when it returns, rolled back when it raises. Calls run one at a time, in order.

        Cancelling the caller while it waits its turn means the work never runs; once it runs
        it completes and commits, and `run()` returns its result (the cancellation is delivered
        at the caller's next checkpoint). Callers that must not lose the work while waiting
        shield the call."""
        async with self._lock:
            return await trio.to_thread.run_sync(self._transaction, work)

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                connection, self._connection = self._connection, None
                await trio.to_thread.run_sync(connection.close)

    # --- worker thread --------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit. Used from whichever worker thread
            # holds the lock, never from two at once.
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA busy_timeout=5000")
            if self.foreign_keys:  # outside a transaction: inside one SQLite ignores it
                connection.execute("PRAGMA foreign_keys=ON")
            self._connection = connection
        return self._connection

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result


def room_store(room: "Room") -> SqliteStore:
    """The room's shared store (made on first use)."""
    return room.toolkit_state(_STATE_KEY, lambda room: SqliteStore(room.data_dir / FILE_NAME))


__all__ = ["FILE_NAME", "SqliteStore", "room_store"]
