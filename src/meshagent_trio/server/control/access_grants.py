"""The access store's groups (CRUD and members) and the seed's room grants, agent grants and
agent-room grants, as methods `AccessStore` inherits (the tables and their meaning: `access`).

A seed grant is a policy made with an `ApiScope`: its role is the one the official client
derives from the scope (`access_rules.role_for_scope`); an agent grant or agent-room grant
made without one has the role `operator`. Any policy of a user on a room is a room grant here
(one made by `grant_resource_policy` shows the compat scope of its roles), so the seed's
routes and the IAM routes show the same grants. Creating a grant that exists is a 409; an
update names the grant by its room/agent and user, and a `grant_id` other than `unused` must be
that grant's id.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import msgspec

from meshagent_core.rest.access import AccessResource, AccessSubject, AgentGrant, AgentRef, AgentRoomGrant, Group, GroupMember
from meshagent_core.rest.access import RoomGrant, RoomGrantCount, UserGrantCount
from meshagent_core.tokens import ApiScope

from . import access_rules as rules
from .access_policy import (
    ROOM_COLUMNS,
    check_resource,
    check_subject,
    find_agent,
    find_group,
    find_room,
    json_text,
    page_offset,
    parse_scope,
    room_of_row,
    subject_key,
    upsert_policy,
    user_subject,
)
from .common import Conflict, ControlError, NotFound, now_iso, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

T = TypeVar("T")
UNUSED_GRANT_ID = "unused"
MEMBER_SUBJECT_TYPES = ("user", "agent", "group", "service_account")
ROOM_GRANT_ORDER = {"room_name": "r.name, g.subject_key", "user_id": "g.subject_key, r.name", "created_at": "g.created_at"}


def _group_name(name: str) -> str:
    if not name.strip():
        raise ControlError("name: a group needs a name")
    return name


def _existing(db: sqlite3.Connection, project_id: str, resource: AccessResource, subject: AccessSubject) -> tuple[str, str, str | None] | None:
    return db.execute(
        "SELECT id, roles, permissions FROM policy_grants WHERE project_id = ? AND resource_type = ? AND resource_id = ? AND subject_type = ? AND subject_key = ?",
        (project_id, resource.type, resource.id, subject.type, subject_key(subject)),
    ).fetchone()


def _write_grant(
    db: sqlite3.Connection, project_id: str, resource: AccessResource, subject: AccessSubject, scope: ApiScope | None, *, grant_id: str | None
) -> None:
    """Make the grant (`grant_id` None: 409 if it exists) or replace it (404 if it does not)."""
    existing = _existing(db, project_id, resource, subject)
    who = f"{subject.type} {subject.email or subject.name or subject.id!r}"
    if grant_id is None and existing is not None:
        raise Conflict(f"{who} already has a grant to {resource.type} {resource.name or resource.id!r}")
    if grant_id is not None and (existing is None or grant_id not in (UNUSED_GRANT_ID, existing[0])):
        raise NotFound(f"grant {grant_id!r} of {who} to {resource.type} {resource.name or resource.id!r} does not exist")
    role = "operator" if scope is None else rules.role_for_scope(scope)
    upsert_policy(db, project_id, resource, subject, [role], merge=False, permissions=scope)


def _scope_json(permissions: str | None, roles: str, *, compat: bool) -> dict[str, Any] | None:
    if permissions is not None:
        return msgspec.json.decode(permissions)
    return rules.compat_room_scope(msgspec.json.decode(roles)).model_dump() if compat else None


def _room_grant(row: tuple[Any, ...]) -> RoomGrant:
    grant_id, user_id, roles, permissions, email = row[:5]
    return RoomGrant(id=grant_id, room=room_of_row(row[5:]), user_id=user_id, email=email, permissions=_scope_json(permissions, roles, compat=True))


def _agent_room_grant(row: tuple[Any, ...]) -> AgentRoomGrant:
    grant_id, agent_id, agent_name, roles, permissions = row[:5]
    return AgentRoomGrant(id=grant_id, agent=AgentRef(id=agent_id, name=agent_name), room=room_of_row(row[5:]), permissions=_scope_json(permissions, roles, compat=False))


_ROOM_GRANTS = (
    f"SELECT g.id, g.subject_key, g.roles, g.permissions, u.email, {ROOM_COLUMNS} FROM policy_grants g"
    " JOIN rooms r ON r.id = g.resource_id LEFT JOIN users u ON u.id = g.subject_key"
    " WHERE g.project_id = ? AND g.resource_type = 'room' AND g.subject_type = 'user'"
)
_AGENT_ROOM_GRANTS = (
    f"SELECT g.id, a.id, a.name, g.roles, g.permissions, {ROOM_COLUMNS} FROM policy_grants g"
    " JOIN rooms r ON r.id = g.resource_id JOIN agents a ON a.id = g.subject_key"
    " WHERE g.project_id = ? AND g.resource_type = 'room' AND g.subject_type = 'agent'"
)


class GrantMethods:
    plane: "ControlPlane"

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:  # provided by AccessStore
        raise NotImplementedError

    async def invite(self, subject: Any) -> Any:  # provided by AccessStore
        raise NotImplementedError

    # --- groups ------------------------------------------------------------------------------

    async def create_group(self, project_id: str, name: str, metadata: Any, annotations: Any) -> Group:
        group = Group(id=str(uuid.uuid4()), name=_group_name(name), metadata=metadata or {}, annotations=annotations or {})

        def work(db: sqlite3.Connection) -> Group:
            require_project(db, project_id)
            if db.execute("SELECT 1 FROM groups_ WHERE project_id = ? AND name = ?", (project_id, name)).fetchone():
                raise Conflict(f"group {name!r} already exists")
            db.execute(
                "INSERT INTO groups_ (id, project_id, name, metadata, annotations, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (group.id, project_id, name, json_text(group.metadata), json_text(group.annotations), now_iso()),
            )
            return group

        return await self.run(work)

    async def get_group(self, project_id: str, group_id: str, *, by_name: bool = False) -> Group:
        return await self.run(lambda db: find_group(db, project_id, group_id, "name" if by_name else "id"))

    async def update_group(self, project_id: str, group_id: str, name: str, fields: dict[str, Any]) -> None:
        _group_name(name)

        def work(db: sqlite3.Connection) -> None:
            find_group(db, project_id, group_id)
            if db.execute("SELECT 1 FROM groups_ WHERE project_id = ? AND name = ? AND id != ?", (project_id, name, group_id)).fetchone():
                raise Conflict(f"group {name!r} already exists")
            db.execute("UPDATE groups_ SET name = ? WHERE id = ?", (name, group_id))
            for column in ("metadata", "annotations"):
                if column in fields:
                    db.execute(f"UPDATE groups_ SET {column} = ? WHERE id = ?", (json_text(fields[column] or {}), group_id))

        await self.run(work)

    async def delete_group(self, project_id: str, group_id: str) -> None:
        """The group, its members, its memberships of other groups and every policy for it or on it."""

        def work(db: sqlite3.Connection) -> None:
            find_group(db, project_id, group_id)
            db.execute("DELETE FROM group_members WHERE group_id = ? OR (subject_type = 'group' AND subject_key = ?)", (group_id, group_id))
            db.execute(
                "DELETE FROM policy_grants WHERE project_id = ? AND ((subject_type = 'group' AND subject_key = ?) OR (resource_type = 'group' AND resource_id = ?))",
                (project_id, group_id, group_id),
            )
            db.execute("DELETE FROM groups_ WHERE id = ?", (group_id,))

        await self.run(work)

    async def groups_page(self, project_id: str, *, page_size: int, token: str | None, filter: str | None) -> tuple[list[Group], str | None]:
        """A page of groups by name (the token is the last name); `filter`: a case-insensitive
        substring of the name."""
        pattern = "%" + (filter or "").lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

        def work(db: sqlite3.Connection) -> tuple[list[Group], str | None]:
            require_project(db, project_id)
            rows = db.execute(
                "SELECT id, name, metadata, annotations FROM groups_ WHERE project_id = ? AND name > ? AND lower(name) LIKE ? ESCAPE '\\'"
                " ORDER BY name LIMIT ?",
                (project_id, token or "", pattern, page_size + 1),
            ).fetchall()
            groups = [Group(id=i, name=n, metadata=msgspec.json.decode(m), annotations=msgspec.json.decode(a)) for i, n, m, a in rows[:page_size]]
            return groups, groups[-1].name if len(rows) > page_size else None

        return await self.run(work)

    async def set_group_member(self, project_id: str, group_id: str, subject: Any, role: str) -> None:
        if subject.type not in MEMBER_SUBJECT_TYPES:
            raise ControlError(f"subject: a group's member is one of {', '.join(MEMBER_SUBJECT_TYPES)}, not {subject.type!r}")
        subject = await self.invite(subject)

        def work(db: sqlite3.Connection) -> None:
            find_group(db, project_id, group_id)
            stored = check_subject(db, project_id, subject)
            if stored.type == "group" and stored.id == group_id:
                raise ControlError("subject: a group cannot be a member of itself")
            db.execute(
                "INSERT INTO group_members (group_id, subject_type, subject_key, subject, role, created_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (group_id, subject_type, subject_key) DO UPDATE SET role = excluded.role, subject = excluded.subject",
                (group_id, stored.type, subject_key(stored), json_text(stored), role, now_iso()),
            )

        await self.run(work)

    async def delete_group_member(self, project_id: str, group_id: str, subject_type: str, subject_id: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            find_group(db, project_id, group_id)
            deleted = db.execute(
                "DELETE FROM group_members WHERE group_id = ? AND subject_type = ? AND subject_key = ?", (group_id, subject_type, subject_id)
            ).rowcount
            if not deleted:
                raise NotFound(f"{subject_type} {subject_id!r} is not a member of the group {group_id!r}")

        await self.run(work)

    async def group_members_page(self, project_id: str, group_id: str, *, page_size: int, token: str | None) -> tuple[list[GroupMember], str | None]:
        after = page_offset(token)

        def work(db: sqlite3.Connection) -> tuple[list[GroupMember], str | None]:
            find_group(db, project_id, group_id)
            rows = db.execute(
                "SELECT rowid, subject, role FROM group_members WHERE group_id = ? AND rowid > ? ORDER BY rowid LIMIT ?", (group_id, after, page_size + 1)
            ).fetchall()
            members = [GroupMember(subject=msgspec.json.decode(s, type=AccessSubject), direct_roles=[r]) for _, s, r in rows[:page_size]]
            return members, str(rows[page_size - 1][0]) if len(rows) > page_size else None

        return await self.run(work)

    # --- room grants -------------------------------------------------------------------------

    async def _user(self, user_id: str | None, email: str | None) -> AccessSubject:
        if not user_id and not email:
            raise ControlError("user_id: give the user's id or email")
        invited = await self.invite(AccessSubject(type="user", id=user_id or None, email=email))
        return await self.run(lambda db: user_subject(db, invited.id, None))

    async def put_room_grant(self, project_id: str, room: str, user_id: str | None, email: str | None, permissions: Any, *, grant_id: str | None) -> RoomGrant:
        """Make (`grant_id` None) or replace a user's grant to a room, with its `ApiScope`."""
        scope = parse_scope_or_none(permissions, required=True)
        user = await self._user(user_id, email)

        def work(db: sqlite3.Connection) -> RoomGrant:
            resource = check_resource(db, project_id, "room", room)
            _write_grant(db, project_id, resource, user, scope, grant_id=grant_id)
            return _room_grant(db.execute(_ROOM_GRANTS + " AND r.id = ? AND g.subject_key = ?", (project_id, resource.id, user.id)).fetchone())

        return await self.run(work)

    async def get_room_grant(self, project_id: str, room: str, user_id: str) -> RoomGrant:
        def work(db: sqlite3.Connection) -> RoomGrant:
            found = find_room(db, project_id, room)
            row = db.execute(_ROOM_GRANTS + " AND r.id = ? AND g.subject_key = ?", (project_id, found.id, user_id)).fetchone()
            if row is None:
                raise NotFound(f"user {user_id!r} has no grant to the room {found.name!r}")
            return _room_grant(row)

        return await self.run(work)

    async def delete_grant(self, project_id: str, resource_type: str, resource: str, subject_type: str, subject: str) -> None:
        """Delete a seed grant: a user's to a room or agent, an agent's to a room."""

        def work(db: sqlite3.Connection) -> None:
            found = check_resource(db, project_id, resource_type, resource)
            if subject_type == "agent":
                subject_id = find_agent(db, project_id, subject).id
            else:
                subject_id = subject
            deleted = db.execute(
                "DELETE FROM policy_grants WHERE project_id = ? AND resource_type = ? AND resource_id = ? AND subject_type = ? AND subject_key = ?",
                (project_id, found.type, found.id, subject_type, subject_id),
            ).rowcount
            if not deleted:
                raise NotFound(f"{subject_type} {subject!r} has no grant to the {resource_type} {found.name or found.id!r}")

        await self.run(work)

    async def room_grants(
        self, project_id: str, *, room: str | None = None, user_id: str | None = None, limit: int, offset: int, order_by: str = "room_name"
    ) -> list[RoomGrant]:
        """Users' grants to rooms, of one room or one user or all."""

        def work(db: sqlite3.Connection) -> list[RoomGrant]:
            require_project(db, project_id)
            clause, parameters = "", [project_id]
            if room is not None:
                clause, parameters = " AND r.id = ?", [project_id, find_room(db, project_id, room).id]
            if user_id is not None:
                user_subject(db, user_id, None)
                clause, parameters = " AND g.subject_key = ?", [project_id, user_id]
            query = _ROOM_GRANTS + clause + f" ORDER BY {ROOM_GRANT_ORDER[order_by]}, g.rowid LIMIT ? OFFSET ?"
            return [_room_grant(row) for row in db.execute(query, (*parameters, limit, offset)).fetchall()]

        return await self.run(work)

    async def rooms_with_grants(self, project_id: str, *, limit: int, offset: int) -> list[RoomGrantCount]:
        def work(db: sqlite3.Connection) -> list[RoomGrantCount]:
            require_project(db, project_id)
            rows = db.execute(
                f"SELECT {ROOM_COLUMNS}, count(*) FROM policy_grants g JOIN rooms r ON r.id = g.resource_id"
                " WHERE g.project_id = ? AND g.resource_type = 'room' AND g.subject_type = 'user' GROUP BY r.id ORDER BY r.name LIMIT ? OFFSET ?",
                (project_id, limit, offset),
            ).fetchall()
            return [RoomGrantCount(room=room_of_row(row), count=row[5]) for row in rows]

        return await self.run(work)

    async def users_with_grants(self, project_id: str, *, limit: int, offset: int) -> list[UserGrantCount]:
        def work(db: sqlite3.Connection) -> list[UserGrantCount]:
            require_project(db, project_id)
            rows = db.execute(
                "SELECT u.id, count(*), u.email, u.first_name, u.last_name FROM policy_grants g JOIN rooms r ON r.id = g.resource_id"
                " JOIN users u ON u.id = g.subject_key WHERE g.project_id = ? AND g.resource_type = 'room' AND g.subject_type = 'user'"
                " GROUP BY u.id ORDER BY u.email LIMIT ? OFFSET ?",
                (project_id, limit, offset),
            ).fetchall()
            return [UserGrantCount(user_id=i, count=c, email=e, first_name=f, last_name=l) for i, c, e, f, l in rows]

        return await self.run(work)

    # --- agent grants and agent-room grants --------------------------------------------------

    async def put_agent_grant(self, project_id: str, agent: str, user_id: str | None, email: str | None, permissions: Any, *, grant_id: str | None) -> AgentGrant:
        scope = parse_scope_or_none(permissions)
        user = await self._user(user_id, email)

        def work(db: sqlite3.Connection) -> AgentGrant:
            resource = check_resource(db, project_id, "agent", agent)
            _write_grant(db, project_id, resource, user, scope, grant_id=grant_id)
            return _agent_grant(db, project_id, resource, user)

        return await self.run(work)

    async def get_agent_grant(self, project_id: str, agent: str, user_id: str) -> AgentGrant:
        def work(db: sqlite3.Connection) -> AgentGrant:
            return _agent_grant(db, project_id, check_resource(db, project_id, "agent", agent), user_subject(db, user_id, None))

        return await self.run(work)

    async def put_agent_room_grant(self, project_id: str, agent: str, room: str, permissions: Any, *, grant_id: str | None) -> AgentRoomGrant:
        scope = parse_scope_or_none(permissions)

        def work(db: sqlite3.Connection) -> AgentRoomGrant:
            resource = check_resource(db, project_id, "room", room)
            subject = check_subject(db, project_id, AccessSubject(type="agent", id=agent))
            _write_grant(db, project_id, resource, subject, scope, grant_id=grant_id)
            return _agent_room_grant(db.execute(_AGENT_ROOM_GRANTS + " AND r.id = ? AND a.id = ?", (project_id, resource.id, subject.id)).fetchone())

        return await self.run(work)

    async def get_agent_room_grant(self, project_id: str, agent: str, room: str) -> AgentRoomGrant:
        def work(db: sqlite3.Connection) -> AgentRoomGrant:
            found_agent, found_room = find_agent(db, project_id, agent), find_room(db, project_id, room)
            row = db.execute(_AGENT_ROOM_GRANTS + " AND r.id = ? AND a.id = ?", (project_id, found_room.id, found_agent.id)).fetchone()
            if row is None:
                raise NotFound(f"agent {found_agent.name!r} has no grant to the room {found_room.name!r}")
            return _agent_room_grant(row)

        return await self.run(work)

    async def agent_room_grants(self, project_id: str, *, agent: str | None = None, room: str | None = None, limit: int, offset: int) -> list[AgentRoomGrant]:
        def work(db: sqlite3.Connection) -> list[AgentRoomGrant]:
            require_project(db, project_id)
            if agent is not None:
                clause, value = " AND a.id = ?", find_agent(db, project_id, agent).id
            else:
                clause, value = " AND r.id = ?", find_room(db, project_id, room or "").id
            rows = db.execute(_AGENT_ROOM_GRANTS + clause + " ORDER BY r.name, a.name LIMIT ? OFFSET ?", (project_id, value, limit, offset)).fetchall()
            return [_agent_room_grant(row) for row in rows]

        return await self.run(work)


def _agent_grant(db: sqlite3.Connection, project_id: str, resource: AccessResource, user: AccessSubject) -> AgentGrant:
    row = _existing(db, project_id, resource, user)
    if row is None:
        raise NotFound(f"user {user.email or user.id!r} has no grant to the agent {resource.name!r}")
    return AgentGrant(
        id=row[0], agent=AgentRef(id=resource.id, name=resource.name or resource.id), user_id=user.id or "", email=user.email,
        permissions=_scope_json(row[2], row[1], compat=False),
    )  # fmt: skip


def parse_scope_or_none(permissions: Any, *, required: bool = False) -> ApiScope | None:
    """The `ApiScope` of `permissions` (None when not given and not `required`)."""
    if permissions is None or permissions is msgspec.UNSET:
        if required:
            raise ControlError("permissions: give the ApiScope the grant gives")
        return None
    return parse_scope(permissions)


__all__ = ["GrantMethods", "UNUSED_GRANT_ID"]
