"""REST handlers of access control: IAM policies, groups, room/agent grants (protocol/rest.md §6, seed).

What they mean (roles, relations, room scopes) is in `control.access` and `control.access_rules`.
Policies on repositories, feeds, secrets and custom domains answer 501: the local server does
not hold those resources yet.
"""

from __future__ import annotations

from typing import Any

from meshagent_core.rest.access import (
    AccessBindingsPage,
    AccessTestResult,
    AgentRoomGrants,
    GroupMembersPage,
    GroupsPage,
    ResourceAccessSummary,
    ResourcePolicyPage,
    RoomGrants,
    RoomsWithGrants,
    UsersWithGrants,
)

from ..control import ControlError
from ..control.access_policy import UNSERVED_RESOURCE_TYPES
from .context import Caller, Handler, NotImplementedHere, RestContext

MAX_PAGE = 1000


def _page_size(value: int, field: str = "page_size") -> int:
    if value < 1:
        raise ControlError(f"{field}: must be at least 1")
    return min(value, MAX_PAGE)


def _window(a: dict[str, Any]) -> dict[str, int]:
    if a["offset"] < 0:
        raise ControlError("offset: must not be negative")
    return {"limit": _page_size(a["limit"], "limit"), "offset": a["offset"]}


def _served(resource_type: str, method: str) -> str:
    if resource_type in UNSERVED_RESOURCE_TYPES:
        raise NotImplementedHere(f"{method}: the local server holds no {resource_type} resources yet")
    return resource_type


# --- IAM policies ----------------------------------------------------------------------------------


async def test_access(context: RestContext, a: dict[str, Any], caller: Caller) -> AccessTestResult:
    resource = a["resource"]
    _served(resource.type, "test_access")
    _, _, _, capabilities = await context.control.access.effective(a["project_id"], a["subject"], resource, [a["relation"]])
    return AccessTestResult(allowed=capabilities[a["relation"]])


async def get_effective_access(context: RestContext, a: dict[str, Any], caller: Caller) -> ResourceAccessSummary:
    resource = a["resource"]
    _served(resource.type, "get_effective_access")
    subject, found, roles, capabilities = await context.control.access.effective(a["project_id"], a["subject"], resource, a.get("relations"))
    return ResourceAccessSummary(resource=found, subject=subject, effective_roles=roles, capabilities=capabilities)


async def list_access_bindings_page(context: RestContext, a: dict[str, Any], caller: Caller) -> AccessBindingsPage:
    return AccessBindingsPage(access_grants=await context.control.access.bindings(a["project_id"], a["subject"]))


async def get_resource_policy_page(context: RestContext, a: dict[str, Any], caller: Caller) -> ResourcePolicyPage:
    resource_type = _served(a["resource_type"], "get_resource_policy")
    resource, grants, token = await context.control.access.policy_page(
        a["project_id"], resource_type, a["resource_id"], page_size=_page_size(a["page_size"]), token=a.get("continuation_token")
    )
    return ResourcePolicyPage(resource=resource, access_grants=grants, continuation_token=token)


async def grant_resource_policy(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    resource_type = _served(a["resource_type"], "grant_resource_policy")
    await context.control.access.grant(a["project_id"], resource_type, a["resource_id"], a["subject"], a["roles"])


async def revoke_resource_policy(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    resource_type = _served(a["resource_type"], "revoke_resource_policy")
    await context.control.access.revoke(a["project_id"], resource_type, a["resource_id"], a["subject"])


# --- groups ----------------------------------------------------------------------------------------


async def create_group(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.access.create_group(a["project_id"], a["name"], a.get("metadata"), a.get("annotations"))


async def get_group(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.access.get_group(a["project_id"], a["group_id"])


async def get_group_by_name(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.access.get_group(a["project_id"], a["name"], by_name=True)


async def update_group(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    fields = {key: a[key] for key in ("metadata", "annotations") if key in a}
    await context.control.access.update_group(a["project_id"], a["group_id"], a["name"], fields)


async def delete_group(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.access.delete_group(a["project_id"], a["group_id"])


async def list_groups_page(context: RestContext, a: dict[str, Any], caller: Caller) -> GroupsPage:
    groups, token = await context.control.access.groups_page(
        a["project_id"], page_size=_page_size(a["page_size"]), token=a.get("continuation_token"), filter=a.get("filter")
    )
    return GroupsPage(groups=groups, continuation_token=token)


async def set_group_member(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.access.set_group_member(a["project_id"], a["group_id"], a["subject"], a["role"])


async def delete_group_member(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.access.delete_group_member(a["project_id"], a["group_id"], a["subject_type"], a["subject_id"])


async def list_group_members_page(context: RestContext, a: dict[str, Any], caller: Caller) -> GroupMembersPage:
    members, token = await context.control.access.group_members_page(
        a["project_id"], a["group_id"], page_size=_page_size(a["page_size"]), token=a.get("continuation_token")
    )
    return GroupMembersPage(members=members, continuation_token=token)


# --- the seed's room grants ------------------------------------------------------------------------


async def create_room_grant(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.access.put_room_grant(
        a["project_id"], a["room_id"], a.get("user_id"), a.get("email"), a["permissions"], grant_id=None
    )


async def update_room_grant(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.access.put_room_grant(
        a["project_id"], a["room_id"], a["user_id"], None, a["permissions"], grant_id=a["grant_id"]
    )


async def get_room_grant(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.access.get_room_grant(a["project_id"], a["room_id"], a["user_id"])


async def delete_room_grant(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.access.delete_grant(a["project_id"], "room", a["room_id"], "user", a["user_id"])


async def list_room_grants(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomGrants:
    grants = await context.control.access.room_grants(a["project_id"], order_by=a["order_by"], **_window(a))
    return RoomGrants(room_grants=grants)


async def list_room_grants_by_user(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomGrants:
    return RoomGrants(room_grants=await context.control.access.room_grants(a["project_id"], user_id=a["user_id"], **_window(a)))


async def list_room_grants_by_room(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomGrants:
    return RoomGrants(room_grants=await context.control.access.room_grants(a["project_id"], room=a["room_name"], **_window(a)))


async def list_unique_rooms_with_grants(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomsWithGrants:
    return RoomsWithGrants(rooms=await context.control.access.rooms_with_grants(a["project_id"], **_window(a)))


async def list_unique_users_with_grants(context: RestContext, a: dict[str, Any], caller: Caller) -> UsersWithGrants:
    return UsersWithGrants(users=await context.control.access.users_with_grants(a["project_id"], **_window(a)))


# --- the seed's agent grants and agent-room grants ------------------------------------------------


async def create_agent_grant(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.access.put_agent_grant(
        a["project_id"], a["agent_id"], a.get("user_id"), a.get("email"), a.get("permissions"), grant_id=None
    )


async def update_agent_grant(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.access.put_agent_grant(
        a["project_id"], a["agent_id"], a["user_id"], None, a.get("permissions"), grant_id=a["grant_id"]
    )


async def get_agent_grant(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.access.get_agent_grant(a["project_id"], a["agent_id"], a["user_id"])


async def delete_agent_grant(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.access.delete_grant(a["project_id"], "agent", a["agent_id"], "user", a["user_id"])


async def create_agent_room_grant(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.access.put_agent_room_grant(a["project_id"], a["agent_id"], a["room_id"], a.get("permissions"), grant_id=None)


async def update_agent_room_grant(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.access.put_agent_room_grant(
        a["project_id"], a["agent_id"], a["room_id"], a.get("permissions"), grant_id=a["grant_id"]
    )


async def get_agent_room_grant(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.access.get_agent_room_grant(a["project_id"], a["agent_id"], a["room_id"])


async def delete_agent_room_grant(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.access.delete_grant(a["project_id"], "room", a["room_id"], "agent", a["agent_id"])


async def list_agent_room_grants_by_agent(context: RestContext, a: dict[str, Any], caller: Caller) -> AgentRoomGrants:
    grants = await context.control.access.agent_room_grants(a["project_id"], agent=a["agent_name"], **_window(a))
    return AgentRoomGrants(agent_room_grants=grants)


async def list_agent_room_grants_by_room(context: RestContext, a: dict[str, Any], caller: Caller) -> AgentRoomGrants:
    grants = await context.control.access.agent_room_grants(a["project_id"], room=a["room_name"], **_window(a))
    return AgentRoomGrants(agent_room_grants=grants)


HANDLERS: dict[str, Handler] = {
    handler.__name__: handler
    for handler in (
        test_access,
        get_effective_access,
        list_access_bindings_page,
        get_resource_policy_page,
        grant_resource_policy,
        revoke_resource_policy,
        create_group,
        get_group,
        get_group_by_name,
        update_group,
        delete_group,
        list_groups_page,
        set_group_member,
        delete_group_member,
        list_group_members_page,
        create_room_grant,
        update_room_grant,
        get_room_grant,
        delete_room_grant,
        list_room_grants,
        list_room_grants_by_user,
        list_room_grants_by_room,
        list_unique_rooms_with_grants,
        list_unique_users_with_grants,
        create_agent_grant,
        update_agent_grant,
        get_agent_grant,
        delete_agent_grant,
        create_agent_room_grant,
        update_agent_room_grant,
        get_agent_room_grant,
        delete_agent_room_grant,
        list_agent_room_grants_by_agent,
        list_agent_room_grants_by_room,
    )
}
