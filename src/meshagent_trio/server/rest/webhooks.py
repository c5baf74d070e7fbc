"""REST handlers of the seed's webhooks and shares (protocol/rest.md §17).

Webhooks are stored here and delivered by `services.project_webhooks` (protocol/webhooks.md §7). `connect_share` answers, to
anyone holding the share's id, a participant token for the share's room, made from the share's
settings (name, role, `api` scope; the user default scope when none is given) and signed with
the server's key, as `connect_room` signs; the room must not be disabled (423).
"""

from __future__ import annotations

from typing import Any

from meshagent_core.rest.webhooks import ShareConnectionInfo, Shares, Webhooks
from meshagent_core.tokens import ApiScope, ParticipantToken

from ..control.webhooks import share_settings
from .context import Caller, Handler, RestContext, RoomDisabled

_WEBHOOK_FIELDS = ("name", "url", "events", "description", "action", "payload")


async def create_webhook(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.webhooks.create_webhook(a["project_id"], **{field: a[field] for field in _WEBHOOK_FIELDS})


async def list_webhooks(context: RestContext, a: dict[str, Any], caller: Caller) -> Webhooks:
    return Webhooks(webhooks=await context.control.webhooks.list_webhooks(a["project_id"]))


async def update_webhook(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.webhooks.update_webhook(a["project_id"], a["webhook_id"], **{field: a[field] for field in _WEBHOOK_FIELDS})


async def delete_webhook(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.webhooks.delete_webhook(a["project_id"], a["webhook_id"])


async def create_share(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.webhooks.create_share(a["project_id"], a.get("settings"))


async def list_shares(context: RestContext, a: dict[str, Any], caller: Caller) -> Shares:
    return Shares(shares=await context.control.webhooks.list_shares(a["project_id"]))


async def update_share(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.webhooks.update_share(a["project_id"], a["share_id"], a.get("settings"))


async def delete_share(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.webhooks.delete_share(a["project_id"], a["share_id"])


async def connect_share(context: RestContext, a: dict[str, Any], caller: Caller) -> ShareConnectionInfo:
    share = await context.control.webhooks.get_share(a["share_id"])
    settings = share_settings("connect_share", share.settings)
    if not await context.control.room_enabled(share.project_id, settings.room):
        raise RoomDisabled("This room is currently disabled.")
    credentials = context.config.credentials
    token = ParticipantToken(name=settings.name, project_id=share.project_id, api_key_id=credentials.key_id)
    token.add_role_grant(settings.role)
    token.add_room_grant(settings.room)
    token.add_api_grant(ApiScope.from_json(settings.api) if settings.api is not None else ApiScope.user_default())
    return ShareConnectionInfo(
        jwt=token.to_jwt(token=credentials.secret),
        room_name=settings.room,
        project_id=share.project_id,
        settings=share.settings,
        room_url=context.config.room_url(settings.room),
    )


HANDLERS: dict[str, Handler] = {
    "create_webhook": create_webhook,
    "list_webhooks": list_webhooks,
    "update_webhook": update_webhook,
    "delete_webhook": delete_webhook,
    "create_share": create_share,
    "list_shares": list_shares,
    "update_share": update_share,
    "delete_share": delete_share,
    "connect_share": connect_share,
}
