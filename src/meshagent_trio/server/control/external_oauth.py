"""The control plane's store of external OAuth registrations (protocol/rest.md §16): OAuth
clients a project, or one room of it, holds at other services. Names are unique per project
(project registrations) or per room; endpoints must be absolute http(s) URLs.

The client secret is kept in `control.db` to be used, and never shown again (answers say
`has_client_secret`); the data directory is the trust boundary, as for API key secrets.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET

from meshagent_core.rest.external_oauth import ExternalOAuthRegistration, ExternalOAuthRegistrationBody

from .common import Conflict, ControlError, NotFound, check_room_name, now_iso, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE external_oauth_registrations (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            room_name TEXT NOT NULL,
            name TEXT NOT NULL,
            client_id TEXT NOT NULL,
            client_secret TEXT,
            authorization_endpoint TEXT NOT NULL,
            token_endpoint TEXT NOT NULL,
            no_pkce INTEGER NOT NULL,
            scopes TEXT NOT NULL,
            server_url TEXT,
            annotations TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (project_id, room_name, name)
        )""",
    ),
]

#: `room_name` of a project registration (a room name is never empty)
PROJECT_WIDE = ""
_COLUMNS = (
    "id, project_id, room_name, name, client_id, client_secret, authorization_endpoint, token_endpoint, no_pkce, scopes, "
    "server_url, annotations, created_at, updated_at"
)


def _registration(row: tuple[Any, ...]) -> ExternalOAuthRegistration:
    id, project_id, room, name, client_id, secret, authorize, token, no_pkce, scopes, server_url, annotations, created_at, updated_at = row
    return ExternalOAuthRegistration(
        id=id, project_id=project_id, room_name=room or None, name=name, client_id=client_id, has_client_secret=secret is not None,
        authorization_endpoint=authorize, token_endpoint=token, no_pkce=bool(no_pkce), scopes=msgspec.json.decode(scopes),
        server_url=server_url, annotations=msgspec.json.decode(annotations), created_at=created_at, updated_at=updated_at,
    )  # fmt: skip


def _url(value: str, field: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ControlError(f"{field}: {value!r} is not an absolute http(s) URL")
    return value.strip()


def _checked(body: ExternalOAuthRegistrationBody) -> dict[str, Any]:
    """The columns of a registration's fields (ControlError naming a bad field); the secret
    only when given."""
    name, client_id = body.name.strip(), body.client_id.strip()
    if not name:
        raise ControlError("name must not be empty")
    if not client_id:
        raise ControlError("client_id must not be empty")
    scopes = [scope.strip() for scope in body.scopes]
    if any(not scope or " " in scope for scope in scopes):
        raise ControlError("scopes: a scope is a non-empty word without spaces")
    columns: dict[str, Any] = {
        "name": name,
        "client_id": client_id,
        "authorization_endpoint": _url(body.authorization_endpoint, "authorization_endpoint"),
        "token_endpoint": _url(body.token_endpoint, "token_endpoint"),
        "no_pkce": int(body.no_pkce),
        "scopes": msgspec.json.encode(list(dict.fromkeys(scopes))).decode(),
        "server_url": None if body.server_url is UNSET else _url(body.server_url, "server_url"),
        "annotations": msgspec.json.encode(body.annotations).decode(),
    }
    if body.client_secret is not UNSET:
        if not body.client_secret:
            raise ControlError("client_secret must not be empty (leave it out for a public client)")
        columns["client_secret"] = body.client_secret
    return columns


class ExternalOAuthStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    async def create(self, project_id: str, room: str | None, body: ExternalOAuthRegistrationBody) -> ExternalOAuthRegistration:
        scope = self._scope(room)
        now = now_iso()
        columns = {"id": str(uuid.uuid4()), "project_id": project_id, "room_name": scope, **_checked(body), "created_at": now, "updated_at": now}

        def work(db: sqlite3.Connection) -> ExternalOAuthRegistration:
            require_project(db, project_id)
            self._check_unique(db, project_id, scope, columns["name"])
            db.execute(f"INSERT INTO external_oauth_registrations ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", tuple(columns.values()))
            return self._require(db, project_id, scope, columns["id"])

        return await self.plane.run(work)

    async def update(self, project_id: str, room: str | None, registration_id: str, body: ExternalOAuthRegistrationBody) -> ExternalOAuthRegistration:
        """Replaces the fields; the client secret is kept unless one is given."""
        scope = self._scope(room)
        columns = {**_checked(body), "updated_at": now_iso()}

        def work(db: sqlite3.Connection) -> ExternalOAuthRegistration:
            self._require(db, project_id, scope, registration_id)
            self._check_unique(db, project_id, scope, columns["name"], except_id=registration_id)
            assignments = ", ".join(f"{column} = ?" for column in columns)
            db.execute(f"UPDATE external_oauth_registrations SET {assignments} WHERE id = ?", (*columns.values(), registration_id))
            return self._require(db, project_id, scope, registration_id)

        return await self.plane.run(work)

    async def list_registrations(self, project_id: str, room: str | None) -> list[ExternalOAuthRegistration]:
        scope = self._scope(room)

        def work(db: sqlite3.Connection) -> list[ExternalOAuthRegistration]:
            require_project(db, project_id)
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM external_oauth_registrations WHERE project_id = ? AND room_name = ? ORDER BY name", (project_id, scope)
            ).fetchall()
            return [_registration(row) for row in rows]

        return await self.plane.run(work)

    async def delete(self, project_id: str, room: str | None, registration_id: str) -> None:
        scope = self._scope(room)

        def work(db: sqlite3.Connection) -> None:
            self._require(db, project_id, scope, registration_id)
            db.execute("DELETE FROM external_oauth_registrations WHERE id = ?", (registration_id,))

        await self.plane.run(work)

    async def client_secret(self, project_id: str, room: str | None, registration_id: str) -> str | None:
        """The stored secret, for the server's own use (a connection signing in)."""
        scope = self._scope(room)

        def work(db: sqlite3.Connection) -> str | None:
            self._require(db, project_id, scope, registration_id)
            return db.execute("SELECT client_secret FROM external_oauth_registrations WHERE id = ?", (registration_id,)).fetchone()[0]  # type: ignore[no-any-return]

        return await self.plane.run(work)

    @staticmethod
    def _scope(room: str | None) -> str:
        if room is None:
            return PROJECT_WIDE
        check_room_name(room)
        return room

    @staticmethod
    def _require(db: sqlite3.Connection, project_id: str, scope: str, registration_id: str) -> ExternalOAuthRegistration:
        require_project(db, project_id)
        row = db.execute(
            f"SELECT {_COLUMNS} FROM external_oauth_registrations WHERE project_id = ? AND room_name = ? AND id = ?", (project_id, scope, registration_id)
        ).fetchone()
        if row is None:
            where = f" in room {scope!r}" if scope else ""
            raise NotFound(f"external OAuth registration {registration_id!r} does not exist{where}")
        return _registration(row)

    @staticmethod
    def _check_unique(db: sqlite3.Connection, project_id: str, scope: str, name: str, except_id: str = "") -> None:
        if db.execute(
            "SELECT 1 FROM external_oauth_registrations WHERE project_id = ? AND room_name = ? AND name = ? AND id != ?", (project_id, scope, name, except_id)
        ).fetchone():
            raise Conflict(f"external OAuth registration {name!r} already exists" + (f" in room {scope!r}" if scope else ""))


__all__ = ["ExternalOAuthStore", "MIGRATIONS"]
