"""REST handlers of rooms and `connect_room` (protocol/rest.md §4)."""

from __future__ import annotations

from typing import Any

from meshagent_core.rest.models import RoomConnectionInfo, RoomsPage
from meshagent_core.tokens import ParticipantToken

from .context import Caller, Handler, NotImplementedHere, RestContext, RoomDisabled
from .holders import token_holder


async def create_room(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    permissions = a.get("permissions") or {}
    await context.control.access.set_room_permissions(a["project_id"], None, permissions)  # checked before the room is made
    room = await context.control.create_room(
        a["project_id"], a["name"], if_not_exists=a["if_not_exists"], metadata=a["metadata"], annotations=a["annotations"]
    )
    if permissions:  # the users' room grants
        await context.control.access.set_room_permissions(a["project_id"], room.id, permissions)
    return room


async def get_room(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.get_room(a["project_id"], a["name"])


async def list_rooms_page(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    if a.get("filter") or a.get("view"):
        raise NotImplementedHere("list_rooms: filter and view are not implemented by the local server yet")
    page_size = max(1, min(int(a["page_size"]), 1000))
    rooms, total, token = await context.control.list_rooms(a["project_id"], page_size=page_size, after=a.get("continuation_token"))
    return RoomsPage(rooms=rooms, total=total, continuation_token=token)


async def update_room(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    fields = {key: a[key] for key in ("metadata", "annotations", "enabled") if key in a}
    await context.control.update_room(a["project_id"], a["room_id"], name=a["name"], **fields)


async def delete_room(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.delete_room(a["project_id"], a["room_id"])


async def connect_room(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomConnectionInfo:
    credentials = context.config.credentials
    project_id, room = a["project_id"], a["room"]
    await context.control.get_project(project_id)  # 404 for an unknown project
    if not await context.control.room_enabled(project_id, room):
        raise RoomDisabled("This room is currently disabled.")
    holder = await token_holder(context, caller, project_id, a.get("email"))
    scope = holder.scope
    if scope is None:
        scope = await context.control.access.room_scope(project_id, room, holder.user_id)  # 403 without access
    token = ParticipantToken(name=holder.name, project_id=project_id, api_key_id=credentials.key_id)
    token.add_role_grant(holder.role)
    token.add_room_grant(room)
    token.add_api_grant(scope)
    return RoomConnectionInfo(  # signed by the server's key, which signs for every project
        jwt=token.to_jwt(token=credentials.secret), room_name=room, project_id=project_id, room_url=context.config.room_url(room)
    )


HANDLERS: dict[str, Handler] = {
    "create_room": create_room,
    "get_room": get_room,
    "list_rooms_page": list_rooms_page,
    "update_room": update_room,
    "delete_room": delete_room,
    "connect_room": connect_room,
}
