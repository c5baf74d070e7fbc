"""Access control: IAM resource policies, groups and their members, and the seed's room grants,
agent grants and agent-room grants, which are policies too (protocol/rest.md §6). What the roles mean
is in `access_rules`.

Tables:

- `policy_grants`: one row per (resource, subject) of a project: its roles and, for a grant
  made with an `ApiScope` (`create_room_grant`, agent grants), that scope's JSON. A room grant
  is a policy on `room/<room id>` for `user/<user id>`; an agent grant on `agent/<agent id>`
  for a user; an agent-room grant on `room/<room id>` for `agent/<agent id>`. Deleting a room
  deletes its policies (a trigger).
- The policy of the project itself for users is the member list (`project_members` of the
  accounts store): granting project roles to a user makes them a member, revoking removes them.
- `groups_` and `group_members` (users, agents and other groups; roles `member`, `manager`).

Subjects are stored by a key: the id of a user, group, agent or service account, `*` for
`everyone`, `<object_type>:<id>#<relation>` for a userset. A user may be named by e-mail: a
grant invites an unknown address (`ensure_user_by_email`); a query about one is a 404.

A subject's roles on a resource are those of its own policy, of every group it is in
(transitively), of `everyone`, and of the project usersets it is in (`member` for every member,
`developer` for members with `developer` or `admin`, `agent`, `service_account`), plus what its
project roles give there (`access_rules.inherited_roles`). The local server's owner user is
`admin` of every project.

The room scope of a participant token (`room_scope`): the `ApiScope` of the user's own room
grant if it has one; else the compat scope of the room roles the user has there (through
groups, usersets, `everyone`, or a role-only grant); else `ApiScope.full()` for a project
`admin`, `ApiScope.user_default()` for any other member; a user who is neither a member nor
granted the room is refused (403).

Policies and group members are listed in the order they were made (continuation token: an
offset, resp. the last row's number), groups by name (token: the last name); the seed's lists
take `limit` and `offset`.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import msgspec

from meshagent_core.rest.access import AccessResource, AccessSubject, RoleGrant
from meshagent_core.tokens import ApiScope

from . import access_rules as rules
from .access_grants import GrantMethods
from .access_policy import (
    check_relations,
    check_resource,
    check_subject,
    effective_roles,
    is_owner,
    json_text,
    member_roles,
    page_offset,
    parse_scope,
    policy_roles,
    principals_and_project_roles,
    subject_key,
    upsert_policy,
    user_subject,
)
from .common import ControlError, Forbidden, NotFound, now_iso, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

T = TypeVar("T")

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE policy_grants (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            resource_type TEXT NOT NULL,
            resource_id TEXT NOT NULL,
            subject_type TEXT NOT NULL,
            subject_key TEXT NOT NULL,
            subject TEXT NOT NULL,
            roles TEXT NOT NULL,
            permissions TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (project_id, resource_type, resource_id, subject_type, subject_key)
        )""",
        "CREATE INDEX policy_grants_by_subject ON policy_grants (project_id, subject_type, subject_key)",
        """CREATE TABLE groups_ (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            metadata TEXT NOT NULL,
            annotations TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (project_id, name)
        )""",
        """CREATE TABLE group_members (
            group_id TEXT NOT NULL REFERENCES groups_(id) ON DELETE CASCADE,
            subject_type TEXT NOT NULL,
            subject_key TEXT NOT NULL,
            subject TEXT NOT NULL,
            role TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (group_id, subject_type, subject_key)
        )""",
        """CREATE TRIGGER policy_grants_of_deleted_rooms AFTER DELETE ON rooms BEGIN
            DELETE FROM policy_grants WHERE resource_type = 'room' AND resource_id = OLD.id;
        END""",
    ),
    (  # a deleted service account (a table of the keys store) leaves no policies or memberships
        """CREATE TRIGGER access_of_deleted_service_accounts AFTER DELETE ON service_accounts BEGIN
            DELETE FROM policy_grants WHERE project_id = OLD.project_id
                AND ((resource_type = 'service_account' AND resource_id = OLD.id)
                     OR (subject_type = 'service_account' AND subject_key = OLD.id));
            DELETE FROM group_members WHERE subject_type = 'service_account' AND subject_key = OLD.id;
        END""",
    ),
]

# --- the store -------------------------------------------------------------------------------------


class AccessStore(GrantMethods):
    """Policies, groups and the seed's grants (see the module docstring; groups and the
    seed's grants are `GrantMethods`)."""

    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in one transaction, once the owner user is written."""
        return await self.plane.accounts.run(work)

    async def invite(self, subject: Any) -> Any:
        """A user subject named by e-mail only gets the id of that user, invited if new."""
        if subject.type == "user" and not subject.id and subject.email:
            user = await self.plane.accounts.ensure_user_by_email(subject.email)
            return msgspec.structs.replace(subject, id=user.id)
        return subject

    # --- IAM policies --------------------------------------------------------------------------

    async def grant(self, project_id: str, resource_type: str, resource_id: str, subject: Any, roles: list[str]) -> None:
        """Add roles to the subject's policy on the resource (made if absent)."""
        roles = list(dict.fromkeys(roles))
        if not roles:
            raise ControlError("roles: give at least one role (policy:revoke removes a subject)")
        wrong = rules.bad_roles(resource_type, roles)
        if wrong:
            raise ControlError(f"roles: {wrong[0]!r} is not a role of a {resource_type}")
        subject = await self.invite(subject)

        def work(db: sqlite3.Connection) -> None:
            resource = check_resource(db, project_id, resource_type, resource_id)
            stored = check_subject(db, project_id, subject)
            if resource.type == "project" and stored.type == "user":
                merged = list(dict.fromkeys([*member_roles(db, project_id, stored.id), *roles]))
                db.execute(
                    "INSERT INTO project_members (project_id, user_id, roles, created_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (project_id, user_id) DO UPDATE SET roles = excluded.roles",
                    (project_id, stored.id, json_text(merged), now_iso()),
                )
                return
            upsert_policy(db, project_id, resource, stored, roles, merge=True)

        await self.run(work)

    async def revoke(self, project_id: str, resource_type: str, resource_id: str, subject: Any) -> None:
        owner_id = self.plane.accounts.owner_user().id

        def work(db: sqlite3.Connection) -> None:
            resource = check_resource(db, project_id, resource_type, resource_id)
            stored = check_subject(db, project_id, subject)
            if resource.type == "project" and stored.type == "user":
                if stored.id == owner_id:
                    raise Forbidden("the local server's owner cannot be removed from a project")
                deleted = db.execute("DELETE FROM project_members WHERE project_id = ? AND user_id = ?", (project_id, stored.id)).rowcount
            else:
                deleted = db.execute(
                    "DELETE FROM policy_grants WHERE project_id = ? AND resource_type = ? AND resource_id = ? AND subject_type = ? AND subject_key = ?",
                    (project_id, resource.type, resource.id, stored.type, subject_key(stored)),
                ).rowcount
            if not deleted:
                raise NotFound(f"{stored.type} {subject_key(stored)!r} has no grant on {resource.type} {resource.id!r}")

        await self.run(work)

    async def policy_page(self, project_id: str, resource_type: str, resource_id: str, *, page_size: int, token: str | None) -> tuple[AccessResource, list[RoleGrant], str | None]:
        after = page_offset(token)

        def work(db: sqlite3.Connection) -> tuple[AccessResource, list[RoleGrant], str | None]:
            resource = check_resource(db, project_id, resource_type, resource_id)
            rows: list[tuple[Any, ...]] = []
            if resource.type == "project":
                rows = db.execute(
                    "SELECT m.rowid, u.id, u.email, u.first_name, u.last_name, m.roles FROM project_members m JOIN users u ON u.id = m.user_id"
                    " WHERE m.project_id = ? ORDER BY m.rowid",
                    (project_id,),
                ).fetchall()
            users = [(0, json_text(AccessSubject(type="user", id=i, email=e, first_name=f, last_name=l)), r) for _, i, e, f, l, r in rows]
            policies = db.execute(
                "SELECT rowid, subject, roles FROM policy_grants WHERE project_id = ? AND resource_type = ? AND resource_id = ? ORDER BY rowid",
                (project_id, resource.type, resource.id),
            ).fetchall()
            everything = [*users, *policies]
            page = everything[after : after + page_size]
            grants = [
                RoleGrant(resource=resource, subject=msgspec.json.decode(subject, type=AccessSubject), direct_roles=msgspec.json.decode(roles))
                for _, subject, roles in page
            ]
            more = after + page_size < len(everything)
            return resource, grants, str(after + page_size) if more else None

        return await self.run(work)

    async def bindings(self, project_id: str, subject: Any) -> list[RoleGrant]:
        """The subject's own policies (not those of its groups), the project's first."""

        def work(db: sqlite3.Connection) -> list[RoleGrant]:
            require_project(db, project_id)
            stored = check_subject(db, project_id, subject)
            grants: list[RoleGrant] = []
            if stored.type == "user":
                roles = member_roles(db, project_id, stored.id)
                if roles:
                    grants.append(RoleGrant(resource=check_resource(db, project_id, "project", project_id), subject=stored, direct_roles=roles))
            for resource_type, resource_id, roles in db.execute(
                "SELECT resource_type, resource_id, roles FROM policy_grants WHERE project_id = ? AND subject_type = ? AND subject_key = ? ORDER BY rowid",
                (project_id, stored.type, subject_key(stored)),
            ).fetchall():
                resource = check_resource(db, project_id, resource_type, resource_id)
                grants.append(RoleGrant(resource=resource, subject=stored, direct_roles=msgspec.json.decode(roles)))
            return grants

        return await self.run(work)

    async def effective(self, project_id: str, subject: Any, resource: Any, relations: list[str] | None) -> tuple[AccessSubject, AccessResource, list[str], dict[str, bool]]:
        """(subject, resource, effective roles, capabilities): `relations` or all of them."""
        asked = list(rules.RELATIONS) if relations is None else relations
        check_relations(asked)

        def work(db: sqlite3.Connection) -> tuple[AccessSubject, AccessResource, list[str], dict[str, bool]]:
            require_project(db, project_id)
            stored = check_subject(db, project_id, subject)
            found = check_resource(db, project_id, resource.type, resource.id)
            roles = effective_roles(db, project_id, stored, found)
            capabilities = {relation: rules.satisfies(relation, roles, resource_type=found.type) for relation in asked}
            return stored, found, sorted(roles), capabilities

        return await self.run(work)

    async def set_room_permissions(self, project_id: str, room: str | None, permissions: dict[str, Any]) -> None:
        """`create_room`'s `permissions` (user id → `ApiScope` JSON) as those users' room grants,
        replacing theirs; with `room` None only checked (400, 404 naming what is wrong)."""
        scopes = {user_id: parse_scope(scope, f"permissions[{user_id!r}]") for user_id, scope in permissions.items()}

        def work(db: sqlite3.Connection) -> None:
            users = {user_id: user_subject(db, user_id, None) for user_id in scopes}
            if room is None:
                return
            resource = check_resource(db, project_id, "room", room)
            for user_id, scope in scopes.items():
                upsert_policy(db, project_id, resource, users[user_id], [rules.role_for_scope(scope)], merge=False, permissions=scope)

        await self.run(work)

    async def user_by_email(self, email: str) -> AccessSubject | None:
        """The user with this e-mail (compared lower-cased), None if there is none."""

        def work(db: sqlite3.Connection) -> AccessSubject | None:
            try:
                return user_subject(db, None, email)
            except NotFound:
                return None

        return await self.run(work)

    # --- the room scope of a participant token ---------------------------------------------------

    async def room_scope(self, project_id: str, room_name: str, user_id: str) -> ApiScope:
        """The `ApiScope` a participant token minted by `connect_room` for `user_id` carries in
        this room (see the module docstring); `Forbidden` for a user without access."""

        def work(db: sqlite3.Connection) -> ApiScope:
            subject = user_subject(db, user_id, None)
            principals, project_roles = principals_and_project_roles(db, project_id, subject)
            if is_owner(db, user_id):
                return ApiScope.full()
            room = db.execute("SELECT id FROM rooms WHERE project_id = ? AND name = ?", (project_id, room_name)).fetchone()
            if room is not None:
                own = db.execute(
                    "SELECT permissions FROM policy_grants WHERE project_id = ? AND resource_type = 'room' AND resource_id = ?"
                    " AND subject_type = 'user' AND subject_key = ? AND permissions IS NOT NULL",
                    (project_id, room[0], user_id),
                ).fetchone()
                if own is not None:
                    return ApiScope.from_json(msgspec.json.decode(own[0]))
                roles = policy_roles(db, project_id, "room", room[0], principals)
                if roles:
                    return rules.compat_room_scope(roles)
            if "admin" in project_roles:
                return ApiScope.full()
            if project_roles:
                return ApiScope.user_default()
            raise Forbidden(f"user {subject.email} is not a member of project {project_id!r} and has no grant to the room {room_name!r}")

        return await self.run(work)

    async def agent_room_scope(self, project_id: str, room_name: str, agent_id: str) -> ApiScope | None:
        """The `ApiScope` an agent's grant to a room gives it there (its `permissions`, else the
        compat scope of its roles); None when the agent has no grant to the room."""

        def work(db: sqlite3.Connection) -> ApiScope | None:
            row = db.execute(
                "SELECT g.permissions, g.roles FROM policy_grants g JOIN rooms r ON r.id = g.resource_id"
                " WHERE g.project_id = ? AND g.resource_type = 'room' AND r.name = ? AND g.subject_type = 'agent' AND g.subject_key = ?",
                (project_id, room_name, agent_id),
            ).fetchone()
            if row is None:
                return None
            if row[0] is not None:
                return ApiScope.from_json(msgspec.json.decode(row[0]))
            return rules.compat_room_scope(msgspec.json.decode(row[1]))

        return await self.run(work)


__all__ = ["AccessStore", "MIGRATIONS"]
