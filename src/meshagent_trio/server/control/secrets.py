"""The control plane's store of secrets (protocol/rest.md §9): the 0.56 user and service-account
secrets with their versions, proxy access grants and pull secrets; the seed's project, room and
agent secrets are `scoped` (`scoped_secrets`). Values are sealed (`secret_crypto`: AES-256-GCM
under `<data_dir>/secrets.key`); `control.db` never holds one in plain form.

Tables:

- `owned_secrets`: a secret's metadata, its owner (`owner_kind` `user` or `service_account`,
  `owner_id`) and project; its name is unique per owner and project. `next_version` numbers the
  versions (never reused); `current_version_id` is the version `get_*_secret(include_value)` and
  `access_*_secret_version(version_id="latest")` give.
- `secret_versions`: the sealed values, numbered from 1. Deleting the current version makes the
  newest remaining one current (none: no current version).
- `secret_proxy_grants`: the service accounts a user secret grants `use_proxy` to.
- `service_account_pull_secrets`: the secrets (of the account itself) a service account pulls
  images with.

Deleting a service account deletes its secrets, its proxy grants and its pull-secret links (a
trigger on `service_accounts`, the keys store's table); deleting a room or an agent deletes its
seed secrets (triggers on `rooms` and `agents`).

Lists are ordered by name, then id; a continuation token is the last (name, id) of its page.
A `filter` is a case-insensitive substring of the name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import sqlite3
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from meshagent_core.rest.access import AccessSubject
from meshagent_core.rest.secrets import (
    SEARCH_METADATA_KEYS,
    USE_PROXY,
    Secret,
    SecretProxyAccessGrant,
    SecretVersion,
    SecretVersionValue,
)

from .common import ControlError, NotFound, Conflict, now_iso, require_project
from .keys import service_account_email
from .scoped_secrets import SCOPED_MIGRATION, ScopedSecrets
from .secret_crypto import KEY_FILE_NAME, SecretBox, check_text

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE owned_secrets (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            owner_kind TEXT NOT NULL CHECK (owner_kind IN ('user', 'service_account')),
            owner_id TEXT NOT NULL,
            created_by_user_id TEXT,
            created_by_service_account_id TEXT,
            type TEXT NOT NULL,
            name TEXT NOT NULL,
            http_only INTEGER NOT NULL,
            metadata TEXT NOT NULL,
            annotations TEXT NOT NULL,
            current_version_id TEXT,
            next_version INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (owner_kind, owner_id, project_id, name)
        )""",
        """CREATE TABLE secret_versions (
            id TEXT PRIMARY KEY,
            secret_id TEXT NOT NULL REFERENCES owned_secrets(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            sealed BLOB NOT NULL,
            created_by_user_id TEXT,
            created_by_service_account_id TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (secret_id, version)
        )""",
        """CREATE TABLE secret_proxy_grants (
            secret_id TEXT NOT NULL REFERENCES owned_secrets(id) ON DELETE CASCADE,
            service_account_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (secret_id, service_account_id)
        )""",
        """CREATE TABLE service_account_pull_secrets (
            service_account_id TEXT NOT NULL,
            secret_id TEXT NOT NULL REFERENCES owned_secrets(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            PRIMARY KEY (service_account_id, secret_id)
        )""",
        """CREATE TRIGGER secrets_of_deleted_service_accounts AFTER DELETE ON service_accounts BEGIN
            DELETE FROM owned_secrets WHERE owner_kind = 'service_account' AND owner_id = OLD.id;
            DELETE FROM secret_proxy_grants WHERE service_account_id = OLD.id;
            DELETE FROM service_account_pull_secrets WHERE service_account_id = OLD.id;
        END""",
        *SCOPED_MIGRATION,
    ),
]

_COLUMNS = (
    "id, project_id, owner_kind, owner_id, created_by_user_id, created_by_service_account_id, type, name, http_only, "
    "metadata, annotations, current_version_id, created_at, updated_at"
)
#: Positions in a row of `_COLUMNS`.
_PROJECT, _CURRENT = 1, 11
_VERSION_COLUMNS = "id, secret_id, version, sealed, created_by_user_id, created_by_service_account_id, created_at"
MAX_PAGE_SIZE = 1000
#: What `access_*_secret_version` takes for the current version.
LATEST = "latest"


@dataclass(frozen=True)
class SecretOwner:
    """Whose secrets: a user's (in any project), or a service account's (of `project_id`)."""

    kind: Literal["user", "service_account"]
    id: str
    project_id: str | None = None


@dataclass(frozen=True)
class Author:
    """Who makes a secret or a version: a user or a service account."""

    user_id: str | None = None
    service_account_id: str | None = None


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _secret(row: tuple[Any, ...], value_base64: str | None = None) -> Secret:
    (id, project_id, owner_kind, owner_id, by_user, by_account, type, name, http_only, metadata, annotations, current, created_at, updated_at) = row
    return Secret(
        id=id,
        project_id=project_id,
        owner_user_id=owner_id if owner_kind == "user" else None,
        owner_service_account_id=owner_id if owner_kind == "service_account" else None,
        created_by_user_id=by_user,
        created_by_service_account_id=by_account,
        type=type,
        name=name,
        http_only=bool(http_only),
        metadata=msgspec.json.decode(metadata),
        annotations=msgspec.json.decode(annotations),
        current_version_id=current,
        value_base64=value_base64,
        created_at=created_at,
        updated_at=updated_at,
    )


def _version_context(version_id: str) -> str:
    return f"secret-version:{version_id}"


def page_token(name: str, id: str) -> str:
    return base64.urlsafe_b64encode(_json([name, id]).encode()).decode()


def read_page_token(token: str | None) -> tuple[str, str] | None:
    if token is None:
        return None
    try:
        name, id = msgspec.json.decode(base64.urlsafe_b64decode(token.encode()))
        if isinstance(name, str) and isinstance(id, str):
            return name, id
    except (binascii.Error, ValueError, msgspec.DecodeError):
        pass
    raise ControlError(f"continuation_token: {token[:80]!r} is not a token of this list")


def check_page_size(page_size: int) -> int:
    if page_size < 1:
        raise ControlError(f"page_size: {page_size} is not at least 1")
    return min(page_size, MAX_PAGE_SIZE)


def _matches(secret: Secret, criteria: dict[str, Any]) -> bool:
    """Whether `secret` meets every criterion given (see `SecretsStore.search`)."""
    if "filter" in criteria and criteria["filter"].lower() not in secret.name.lower():
        return False
    for field in ("name", "type", "http_only"):
        if field in criteria and getattr(secret, field) != criteria[field]:
            return False
    for field in ("metadata", "annotations"):
        stored = getattr(secret, field)
        if any(stored.get(key) != value for key, value in criteria.get(field, {}).items()):
            return False
    return all(secret.metadata.get(key) == criteria[key] for key in SEARCH_METADATA_KEYS if key in criteria)


def _require_account(db: sqlite3.Connection, project_id: str, service_account_id: str) -> str:
    """The service account's name (404 unless the project has it)."""
    row = db.execute("SELECT name FROM service_accounts WHERE project_id = ? AND id = ?", (project_id, service_account_id)).fetchone()
    if row is None:
        raise NotFound(f"service account {service_account_id!r} does not exist in project {project_id!r}")
    return row[0]  # type: ignore[no-any-return]


def _require_owner(db: sqlite3.Connection, owner: SecretOwner) -> None:
    if owner.kind == "service_account":
        require_project(db, owner.project_id or "")
        _require_account(db, owner.project_id or "", owner.id)
    elif db.execute("SELECT 1 FROM users WHERE id = ?", (owner.id,)).fetchone() is None:
        raise NotFound(f"user {owner.id!r} does not exist")


def _owner_clause(owner: SecretOwner) -> tuple[str, tuple[str, ...]]:
    if owner.project_id is None:
        return "owner_kind = ? AND owner_id = ?", (owner.kind, owner.id)
    return "owner_kind = ? AND owner_id = ? AND project_id = ?", (owner.kind, owner.id, owner.project_id)


def _require_secret(db: sqlite3.Connection, owner: SecretOwner, secret_id: str) -> tuple[Any, ...]:
    _require_owner(db, owner)
    clause, parameters = _owner_clause(owner)
    row = db.execute(f"SELECT {_COLUMNS} FROM owned_secrets WHERE id = ? AND {clause}", (secret_id, *parameters)).fetchone()
    if row is None:
        raise NotFound(f"secret {secret_id!r} does not exist")
    return row  # type: ignore[no-any-return]


def _check_name_free(db: sqlite3.Connection, owner: SecretOwner, project_id: str, name: str, except_id: str = "") -> None:
    taken = db.execute(
        "SELECT 1 FROM owned_secrets WHERE owner_kind = ? AND owner_id = ? AND project_id = ? AND name = ? AND id != ?",
        (owner.kind, owner.id, project_id, name, except_id),
    ).fetchone()
    if taken:
        raise Conflict(f"secret {name!r} already exists")


class SecretsStore:
    """User and service-account secrets (this module) and the seed's scoped secrets (`scoped`)."""

    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane
        self.box = SecretBox(plane.config.data_dir / KEY_FILE_NAME)
        self.scoped = ScopedSecrets(plane, self.box)

    # --- secrets ------------------------------------------------------------------------------

    async def create(self, owner: SecretOwner, project_id: str, *, fields: dict[str, Any], author: Author) -> Secret:
        """A secret without versions: `fields` are `name`, `type`, `http_only`, and `metadata`
        and `annotations` when given."""
        check_text(fields["name"], "name")
        check_text(fields["type"], "type", 64)
        now = now_iso()
        row = (
            str(uuid.uuid4()), project_id, owner.kind, owner.id, author.user_id, author.service_account_id, fields["type"], fields["name"],
            int(fields["http_only"]), _json(fields.get("metadata") or {}), _json(fields.get("annotations") or {}), None, now, now,
        )  # fmt: skip

        def work(db: sqlite3.Connection) -> None:
            _require_owner(db, owner)
            require_project(db, project_id)
            _check_name_free(db, owner, project_id, fields["name"])
            db.execute(f"INSERT INTO owned_secrets ({_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row)

        await self.plane.run(work)
        return _secret(row)

    async def search(self, owner: SecretOwner, criteria: dict[str, Any], *, page_size: int, continuation_token: str | None) -> tuple[list[Secret], str | None]:
        """One page of the owner's secrets meeting every criterion given: `filter` (a
        case-insensitive substring of the name), `name`, `type`, `http_only` (equal), `metadata`
        and `annotations` (each key given has the value given), and `provider`, `service`,
        `account`, `username`, `email`, `url`, `oauth_provider`, `oauth_scopes` (the metadata key
        of that name has the value given)."""
        limit = check_page_size(page_size)
        after = read_page_token(continuation_token)

        def work(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            _require_owner(db, owner)
            clause, parameters = _owner_clause(owner)
            bound, start = ("", ()) if after is None else (" AND (name, id) > (?, ?)", after)
            return db.execute(f"SELECT {_COLUMNS} FROM owned_secrets WHERE {clause}{bound} ORDER BY name, id", (*parameters, *start)).fetchall()

        found: list[Secret] = []
        for row in await self.plane.run(work):
            secret = _secret(row)
            if _matches(secret, criteria):
                found.append(secret)
                if len(found) > limit:
                    page = found[:limit]
                    return page, page_token(page[-1].name, page[-1].id)
        return found, None

    async def get(self, owner: SecretOwner, secret_id: str, *, include_value: bool) -> Secret:
        """The secret; with `include_value`, its current version's value (none without one)."""

        def work(db: sqlite3.Connection) -> Secret:
            row = _require_secret(db, owner, secret_id)
            current = row[_CURRENT]
            if not include_value or current is None:
                return _secret(row)
            value = self._open_version(db, secret_id, current)
            return _secret(row, base64.b64encode(value).decode())

        return await self.plane.run(work)

    async def update(self, owner: SecretOwner, secret_id: str, changes: dict[str, Any]) -> Secret:
        """Sets the fields given (`name`, `type`, `http_only`, `metadata`, `annotations`)."""
        if "name" in changes:
            check_text(changes["name"], "name")
        if "type" in changes:
            check_text(changes["type"], "type", 64)
        columns = {
            field: _json(value or {}) if field in ("metadata", "annotations") else int(value) if field == "http_only" else value
            for field, value in changes.items()
        }

        def work(db: sqlite3.Connection) -> Secret:
            row = _require_secret(db, owner, secret_id)
            if "name" in changes:
                _check_name_free(db, owner, row[_PROJECT], changes["name"], except_id=secret_id)
            assignments = ", ".join(f"{column} = ?" for column in (*columns, "updated_at"))
            db.execute(f"UPDATE owned_secrets SET {assignments} WHERE id = ?", (*columns.values(), now_iso(), secret_id))
            return _secret(db.execute(f"SELECT {_COLUMNS} FROM owned_secrets WHERE id = ?", (secret_id,)).fetchone())

        return await self.plane.run(work)

    async def delete(self, owner: SecretOwner, secret_id: str) -> None:
        """Deletes the secret, its versions, grants and pull-secret links."""

        def work(db: sqlite3.Connection) -> None:
            _require_secret(db, owner, secret_id)
            db.execute("DELETE FROM owned_secrets WHERE id = ?", (secret_id,))

        await self.plane.run(work)

    # --- versions -----------------------------------------------------------------------------

    def _open_version(self, db: sqlite3.Connection, secret_id: str, version_id: str) -> bytes:
        row = db.execute("SELECT version, sealed FROM secret_versions WHERE id = ? AND secret_id = ?", (version_id, secret_id)).fetchone()
        if row is None:
            raise NotFound(f"version {version_id!r} of secret {secret_id!r} does not exist")
        return self.box.open(row[1], _version_context(version_id), f"secret {secret_id!r} version {row[0]}")

    def _version(self, row: tuple[Any, ...]) -> SecretVersion:
        id, secret_id, version, sealed, by_user, by_account, created_at = row
        value = self.box.open(sealed, _version_context(id), f"secret {secret_id!r} version {version}")
        return SecretVersion(
            id=id, secret_id=secret_id, version=version, value_sha256=hashlib.sha256(value).hexdigest(),
            created_by_user_id=by_user, created_by_service_account_id=by_account, created_at=created_at,
        )  # fmt: skip

    async def list_versions(self, owner: SecretOwner, secret_id: str) -> list[SecretVersion]:
        """The secret's versions, oldest first."""

        def work(db: sqlite3.Connection) -> list[SecretVersion]:
            _require_secret(db, owner, secret_id)
            rows = db.execute(f"SELECT {_VERSION_COLUMNS} FROM secret_versions WHERE secret_id = ? ORDER BY version", (secret_id,)).fetchall()
            return [self._version(row) for row in rows]

        return await self.plane.run(work)

    async def create_version(self, owner: SecretOwner, secret_id: str, value: bytes, *, set_current: bool, author: Author) -> SecretVersion:
        """A new version holding `value` (sealed), numbered after the last one ever made;
        made current when `set_current`."""
        version_id = str(uuid.uuid4())
        created_at = now_iso()
        sealed = self.box.seal(value, _version_context(version_id))

        def work(db: sqlite3.Connection) -> int:
            _require_secret(db, owner, secret_id)
            number = db.execute("SELECT next_version FROM owned_secrets WHERE id = ?", (secret_id,)).fetchone()[0]
            db.execute(
                f"INSERT INTO secret_versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (version_id, secret_id, number, sealed, author.user_id, author.service_account_id, created_at),
            )
            current = ", current_version_id = ?, updated_at = ?" if set_current else ""
            db.execute(f"UPDATE owned_secrets SET next_version = ?{current} WHERE id = ?", (number + 1, *((version_id, created_at) if set_current else ()), secret_id))
            return number  # type: ignore[no-any-return]

        number = await self.plane.run(work)
        return SecretVersion(
            id=version_id, secret_id=secret_id, version=number, value_sha256=hashlib.sha256(value).hexdigest(),
            created_by_user_id=author.user_id, created_by_service_account_id=author.service_account_id, created_at=created_at,
        )  # fmt: skip

    async def access_version(self, owner: SecretOwner, secret_id: str, version_id: str) -> SecretVersionValue:
        """The value of a version; `latest` is the current version."""

        def work(db: sqlite3.Connection) -> SecretVersionValue:
            row = _require_secret(db, owner, secret_id)
            wanted = version_id
            if version_id == LATEST:
                if row[_CURRENT] is None:
                    raise NotFound(f"secret {secret_id!r} has no current version")
                wanted = row[_CURRENT]
            value = self._open_version(db, secret_id, wanted)
            return SecretVersionValue(secret_id=secret_id, version_id=wanted, value_base64=base64.b64encode(value).decode())

        return await self.plane.run(work)

    async def delete_version(self, owner: SecretOwner, secret_id: str, version_id: str) -> None:
        """Deletes a version; if it was current, the newest remaining one becomes current."""

        def work(db: sqlite3.Connection) -> None:
            row = _require_secret(db, owner, secret_id)
            if db.execute("DELETE FROM secret_versions WHERE id = ? AND secret_id = ?", (version_id, secret_id)).rowcount == 0:
                raise NotFound(f"version {version_id!r} of secret {secret_id!r} does not exist")
            if row[_CURRENT] == version_id:
                newest = db.execute("SELECT id FROM secret_versions WHERE secret_id = ? ORDER BY version DESC LIMIT 1", (secret_id,)).fetchone()
                db.execute("UPDATE owned_secrets SET current_version_id = ?, updated_at = ? WHERE id = ?", (newest and newest[0], now_iso(), secret_id))

        await self.plane.run(work)

    # --- proxy access (user secrets) -------------------------------------------------------------

    async def list_proxy_access(self, owner: SecretOwner, secret_id: str, *, page_size: int, continuation_token: str | None) -> tuple[list[SecretProxyAccessGrant], str | None]:
        """The service accounts granted `use_proxy`, by account id; the token is the last id."""
        limit = check_page_size(page_size)

        def work(db: sqlite3.Connection) -> tuple[list[SecretProxyAccessGrant], str | None]:
            _require_secret(db, owner, secret_id)
            rows = db.execute(
                "SELECT a.id, a.name, a.project_id FROM secret_proxy_grants g JOIN service_accounts a ON a.id = g.service_account_id"
                " WHERE g.secret_id = ? AND a.id > ? ORDER BY a.id LIMIT ?",
                (secret_id, continuation_token or "", limit + 1),
            ).fetchall()
            grants = [
                SecretProxyAccessGrant(subject=AccessSubject(type="service_account", id=id, name=name, email=service_account_email(name, project)), roles=[USE_PROXY])
                for id, name, project in rows[:limit]
            ]
            return grants, rows[limit - 1][0] if len(rows) > limit else None

        return await self.plane.run(work)

    async def set_proxy_access(self, owner: SecretOwner, secret_id: str, service_account_id: str, *, granted: bool) -> None:
        """Grants (again: no change) or revokes (404 if not granted) `use_proxy` on the secret
        to a service account of the secret's project."""

        def work(db: sqlite3.Connection) -> None:
            row = _require_secret(db, owner, secret_id)
            _require_account(db, row[_PROJECT], service_account_id)
            if granted:
                db.execute("INSERT OR IGNORE INTO secret_proxy_grants (secret_id, service_account_id, created_at) VALUES (?, ?, ?)", (secret_id, service_account_id, now_iso()))
            elif db.execute("DELETE FROM secret_proxy_grants WHERE secret_id = ? AND service_account_id = ?", (secret_id, service_account_id)).rowcount == 0:
                raise NotFound(f"service account {service_account_id!r} has no proxy access to secret {secret_id!r}")

        await self.plane.run(work)

    # --- pull secrets (service accounts) ---------------------------------------------------------

    async def list_pull_secrets(self, project_id: str, service_account_id: str) -> list[Secret]:
        def work(db: sqlite3.Connection) -> list[Secret]:
            _require_owner(db, SecretOwner("service_account", service_account_id, project_id))
            rows = db.execute(
                f"SELECT {', '.join('s.' + c for c in _COLUMNS.split(', '))} FROM service_account_pull_secrets p"
                " JOIN owned_secrets s ON s.id = p.secret_id WHERE p.service_account_id = ? ORDER BY s.name, s.id",
                (service_account_id,),
            ).fetchall()
            return [_secret(row) for row in rows]

        return await self.plane.run(work)

    async def set_pull_secret(self, project_id: str, service_account_id: str, secret_id: str, *, added: bool) -> None:
        """Adds (again: no change) or removes (404 if absent) one of the account's own secrets
        as a pull secret."""
        owner = SecretOwner("service_account", service_account_id, project_id)

        def work(db: sqlite3.Connection) -> None:
            if added:
                _require_secret(db, owner, secret_id)
                db.execute(
                    "INSERT OR IGNORE INTO service_account_pull_secrets (service_account_id, secret_id, created_at) VALUES (?, ?, ?)",
                    (service_account_id, secret_id, now_iso()),
                )
                return
            _require_owner(db, owner)
            if db.execute("DELETE FROM service_account_pull_secrets WHERE service_account_id = ? AND secret_id = ?", (service_account_id, secret_id)).rowcount == 0:
                raise NotFound(f"secret {secret_id!r} is not a pull secret of service account {service_account_id!r}")

        await self.plane.run(work)


__all__ = ["Author", "LATEST", "MIGRATIONS", "SecretOwner", "SecretsStore"]
