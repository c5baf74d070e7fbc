"""Routes of the seed's webhooks and shares (protocol/rest.md §17), which the official 0.56
client dropped (0.8.3 had them), with their models.

A webhook is a project's subscription of a URL to events (`room.started`, `room.ended`, …):
`name`, `description`, `url`, `events`, `action` and `payload` (free text, as 0.8.3 sent them).

A share is a link to a room: its `settings` say which room, as whom and with which grants
(see `ShareSettings`); `connect_share` answers a participant token for them, to anyone holding
the share's id (the id is the secret: the route takes no credentials).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from .accounts import PROJECT
from .models import JsonObject, Model
from .routes import Route

WEBHOOKS = PROJECT + "/webhooks"
SHARES = PROJECT + "/shares"


# --- webhooks ------------------------------------------------------------------------------------


class WebhookBody(msgspec.Struct, kw_only=True):
    """What `create_webhook` and `update_webhook` send (every key, as 0.8.3 did)."""

    name: str
    url: str
    events: list[str]
    description: str = ""
    action: str = ""
    payload: str = ""


class Webhook(Model):
    id: str
    project_id: str
    name: str
    url: str
    events: list[str]
    description: str = ""
    action: str = ""
    payload: str = ""
    created_at: str | None = None
    updated_at: str | None = None


class Webhooks(Model):
    webhooks: list[Webhook] = msgspec.field(default_factory=list)


# --- shares --------------------------------------------------------------------------------------


class ShareSettings(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The settings of a share that the local server reads (other keys are kept as given):

    - `room` (required): the room the share opens;
    - `name`: the participant name of who connects (default `guest`);
    - `role`: the token's role grant (default `user`);
    - `api`: the token's `ApiScope` JSON (default the user default scope).
    """

    room: str
    name: str = "guest"
    role: str = "user"
    api: JsonObject | None = None


class ShareBody(msgspec.Struct, kw_only=True):
    settings: JsonObject | UnsetType = UNSET


class Share(Model):
    id: str
    project_id: str
    settings: JsonObject


class Shares(Model):
    shares: list[Share] = msgspec.field(default_factory=list)


class ConnectShareBody(msgspec.Struct, kw_only=True):
    """`connect_share` sends `{}`."""


class ShareConnectionInfo(Model):
    """`connect_share`: a participant JWT for the share's room, and where to use it."""

    jwt: str
    room_name: str
    project_id: str
    settings: JsonObject
    room_url: str


ROUTES = [
    Route("create_webhook", "POST", WEBHOOKS, Webhook, body=WebhookBody),
    Route("list_webhooks", "GET", WEBHOOKS, Webhooks),
    Route("update_webhook", "PUT", WEBHOOKS + "/{webhook_id}", Webhook, body=WebhookBody),
    Route("delete_webhook", "DELETE", WEBHOOKS + "/{webhook_id}", Any),
    Route("create_share", "POST", SHARES, Share, body=ShareBody),
    Route("list_shares", "GET", SHARES, Shares),
    Route("update_share", "PUT", SHARES + "/{share_id}", Share, body=ShareBody),
    Route("delete_share", "DELETE", SHARES + "/{share_id}", Any),
    Route("connect_share", "POST", "/shares/{share_id}/connect", ShareConnectionInfo, body=ConnectShareBody, auth=False),
]

#: The seed-only methods (not in the official 0.56 client): served here and by our client.
SEED_METHODS = frozenset(route.name for route in ROUTES)

__all__ = [
    "ConnectShareBody",
    "ROUTES",
    "SEED_METHODS",
    "Share",
    "ShareBody",
    "ShareConnectionInfo",
    "ShareSettings",
    "Shares",
    "Webhook",
    "WebhookBody",
    "Webhooks",
]
