"""The access store's work inside a transaction: finding rooms, agents, groups, users and
service accounts (404 naming them), the stored form of subjects and resources, writing a
policy, and the roles a subject has on a resource (how: see `access`)."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import msgspec

from meshagent_core.rest.access import AccessResource, AccessSubject, AgentRef, Group
from meshagent_core.rest.models import Room
from meshagent_core.tokens import ApiScope

from . import access_rules as rules
from .common import ControlError, NotFound, now_iso, require_project

#: Resource types whose resources the local server does not hold yet.
UNSERVED_RESOURCE_TYPES = frozenset({"repository", "feed", "secret", "custom_domain"})
ROOM_COLUMNS = "r.id, r.name, r.metadata, r.annotations, r.enabled"


def json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def room_of_row(row: tuple[Any, ...]) -> Room:
    id, name, metadata, annotations, enabled = row[:5]
    return Room(id=id, name=name, metadata=msgspec.json.decode(metadata), annotations=msgspec.json.decode(annotations), enabled=bool(enabled))


def subject_key(subject: AccessSubject) -> str:
    if subject.type == "everyone":
        return "*"
    if subject.type == "userset":
        return f"{subject.object_type}:{subject.id}#{subject.relation}"
    return subject.id or ""


def parse_scope(permissions: Any, field: str = "permissions") -> ApiScope:
    """The `ApiScope` of a `permissions` JSON (400 naming the field when it is not one)."""
    try:
        return ApiScope.from_json(permissions)
    except (msgspec.ValidationError, ValueError, TypeError) as error:
        raise ControlError(f"{field}: not an ApiScope ({error})") from None


def page_offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise ControlError(f"continuation_token: {token!r} is not one this server gave")
    return int(token)


# --- lookups inside a transaction -----------------------------------------------------------------


def find_room(db: sqlite3.Connection, project_id: str, room: str) -> Room:
    """A room of the project by id, else by name (404 naming it)."""
    row = db.execute(f"SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.project_id = ? AND r.id = ?", (project_id, room)).fetchone()
    row = row or db.execute(f"SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.project_id = ? AND r.name = ?", (project_id, room)).fetchone()
    if row is None:
        raise NotFound(f"room {room!r} does not exist")
    return room_of_row(row)


def find_agent(db: sqlite3.Connection, project_id: str, agent: str) -> AgentRef:
    """A managed agent of the project by id, else by name (404 naming it)."""
    row = db.execute("SELECT id, name FROM agents WHERE project_id = ? AND id = ?", (project_id, agent)).fetchone()
    row = row or db.execute("SELECT id, name FROM agents WHERE project_id = ? AND name = ?", (project_id, agent)).fetchone()
    if row is None:
        raise NotFound(f"agent {agent!r} does not exist")
    return AgentRef(id=row[0], name=row[1])


def find_group(db: sqlite3.Connection, project_id: str, group_id: str, column: str = "id") -> Group:
    row = db.execute(f"SELECT id, name, metadata, annotations FROM groups_ WHERE project_id = ? AND {column} = ?", (project_id, group_id)).fetchone()
    if row is None:
        raise NotFound(f"group {group_id!r} does not exist")
    return Group(id=row[0], name=row[1], metadata=msgspec.json.decode(row[2]), annotations=msgspec.json.decode(row[3]))


def user_subject(db: sqlite3.Connection, user_id: str | None, email: str | None) -> AccessSubject:
    if user_id:
        row = db.execute("SELECT id, email, first_name, last_name FROM users WHERE id = ?", (user_id,)).fetchone()
        missing = f"user {user_id!r} does not exist"
    else:
        row = db.execute("SELECT id, email, first_name, last_name FROM users WHERE email = ?", ((email or "").strip().lower(),)).fetchone()
        missing = f"no user has the e-mail {email!r}"
    if row is None:
        raise NotFound(missing)
    return AccessSubject(type="user", id=row[0], email=row[1], first_name=row[2], last_name=row[3])


def check_subject(db: sqlite3.Connection, project_id: str, subject: Any) -> AccessSubject:
    """The subject as stored: its id checked (404 naming it), its name and e-mail filled in."""
    kind = subject.type
    if kind == "user":
        if not subject.id and not subject.email:
            raise ControlError("subject: a user needs an id or an email")
        return user_subject(db, subject.id, subject.email)
    if kind == "everyone":
        return AccessSubject(type="everyone")
    if kind == "userset":
        if subject.object_type != "project" or subject.id != project_id or subject.relation is None:
            raise ControlError(f"subject: a userset is {{'type': 'userset', 'object_type': 'project', 'id': {project_id!r}, 'relation': …}}")
        return AccessSubject(type="userset", id=project_id, object_type="project", relation=subject.relation)
    if not subject.id and not subject.name:
        raise ControlError(f"subject: a {kind} needs an id")
    if kind == "group":
        group = find_group(db, project_id, subject.id) if subject.id else find_group(db, project_id, subject.name, "name")
        return AccessSubject(type="group", id=group.id, name=group.name)
    if kind == "agent":
        agent = find_agent(db, project_id, subject.id or subject.name)
        return AccessSubject(type="agent", id=agent.id, name=agent.name)
    column, value = ("id", subject.id) if subject.id else ("name", subject.name)
    row = db.execute(f"SELECT id, name FROM service_accounts WHERE project_id = ? AND {column} = ?", (project_id, value)).fetchone()
    if row is None:
        raise NotFound(f"service account {value!r} does not exist")
    return AccessSubject(type="service_account", id=row[0], name=row[1])


def check_resource(db: sqlite3.Connection, project_id: str, resource_type: str, resource_id: str) -> AccessResource:
    """The resource with its name (404 naming it). Rooms and agents may be named by id or name."""
    if resource_type == "project":
        require_project(db, project_id)
        if resource_id != project_id:
            raise NotFound(f"project {resource_id!r} is not the project {project_id!r} of this request")
        name = db.execute("SELECT name FROM projects WHERE id = ?", (project_id,)).fetchone()[0]
        return AccessResource(type="project", id=project_id, name=name)
    if resource_type == "room":
        room = find_room(db, project_id, resource_id)
        return AccessResource(type="room", id=room.id, name=room.name, metadata=room.metadata, annotations=room.annotations)
    if resource_type == "agent":
        agent = find_agent(db, project_id, resource_id)
        return AccessResource(type="agent", id=agent.id, name=agent.name)
    if resource_type == "group":
        group = find_group(db, project_id, resource_id)
        return AccessResource(type="group", id=group.id, name=group.name, metadata=group.metadata, annotations=group.annotations)
    if resource_type == "service_account":
        subject = check_subject(db, project_id, AccessSubject(type="service_account", id=resource_id))
        return AccessResource(type="service_account", id=resource_id, name=subject.name)
    raise ControlError(f"resource type {resource_type!r} is not one of this server's")


def is_owner(db: sqlite3.Connection, user_id: str | None) -> bool:
    row = db.execute("SELECT is_owner FROM users WHERE id = ?", (user_id,)).fetchone()
    return bool(row and row[0])


def member_roles(db: sqlite3.Connection, project_id: str, user_id: str | None) -> list[str]:
    row = db.execute("SELECT roles FROM project_members WHERE project_id = ? AND user_id = ?", (project_id, user_id)).fetchone()
    return [] if row is None else msgspec.json.decode(row[0])


# --- evaluation ------------------------------------------------------------------------------------


def _groups_of(db: sqlite3.Connection, project_id: str, principals: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The groups the principals are in, transitively."""
    found: set[tuple[str, str]] = set()
    frontier = list(principals)
    while frontier:
        kind, key = frontier.pop()
        for (group_id,) in db.execute(
            "SELECT m.group_id FROM group_members m JOIN groups_ g ON g.id = m.group_id"
            " WHERE g.project_id = ? AND m.subject_type = ? AND m.subject_key = ?",
            (project_id, kind, key),
        ):
            if ("group", group_id) not in found:
                found.add(("group", group_id))
                frontier.append(("group", group_id))
    return found


def policy_roles(db: sqlite3.Connection, project_id: str, resource_type: str, resource_id: str, principals: set[tuple[str, str]]) -> set[str]:
    roles: set[str] = set()
    for kind, key, stored in db.execute(
        "SELECT subject_type, subject_key, roles FROM policy_grants WHERE project_id = ? AND resource_type = ? AND resource_id = ?",
        (project_id, resource_type, resource_id),
    ):
        if (kind, key) in principals:
            roles.update(msgspec.json.decode(stored))
    return roles


def principals_and_project_roles(db: sqlite3.Connection, project_id: str, subject: AccessSubject) -> tuple[set[tuple[str, str]], set[str]]:
    """Everyone the subject acts as (itself, its groups, `everyone`, its usersets) and its
    project roles."""
    principals = {(subject.type, subject_key(subject)), ("everyone", "*")}
    principals |= _groups_of(db, project_id, principals)
    project_roles = set(member_roles(db, project_id, subject.id)) if subject.type == "user" else set()
    if subject.type == "user" and is_owner(db, subject.id):
        project_roles.add("admin")
    project_roles |= policy_roles(db, project_id, "project", project_id, principals)
    usersets = {"agent": ["agent"], "service_account": ["service_account"]}.get(subject.type, [])
    if project_roles:
        usersets.append("member")
    if project_roles & {"developer", "admin"}:
        usersets.append("developer")
    for relation in usersets:
        principals.add(("userset", f"project:{project_id}#{relation}"))
    # project roles granted to those usersets (membership itself comes from the roles above)
    project_roles |= policy_roles(db, project_id, "project", project_id, principals)
    return principals, project_roles


def effective_roles(db: sqlite3.Connection, project_id: str, subject: AccessSubject, resource: AccessResource) -> set[str]:
    principals, project_roles = principals_and_project_roles(db, project_id, subject)
    if resource.type == "project":
        return project_roles
    return policy_roles(db, project_id, resource.type, resource.id, principals) | rules.inherited_roles(resource.type, project_roles)


def check_relations(relations: list[str]) -> None:
    unknown = [relation for relation in relations if relation not in rules.RELATIONS]
    if unknown:
        raise ControlError(f"relation {unknown[0]!r} is not one of {', '.join(rules.RELATIONS)}")


def upsert_policy(
    db: sqlite3.Connection, project_id: str, resource: AccessResource, subject: AccessSubject, roles: list[str], *, merge: bool, permissions: ApiScope | None = None
) -> str:
    """Write the subject's policy on the resource: roles added to the existing ones (`merge`)
    or replacing them with the scope; returns the policy's id."""
    key = subject_key(subject)
    row = db.execute(
        "SELECT id, roles FROM policy_grants WHERE project_id = ? AND resource_type = ? AND resource_id = ? AND subject_type = ? AND subject_key = ?",
        (project_id, resource.type, resource.id, subject.type, key),
    ).fetchone()
    scope = None if permissions is None else json_text(permissions.model_dump())
    if row is None:
        grant_id = str(uuid.uuid4())
        db.execute(
            "INSERT INTO policy_grants (id, project_id, resource_type, resource_id, subject_type, subject_key, subject, roles, permissions, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (grant_id, project_id, resource.type, resource.id, subject.type, key, json_text(subject), json_text(roles), scope, now_iso()),
        )
        return grant_id
    if merge:
        roles = list(dict.fromkeys([*msgspec.json.decode(row[1]), *roles]))
        db.execute("UPDATE policy_grants SET roles = ?, subject = ? WHERE id = ?", (json_text(roles), json_text(subject), row[0]))
    else:
        db.execute("UPDATE policy_grants SET roles = ?, subject = ?, permissions = ? WHERE id = ?", (json_text(roles), json_text(subject), scope, row[0]))
    return row[0]
