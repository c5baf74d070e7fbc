"""The control plane's store of the seed's webhooks and shares (protocol/rest.md §17).

Webhooks are stored and checked (a name unique in the project, an absolute http(s) URL, at least
one event); `services.project_webhooks` delivers them.

Each project has one webhook secret (protocol/webhooks.md §5): it signs every webhook the server
sends for the project (`room.call` and project webhooks), and local services get it as
`MESHAGENT_WEBHOOK_SECRET`. It is made at random on first use and kept here; the server's own
project takes `ServerConfig.webhook_secret` instead when that is set (the server's
`MESHAGENT_WEBHOOK_SECRET`), so a developer can give the server and a receiver the same secret.

A share keeps its `settings` as given, after checking the keys the server reads
(`meshagent_core.rest.webhooks.ShareSettings`: a valid room name, and a valid `ApiScope` when
`api` is given). Its id is the secret that `connect_share` takes, so it is long and random.
"""

from __future__ import annotations

import secrets
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from meshagent_core.rest.webhooks import Share, ShareSettings, Webhook
from meshagent_core.tokens import ApiScope

from . import webhook_outbox
from .common import Conflict, ControlError, NotFound, check_room_name, now_iso, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE webhooks (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            url TEXT NOT NULL,
            events TEXT NOT NULL,
            description TEXT NOT NULL,
            action TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (project_id, name)
        )""",
        """CREATE TABLE room_shares (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            settings TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
    ),
    (
        """CREATE TABLE project_webhook_secrets (
            project_id TEXT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
            secret TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
    ),
    (webhook_outbox.TABLE, webhook_outbox.INDEX),
]

_WEBHOOK_COLUMNS = "id, project_id, name, url, events, description, action, payload, created_at, updated_at"
MAX_NAME_LENGTH = 256


def _webhook(row: tuple[Any, ...]) -> Webhook:
    id, project_id, name, url, events, description, action, payload, created_at, updated_at = row
    return Webhook(
        id=id,
        project_id=project_id,
        name=name,
        url=url,
        events=msgspec.json.decode(events),
        description=description,
        action=action,
        payload=payload,
        created_at=created_at,
        updated_at=updated_at,
    )


def check_webhook(method: str, name: str, url: str, events: list[str]) -> None:
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise ControlError(f"{method}: name must be 1 to {MAX_NAME_LENGTH} characters, not only spaces")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ControlError(f"{method}: url must be an absolute http:// or https:// URL, not {url!r}")
    if not events or any(not event.strip() for event in events):
        raise ControlError(f"{method}: events must name at least one event (e.g. room.started), none of them empty")


def share_settings(method: str, settings: Any) -> ShareSettings:
    """The settings the server reads from a share's `settings` (400 naming the key)."""
    if not isinstance(settings, dict):
        raise ControlError(f"{method}: settings is required: an object naming the shared room (settings.room)")
    try:
        read = msgspec.convert(settings, ShareSettings)
    except msgspec.ValidationError as error:
        raise ControlError(f"{method}: settings: {error}") from None
    try:
        check_room_name(read.room)
    except ControlError as error:
        raise ControlError(f"{method}: settings.room: {error}") from None
    if read.api is not None:
        try:
            ApiScope.from_json(read.api)
        except ValueError as error:
            raise ControlError(f"{method}: settings.api: {error}") from None
    if not read.role.strip() or not read.name.strip():
        raise ControlError(f"{method}: settings.role and settings.name must not be empty")
    return read


class WebhooksStore:
    """Webhooks and shares in `control.db`."""

    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane
        self._secrets: dict[str, str] = {}
        #: the project webhooks waiting to be delivered
        self.outbox = webhook_outbox.WebhookOutbox(plane)

    async def project_secret(self, project_id: str) -> str:
        """The project's webhook secret, made on first use (see the module's docstring)."""
        known = self._secrets.get(project_id)
        if known is not None:
            return known
        configured = self.plane.config.webhook_secret
        if configured and project_id == self.plane.config.credentials.project_id:
            self._secrets[project_id] = configured
            return configured

        def work(db: sqlite3.Connection) -> str:
            require_project(db, project_id)
            row = db.execute("SELECT secret FROM project_webhook_secrets WHERE project_id = ?", (project_id,)).fetchone()
            if row is not None:
                return str(row[0])
            secret = secrets.token_urlsafe(32)
            db.execute("INSERT INTO project_webhook_secrets (project_id, secret, created_at) VALUES (?, ?, ?)", (project_id, secret, now_iso()))
            return secret

        secret = await self.plane.run(work)
        self._secrets[project_id] = secret
        return secret  # type: ignore[no-any-return]

    # --- webhooks ---------------------------------------------------------------------------

    async def create_webhook(self, project_id: str, *, name: str, url: str, events: list[str], description: str, action: str, payload: str) -> Webhook:
        check_webhook("create_webhook", name, url, events)
        now = now_iso()
        webhook = Webhook(
            id=str(uuid.uuid4()), project_id=project_id, name=name, url=url, events=events, description=description,
            action=action, payload=payload, created_at=now, updated_at=now,
        )  # fmt: skip

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            if db.execute("SELECT 1 FROM webhooks WHERE project_id = ? AND name = ?", (project_id, name)).fetchone():
                raise Conflict(f"webhook {name!r} already exists")
            db.execute(
                f"INSERT INTO webhooks ({_WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (webhook.id, project_id, name, url, msgspec.json.encode(events).decode(), description, action, payload, now, now),
            )

        await self.plane.run(work)
        return webhook

    async def list_webhooks(self, project_id: str) -> list[Webhook]:
        def work(db: sqlite3.Connection) -> list[Webhook]:
            require_project(db, project_id)
            rows = db.execute(f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE project_id = ? ORDER BY created_at, id", (project_id,)).fetchall()
            return [_webhook(row) for row in rows]

        return await self.plane.run(work)  # type: ignore[no-any-return]

    async def update_webhook(
        self, project_id: str, webhook_id: str, *, name: str, url: str, events: list[str], description: str, action: str, payload: str
    ) -> Webhook:
        check_webhook("update_webhook", name, url, events)

        def work(db: sqlite3.Connection) -> Webhook:
            require_project(db, project_id)
            if db.execute("SELECT 1 FROM webhooks WHERE project_id = ? AND id = ?", (project_id, webhook_id)).fetchone() is None:
                raise NotFound(f"webhook {webhook_id!r} does not exist")
            if db.execute("SELECT 1 FROM webhooks WHERE project_id = ? AND name = ? AND id != ?", (project_id, name, webhook_id)).fetchone():
                raise Conflict(f"webhook {name!r} already exists")
            db.execute(
                "UPDATE webhooks SET name = ?, url = ?, events = ?, description = ?, action = ?, payload = ?, updated_at = ? WHERE id = ?",
                (name, url, msgspec.json.encode(events).decode(), description, action, payload, now_iso(), webhook_id),
            )
            return _webhook(db.execute(f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?", (webhook_id,)).fetchone())

        return await self.plane.run(work)  # type: ignore[no-any-return]

    async def delete_webhook(self, project_id: str, webhook_id: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            if db.execute("DELETE FROM webhooks WHERE project_id = ? AND id = ?", (project_id, webhook_id)).rowcount == 0:
                raise NotFound(f"webhook {webhook_id!r} does not exist")

        await self.plane.run(work)

    # --- shares -----------------------------------------------------------------------------

    async def create_share(self, project_id: str, settings: Any) -> Share:
        share_settings("create_share", settings)
        share = Share(id=secrets.token_urlsafe(24), project_id=project_id, settings=settings)

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            now = now_iso()
            db.execute(
                "INSERT INTO room_shares (id, project_id, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (share.id, project_id, msgspec.json.encode(settings).decode(), now, now),
            )

        await self.plane.run(work)
        return share

    async def list_shares(self, project_id: str) -> list[Share]:
        def work(db: sqlite3.Connection) -> list[Share]:
            require_project(db, project_id)
            rows = db.execute("SELECT id, settings FROM room_shares WHERE project_id = ? ORDER BY created_at, id", (project_id,)).fetchall()
            return [Share(id=id, project_id=project_id, settings=msgspec.json.decode(settings)) for id, settings in rows]

        return await self.plane.run(work)  # type: ignore[no-any-return]

    async def update_share(self, project_id: str, share_id: str, settings: Any) -> Share:
        share_settings("update_share", settings)

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            updated = db.execute(
                "UPDATE room_shares SET settings = ?, updated_at = ? WHERE project_id = ? AND id = ?",
                (msgspec.json.encode(settings).decode(), now_iso(), project_id, share_id),
            )
            if updated.rowcount == 0:
                raise NotFound(f"share {share_id!r} does not exist")

        await self.plane.run(work)
        return Share(id=share_id, project_id=project_id, settings=settings)

    async def delete_share(self, project_id: str, share_id: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            if db.execute("DELETE FROM room_shares WHERE project_id = ? AND id = ?", (project_id, share_id)).rowcount == 0:
                raise NotFound(f"share {share_id!r} does not exist")

        await self.plane.run(work)

    async def get_share(self, share_id: str) -> Share:
        """The share of any project with this id (`connect_share` names no project)."""
        row = await self.plane.run(lambda db: db.execute("SELECT id, project_id, settings FROM room_shares WHERE id = ?", (share_id,)).fetchone())
        if row is None:
            raise NotFound(f"share {share_id!r} does not exist")
        return Share(id=row[0], project_id=row[1], settings=msgspec.json.decode(row[2]))


__all__ = ["MAX_NAME_LENGTH", "MIGRATIONS", "WebhooksStore", "check_webhook", "share_settings"]
