"""The control plane's store of registries: a project's OCI repositories and the tokens that
grant pull or push on one (protocol/rest.md §13).

The local server keeps the repositories' records only: it stores no images and serves no OCI
registry API. A repository token is real all the same: an HS256 JWT (`signed_tokens`, kind
`repository`) carrying the project, the repository's id and name, the actions granted and the
expiry, in the Docker token format's `access` claim too
(`[{"type": "repository", "name": "<project>/<name>", "actions": [...]}]`). `verify_token`
checks one as a registry in front of this server would: signature, kind, expiry, and that the
repository still exists.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import msgspec

from meshagent_core.rest.registries import ProjectRepository, RepositoryToken, normalize_repository_name

from . import signed_tokens
from .common import Conflict, ControlError, NotFound, key_page, now_iso, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE oci_repositories (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            annotations TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (project_id, name)
        )""",
    ),
]

TOKEN_KIND = "repository"
DEFAULT_TOKEN_SECONDS = 3600
MAX_TOKEN_SECONDS = 30 * 24 * 3600
_COLUMNS = "id, project_id, name, description, annotations, created_at"


@dataclass(frozen=True)
class RepositoryGrant:
    """What a valid repository token grants."""

    project_id: str
    repository_id: str
    repository: str
    actions: tuple[str, ...]
    expires_at: int
    subject: str


def _repository(row: tuple[Any, ...]) -> ProjectRepository:
    id, project_id, name, description, annotations, created_at = row
    return ProjectRepository(id=id, project_id=project_id, name=name, description=description, annotations=msgspec.json.decode(annotations), created_at=created_at)


def _name(value: str) -> str:
    try:
        return normalize_repository_name(value)
    except ValueError as error:
        raise ControlError(str(error)) from None


def _require(db: sqlite3.Connection, project_id: str, repository_id: str) -> tuple[Any, ...]:
    require_project(db, project_id)
    row = db.execute(f"SELECT {_COLUMNS} FROM oci_repositories WHERE project_id = ? AND id = ?", (project_id, repository_id)).fetchone()
    if row is None:
        raise NotFound(f"repository {repository_id!r} does not exist")
    return row  # type: ignore[no-any-return]


def _check_unique(db: sqlite3.Connection, project_id: str, name: str, except_id: str = "") -> None:
    if db.execute("SELECT 1 FROM oci_repositories WHERE project_id = ? AND name = ? AND id != ?", (project_id, name, except_id)).fetchone():
        raise Conflict(f"repository {name!r} already exists")


class RegistriesStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    async def create_repository(self, project_id: str, *, name: str, description: str, annotations: dict[str, str]) -> ProjectRepository:
        row = (str(uuid.uuid4()), project_id, _name(name), description, msgspec.json.encode(annotations).decode(), now_iso())

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            _check_unique(db, project_id, row[2])
            db.execute(f"INSERT INTO oci_repositories ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", row)

        await self.plane.run(work)
        return _repository(row)

    async def update_repository(self, project_id: str, repository_id: str, *, name: str, description: str, annotations: dict[str, str]) -> ProjectRepository:
        normalized = _name(name)

        def work(db: sqlite3.Connection) -> ProjectRepository:
            _require(db, project_id, repository_id)
            _check_unique(db, project_id, normalized, except_id=repository_id)
            db.execute(
                "UPDATE oci_repositories SET name = ?, description = ?, annotations = ? WHERE id = ?",
                (normalized, description, msgspec.json.encode(annotations).decode(), repository_id),
            )
            return _repository(_require(db, project_id, repository_id))

        return await self.plane.run(work)

    async def get_repository(self, project_id: str, repository_id: str) -> ProjectRepository:
        return _repository(await self.plane.run(lambda db: _require(db, project_id, repository_id)))

    async def get_repository_by_name(self, project_id: str, name: str) -> ProjectRepository:
        normalized = _name(name)

        def work(db: sqlite3.Connection) -> tuple[Any, ...]:
            require_project(db, project_id)
            row = db.execute(f"SELECT {_COLUMNS} FROM oci_repositories WHERE project_id = ? AND name = ?", (project_id, normalized)).fetchone()
            if row is None:
                raise NotFound(f"repository {normalized!r} does not exist")
            return row  # type: ignore[no-any-return]

        return _repository(await self.plane.run(work))

    async def list_repositories(self, project_id: str, *, page_size: int, after: str | None) -> tuple[list[ProjectRepository], int, str | None]:
        """One page, by name, after the name `after`; (repositories, total, next token or None)."""

        def work(db: sqlite3.Connection) -> tuple[list[ProjectRepository], int, str | None]:
            require_project(db, project_id)
            return key_page(db, "oci_repositories", _COLUMNS, _repository, project_id=project_id, after=after, page_size=page_size)

        return await self.plane.run(work)

    async def delete_repository(self, project_id: str, repository_id: str) -> None:
        """Its tokens are refused from then on (`verify_token` finds no repository)."""

        def work(db: sqlite3.Connection) -> None:
            _require(db, project_id, repository_id)
            db.execute("DELETE FROM oci_repositories WHERE id = ?", (repository_id,))

        await self.plane.run(work)

    # --- tokens ---------------------------------------------------------------------------------

    async def create_token(
        self, project_id: str, repository_id: str, *, actions: list[str], expires_in_seconds: int | None, subject: str
    ) -> RepositoryToken:
        """A token granting `actions` (pull, push; duplicates dropped) on the repository for
        `expires_in_seconds` (default an hour, at most 30 days)."""
        granted = list(dict.fromkeys(action.strip() for action in actions))
        if not granted:
            raise ControlError("actions: a repository token needs at least one action (pull, push)")
        seconds = DEFAULT_TOKEN_SECONDS if expires_in_seconds is None else expires_in_seconds
        if not 0 < seconds <= MAX_TOKEN_SECONDS:
            raise ControlError(f"expires_in_seconds must be greater than zero and at most {MAX_TOKEN_SECONDS}")
        repository = await self.get_repository(project_id, repository_id)
        issued_at = int(self.plane.config.clock())
        claims = {
            "sub": subject,
            "jti": str(uuid.uuid4()),
            "project_id": project_id,
            "repository_id": repository.id,
            "repository": repository.name,
            "actions": granted,
            "access": [{"type": "repository", "name": f"{project_id}/{repository.name}", "actions": granted}],
        }
        token = signed_tokens.mint(self._secret, TOKEN_KIND, claims, issued_at=issued_at, expires_at=issued_at + seconds)
        expires_at = datetime.fromtimestamp(issued_at + seconds, timezone.utc).isoformat()
        return RepositoryToken(token=token, expires_at=expires_at)

    async def verify_token(self, token: str) -> RepositoryGrant:
        """What `token` grants now (`signed_tokens.TokenRefused`, 403, when it is not a valid,
        unexpired repository token of this server, or its repository was deleted)."""
        claims = signed_tokens.verify(self._secret, TOKEN_KIND, token, now=self.plane.config.clock())
        project_id, repository_id = str(claims.get("project_id")), str(claims.get("repository_id"))
        try:
            repository = await self.get_repository(project_id, repository_id)
        except NotFound:
            raise signed_tokens.TokenRefused(f"the repository {claims.get('repository')!r} of this token no longer exists") from None
        return RepositoryGrant(project_id, repository.id, repository.name, tuple(claims["actions"]), int(claims["exp"]), str(claims.get("sub", "")))

    @property
    def _secret(self) -> str:
        return self.plane.config.credentials.secret


__all__ = ["MIGRATIONS", "RegistriesStore", "RepositoryGrant"]
