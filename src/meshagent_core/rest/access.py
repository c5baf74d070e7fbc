"""Routes of access control, with their models: IAM resource policies, groups and members,
access tests (protocol/rest.md §6), and the seed documents' room grants, agent grants and agent-room
grants, which the local server stores as the same policies.

Subjects travel as the official client sends them: `test_access`, `get_effective_access` and
`list_access_bindings` send every field given; `grant_resource_policy` and
`revoke_resource_policy` leave out `first_name`/`last_name` (`SubjectRef`); `set_group_member`
sends the other optional fields as null (`MemberSubject`).

A grant's `permissions` is the full JSON of a `meshagent_core.tokens.ApiScope` (what the
participant token of that user carries in that room).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec
from msgspec import UNSET, UnsetType

from .accounts import PROJECT, ProjectRole
from .models import JsonObject, Model, Room
from .routes import Route

AccessSubjectType = Literal["user", "group", "agent", "service_account", "userset", "everyone"]
AccessResourceType = Literal["project", "room", "agent", "group", "repository", "feed", "secret", "service_account", "custom_domain"]
UsersetRelation = Literal["member", "developer", "agent", "service_account"]

PROJECT_ROLES: tuple[str, ...] = get_args(ProjectRole)
RESOURCE_ROLES = ("viewer", "operator", "developer", "admin")
ROOM_ROLES = ("site_user", "guest", "viewer", "operator", "developer", "admin")
FEED_ROLES = ("reader", "subscriber", "publisher", "manager")
SECRET_ROLES = ("use_proxy",)
SERVICE_ACCOUNT_ROLES = ("run_service_as", "secret_accessor", "secret_manager", "secret_list", "use_proxy_secrets")
CUSTOM_DOMAIN_ROLES = ("viewer", "user", "admin")
FILE_ROLES = ("files_list", "files_read", "files_write", "files_delete", "files_presign")
GROUP_MEMBER_ROLES = ("member", "manager")
#: Every role a policy may hold (the official `AccessRole`, which its `RoleGrant` validates).
ACCESS_ROLES = tuple(
    dict.fromkeys(
        (*PROJECT_ROLES, *RESOURCE_ROLES, *ROOM_ROLES, *FEED_ROLES, *SECRET_ROLES, *SERVICE_ACCOUNT_ROLES, *CUSTOM_DOMAIN_ROLES, *FILE_ROLES, "list")
    )
)
AccessRole = Literal[ACCESS_ROLES]  # type: ignore[valid-type]


class AccessSubject(Model):
    """Who a policy is about. A `user` may be named by `email` alone; a `userset` is e.g.
    `{"type": "userset", "id": "<project id>", "object_type": "project", "relation": "member"}`."""

    type: AccessSubjectType
    id: str | None = None
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    object_type: Literal["project"] | None = None
    relation: UsersetRelation | None = None


class SubjectRef(Model):
    """`AccessSubject` as the grant and revoke requests send it: without the read-only names."""

    type: AccessSubjectType
    id: str | None = None
    name: str | None = None
    email: str | None = None
    object_type: Literal["project"] | None = None
    relation: UsersetRelation | None = None


class MemberSubject(SubjectRef, omit_defaults=False):
    """`AccessSubject` as `set_group_member` sends it: no names, the other fields null when not given."""


class AccessResource(Model):
    type: AccessResourceType
    id: str
    name: str | None = None
    metadata: JsonObject | None = None
    annotations: dict[str, str] | None = None


class RoleGrant(Model):
    resource: AccessResource
    subject: AccessSubject
    direct_roles: list[str] = msgspec.field(default_factory=list)


class AccessBindingsPage(Model):
    access_grants: list[RoleGrant]


class ResourcePolicyPage(Model):
    resource: AccessResource
    access_grants: list[RoleGrant]
    continuation_token: str | None = None


class ResourceAccessSummary(Model):
    resource: AccessResource
    subject: AccessSubject
    effective_roles: list[str]
    capabilities: dict[str, bool]


class AccessTestResult(Model):
    allowed: bool


class Group(Model):
    id: str
    name: str
    metadata: JsonObject = msgspec.field(default_factory=dict)
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class GroupsPage(Model):
    groups: list[Group]
    continuation_token: str | None = None


class GroupMember(Model):
    subject: AccessSubject
    direct_roles: list[str] = msgspec.field(default_factory=list)


class GroupMembersPage(Model):
    members: list[GroupMember]
    continuation_token: str | None = None


# --- the seed's room grants, agent grants and agent-room grants (our client only) ------------


class AgentRef(Model):
    id: str
    name: str


class RoomGrant(Model):
    """A user's grant to a room (`get_room_grant`): `permissions` is the `ApiScope` JSON."""

    id: str
    room: Room
    user_id: str
    permissions: JsonObject
    email: str | None = None


class RoomGrants(Model):
    room_grants: list[RoomGrant]


class RoomGrantCount(Model):
    room: Room
    count: int


class RoomsWithGrants(Model):
    rooms: list[RoomGrantCount]


class UserGrantCount(Model):
    user_id: str
    count: int
    email: str
    first_name: str | None = None
    last_name: str | None = None


class UsersWithGrants(Model):
    users: list[UserGrantCount]


class AgentGrant(Model):
    """A user's grant to use an agent; `permissions` (an `ApiScope` JSON) only when given."""

    id: str
    agent: AgentRef
    user_id: str
    permissions: JsonObject | None = None
    email: str | None = None


class AgentRoomGrant(Model):
    """An agent's grant to a room; `permissions` is the `ApiScope` JSON the agent gets there."""

    id: str
    agent: AgentRef
    room: Room
    permissions: JsonObject | None = None


class AgentRoomGrants(Model):
    agent_room_grants: list[AgentRoomGrant]


# --- request bodies and queries ----------------------------------------------------------------


class TestAccessBody(msgspec.Struct, kw_only=True):
    subject: AccessSubject
    resource: AccessResource
    relation: str


class EffectiveAccessBody(msgspec.Struct, kw_only=True):
    subject: AccessSubject
    resource: AccessResource
    relations: list[str] | UnsetType = UNSET


class BindingsBody(msgspec.Struct, kw_only=True):
    subject: AccessSubject


class GrantBody(msgspec.Struct, kw_only=True):
    subject: SubjectRef
    roles: list[AccessRole]  # type: ignore[valid-type]
    invite_redirect_url: str | UnsetType = UNSET


class RevokeBody(msgspec.Struct, kw_only=True):
    subject: SubjectRef


class PolicyQuery(msgspec.Struct, kw_only=True):
    page_size: int = 50
    continuation_token: str | None = None


class GroupBody(msgspec.Struct, kw_only=True):
    name: str
    metadata: JsonObject | UnsetType = UNSET
    annotations: dict[str, str] | UnsetType = UNSET


class GroupsQuery(msgspec.Struct, kw_only=True):
    page_size: int = 50
    continuation_token: str | None = None
    filter: str | None = None


class GroupMembersQuery(msgspec.Struct, kw_only=True):
    page_size: int = 50
    continuation_token: str | None = None


class GroupMemberBody(msgspec.Struct, kw_only=True):
    subject: MemberSubject
    role: Literal["member", "manager"] = "member"


class CreateRoomGrantBody(msgspec.Struct, kw_only=True):
    """`create_room_grant` names the user by `user_id`, `create_room_grant_by_email` by `email`."""

    room_id: str
    user_id: str | UnsetType = UNSET
    email: str | UnsetType = UNSET
    permissions: JsonObject


class UpdateRoomGrantBody(msgspec.Struct, kw_only=True):
    room_id: str
    user_id: str
    permissions: JsonObject


class CreateAgentGrantBody(msgspec.Struct, kw_only=True):
    agent_id: str
    user_id: str | UnsetType = UNSET
    email: str | UnsetType = UNSET
    permissions: JsonObject | UnsetType = UNSET


class UpdateAgentGrantBody(msgspec.Struct, kw_only=True):
    agent_id: str
    user_id: str
    permissions: JsonObject | UnsetType = UNSET


class AgentRoomGrantBody(msgspec.Struct, kw_only=True):
    agent_id: str
    room_id: str
    permissions: JsonObject | UnsetType = UNSET


class RoomGrantsQuery(msgspec.Struct, kw_only=True):
    limit: int = 50
    offset: int = 0
    order_by: Literal["room_name", "user_id", "created_at"] = "room_name"


class OffsetQuery(msgspec.Struct, kw_only=True):
    limit: int = 50
    offset: int = 0


IAM = PROJECT + "/iam/{resource_type}/{resource_id}"
GROUPS = PROJECT + "/groups"
ROOM_GRANTS = PROJECT + "/room-grants"
AGENT_GRANTS = PROJECT + "/agent-grants"
AGENT_ROOM_GRANTS = PROJECT + "/agent-room-grants"
GROUP_NOT_FOUND = "group not found"

ROUTES = [
    Route("test_access", "POST", PROJECT + "/access:test", AccessTestResult, body=TestAccessBody, payload_noun="access test"),
    Route("get_effective_access", "POST", PROJECT + "/access:effective", ResourceAccessSummary, body=EffectiveAccessBody, payload_noun="effective access"),
    Route(
        "list_access_bindings_page",
        "POST",
        PROJECT + "/access:bindings",
        AccessBindingsPage,
        body=BindingsBody,
        aliases=("list_access_bindings",),
        payload_noun="access bindings",
    ),
    Route(
        "get_resource_policy_page",
        "GET",
        IAM + "/policy",
        ResourcePolicyPage,
        query=PolicyQuery,
        aliases=("get_resource_policy",),
        payload_noun="resource policy",
    ),
    Route("grant_resource_policy", "POST", IAM + "/policy:grant", Any, body=GrantBody),
    Route("revoke_resource_policy", "POST", IAM + "/policy:revoke", Any, body=RevokeBody),
    Route("create_group", "POST", GROUPS, Group, body=GroupBody, payload_noun="group"),
    Route("get_group", "GET", GROUPS + "/{group_id}", Group, not_found=GROUP_NOT_FOUND, payload_noun="group"),
    Route("get_group_by_name", "GET", GROUPS + "/by-name/{name}", Group, not_found=GROUP_NOT_FOUND, payload_noun="group"),
    Route("update_group", "PUT", GROUPS + "/{group_id}", Any, body=GroupBody),
    Route("delete_group", "DELETE", GROUPS + "/{group_id}", Any),
    Route("list_groups_page", "GET", GROUPS, GroupsPage, query=GroupsQuery, aliases=("list_groups",), payload_noun="groups"),
    Route("set_group_member", "POST", GROUPS + "/{group_id}/members", Any, body=GroupMemberBody),
    Route("delete_group_member", "DELETE", GROUPS + "/{group_id}/members/{subject_type}/{subject_id}", Any),
    Route(
        "list_group_members_page",
        "GET",
        GROUPS + "/{group_id}/members",
        GroupMembersPage,
        query=GroupMembersQuery,
        aliases=("list_group_members",),
        payload_noun="group members",
    ),
    # the seed's room grants
    Route("create_room_grant", "POST", ROOM_GRANTS, RoomGrant, body=CreateRoomGrantBody, aliases=("create_room_grant_by_email",)),
    Route("update_room_grant", "PUT", ROOM_GRANTS + "/{grant_id}", RoomGrant, body=UpdateRoomGrantBody),
    Route("get_room_grant", "GET", ROOM_GRANTS + "/{room_id}/{user_id}", RoomGrant),
    Route("delete_room_grant", "DELETE", ROOM_GRANTS + "/{room_id}/{user_id}", Any),
    Route("list_room_grants", "GET", ROOM_GRANTS, RoomGrants, query=RoomGrantsQuery),
    Route("list_room_grants_by_user", "GET", ROOM_GRANTS + "/by-user/{user_id}", RoomGrants, query=OffsetQuery),
    Route("list_room_grants_by_room", "GET", ROOM_GRANTS + "/by-room/{room_name}", RoomGrants, query=OffsetQuery),
    Route("list_unique_rooms_with_grants", "GET", ROOM_GRANTS + "/by-room", RoomsWithGrants, query=OffsetQuery),
    Route("list_unique_users_with_grants", "GET", ROOM_GRANTS + "/by-user", UsersWithGrants, query=OffsetQuery),
    # the seed's agent grants and agent-room grants
    Route("create_agent_grant", "POST", AGENT_GRANTS, AgentGrant, body=CreateAgentGrantBody, aliases=("create_agent_grant_by_email",)),
    Route("update_agent_grant", "PUT", AGENT_GRANTS + "/{grant_id}", AgentGrant, body=UpdateAgentGrantBody),
    Route("get_agent_grant", "GET", AGENT_GRANTS + "/{agent_id}/{user_id}", AgentGrant),
    Route("delete_agent_grant", "DELETE", AGENT_GRANTS + "/{agent_id}/{user_id}", Any),
    Route("create_agent_room_grant", "POST", AGENT_ROOM_GRANTS, AgentRoomGrant, body=AgentRoomGrantBody),
    Route("update_agent_room_grant", "PUT", AGENT_ROOM_GRANTS + "/{grant_id}", AgentRoomGrant, body=AgentRoomGrantBody),
    Route("get_agent_room_grant", "GET", AGENT_ROOM_GRANTS + "/{agent_id}/{room_id}", AgentRoomGrant),
    Route("delete_agent_room_grant", "DELETE", AGENT_ROOM_GRANTS + "/{agent_id}/{room_id}", Any),
    Route("list_agent_room_grants_by_agent", "GET", AGENT_ROOM_GRANTS + "/by-agent/{agent_name}", AgentRoomGrants, query=OffsetQuery),
    Route("list_agent_room_grants_by_room", "GET", AGENT_ROOM_GRANTS + "/by-room/{room_name}", AgentRoomGrants, query=OffsetQuery),
]

#: The seed-only methods (not in the official 0.56 client): served here and by our client.
SEED_METHODS = frozenset(
    name for route in ROUTES if route.path.startswith((ROOM_GRANTS, AGENT_GRANTS, AGENT_ROOM_GRANTS)) for name in (route.name, *route.aliases)
)

__all__ = [
    "ACCESS_ROLES",
    "AccessBindingsPage",
    "AccessResource",
    "AccessSubject",
    "AccessTestResult",
    "AgentGrant",
    "AgentRef",
    "AgentRoomGrant",
    "AgentRoomGrants",
    "FILE_ROLES",
    "Group",
    "GroupMember",
    "GroupMembersPage",
    "GroupsPage",
    "PROJECT_ROLES",
    "ROOM_ROLES",
    "ROUTES",
    "ResourceAccessSummary",
    "ResourcePolicyPage",
    "RoleGrant",
    "RoomGrant",
    "RoomGrantCount",
    "RoomGrants",
    "RoomsWithGrants",
    "SEED_METHODS",
    "UserGrantCount",
    "UsersWithGrants",
]
