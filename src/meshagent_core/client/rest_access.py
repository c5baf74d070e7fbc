"""The official conveniences of `Meshagent` for access control (protocol/rest.md §6): methods that are more than one
route call (paging loops, reshaped answers). `Meshagent` inherits them; they call `self.call`.

Subjects and `permissions` may be given as models (`AccessSubject`, `ApiScope`) or as their
JSON; the seed's `update_*_grant` methods take `grant_id` as optional, as the seed documents do
(the server finds the grant by its room, agent and user).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..rest.access import Group, GroupMember, RoleGrant

#: What the seed's update methods put in the path when no grant id is given.
UNUSED_GRANT_ID = "unused"


def _plain(value: Any) -> Any:
    """A model as its JSON (an `ApiScope` in its full form, nulls included)."""
    if hasattr(value, "model_dump") and isinstance(value, msgspec.Struct):
        return value.model_dump()
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    return value


class AccessMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def _call_plain(self, route_name: str, arguments: dict[str, Any]) -> Any:
        for name in ("subject", "permissions"):
            if name in arguments:
                arguments[name] = _plain(arguments[name])
        return await self.call(route_name, **arguments)

    # --- IAM policies and groups ---------------------------------------------------------------

    async def list_access_bindings(self, *, project_id: str, subject: Any) -> list[RoleGrant]:
        page = await self.call("list_access_bindings_page", project_id=project_id, subject=_plain(subject))
        return page.access_grants

    async def get_resource_policy(self, *, project_id: str, resource_type: str, resource_id: str, page_size: int = 50) -> list[RoleGrant]:
        """Every grant of the resource: the pages of `get_resource_policy_page`, in order."""
        grants: list[RoleGrant] = []
        token: str | None = None
        while True:
            page = await self.call(
                "get_resource_policy_page",
                project_id=project_id,
                resource_type=resource_type,
                resource_id=resource_id,
                page_size=page_size,
                continuation_token=token,
            )
            grants.extend(page.access_grants)
            if page.continuation_token is None:
                return grants
            token = page.continuation_token

    async def grant_resource_policy(self, **arguments: Any) -> None:
        await self._call_plain("grant_resource_policy", arguments)

    async def revoke_resource_policy(self, **arguments: Any) -> None:
        await self._call_plain("revoke_resource_policy", arguments)

    async def test_access(self, **arguments: Any) -> Any:
        return await self._call_plain("test_access", arguments)

    async def get_effective_access(self, **arguments: Any) -> Any:
        return await self._call_plain("get_effective_access", arguments)

    async def list_groups(self, *, project_id: str, **query: Any) -> list[Group]:
        """The groups of one page (`list_groups_page(...).groups`)."""
        return (await self.call("list_groups_page", project_id=project_id, **query)).groups

    async def set_group_member(self, **arguments: Any) -> None:
        await self._call_plain("set_group_member", arguments)

    async def list_group_members(self, *, project_id: str, group_id: str, **query: Any) -> list[GroupMember]:
        """The members of one page (`list_group_members_page(...).members`)."""
        return (await self.call("list_group_members_page", project_id=project_id, group_id=group_id, **query)).members

    # --- the seed's grants ---------------------------------------------------------------------

    async def create_room_grant(self, **arguments: Any) -> Any:
        return await self._call_plain("create_room_grant", arguments)

    async def create_room_grant_by_email(self, **arguments: Any) -> Any:
        return await self._call_plain("create_room_grant_by_email", arguments)

    async def update_room_grant(self, *, grant_id: str | None = None, **arguments: Any) -> Any:
        return await self._call_plain("update_room_grant", {**arguments, "grant_id": grant_id or UNUSED_GRANT_ID})

    async def create_agent_grant(self, **arguments: Any) -> Any:
        return await self._call_plain("create_agent_grant", arguments)

    async def create_agent_grant_by_email(self, **arguments: Any) -> Any:
        return await self._call_plain("create_agent_grant_by_email", arguments)

    async def update_agent_grant(self, *, grant_id: str | None = None, **arguments: Any) -> Any:
        return await self._call_plain("update_agent_grant", {**arguments, "grant_id": grant_id or UNUSED_GRANT_ID})

    async def create_agent_room_grant(self, **arguments: Any) -> Any:
        return await self._call_plain("create_agent_room_grant", arguments)

    async def update_agent_room_grant(self, *, grant_id: str | None = None, **arguments: Any) -> Any:
        return await self._call_plain("update_agent_room_grant", {**arguments, "grant_id": grant_id or UNUSED_GRANT_ID})
