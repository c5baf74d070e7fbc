"""The seed's project, room and agent secrets (protocol/rest.md §9): one sealed value each (see
`secret_crypto`), in the table `scoped_secrets` (made by the secrets component's migration,
`SCOPED_MIGRATION`).

A secret belongs to a scope: its project, a room (by the room's id, so a renamed room keeps its
secrets) or an agent. A room or agent secret is addressed by its id and `delegated_to` (the
participant it is kept for; none by default), so the same id may hold one value per delegate.
Its id is the caller's `secret_id` or a new one, its name defaults to its id and its type to
`opaque`. A project secret's name is unique in its project.
"""

from __future__ import annotations

import base64
import sqlite3
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from meshagent_core.rest.secrets import ManagedSecret, ManagedSecretInfo

from .common import Conflict, NotFound, now_iso, require_project
from .secret_crypto import SecretBox, check_text

if TYPE_CHECKING:
    from .plane import ControlPlane

SCOPED_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE scoped_secrets (
        row_id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        scope_type TEXT NOT NULL CHECK (scope_type IN ('project', 'room', 'agent')),
        scope_id TEXT NOT NULL,
        id TEXT NOT NULL,
        delegated_to TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        sealed BLOB NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (scope_type, scope_id, id, delegated_to)
    )""",
    """CREATE TRIGGER scoped_secrets_of_deleted_rooms AFTER DELETE ON rooms BEGIN
        DELETE FROM scoped_secrets WHERE scope_type = 'room' AND scope_id = OLD.id;
    END""",
    """CREATE TRIGGER scoped_secrets_of_deleted_agents AFTER DELETE ON agents BEGIN
        DELETE FROM scoped_secrets WHERE scope_type = 'agent' AND scope_id = OLD.id;
    END""",
)

DEFAULT_TYPE = "opaque"


@dataclass(frozen=True)
class Scope:
    """Where a seed secret lives: `project` (`key` unused), `room` (`key` = the room's name) or
    `agent` (`key` = the agent's id)."""

    type: Literal["project", "room", "agent"]
    key: str = ""

    def describe(self) -> str:
        return f"{self.type} secret" if self.type == "project" else f"{self.type} {self.key!r} secret"


def _scope_id(db: sqlite3.Connection, project_id: str, scope: Scope) -> str:
    """The stored id of the scope (404 naming a missing project, room or agent)."""
    require_project(db, project_id)
    if scope.type == "project":
        return project_id
    if scope.type == "room":
        row = db.execute("SELECT id FROM rooms WHERE project_id = ? AND name = ?", (project_id, scope.key)).fetchone()
    else:
        row = db.execute("SELECT id FROM agents WHERE project_id = ? AND id = ?", (project_id, scope.key)).fetchone()
    if row is None:
        raise NotFound(f"{scope.type} {scope.key!r} does not exist")
    return row[0]  # type: ignore[no-any-return]


def _context(row_id: str) -> str:
    return f"scoped-secret:{row_id}"


def _info(row: tuple[Any, ...]) -> ManagedSecretInfo:
    id, delegated_to, name, type = row[:4]
    return ManagedSecretInfo(id=id, type=type, name=name, delegated_to=delegated_to or None)


def _check_fields(**fields: str | None) -> None:
    for field, value in fields.items():
        if value is not None:
            check_text(value, field, 64 if field == "type" else 256)


def _missing(scope: Scope, secret_id: str, delegated_to: str) -> NotFound:
    delegate = f" for {delegated_to!r}" if delegated_to else ""
    return NotFound(f"{scope.describe()} {secret_id!r}{delegate} does not exist")


class ScopedSecrets:
    def __init__(self, plane: "ControlPlane", box: SecretBox) -> None:
        self.plane = plane
        self.box = box

    def _find(self, db: sqlite3.Connection, project_id: str, scope: Scope, secret_id: str, delegated_to: str) -> tuple[str, tuple[Any, ...]]:
        scope_id = _scope_id(db, project_id, scope)
        row = db.execute(
            "SELECT id, delegated_to, name, type, row_id, sealed FROM scoped_secrets WHERE scope_type = ? AND scope_id = ? AND id = ? AND delegated_to = ?",
            (scope.type, scope_id, secret_id, delegated_to),
        ).fetchone()
        if row is None:
            raise _missing(scope, secret_id, delegated_to)
        return scope_id, row

    def _check_project_name_free(self, db: sqlite3.Connection, project_id: str, scope: Scope, name: str, except_id: str = "") -> None:
        if scope.type == "project" and db.execute(
            "SELECT 1 FROM scoped_secrets WHERE scope_type = 'project' AND scope_id = ? AND name = ? AND id != ?", (project_id, name, except_id)
        ).fetchone():
            raise Conflict(f"project secret {name!r} already exists")

    async def create(
        self, project_id: str, scope: Scope, value: bytes, *, secret_id: str | None = None, name: str | None = None, type: str | None = None, delegated_to: str = ""
    ) -> str:
        """The new secret's id (409 if the scope has it already, for this delegate)."""
        _check_fields(secret_id=secret_id, name=name, type=type)
        id = secret_id or str(uuid.uuid4())
        row_id = str(uuid.uuid4())
        sealed = self.box.seal(value, _context(row_id))
        now = now_iso()

        def work(db: sqlite3.Connection) -> None:
            scope_id = _scope_id(db, project_id, scope)
            self._check_project_name_free(db, project_id, scope, name or id)
            try:
                db.execute(
                    "INSERT INTO scoped_secrets (row_id, project_id, scope_type, scope_id, id, delegated_to, name, type, sealed, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (row_id, project_id, scope.type, scope_id, id, delegated_to, name or id, type or DEFAULT_TYPE, sealed, now, now),
                )
            except sqlite3.IntegrityError:
                delegate = f" for {delegated_to!r}" if delegated_to else ""
                raise Conflict(f"{scope.describe()} {id!r}{delegate} already exists") from None

        await self.plane.run(work)
        return id

    async def list(self, project_id: str, scope: Scope) -> list[ManagedSecretInfo]:
        """Every secret of the scope (all delegates), without values, by name."""

        def work(db: sqlite3.Connection) -> list[ManagedSecretInfo]:
            scope_id = _scope_id(db, project_id, scope)
            rows = db.execute(
                "SELECT id, delegated_to, name, type FROM scoped_secrets WHERE scope_type = ? AND scope_id = ? ORDER BY name, id, delegated_to",
                (scope.type, scope_id),
            ).fetchall()
            return [_info(row) for row in rows]

        return await self.plane.run(work)

    async def get(self, project_id: str, scope: Scope, secret_id: str, *, delegated_to: str = "") -> ManagedSecret:
        def work(db: sqlite3.Connection) -> ManagedSecret:
            _, row = self._find(db, project_id, scope, secret_id, delegated_to)
            value = self.box.open(row[5], _context(row[4]), f"{scope.describe()} {secret_id!r}")
            info = _info(row)
            return ManagedSecret(id=info.id, type=info.type, name=info.name, delegated_to=info.delegated_to, data_base64=base64.b64encode(value).decode())

        return await self.plane.run(work)

    async def update(
        self, project_id: str, scope: Scope, secret_id: str, value: bytes, *, name: str | None = None, type: str | None = None, delegated_to: str = ""
    ) -> None:
        """Replaces the value, and the name and type given."""
        _check_fields(name=name, type=type)

        def work(db: sqlite3.Connection) -> None:
            _, row = self._find(db, project_id, scope, secret_id, delegated_to)
            if name is not None:
                self._check_project_name_free(db, project_id, scope, name, except_id=secret_id)
            db.execute(
                "UPDATE scoped_secrets SET sealed = ?, name = ?, type = ?, updated_at = ? WHERE row_id = ?",
                (self.box.seal(value, _context(row[4])), name or row[2], type or row[3], now_iso(), row[4]),
            )

        await self.plane.run(work)

    async def delete(self, project_id: str, scope: Scope, secret_id: str, *, delegated_to: str = "") -> None:
        def work(db: sqlite3.Connection) -> None:
            _, row = self._find(db, project_id, scope, secret_id, delegated_to)
            db.execute("DELETE FROM scoped_secrets WHERE row_id = ?", (row[4],))

        await self.plane.run(work)


__all__ = ["DEFAULT_TYPE", "SCOPED_MIGRATION", "Scope", "ScopedSecrets"]
