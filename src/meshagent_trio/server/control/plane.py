"""The control plane's database: what REST makes (projects, rooms, keys, grants, sessions, …),
in one SQLite file in the data directory (`control.db`).

The schema is versioned from the first release on. The core tables (projects, rooms) by
`PRAGMA user_version` (`MIGRATIONS`); each component store (`keys`, `access`, …) by its own row
of `schema_versions`, with its own append-only list of migrations, applied in the order of
`COMPONENTS` (a component may refer to the tables of the core and of the components before it).

Each mutation is one transaction (`SqliteStore.run`): nothing is half-written. The server's own
project (the one its API key belongs to) exists from the first start.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import msgspec

from meshagent_core.rest.models import ProjectInfo, Room

from ..config import ServerConfig
from ..sqlite_store import SqliteStore
from .accounts import AccountStore
from .access import AccessStore
from .agents import AgentStore
from .common import Conflict, NotFound, check_room_name, key_page, now_iso, require_project
from .keys import KeyStore
from .sessions import SessionStore
from .services import ServicesStore
from .secrets import SecretsStore
from .domains import DomainsStore
from .feeds import FeedsStore
from .llm import LlmStore
from .registries import RegistriesStore
from .oauth import OauthStore
from .mailboxes import MailboxesStore
from .tasks import TasksStore
from .webhooks import WebhooksStore
from .billing import BillingStore
from .files import FilesStore
from .external_oauth import ExternalOAuthStore

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
    ("CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",),
]

#: The component stores' migrations, by component, in the order they are applied. Each list is
#: append-only, like `MIGRATIONS`. Filled in by `control/__init__.py` from the component modules.
COMPONENTS: dict[str, list[tuple[str, ...]]] = {}


def _room(row: sqlite3.Row | tuple[Any, ...]) -> Room:
    id, name, metadata, annotations, enabled = row
    return Room(id=id, name=name, metadata=msgspec.json.decode(metadata), annotations=msgspec.json.decode(annotations), enabled=bool(enabled))


class ControlPlane:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.store = SqliteStore(config.data_dir / FILE_NAME, foreign_keys=True)
        self._ready = False
        self.keys = KeyStore(self)
        self.accounts = AccountStore(self)
        self.access = AccessStore(self)
        self.agents = AgentStore(self)
        self.sessions = SessionStore(self)
        self.services = ServicesStore(self)
        self.secrets = SecretsStore(self)
        self.domains = DomainsStore(self)
        self.feeds = FeedsStore(self)
        self.llm = LlmStore(self)
        self.registries = RegistriesStore(self)
        self.oauth = OauthStore(self)
        self.mailboxes = MailboxesStore(self)
        self.tasks = TasksStore(self)
        self.webhooks = WebhooksStore(self)
        self.billing = BillingStore(self)
        self.files = FilesStore(self)
        self.external_oauth = ExternalOAuthStore(self)

    async def run(self, work: Any) -> Any:
        if not self._ready:
            await self.store.run(self._migrate)
            self._ready = True
        return await self.store.run(work)

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(f"{FILE_NAME} has schema version {version}, newer than this server ({len(MIGRATIONS)})")
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                db.execute(statement)
        db.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
        for component, migrations in COMPONENTS.items():
            row = db.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
            applied = 0 if row is None else row[0]
            if applied > len(migrations):
                raise RuntimeError(f"{FILE_NAME}: {component} has schema version {applied}, newer than this server ({len(migrations)})")
            for statements in migrations[applied:]:
                for statement in statements:
                    db.execute(statement)
            db.execute("INSERT OR REPLACE INTO schema_versions (component, version) VALUES (?, ?)", (component, len(migrations)))
        own = self.config.credentials.project_id
        db.execute(
            "INSERT OR IGNORE INTO projects (id, name, project_key, created_at) VALUES (?, ?, NULL, ?)",
            (own, DEFAULT_PROJECT_NAME, now_iso()),
        )
        self.accounts.seed(db)

    # --- projects ---------------------------------------------------------------------------

    def _project(self, id: str, name: str, key: str | None, created_at: str) -> ProjectInfo:
        """A project as REST shows it: owned by the owner user; its key is its id unless one
        was set (see `accounts.project_by_key`)."""
        return ProjectInfo(id=id, name=name, owner_user_id=self.accounts.owner_user().id, project_key=key or id, created_at=created_at)

    async def create_project(self, name: str) -> ProjectInfo:
        project = self._project(str(uuid.uuid4()), name, None, now_iso())

        def work(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?)", (project.id, name, project.created_at))

        await self.run(work)
        return project

    async def list_projects(self) -> list[ProjectInfo]:
        rows = await self.run(lambda db: db.execute("SELECT id, name, project_key, created_at FROM projects ORDER BY created_at, id").fetchall())
        return [self._project(*row) for row in rows]

    async def get_project(self, project_id: str) -> ProjectInfo:
        row = await self.run(lambda db: db.execute("SELECT id, name, project_key, created_at FROM projects WHERE id = ?", (project_id,)).fetchone())
        if row is None:
            raise NotFound(f"project {project_id!r} does not exist")
        return self._project(*row)

    # --- rooms ------------------------------------------------------------------------------

    async def create_room(
        self, project_id: str, name: str, *, if_not_exists: bool, metadata: dict[str, Any] | None, annotations: dict[str, str] | None
    ) -> Room:
        check_room_name(name)

        def work(db: sqlite3.Connection) -> Room:
            require_project(db, project_id)
            row = db.execute("SELECT id, name, metadata, annotations, enabled FROM rooms WHERE project_id = ? AND name = ?", (project_id, name)).fetchone()
            if row is not None:
                if if_not_exists:
                    return _room(row)
                raise Conflict(f"room {name!r} already exists")
            room = Room(id=str(uuid.uuid4()), name=name, metadata=metadata or {}, annotations=annotations or {})
            db.execute(
                "INSERT INTO rooms (id, project_id, name, metadata, annotations, enabled, created_at) VALUES (?, ?, ?, ?, ?, 1, ?)",
                (room.id, project_id, name, msgspec.json.encode(room.metadata).decode(), msgspec.json.encode(room.annotations).decode(), now_iso()),
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
            require_project(db, project_id)
            return key_page(db, "rooms", "id, name, metadata, annotations, enabled", _room, project_id=project_id, after=after, page_size=page_size)

        return await self.run(work)

    async def update_room(
        self, project_id: str, room_id: str, *, name: str, metadata: Any = msgspec.UNSET, annotations: Any = msgspec.UNSET, enabled: Any = msgspec.UNSET
    ) -> None:
        check_room_name(name)

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
            row = db.execute("SELECT name FROM rooms WHERE project_id = ? AND id = ?", (project_id, room_id)).fetchone()
            if row is None:
                raise NotFound(f"room id {room_id!r} does not exist")
            self.sessions.volumes.remove_room_volumes(db, project_id, room_id, row[0])
            db.execute("DELETE FROM rooms WHERE id = ?", (room_id,))  # its policies go too (a trigger)

        await self.run(work)


__all__ = ["COMPONENTS", "ControlPlane", "FILE_NAME", "MIGRATIONS"]
