"""Service accounts and their API keys, per project (protocol/rest.md §14), and the live key ring.

An API key's secret is stored as is, in `control.db`: the server must keep it to verify the
participant JWTs signed with it (HS256 is symmetric), so a hash would not do. The data
directory is the trust boundary, as it is for `credentials.json` (the server's own key). The
`ma-…` string is shown once, by `create_api_key`; listings never show it.

`ring` holds the keys the server trusts now (see `auth.KeyRing`): loaded from `control.db`
when the store is made, and updated after each committed mutation, so a key is accepted from
the moment `create_api_key` answers and refused from the moment its deletion answers.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from meshagent_core.rest.models import ApiKeyInfo, ServiceAccount
from meshagent_core.tokens import ApiKey, encode_api_key

from ..auth import KeyRing, TrustedKey
from .common import Conflict, ControlError, NotFound, key_page, now_iso, require_project

if TYPE_CHECKING:
    from pathlib import Path

    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE service_accounts (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            key TEXT NOT NULL,
            display_name TEXT,
            description TEXT NOT NULL,
            metadata TEXT NOT NULL,
            annotations TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (project_id, name),
            UNIQUE (project_id, key)
        )""",
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            service_account_id TEXT NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            secret TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
    ),
]

_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ACCOUNT_COLUMNS = "id, project_id, name, key, display_name, description, metadata, annotations, created_at, updated_at"
_KEY_COLUMNS = "id, project_id, service_account_id, name, description, created_at"


def service_account_email(name: str, project_id: str) -> str:
    return f"{name}@service.{project_id}.local"


def check_account_name(name: str) -> None:
    """A service account's name is the local part of its e-mail: a letter or digit, then up to
    62 letters, digits, `_`, `.` or `-`."""
    if not _ACCOUNT_NAME.match(name):
        raise ControlError(f"invalid service account name {name!r}: a letter or digit, then up to 62 letters, digits, '_', '.' or '-'")


def _account(row: tuple[Any, ...]) -> ServiceAccount:
    id, project_id, name, key, display_name, description, metadata, annotations, created_at, updated_at = row
    return ServiceAccount(
        id=id,
        project_id=project_id,
        key=key,
        name=name,
        email=service_account_email(name, project_id),
        display_name=display_name,
        description=description,
        metadata=msgspec.json.decode(metadata),
        annotations=msgspec.json.decode(annotations),
        created_at=created_at,
        updated_at=updated_at,
    )


def _key_info(row: tuple[Any, ...]) -> ApiKeyInfo:
    id, project_id, service_account_id, name, description, created_at = row
    return ApiKeyInfo(id=id, name=name, description=description, project_id=project_id, service_account_id=service_account_id, created_at=created_at)


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _trusted_keys(db: sqlite3.Connection, where: str = "", parameters: tuple[Any, ...] = ()) -> list[TrustedKey]:
    rows = db.execute(f"SELECT id, project_id, secret, service_account_id FROM api_keys {where}", parameters).fetchall()
    return [TrustedKey(id, project_id, secret, service_account_id) for id, project_id, secret, service_account_id in rows]


def _load_ring(ring: KeyRing, path: "Path") -> None:
    """The keys stored in `control.db`, if it exists and has them (a fresh data directory, or
    one made before keys existed, has none yet)."""
    if not path.exists():
        return
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        ring.add(_trusted_keys(db))
    except sqlite3.OperationalError:  # no api_keys table yet: migrations have not run
        pass
    finally:
        db.close()


def _require_account(db: sqlite3.Connection, project_id: str, service_account_id: str) -> tuple[Any, ...]:
    require_project(db, project_id)
    row = db.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM service_accounts WHERE project_id = ? AND id = ?", (project_id, service_account_id)).fetchone()
    if row is None:
        raise NotFound(f"service account {service_account_id!r} does not exist")
    return row  # type: ignore[no-any-return]


def _check_unique(db: sqlite3.Connection, project_id: str, name: str, key: str | None, except_id: str = "") -> None:
    if db.execute("SELECT 1 FROM service_accounts WHERE project_id = ? AND name = ? AND id != ?", (project_id, name, except_id)).fetchone():
        raise Conflict(f"service account {name!r} already exists")
    if key is not None and db.execute("SELECT 1 FROM service_accounts WHERE project_id = ? AND key = ? AND id != ?", (project_id, key, except_id)).fetchone():
        raise Conflict(f"a service account with key {key!r} already exists")


class KeyStore:
    """Service accounts and API keys in `control.db`, and `ring`, the keys trusted now."""

    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane
        self.ring = KeyRing(plane.config.credentials)
        _load_ring(self.ring, plane.store.path)

    # --- service accounts -------------------------------------------------------------------

    async def create_service_account(
        self,
        project_id: str,
        *,
        name: str,
        description: str,
        key: str | None = None,
        display_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> ServiceAccount:
        """`key` (the account's stable short identifier) defaults to its name."""
        check_account_name(name)
        now = now_iso()
        row = (str(uuid.uuid4()), project_id, name, key or name, display_name, description, _json(metadata or {}), _json(annotations or {}), now, now)

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            _check_unique(db, project_id, name, key or name)
            db.execute(f"INSERT INTO service_accounts ({_ACCOUNT_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row)

        await self.plane.run(work)
        return _account(row)

    async def get_service_account(self, project_id: str, service_account_id: str) -> ServiceAccount:
        return _account(await self.plane.run(lambda db: _require_account(db, project_id, service_account_id)))

    async def get_service_account_by_name(self, project_id: str, name: str) -> ServiceAccount:
        def work(db: sqlite3.Connection) -> tuple[Any, ...]:
            require_project(db, project_id)
            row = db.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM service_accounts WHERE project_id = ? AND name = ?", (project_id, name)).fetchone()
            if row is None:
                raise NotFound(f"service account {name!r} does not exist")
            return row  # type: ignore[no-any-return]

        return _account(await self.plane.run(work))

    async def list_service_accounts(self, project_id: str, *, page_size: int, after: str | None) -> tuple[list[ServiceAccount], str | None]:
        """One page, by name, after the name `after`; (accounts, next token or None)."""

        def work(db: sqlite3.Connection) -> tuple[list[ServiceAccount], str | None]:
            require_project(db, project_id)
            accounts, _, next_token = key_page(db, "service_accounts", _ACCOUNT_COLUMNS, _account, project_id=project_id, after=after, page_size=page_size)
            return accounts, next_token

        return await self.plane.run(work)

    async def update_service_account(
        self,
        project_id: str,
        service_account_id: str,
        *,
        name: str,
        description: str,
        display_name: Any = msgspec.UNSET,
        metadata: Any = msgspec.UNSET,
        annotations: Any = msgspec.UNSET,
    ) -> None:
        """Sets `name` and `description`, and the other fields only when given."""
        check_account_name(name)
        changes: dict[str, Any] = {"name": name, "description": description, "updated_at": now_iso()}
        if display_name is not msgspec.UNSET:
            changes["display_name"] = display_name
        for column, value in (("metadata", metadata), ("annotations", annotations)):
            if value is not msgspec.UNSET:
                changes[column] = _json(value or {})

        def work(db: sqlite3.Connection) -> None:
            _require_account(db, project_id, service_account_id)
            _check_unique(db, project_id, name, None, except_id=service_account_id)
            assignments = ", ".join(f"{column} = ?" for column in changes)
            db.execute(f"UPDATE service_accounts SET {assignments} WHERE id = ?", (*changes.values(), service_account_id))

        await self.plane.run(work)

    async def delete_service_account(self, project_id: str, service_account_id: str) -> None:
        """Deletes the account and its keys (refused from then on)."""

        def work(db: sqlite3.Connection) -> list[str]:
            _require_account(db, project_id, service_account_id)
            key_ids = [key.id for key in _trusted_keys(db, "WHERE service_account_id = ?", (service_account_id,))]
            db.execute("DELETE FROM api_keys WHERE service_account_id = ?", (service_account_id,))
            db.execute("DELETE FROM service_accounts WHERE id = ?", (service_account_id,))
            return key_ids

        self.ring.remove(await self.plane.run(work))

    # --- API keys ---------------------------------------------------------------------------

    async def create_api_key(self, project_id: str, service_account_id: str, *, name: str, description: str) -> ApiKeyInfo:
        """A new key of the service account, trusted from now on; `value` is its `ma-…` string."""
        key = TrustedKey(str(uuid.uuid4()), project_id, secrets.token_urlsafe(32), service_account_id)
        created_at = now_iso()

        def work(db: sqlite3.Connection) -> None:
            _require_account(db, project_id, service_account_id)
            db.execute(
                "INSERT INTO api_keys (id, project_id, service_account_id, name, description, secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key.id, project_id, service_account_id, name, description, key.secret, created_at),
            )

        await self.plane.run(work)
        self.ring.add([key])
        info = _key_info((key.id, project_id, service_account_id, name, description, created_at))
        info.value = encode_api_key(ApiKey(id=key.id, project_id=project_id, secret=key.secret))
        return info

    async def list_api_keys(self, project_id: str, service_account_id: str) -> list[ApiKeyInfo]:
        def work(db: sqlite3.Connection) -> list[ApiKeyInfo]:
            _require_account(db, project_id, service_account_id)
            rows = db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE service_account_id = ? ORDER BY created_at, id", (service_account_id,)).fetchall()
            return [_key_info(row) for row in rows]

        return await self.plane.run(work)

    async def delete_api_key(self, project_id: str, service_account_id: str, key_id: str) -> None:
        """Deletes the key: refused from now on, as a REST bearer and for signing tokens."""

        def work(db: sqlite3.Connection) -> None:
            _require_account(db, project_id, service_account_id)
            if db.execute("DELETE FROM api_keys WHERE id = ? AND service_account_id = ?", (key_id, service_account_id)).rowcount == 0:
                raise NotFound(f"API key {key_id!r} does not exist")

        await self.plane.run(work)
        self.ring.remove([key_id])

    async def require_service_account(self, project_id: str, service_account_id: str) -> None:
        """NotFound (404) unless the project has this service account."""
        await self.plane.run(lambda db: _require_account(db, project_id, service_account_id))


__all__ = ["KeyStore", "MIGRATIONS", "check_account_name", "service_account_email"]
