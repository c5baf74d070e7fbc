"""Users, project members, profiles and settings documents (protocol/rest.md §3).

- `users`: every person the server knows, by id, with a unique e-mail (stored lower-cased).
  The owner user (`owner_user()`, the holder of the server's API key) is a row too
  (`is_owner`), written by `seed` — and it is a member with role `admin` of every project:
  of the existing ones by `seed`, of the ones created later by a trigger on `projects`.
  Others are added as invited users by `ensure_user_by_email` (e.g. a grant by e-mail).
- `project_members`: who belongs to which project, with their `ProjectRole`s.
- `project_profiles`: a member's profile overrides in one project; a NULL column is inherited
  from the user's own profile. Views: `user` (the user's own), `project` (the overrides only),
  `merged` (the overrides over the user's own).
- `settings_documents`: one JSON object per project and document (`room-roles`, …).
- A project's key (`get_project_by_key`): its `project_key` when one was set, else its id.

Lists are pages by e-mail; the continuation token is the last e-mail of the page. A `filter` is
a case-insensitive substring of the e-mail, first or last name.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import msgspec

from meshagent_core.rest.accounts import PROFILE_FIELDS
from meshagent_core.rest.models import ProjectInfo, ProjectUser, User

from .common import Conflict, ControlError, Forbidden, NotFound, now_iso, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

T = TypeVar("T")
OWNER_ROLE = "admin"
_JSON_FIELDS = frozenset({"metadata", "annotations"})

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT UNIQUE NOT NULL,
            first_name TEXT,
            last_name TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            annotations TEXT NOT NULL DEFAULT '{}',
            is_owner INTEGER NOT NULL DEFAULT 0,
            invited INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE project_members (
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            roles TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (project_id, user_id)
        )""",
        """CREATE TABLE project_profiles (
            project_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            first_name TEXT,
            last_name TEXT,
            metadata TEXT,
            annotations TEXT,
            PRIMARY KEY (project_id, user_id),
            FOREIGN KEY (project_id, user_id) REFERENCES project_members(project_id, user_id) ON DELETE CASCADE
        )""",
        """CREATE TABLE settings_documents (
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            document TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (project_id, name)
        )""",
        """CREATE TRIGGER owner_is_admin_of_new_projects AFTER INSERT ON projects BEGIN
            INSERT OR IGNORE INTO project_members (project_id, user_id, roles, created_at)
            SELECT NEW.id, id, '["admin"]', NEW.created_at FROM users WHERE is_owner = 1;
        END""",
    ),
]

_USER_COLUMNS = "u.id, u.email, u.first_name, u.last_name, u.metadata, u.annotations"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _user(row: tuple[Any, ...]) -> User:
    id, email, first_name, last_name, metadata, annotations = row[:6]
    return User(
        id=id, email=email, first_name=first_name, last_name=last_name,
        metadata=msgspec.json.decode(metadata), annotations=msgspec.json.decode(annotations),
    )  # fmt: skip


def _profile_view(user: User, overrides: tuple[Any, ...] | None, view: str) -> User:
    """The user as `view` shows them, given their overrides in a project (first_name,
    last_name, metadata, annotations; None = inherited)."""
    if view == "user":
        return user
    values = dict(zip(PROFILE_FIELDS, overrides or (None,) * 4))
    for field in _JSON_FIELDS:
        if values[field] is not None:
            values[field] = msgspec.json.decode(values[field])
    if view == "project":
        return User(id=user.id, email=user.email, **{k: v for k, v in values.items() if v is not None})
    return msgspec.structs.replace(user, **{k: v for k, v in values.items() if v is not None})


def contains_pattern(text: str) -> str:
    """A `LIKE … ESCAPE '\\'` pattern matching what contains `text` (lower-cased)."""
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _page_clause(filter: str | None, after: str | None) -> tuple[str, list[Any]]:
    clause, parameters = " AND u.email > ?", [after or ""]
    if filter:
        pattern = contains_pattern(filter)
        clause += (
            " AND (u.email LIKE ? ESCAPE '\\' OR lower(coalesce(u.first_name, '')) LIKE ? ESCAPE '\\'"
            " OR lower(coalesce(u.last_name, '')) LIKE ? ESCAPE '\\')"
        )
        parameters += [pattern] * 3
    return clause, parameters


def _require_user(db: sqlite3.Connection, user_id: str) -> User:
    row = db.execute(f"SELECT {_USER_COLUMNS} FROM users u WHERE u.id = ?", (user_id,)).fetchone()
    if row is None:
        raise NotFound(f"user {user_id!r} does not exist")
    return _user(row)


def _require_member(db: sqlite3.Connection, project_id: str, user_id: str) -> list[str]:
    require_project(db, project_id)
    row = db.execute("SELECT roles FROM project_members WHERE project_id = ? AND user_id = ?", (project_id, user_id)).fetchone()
    if row is None:
        raise NotFound(f"user {user_id!r} is not a member of project {project_id!r}")
    return msgspec.json.decode(row[0])


def _check_fields(fields: Any) -> None:
    """Profile fields are column names in the SQL: only `PROFILE_FIELDS` get there."""
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise ControlError(f"unknown profile fields {sorted(unknown)} (the fields are {', '.join(PROFILE_FIELDS)})")


def _check_roles(roles: list[str]) -> list[str]:
    unique = list(dict.fromkeys(roles))
    if not unique:
        raise ControlError("roles: give at least one role (remove_user_from_project removes a member)")
    return unique


class AccountStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    def owner_user(self) -> User:
        """The local server's single owner: the person holding the server's API key. Its id is
        stable for a data directory (derived from the server's project id)."""
        project_id = self.plane.config.credentials.project_id
        return User(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"meshagent-trio:owner:{project_id}")), email="owner@localhost", first_name="Local", last_name="Owner")

    def seed(self, db: sqlite3.Connection) -> None:
        """Write the owner user and its `admin` membership of every project (idempotent; the
        control plane runs it at every start, after its migrations)."""
        owner = self.owner_user()
        db.execute(
            "INSERT OR IGNORE INTO users (id, email, first_name, last_name, is_owner, created_at) VALUES (?, ?, ?, ?, 1, ?)",
            (owner.id, owner.email, owner.first_name, owner.last_name, now_iso()),
        )
        db.execute(
            "INSERT OR IGNORE INTO project_members (project_id, user_id, roles, created_at) SELECT id, ?, ?, created_at FROM projects",
            (owner.id, _json([OWNER_ROLE])),
        )

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in one transaction of the control plane."""
        return await self.plane.run(work)

    # --- users ------------------------------------------------------------------------------

    async def ensure_user_by_email(self, email: str) -> User:
        """The user with this e-mail (compared lower-cased), created as invited if absent."""
        address = normalize_email(email)
        if "@" not in address:
            raise ControlError(f"email: {email!r} is not an e-mail address")

        def work(db: sqlite3.Connection) -> User:
            row = db.execute(f"SELECT {_USER_COLUMNS} FROM users u WHERE u.email = ?", (address,)).fetchone()
            if row is not None:
                return _user(row)
            user = User(id=str(uuid.uuid4()), email=address)
            db.execute("INSERT INTO users (id, email, invited, created_at) VALUES (?, ?, 1, ?)", (user.id, address, now_iso()))
            return user

        return await self.run(work)

    async def get_user(self, user_id: str) -> User:
        return await self.run(lambda db: _require_user(db, user_id))

    async def search_users(self, *, filter: str | None, page_size: int, after: str | None) -> tuple[list[User], str | None]:
        clause, parameters = _page_clause(filter, after)

        def work(db: sqlite3.Connection) -> tuple[list[User], str | None]:
            rows = db.execute(f"SELECT {_USER_COLUMNS} FROM users u WHERE 1 {clause} ORDER BY u.email LIMIT ?", (*parameters, page_size + 1)).fetchall()
            users = [_user(row) for row in rows[:page_size]]
            return users, users[-1].email if len(rows) > page_size else None

        return await self.run(work)

    async def update_user(self, user_id: str, fields: dict[str, Any]) -> None:
        """Change the user's own profile: the given fields among `PROFILE_FIELDS` (a name may be
        None: cleared)."""
        _check_fields(fields)

        def work(db: sqlite3.Connection) -> None:
            _require_user(db, user_id)
            for field, value in fields.items():
                stored = _json(value or {}) if field in _JSON_FIELDS else value
                db.execute(f"UPDATE users SET {field} = ? WHERE id = ?", (stored, user_id))

        await self.run(work)

    # --- members ----------------------------------------------------------------------------

    async def project_roles(self, project_id: str, user_id: str) -> list[str]:
        """The user's roles in the project; [] when not a member (NotFound for an unknown project)."""

        def work(db: sqlite3.Connection) -> list[str]:
            require_project(db, project_id)
            row = db.execute("SELECT roles FROM project_members WHERE project_id = ? AND user_id = ?", (project_id, user_id)).fetchone()
            return [] if row is None else msgspec.json.decode(row[0])

        return await self.run(work)

    async def add_member(self, project_id: str, user_id: str, roles: list[str]) -> None:
        roles = _check_roles(roles)

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            _require_user(db, user_id)
            if db.execute("SELECT 1 FROM project_members WHERE project_id = ? AND user_id = ?", (project_id, user_id)).fetchone():
                raise Conflict(f"user {user_id!r} is already a member of project {project_id!r} (update_project_user changes roles)")
            db.execute(
                "INSERT INTO project_members (project_id, user_id, roles, created_at) VALUES (?, ?, ?, ?)",
                (project_id, user_id, _json(roles), now_iso()),
            )

        await self.run(work)

    async def set_member_roles(self, project_id: str, user_id: str, roles: list[str]) -> None:
        roles = _check_roles(roles)
        if user_id == self.owner_user().id and OWNER_ROLE not in roles:
            raise Forbidden(f"the local server's owner stays {OWNER_ROLE} of every project")

        def work(db: sqlite3.Connection) -> None:
            _require_member(db, project_id, user_id)
            db.execute("UPDATE project_members SET roles = ? WHERE project_id = ? AND user_id = ?", (_json(roles), project_id, user_id))

        await self.run(work)

    async def remove_member(self, project_id: str, user_id: str) -> None:
        if user_id == self.owner_user().id:
            raise Forbidden("the local server's owner cannot be removed from a project")

        def work(db: sqlite3.Connection) -> None:
            _require_member(db, project_id, user_id)
            # explicitly: the control plane's connection does not enforce foreign keys
            db.execute("DELETE FROM project_profiles WHERE project_id = ? AND user_id = ?", (project_id, user_id))
            db.execute("DELETE FROM project_members WHERE project_id = ? AND user_id = ?", (project_id, user_id))

        await self.run(work)

    async def members_page(
        self, project_id: str, *, view: str, filter: str | None, page_size: int, after: str | None
    ) -> tuple[list[ProjectUser], str | None]:
        """One page of the project's members by e-mail, each as `view` shows them. The filter
        matches the user's own names (not the project's overrides)."""
        clause, parameters = _page_clause(filter, after)

        def work(db: sqlite3.Connection) -> tuple[list[ProjectUser], str | None]:
            require_project(db, project_id)
            rows = db.execute(
                f"SELECT {_USER_COLUMNS}, m.roles, p.first_name, p.last_name, p.metadata, p.annotations"
                " FROM project_members m JOIN users u ON u.id = m.user_id"
                " LEFT JOIN project_profiles p ON p.project_id = m.project_id AND p.user_id = m.user_id"
                f" WHERE m.project_id = ? {clause} ORDER BY u.email LIMIT ?",
                (project_id, *parameters, page_size + 1),
            ).fetchall()
            members = [
                ProjectUser(user=_profile_view(_user(row), row[7:11], view), direct_roles=msgspec.json.decode(row[6]))
                for row in rows[:page_size]
            ]
            return members, members[-1].user.email if len(rows) > page_size else None

        return await self.run(work)

    # --- project profiles -------------------------------------------------------------------

    async def project_profile(self, project_id: str, user_id: str, view: str) -> User:
        def work(db: sqlite3.Connection) -> User:
            _require_member(db, project_id, user_id)
            user = _require_user(db, user_id)
            overrides = db.execute(
                "SELECT first_name, last_name, metadata, annotations FROM project_profiles WHERE project_id = ? AND user_id = ?",
                (project_id, user_id),
            ).fetchone()
            return _profile_view(user, overrides, view)

        return await self.run(work)

    async def update_project_profile(self, project_id: str, user_id: str, fields: dict[str, Any], inherit: list[str]) -> None:
        """Set the given overrides (None clears one) and clear the `inherit`ed ones."""
        _check_fields([*fields, *inherit])
        both = sorted(set(fields) & set(inherit))
        if both:
            raise ControlError(f"inherit: {', '.join(both)} cannot be supplied and inherited in the same update")

        def work(db: sqlite3.Connection) -> None:
            _require_member(db, project_id, user_id)
            db.execute("INSERT OR IGNORE INTO project_profiles (project_id, user_id) VALUES (?, ?)", (project_id, user_id))
            changes = {**fields, **{field: None for field in inherit}}
            for field, value in changes.items():
                stored = _json(value) if field in _JSON_FIELDS and value is not None else value
                db.execute(
                    f"UPDATE project_profiles SET {field} = ? WHERE project_id = ? AND user_id = ?", (stored, project_id, user_id)
                )

        await self.run(work)

    # --- settings documents -----------------------------------------------------------------

    async def get_settings_document(self, project_id: str, name: str) -> Any:
        def work(db: sqlite3.Connection) -> Any:
            require_project(db, project_id)
            row = db.execute("SELECT document FROM settings_documents WHERE project_id = ? AND name = ?", (project_id, name)).fetchone()
            if row is None:
                raise NotFound(f"settings document {name!r} of project {project_id!r} is not set")
            return msgspec.json.decode(row[0])

        return await self.run(work)

    async def set_settings_document(self, project_id: str, name: str, document: dict[str, Any]) -> None:
        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            db.execute(
                "INSERT OR REPLACE INTO settings_documents (project_id, name, document, updated_at) VALUES (?, ?, ?, ?)",
                (project_id, name, _json(document), now_iso()),
            )

        await self.run(work)

    async def delete_settings_document(self, project_id: str, name: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            if db.execute("DELETE FROM settings_documents WHERE project_id = ? AND name = ?", (project_id, name)).rowcount == 0:
                raise NotFound(f"settings document {name!r} of project {project_id!r} is not set")

        await self.run(work)

    # --- projects by key --------------------------------------------------------------------

    async def project_by_key(self, project_key: str) -> ProjectInfo:
        """The project whose key is `project_key`: its `project_key` when one was set, else its id."""

        def work(db: sqlite3.Connection) -> ProjectInfo:
            row = db.execute(
                "SELECT id, name, project_key, created_at FROM projects WHERE project_key = ?"
                " OR (project_key IS NULL AND id = ?) ORDER BY project_key IS NULL LIMIT 1",
                (project_key, project_key),
            ).fetchone()
            if row is None:
                raise NotFound(f"no project has the key {project_key!r}")
            id, name, key, created_at = row
            return ProjectInfo(id=id, name=name, owner_user_id=self.owner_user().id, project_key=key or id, created_at=created_at)

        return await self.run(work)


__all__ = ["MIGRATIONS", "OWNER_ROLE", "AccountStore", "contains_pattern", "normalize_email"]
