"""`room.call`: a participant asks the room to call an agent into it (protocol/webhooks.md §6).

The server mints a participant token for `name` in the caller's room (role `agent`; scope
`api`, or the agent default when `api` is null) and POSTs a `room.call` webhook to `url`,
signed with the project's webhook secret, in the bytes the official receiver checks. The caller's
answer waits for the receiver's: `empty` once it answered 2xx, else an error (1008) saying what
the receiver did or why it could not be reached. The callee joins on its own afterwards, with
the token.

Who may: a token whose `agents` grant allows `call`. An explicit `api` may not name a capability
family the caller's own token lacks (`admin`, say): a call must not mint more than its caller
holds. The agent default needs no such check; it is what the platform gives agents anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from meshagent_core import EmptyContent, ErrorCode, RoomException, messages as m
from meshagent_core.session import events as ev
from meshagent_core.tokens import ApiScope, ParticipantToken
from meshagent_core.webhooks import CallEvent, webhook_body

from ..hooks import REQUEST_HANDLERS
from ..rooms.participant import Participant
from ..toolkit import invalid_request, permission_denied
from .delivery import DeliveryFailed, post_webhook

if TYPE_CHECKING:
    from ..rooms.room import Room

#: The role of a token minted for a call.
CALLED_ROLE = "agent"


def mint_call_token(room: "Room", name: str, api: ApiScope | None, *, role: str = CALLED_ROLE, claims: dict[str, Any] | None = None) -> str:
    """A participant JWT for `name` in `room` with scope `api` (default: the agent default),
    signed by the server's key (which signs for every project); `claims` are extra JWT claims."""
    credentials = room.config.credentials
    token = ParticipantToken(name=name, project_id=room.project_id, api_key_id=credentials.key_id, extra_payload=dict(claims) if claims else None)
    token.add_role_grant(role)
    token.add_room_grant(room.name)
    token.add_api_grant(api if api is not None else ApiScope.agent_default())
    return token.to_jwt(token=credentials.secret)


async def call_into_room(
    room: "Room",
    *,
    name: str,
    url: str,
    arguments: dict[str, Any] | None = None,
    api: ApiScope | None = None,
    role: str = CALLED_ROLE,
    claims: dict[str, Any] | None = None,
) -> None:
    """Call `name` into `room`: a signed `room.call` webhook to `url` with a fresh token.
    `DeliveryFailed` when the receiver does not answer 2xx."""
    data = msgspec.to_builtins(
        CallEvent(
            room_name=room.name,
            room_url=room.config.room_url(room.name),
            token=mint_call_token(room, name, api, role=role, claims=claims),
            arguments=arguments,
        )
    )
    secret = await room.control.webhooks.project_secret(room.project_id) if room.control is not None else room.config.webhook_secret
    await post_webhook(url, webhook_body("room.call", data), secret=secret, timeout=room.config.webhook_timeout)


def _requested(participant: Participant, event: ev.RequestReceived) -> tuple[m.RoomCall, ApiScope | None]:
    try:
        request = msgspec.convert(event.header, type=m.RoomCall)
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid room.call request: {error}") from None
    if not request.name.strip():
        raise invalid_request("room.call: name must not be empty")
    target = urlsplit(request.url)
    if target.scheme not in ("http", "https") or not target.hostname:
        raise invalid_request(f"room.call: url must be an absolute http:// or https:// URL, not {request.url!r}")
    api = None
    if request.api is not None:
        try:
            api = ApiScope.from_json(request.api)
        except ValueError as error:
            raise invalid_request(f"room.call: invalid api scope: {error}") from None
    return request, api


def _check_allowed(participant: Participant, api: ApiScope | None) -> None:
    own = participant.scope
    if own is None or own.agents is None or not own.agents.call:
        raise permission_denied("the token does not allow calling agents into the room (agents.call)")
    if api is not None:
        beyond = [family for family in ApiScope.__struct_fields__ if getattr(api, family) is not None and getattr(own, family) is None]
        if beyond:
            raise permission_denied(f"room.call may not grant what the caller's token lacks: {', '.join(beyond)}")


async def room_call(participant: Participant, event: ev.RequestReceived) -> EmptyContent:
    request, api = _requested(participant, event)
    _check_allowed(participant, api)
    try:
        await call_into_room(participant.room, name=request.name, url=request.url, arguments=request.arguments, api=api)
    except DeliveryFailed as failure:
        raise RoomException(str(failure), code=ErrorCode.OPERATION_FAILED) from None
    return EmptyContent()


REQUEST_HANDLERS[m.ROOM_CALL] = room_call

__all__ = ["CALLED_ROLE", "call_into_room", "mint_call_token", "room_call"]
