"""The databases of the `sqlite` toolkit on disk (protocol/room-apis.md §13.1), and their
connections.

Layout, under the room's data directory: `databases/<namespace folders>/<name>.sqlite` (with
SQLite's `-wal` / `-shm` files beside it) and `<name>.settings.json` holding its settings.
Database names and namespace segments are 1 to 128 letters, digits, `_` or `-` (1002 otherwise):
no path can be made to leave `databases/`, and no name can collide with another's files.
Transfers (`backup`, `restore`) use temporary files in `databases/.transfers/`, emptied when the
room's databases are first used after a restart.

A `Database` has one **writer** connection, used by one worker thread at a time under
`write_lock` (every write is one transaction: `BEGIN IMMEDIATE` … `COMMIT`, rolled back on any
error), a small pool of **reader** connections for unary reads, and hands out fresh connections
for open queries. Every connection: WAL journal, `foreign_keys=ON`, `busy_timeout` 5 s, a `uuid()`
SQL function (text UUIDs), and `synchronous=FULL` — or `NORMAL` in `asynchronous` replication mode,
where a commit is durable once the WAL is next checkpointed (`flush_database` does it).
`write_lock` is waited for at most `LOCK_TIMEOUT` seconds (then 1009): a write stream holds it for
its whole length, so that one stream is one transaction.
"""

from __future__ import annotations

import os
import re
import sqlite3
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Callable, TypeVar

import msgspec
import trio

from meshagent_core import ErrorCode, RoomException
from meshagent_core.toolkits.sqlite import DatabaseSettings

from ..toolkit import invalid_request
from .open_queries import run_interruptible

if TYPE_CHECKING:
    from ..rooms.room import Room

T = TypeVar("T")

FOLDER = "databases"
TRANSFERS = ".transfers"
SUFFIX = ".sqlite"
SETTINGS_SUFFIX = ".settings.json"
NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
#: Seconds a write waits for the database's writer before giving up (1009).
LOCK_TIMEOUT = 30.0
#: Idle reader connections kept per database.
READER_POOL = 4
#: Most namespace segments.
MAX_NAMESPACE_DEPTH = 16


def check_name(name: str, what: str = "database name") -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise invalid_request(f"invalid {what} {name!r}: use 1 to 128 letters, digits, '_' or '-'")
    return name


def check_namespace(namespace: list[str] | None) -> tuple[str, ...]:
    segments = tuple(namespace or ())
    if len(segments) > MAX_NAMESPACE_DEPTH:
        raise invalid_request(f"a namespace has at most {MAX_NAMESPACE_DEPTH} segments")
    for segment in segments:
        check_name(segment, "namespace segment")
    return segments


@dataclass(frozen=True)
class DatabaseKey:
    namespace: tuple[str, ...]
    name: str

    @classmethod
    def of(cls, name: str, namespace: list[str] | None) -> "DatabaseKey":
        return cls(check_namespace(namespace), check_name(name))

    def show(self) -> str:
        return "/".join((*self.namespace, self.name))


def not_found(key: DatabaseKey) -> RoomException:
    return RoomException(f"database {key.show()!r} does not exist", code=ErrorCode.NOT_FOUND)


def already_exists(key: DatabaseKey) -> RoomException:
    return RoomException(f"database {key.show()!r} already exists", code=ErrorCode.ALREADY_EXISTS)


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_durably(path: Path, data: bytes) -> None:
    """`data` at `path`, atomically and durably (temporary file, fsync, rename, fsync folder)."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_folder(path.parent)


class Database:
    """One database file: its settings and connections (see the module docstring)."""

    def __init__(self, key: DatabaseKey, path: Path, settings: DatabaseSettings) -> None:
        self.key = key
        self.path = path
        self.settings = settings
        self.write_lock = trio.Lock()
        self.dropped = False
        self._writer: sqlite3.Connection | None = None
        self._readers: list[sqlite3.Connection] = []

    # --- connections (blocking: worker threads) -------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """A new connection (autocommit mode: transactions are explicit)."""
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA busy_timeout=5000")
            connection.execute("PRAGMA foreign_keys=ON")
            self._apply_settings(connection)
            connection.create_function("uuid", 0, lambda: str(uuid.uuid4()))
        except BaseException:
            connection.close()
            raise
        return connection

    def _apply_settings(self, connection: sqlite3.Connection) -> None:
        mode = "FULL" if self.settings.replication_mode == "synchronous" else "NORMAL"
        connection.execute(f"PRAGMA synchronous={mode}")

    def _writer_connection(self) -> sqlite3.Connection:
        if self._writer is None:
            self._writer = self.connect()
        return self._writer

    @staticmethod
    def _transaction(connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    def borrow(self) -> sqlite3.Connection:
        """A reader connection from the pool, or a new one (blocking); give it back with
        `give_back`."""
        try:
            return self._readers.pop()
        except IndexError:
            return self.connect()

    def give_back(self, connection: sqlite3.Connection) -> None:
        """Return a borrowed connection to the pool, or close it (blocking)."""
        try:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        except sqlite3.Error:
            connection.close()
            return
        if len(self._readers) < READER_POOL and not self.dropped:
            self._readers.append(connection)
        else:
            connection.close()

    def _close_all(self) -> None:
        connections, self._readers = self._readers, []
        if self._writer is not None:
            connections.append(self._writer)
            self._writer = None
        for connection in connections:
            connection.close()

    # --- async API ------------------------------------------------------------------------

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[None]:
        """Hold `write_lock` (waiting at most `LOCK_TIMEOUT` seconds, then 1009)."""
        with trio.move_on_after(LOCK_TIMEOUT) as waited:
            await self.write_lock.acquire()
        if waited.cancelled_caught:
            raise RoomException(
                f"database {self.key.show()!r} is busy: another write held it for {LOCK_TIMEOUT:g} seconds", code=ErrorCode.TIMEOUT
            )
        try:
            if self.dropped:
                raise not_found(self.key)
            yield
        finally:
            self.write_lock.release()

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(connection)` in one transaction of the writer, in a worker thread (interrupted
        and rolled back if the caller leaves or it runs too long: `run_interruptible`)."""
        async with self.writer():
            connection = await trio.to_thread.run_sync(self._writer_connection)
            return await run_interruptible(self._transaction, connection, work, interrupt=connection.interrupt)

    async def checkpoint(self) -> None:
        """Checkpoint the WAL into the database file (synced): every commit so far is durable."""
        async with self.writer():
            await trio.to_thread.run_sync(self._checkpoint)

    def _checkpoint(self) -> None:
        self._writer_connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator["Transaction"]:
        """One transaction spanning several steps (a write stream): committed when the block
        ends, rolled back when it raises or is cancelled. Holds the writer throughout."""
        async with self.writer():
            connection = await trio.to_thread.run_sync(self._writer_connection)
            await trio.to_thread.run_sync(connection.execute, "BEGIN IMMEDIATE")
            try:
                yield Transaction(connection)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(_rollback, connection)
                raise
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(connection.execute, "COMMIT")

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(connection)` on a reader connection, in a worker thread."""
        if self.dropped:
            raise not_found(self.key)
        connection = self._readers.pop() if self._readers else await trio.to_thread.run_sync(self.connect)
        try:
            result = await run_interruptible(work, connection, interrupt=connection.interrupt)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(connection.close)
            raise
        if connection.in_transaction or len(self._readers) >= READER_POOL or self.dropped:
            await trio.to_thread.run_sync(self.give_back, connection)
        else:
            self._readers.append(connection)
        return result

    async def update_settings(self, settings: DatabaseSettings) -> None:
        async with self.writer():
            await trio.to_thread.run_sync(write_durably, settings_path(self.path), msgspec.json.encode(settings))
            self.settings = settings
            await trio.to_thread.run_sync(self._close_all)  # reconnect with the new settings

    async def close(self) -> None:
        """Close every connection (the database is being dropped or replaced)."""
        async with self.writer():
            self.dropped = True
            await trio.to_thread.run_sync(self._close_all)


class Transaction:
    """The writer connection inside `Database.transaction()`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await run_interruptible(work, self.connection, interrupt=self.connection.interrupt)


def _rollback(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        connection.execute("ROLLBACK")


def settings_path(path: Path) -> Path:
    return path.with_name(path.name[: -len(SUFFIX)] + SETTINGS_SUFFIX)


def read_settings(path: Path) -> DatabaseSettings:
    try:
        return msgspec.json.decode(settings_path(path).read_bytes(), type=DatabaseSettings)
    except (FileNotFoundError, msgspec.DecodeError):
        return DatabaseSettings()


class Databases:
    """The databases of one room (`databases_of(room)`)."""

    def __init__(self, room: "Room") -> None:
        self.root = Path(room.data_dir) / FOLDER
        #: Held while a database is made, dropped or restored (names appear and disappear).
        self.lock = trio.Lock()
        self._open: dict[DatabaseKey, Database] = {}
        self._prepared = False

    def path(self, key: DatabaseKey) -> Path:
        return self.root.joinpath(*key.namespace, key.name + SUFFIX)

    def folder(self, namespace: tuple[str, ...]) -> Path:
        return self.root.joinpath(*namespace)

    async def prepare(self) -> None:
        """Create `databases/` and empty the transfer folder left by an earlier run (once)."""
        if not self._prepared:
            await trio.to_thread.run_sync(self._prepare)
            self._prepared = True

    def _prepare(self) -> None:
        transfers = self.root / TRANSFERS
        transfers.mkdir(parents=True, exist_ok=True)
        for leftover in transfers.iterdir():
            leftover.unlink(missing_ok=True)

    def transfer_file(self) -> Path:
        return self.root / TRANSFERS / f"{uuid.uuid4().hex}.part"

    async def exists(self, key: DatabaseKey) -> bool:
        await self.prepare()
        return await trio.to_thread.run_sync(self.path(key).is_file)

    async def get(self, key: DatabaseKey) -> Database:
        """The database `key`; 1003 when it does not exist."""
        database = self._open.get(key)
        if database is not None and not database.dropped:
            return database
        if not await self.exists(key):
            raise not_found(key)
        path = self.path(key)
        database = self._open.get(key)
        if database is None or database.dropped:
            database = Database(key, path, await trio.to_thread.run_sync(read_settings, path))
            self._open[key] = database
        return database

    async def list(self, namespace: tuple[str, ...]) -> list[str]:
        await self.prepare()
        return await trio.to_thread.run_sync(self._list, self.folder(namespace))

    @staticmethod
    def _list(folder: Path) -> list[str]:
        if not folder.is_dir():
            return []
        return sorted(entry.name[: -len(SUFFIX)] for entry in folder.iterdir() if entry.name.endswith(SUFFIX) and entry.is_file())

    async def create(self, key: DatabaseKey, settings: DatabaseSettings) -> Database:
        """Make the database `key` (the caller holds `lock` and checked it does not exist)."""
        path = self.path(key)
        database = Database(key, path, settings)
        await trio.to_thread.run_sync(self._create, database)
        self._open[key] = database
        return database

    @staticmethod
    def _create(database: Database) -> None:
        database.path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(settings_path(database.path), msgspec.json.encode(database.settings))
        connection = database.connect()  # creates the file, in WAL mode
        try:
            connection.execute("PRAGMA user_version")  # a read makes SQLite write the header
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("COMMIT")
        finally:
            connection.close()
        fsync_folder(database.path.parent)

    async def remove(self, key: DatabaseKey) -> bool:
        """Close and delete the database `key` (the caller holds `lock`); False when missing."""
        database = self._open.pop(key, None)
        if database is not None:
            await database.close()
        return await trio.to_thread.run_sync(self._remove, self.path(key))

    @staticmethod
    def _remove(path: Path) -> bool:
        existed = path.is_file()
        for extra in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal"), settings_path(path)):
            extra.unlink(missing_ok=True)
        if existed:
            fsync_folder(path.parent)
        return existed

    def install(self, key: DatabaseKey, database: Database) -> None:
        self._open[key] = database


def databases_of(room: "Room") -> Databases:
    return room.toolkit_state("sqlite.databases", Databases)


def size_bytes(path: Path) -> int:
    """The bytes a database takes on disk (its file and WAL)."""
    total = 0
    for extra in (path, Path(f"{path}-wal")):
        try:
            total += extra.stat().st_size
        except FileNotFoundError:
            pass
    return total


__all__ = [
    "LOCK_TIMEOUT",
    "Database",
    "DatabaseKey",
    "Databases",
    "Transaction",
    "already_exists",
    "check_name",
    "check_namespace",
    "databases_of",
    "fsync_folder",
    "not_found",
    "read_settings",
    "settings_path",
    "size_bytes",
    "write_durably",
]
