"""What roles mean on the local server: which roles a resource of each type takes, which
relations (`can_use`, `can_manage`, …) a set of roles satisfies, what a project role gives on
every resource of the project, and the `ApiScope` a room role gives in the room. Pure.

Relations (`test_access`, `get_effective_access`), over the roles a subject has on the resource
(its own grants, those of the groups it is in, transitively, of the `everyone` subject and of
the project usersets it belongs to, and those its project roles give):

- `can_view`, `can_list`: any role at all.
- `can_use`: a role that lets one use the resource: any room role, `operator`/`developer`/
  `admin` (agents, groups, …), feed roles, `user` (custom domains), `use_proxy`,
  `run_service_as`; on the project, being a member (any project role).
- `can_develop`: `developer` or `admin`.
- `can_manage`: `admin`, or `manager` (feeds, groups).
- `files_list`, `files_read`, `files_write`, `files_delete`, `files_presign`: that files role,
  or `operator`/`developer`/`admin` (whose room scope grants all of storage).

Project roles reach every resource of the project: `admin` gives `admin`, `<type>_manager`
(`room_manager`, `agent_manager`, `group_manager`, …) gives `admin` on that type.

Room scope (`compat_room_scope`, the official client's `room_scope_for_role_compat`): `admin` →
`ApiScope.full()`, `developer` → `ApiScope.agent_default(tunnels=True)`, any other room role →
`ApiScope.user_default()`; roles that are only `files_*` → an empty `ApiScope()`.
"""

from __future__ import annotations

from typing import Iterable

from meshagent_core.rest.access import (
    ACCESS_ROLES,
    CUSTOM_DOMAIN_ROLES,
    FEED_ROLES,
    FILE_ROLES,
    GROUP_MEMBER_ROLES,
    PROJECT_ROLES,
    RESOURCE_ROLES,
    ROOM_ROLES,
    SECRET_ROLES,
    SERVICE_ACCOUNT_ROLES,
)
from meshagent_core.tokens import ApiScope

#: The roles a policy on a resource of each type may hold.
ROLES_BY_RESOURCE: dict[str, frozenset[str]] = {
    "project": frozenset(PROJECT_ROLES),
    "room": frozenset((*ROOM_ROLES, *FILE_ROLES, "list")),
    "agent": frozenset((*RESOURCE_ROLES, *FILE_ROLES, "list")),
    "group": frozenset((*RESOURCE_ROLES, *GROUP_MEMBER_ROLES, "list")),
    "service_account": frozenset((*RESOURCE_ROLES, *SERVICE_ACCOUNT_ROLES, "list")),
    "repository": frozenset((*RESOURCE_ROLES, "list")),
    "feed": frozenset((*FEED_ROLES, "list")),
    "secret": frozenset((*SECRET_ROLES, *RESOURCE_ROLES, "list")),
    "custom_domain": frozenset((*CUSTOM_DOMAIN_ROLES, "list")),
}

_USE = frozenset(
    {*ROOM_ROLES, "operator", "developer", "admin", *FEED_ROLES, "user", "member", "manager", "use_proxy", "run_service_as"}
)
_STORAGE = frozenset({"operator", "developer", "admin"})
RELATIONS: dict[str, frozenset[str] | None] = {
    "can_view": None,  # None: any role
    "can_list": None,
    "can_use": _USE,
    "can_develop": frozenset({"developer", "admin"}),
    "can_manage": frozenset({"admin", "manager"}),
    **{role: frozenset({role, *_STORAGE}) for role in FILE_ROLES},
}

#: Project roles that give `admin` on every resource of a type.
_MANAGER_OF = {"room_manager": "room", "agent_manager": "agent", "group_manager": "group", "feed_manager": "feed",
               "repository_manager": "repository", "service_account_manager": "service_account",
               "custom_domain_manager": "custom_domain"}  # fmt: skip


def bad_roles(resource_type: str, roles: Iterable[str]) -> list[str]:
    """The roles that a resource of this type does not take."""
    allowed = ROLES_BY_RESOURCE.get(resource_type, frozenset(ACCESS_ROLES))
    return [role for role in roles if role not in allowed]


def inherited_roles(resource_type: str, project_roles: Iterable[str]) -> set[str]:
    """What the project roles give on a resource of this type (on the project: themselves)."""
    roles = set(project_roles)
    if resource_type == "project":
        return roles
    given = set()
    if "admin" in roles or any(_MANAGER_OF.get(role) == resource_type for role in roles):
        given.add("manager" if resource_type == "feed" else "admin")
    return given


def satisfies(relation: str, roles: set[str], *, resource_type: str) -> bool:
    """Whether `roles` on a resource satisfy `relation` (a `KeyError` for an unknown relation)."""
    needed = RELATIONS[relation]
    if needed is None or (resource_type == "project" and relation == "can_use"):
        return bool(roles)
    return bool(roles & needed)


def role_for_scope(scope: ApiScope) -> str:
    """The room role a grant with this `ApiScope` is listed with (the official client's
    `_role_from_api_scope`)."""
    if scope.admin is not None:
        return "admin"
    if scope.developer is not None or scope.tunnels is not None:
        return "developer"
    return "operator"


def compat_room_scope(roles: Iterable[str]) -> ApiScope:
    """The `ApiScope` room roles give (see the module docstring)."""
    roles = set(roles)
    if "admin" in roles:
        return ApiScope.full()
    if "developer" in roles:
        return ApiScope.agent_default(tunnels=True)
    if roles and roles <= set(FILE_ROLES):
        return ApiScope()
    return ApiScope.user_default()


__all__ = ["RELATIONS", "ROLES_BY_RESOURCE", "bad_roles", "compat_room_scope", "inherited_roles", "role_for_scope", "satisfies"]
