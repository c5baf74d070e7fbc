"""`backup` and `restore` of the `sqlite` toolkit (protocol/room-apis.md §13.5): whole database
files, in verified chunks of at most `TRANSFER_CHUNK_SIZE` bytes.

`backup` copies a consistent snapshot of the database (SQLite's online backup, into a temporary
file), then answers each pull of the caller with the next 1…262144 bytes and, once every byte is
sent, the next pull with `complete` (size and SHA-256 of all the bytes). It needs access to every
table of the database (a grant without a `tables` list).

`restore` makes a **new** database from the caller's bytes: it pulls chunks into a temporary file
until the caller's `complete`, checks the size and SHA-256 against what arrived, opens the file
as SQLite and requires `PRAGMA integrity_check` to say `ok` and `PRAGMA foreign_key_check` to
find nothing, switches it to WAL, syncs it, and only then links it in under the new name — an
existing name is refused (1004) before anything is received and again at that last step, never
replaced — and echoes the caller's `complete`. Anything wrong (1002: a chunk of the wrong kind or
size, unpulled data, `abort`, a mismatch, a file that is not a sound database, more than the
server's upload limit) leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import trio

from meshagent_core import BinaryContent, ErrorCode, RoomException
from meshagent_core.toolkits.sqlite import TRANSFER_CHUNK_SIZE, DatabaseSettings, TransferComplete, TransferStart

from ..toolkit import ToolCall, invalid_request, permission_denied
from .data_streams import next_chunk, refuse_unpulled, start_chunk
from .sqlite_context import RULES, access_for, open_database
from .sqlite_files import Database, already_exists, databases_of, fsync_folder, settings_path, write_durably

_PULL = {"kind": "pull"}


def _start(headers: dict[str, Any]) -> TransferStart:
    try:
        return msgspec.convert(headers, type=TransferStart)
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid start chunk: {error}") from None


def _snapshot(database: Database, path: Path) -> None:
    source = database.connect()
    try:
        target = sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


async def backup(call: ToolCall) -> None:
    start = _start((await start_chunk(call, RULES)).headers)
    target = await open_database(call, start.database, start.namespace, None, "")
    if not target.access.unrestricted():
        raise permission_denied(f"a backup of database {target.key.show()!r} needs access to all of its tables")
    databases = databases_of(call.room)
    path = databases.transfer_file()
    try:
        await trio.to_thread.run_sync(_snapshot, target.database, path)
        file: BinaryIO = await trio.to_thread.run_sync(open, path, "rb")
        try:
            await call.open_stream()
            digest = hashlib.sha256()
            size = 0
            while True:
                pull = await next_chunk(call, RULES)
                if pull is None:
                    return  # the caller stopped
                RULES.read_pull(pull)
                data = await trio.to_thread.run_sync(file.read, TRANSFER_CHUNK_SIZE)
                if not data:
                    complete = TransferComplete(size=size, sha256=digest.hexdigest())
                    await call.send(BinaryContent(headers=msgspec.to_builtins(complete)))
                    return
                digest.update(data)
                size += len(data)
                await call.send(BinaryContent(headers={"kind": "data"}, data=data))
        finally:
            file.close()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))


def _complete(chunk: BinaryContent) -> TransferComplete:
    if chunk.data:
        raise invalid_request("a complete chunk carries no data")
    if set(chunk.headers) != {"kind", "size", "sha256"}:
        raise invalid_request(f"a complete chunk has exactly kind, size and sha256: {chunk.headers!r}")
    try:
        return msgspec.convert(chunk.headers, type=TransferComplete)
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid complete chunk: {error}") from None


def _seal(path: Path) -> None:
    """Check that `path` is a sound SQLite database, switch it to WAL and sync it (1002 when it
    is not one)."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error as error:
        raise invalid_request(f"the restored file cannot be opened as SQLite: {error}") from None
    try:
        problems = [row[0] for row in connection.execute("PRAGMA integrity_check").fetchall()]
        if problems != ["ok"]:
            raise invalid_request(f"the restored database fails its integrity check: {'; '.join(map(str, problems[:5]))}")
        violations = connection.execute("PRAGMA foreign_key_check").fetchall()
        if violations:
            table, rowid, parent, _ = violations[0]
            raise invalid_request(
                f"the restored database has {len(violations)} foreign key violation(s), e.g. row {rowid} of {table!r} (parent {parent!r})"
            )
        connection.execute("PRAGMA journal_mode=WAL").fetchall()
    except sqlite3.Error as error:
        raise invalid_request(f"the restored file is not a valid SQLite database: {error}") from None
    finally:
        connection.close()
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def _install(temporary: Path, path: Path, settings: DatabaseSettings) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.link(temporary, path)  # fails if the name exists: never replaces a database
    write_durably(settings_path(path), msgspec.json.encode(settings))
    fsync_folder(path.parent)


async def restore(call: ToolCall) -> None:
    start = _start((await start_chunk(call, RULES)).headers)
    access = access_for(call, start.database, start.namespace)
    grant = access.grant
    if not grant.can_create_database() or (grant.databases is not None and not grant._matching_databases(start.database, start.namespace)):  # noqa: SLF001
        raise permission_denied(f"you do not have permission to create database {access.key.show()!r}")
    databases = databases_of(call.room)
    if await databases.exists(access.key):
        raise already_exists(access.key)
    limit = call.room.config.max_upload_size
    temporary = databases.transfer_file()
    file: BinaryIO = await trio.to_thread.run_sync(open, temporary, "wb")
    try:
        await call.open_stream()
        digest = hashlib.sha256()
        size = 0
        while True:
            await refuse_unpulled(call, RULES)
            await call.send(BinaryContent(headers=dict(_PULL)))
            chunk = await next_chunk(call, RULES)
            if not isinstance(chunk, BinaryContent):
                raise invalid_request("sqlite.restore expected a binary data, complete or abort chunk")
            kind = chunk.headers.get("kind")
            if kind == "abort":
                raise invalid_request("the caller aborted the restore: nothing was stored")
            if kind == "complete":
                complete = _complete(chunk)
                break
            if kind != "data" or set(chunk.headers) != {"kind"}:
                raise invalid_request(f"sqlite.restore expected a binary data, complete or abort chunk, got headers {chunk.headers!r}")
            if not 0 < len(chunk.data) <= TRANSFER_CHUNK_SIZE:
                raise invalid_request(f"a restore data chunk holds 1 to {TRANSFER_CHUNK_SIZE} bytes, not {len(chunk.data)}")
            size += len(chunk.data)
            if size > limit:
                raise invalid_request(f"the database exceeds the limit of {limit} bytes")
            digest.update(chunk.data)
            await trio.to_thread.run_sync(file.write, chunk.data)
        await refuse_unpulled(call, RULES)  # nothing may follow the complete chunk
        if complete.size != size or complete.sha256 != digest.hexdigest():
            raise invalid_request(f"the restore's size or SHA-256 does not match the {size} bytes received: nothing was stored")
        await trio.to_thread.run_sync(file.flush)
        file.close()
        await trio.to_thread.run_sync(_seal, temporary)
        async with databases.lock:
            if await databases.exists(access.key):
                raise already_exists(access.key)
            try:
                await trio.to_thread.run_sync(_install, temporary, databases.path(access.key), DatabaseSettings())
            except FileExistsError:
                raise already_exists(access.key) from None
        await call.send(BinaryContent(headers=msgspec.to_builtins(complete)))
    except RoomException:
        raise
    except OSError as error:
        raise RoomException(f"sqlite.restore failed: {error.strerror or error}", code=ErrorCode.OPERATION_FAILED) from None
    finally:
        file.close()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(lambda: temporary.unlink(missing_ok=True))


TOOLS = {"backup": backup, "restore": restore}

__all__ = ["TOOLS"]
