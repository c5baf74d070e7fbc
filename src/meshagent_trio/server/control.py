"""The control plane's database: projects and rooms made through REST, in one SQLite file in
the data directory (`control.db`), its schema versioned by `PRAGMA user_version`.

Each mutation is one transaction (`SqliteStore.run`): nothing is half-written. The server's own
project (the one its API key belongs to) exists from the first start.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from datetime import datetime, timezone
from typing import Any

import msgspec

from meshagent_core.rest.models import ProjectInfo, Room

from .config import ServerConfig
from .sqlite_store import SqliteStore

FILE_NAME = "control.db"
DEFAULT_PROJECT_NAME = "local"

#: Schema versions: MIGRATIONS[n] takes a database from version n to n + 1. Append, never edit.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE projects (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            project_key TEXT UNIQUE,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE rooms (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            metadata TEXT NOT NULL,
            annotations TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (project_id, name)
        )""",
    ),
]


_ROOM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def is_valid_room_name(name: str) -> bool:
    """The room names this server serves: a letter or digit, then up to 127 letters, digits,
    `_`, `.` or `-`, never `..` (a room name is a folder of the data directory)."""
    return bool(_ROOM_NAME.match(name)) and ".." not in name


class ControlError(Exception):
    """A request the control plane refuses; `status` is its HTTP status."""

    status = 400
    code = "invalid_request"


class NotFound(ControlError):
    status = 404
    code = "not_found"


class Conflict(ControlError):
    status = 409
    code = "conflict"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _room(row: sqlite3.Row | tuple[Any, ...]) -> Room:
    id, name, metadata, annotations, enabled = row
    return Room(id=id, name=name, metadata=msgspec.json.decode(metadata), annotations=msgspec.json.decode(annotations), enabled=bool(enabled))


class ControlPlane:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.store = SqliteStore(config.data_dir / FILE_NAME)
        self._ready = False

    async def run(self, work: Any) -> Any:
        if not self._ready:
            await self.store.run(self._migrate)
            self._ready = True
        return await self.store.run(work)

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA foreign_keys=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(f"{FILE_NAME} has schema version {version}, newer than this server ({len(MIGRATIONS)})")
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                db.execute(statement)
        db.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
        own = self.config.credentials.project_id
        db.execute(
            "INSERT OR IGNORE INTO projects (id, name, project_key, created_at) VALUES (?, ?, NULL, ?)",
            (own, DEFAULT_PROJECT_NAME, _now()),
        )

    # --- projects ---------------------------------------------------------------------------

    async def create_project(self, name: str) -> ProjectInfo:
        project = ProjectInfo(id=str(uuid.uuid4()), name=name, created_at=_now())

        def work(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?)", (project.id, name, project.created_at))

        await self.run(work)
        return project

    async def list_projects(self) -> list[ProjectInfo]:
        rows = await self.run(lambda db: db.execute("SELECT id, name, project_key, created_at FROM projects ORDER BY created_at, id").fetchall())
        return [ProjectInfo(id=i, name=n, project_key=k, created_at=c) for i, n, k, c in rows]

    async def get_project(self, project_id: str) -> ProjectInfo:
        row = await self.run(lambda db: db.execute("SELECT id, name, project_key, created_at FROM projects WHERE id = ?", (project_id,)).fetchone())
        if row is None:
            raise NotFound(f"project {project_id!r} does not exist")
        return ProjectInfo(id=row[0], name=row[1], project_key=row[2], created_at=row[3])

    # --- rooms ------------------------------------------------------------------------------

    async def create_room(
        self, project_id: str, name: str, *, if_not_exists: bool, metadata: dict[str, Any] | None, annotations: dict[str, str] | None
    ) -> Room:
        _check_room_name(name)

        def work(db: sqlite3.Connection) -> Room:
            _require_project(db, project_id)
            row = db.execute("SELECT id, name, metadata, annotations, enabled FROM rooms WHERE project_id = ? AND name = ?", (project_id, name)).fetchone()
            if row is not None:
                if if_not_exists:
                    return _room(row)
                raise Conflict(f"room {name!r} already exists")
            room = Room(id=str(uuid.uuid4()), name=name, metadata=metadata or {}, annotations=annotations or {})
            db.execute(
                "INSERT INTO rooms (id, project_id, name, metadata, annotations, enabled, created_at) VALUES (?, ?, ?, ?, ?, 1, ?)",
                (room.id, project_id, name, msgspec.json.encode(room.metadata).decode(), msgspec.json.encode(room.annotations).decode(), _now()),
            )
            return room

        return await self.run(work)

    async def get_room(self, project_id: str, name: str) -> Room:
        row = await self.run(
            lambda db: db.execute(
                "SELECT id, name, metadata, annotations, enabled FROM rooms WHERE project_id = ? AND name = ?", (project_id, name)
            ).fetchone()
        )
        if row is None:
            raise NotFound(f"room {name!r} does not exist")
        return _room(row)

    async def room_enabled(self, project_id: str, name: str) -> bool:
        """False only for a room made through REST and then disabled."""
        row = await self.run(lambda db: db.execute("SELECT enabled FROM rooms WHERE project_id = ? AND name = ?", (project_id, name)).fetchone())
        return row is None or bool(row[0])

    async def list_rooms(self, project_id: str, *, page_size: int, after: str | None) -> tuple[list[Room], int, str | None]:
        """One page, by name, after the name `after`; (rooms, total, next token or None)."""

        def work(db: sqlite3.Connection) -> tuple[list[Room], int, str | None]:
            _require_project(db, project_id)
            total = db.execute("SELECT count(*) FROM rooms WHERE project_id = ?", (project_id,)).fetchone()[0]
            rows = db.execute(
                "SELECT id, name, metadata, annotations, enabled FROM rooms WHERE project_id = ? AND name > ? ORDER BY name LIMIT ?",
                (project_id, after or "", page_size + 1),
            ).fetchall()
            rooms = [_room(row) for row in rows[:page_size]]
            return rooms, total, rooms[-1].name if len(rows) > page_size else None

        return await self.run(work)

    async def update_room(
        self, project_id: str, room_id: str, *, name: str, metadata: Any = msgspec.UNSET, annotations: Any = msgspec.UNSET, enabled: Any = msgspec.UNSET
    ) -> None:
        _check_room_name(name)

        def work(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM rooms WHERE project_id = ? AND id = ?", (project_id, room_id)).fetchone() is None:
                raise NotFound(f"room id {room_id!r} does not exist")
            clash = db.execute("SELECT 1 FROM rooms WHERE project_id = ? AND name = ? AND id != ?", (project_id, name, room_id)).fetchone()
            if clash is not None:
                raise Conflict(f"room {name!r} already exists")
            db.execute("UPDATE rooms SET name = ? WHERE id = ?", (name, room_id))
            if metadata is not msgspec.UNSET:
                db.execute("UPDATE rooms SET metadata = ? WHERE id = ?", (msgspec.json.encode(metadata or {}).decode(), room_id))
            if annotations is not msgspec.UNSET:
                db.execute("UPDATE rooms SET annotations = ? WHERE id = ?", (msgspec.json.encode(annotations or {}).decode(), room_id))
            if enabled is not msgspec.UNSET:
                db.execute("UPDATE rooms SET enabled = ? WHERE id = ?", (1 if enabled else 0, room_id))

        await self.run(work)

    async def delete_room(self, project_id: str, room_id: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            if db.execute("DELETE FROM rooms WHERE project_id = ? AND id = ?", (project_id, room_id)).rowcount == 0:
                raise NotFound(f"room id {room_id!r} does not exist")

        await self.run(work)


def _check_room_name(name: str) -> None:
    if not is_valid_room_name(name):
        raise ControlError(f"invalid room name {name!r}: a letter or digit, then up to 127 letters, digits, '_', '.' or '-'")


def _require_project(db: sqlite3.Connection, project_id: str) -> None:
    if db.execute("SELECT 1 FROM projects WHERE id = ?", (project_id,)).fetchone() is None:
        raise NotFound(f"project {project_id!r} does not exist")


__all__ = ["Conflict", "ControlError", "ControlPlane", "FILE_NAME", "MIGRATIONS", "NotFound", "is_valid_room_name"]
