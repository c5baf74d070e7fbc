"""The `livekit` toolkit: how to join the room's LiveKit media session (protocol/room-apis.md §10).

`connect` answers `{"url", "token"}`: the URL of a LiveKit server and an access token for it,
minted with the `livekit-api` package (`from livekit import api`, imported on first use, in a
worker thread, so the server starts without it). Decisions where the official client leaves the server open:

* **Configuration**: the server process's environment, read at each call: `LIVEKIT_URL` (answered
  as is), `LIVEKIT_API_KEY` and `LIVEKIT_API_SECRET` (sign the token). Unless all three are set
  and non-empty the call fails with 1007 DEPENDENCY_MISSING "livekit is not configured on this
  server: …"; so it does when `livekit-api` is not installed.
* **Token**: the identity is the participant's id (unique in the room: LiveKit drops an earlier
  connection when a second one uses the same identity, and two participants may share a name),
  the display name its name; the video grant is `roomJoin` for one LiveKit room, with LiveKit's default publish and
  subscribe rights; it is valid for `TOKEN_TTL` (6 hours, LiveKit's default).
* **LiveKit room names**: the MeshAgent room name for a room of the server's own project (the
  project of its API key); `<project id>/<room>` for a room of any other project of this server,
  so that rooms of the same name in two projects never share a media session. A breakout room
  is `<that name>:<breakout room>`; `:` and `/` never occur in a MeshAgent room name, so no
  breakout room of one room can be another room's session.
* **Grant: `livekit`.** None ⇒ 1001. `breakout_rooms` (exact names; null: any) restricts which
  breakout rooms may be joined (1001 otherwise); the main session (`breakout_room: null`) is open
  to every holder of the grant. A breakout room name is 1 to `MAX_BREAKOUT_ROOM_LENGTH`
  characters (1002 otherwise).
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Mapping

import msgspec
import trio

from meshagent_core import EmptyContent, ErrorCode, JsonContent, RoomException
from meshagent_core.toolkits.livekit import ConnectInput, ConnectOutput

from ..toolkit import Toolkit, ToolCall, invalid_request, permission_denied

if TYPE_CHECKING:
    from ..rooms.room import Room

toolkit = Toolkit("livekit")

#: How long a minted LiveKit token is valid.
TOKEN_TTL = timedelta(hours=6)
MAX_BREAKOUT_ROOM_LENGTH = 256
#: The environment variables `connect` needs, all non-empty.
LIVEKIT_VARIABLES = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
NOT_CONFIGURED = "livekit is not configured on this server: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET"


def livekit_room_name(room: "Room", breakout_room: str | None = None) -> str:
    """The LiveKit room of `room`'s main session, or of one of its breakout rooms."""
    name = room.name if room.project_id == room.config.credentials.project_id else f"{room.project_id}/{room.name}"
    return name if breakout_room is None else f"{name}:{breakout_room}"


def livekit_settings(environ: Mapping[str, str] | None = None) -> tuple[str, str, str]:
    """(url, api key, api secret) from the environment; 1007 when one is missing or empty."""
    environ = os.environ if environ is None else environ
    values = tuple(environ.get(variable, "") for variable in LIVEKIT_VARIABLES)
    if not all(values):
        raise RoomException(NOT_CONFIGURED, code=ErrorCode.DEPENDENCY_MISSING)
    url, key, secret = values
    return url, key, secret


def mint_livekit_token(*, key: str, secret: str, identity: str, name: str, room: str) -> str:
    """A LiveKit access token joining `room` as `identity`, shown as `name`."""
    try:
        from livekit import api
    except ImportError:
        raise RoomException(
            "livekit is not available on this server: install the livekit-api package (pip install 'livekit-api>=1.0.0')",
            code=ErrorCode.DEPENDENCY_MISSING,
        ) from None
    token = (
        api.AccessToken(key, secret)
        .with_identity(identity)
        .with_name(name)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_ttl(TOKEN_TTL)
    )
    return token.to_jwt()


@toolkit.tool("connect")
async def connect(call: ToolCall) -> JsonContent:
    grant = call.scope.livekit if call.scope is not None else None
    if grant is None:
        raise permission_denied("the token does not grant the livekit API")
    arguments = ConnectInput() if isinstance(call.arguments, EmptyContent) else call.json_arguments(ConnectInput)
    breakout_room = arguments.breakout_room
    if breakout_room is not None:
        if not 0 < len(breakout_room) <= MAX_BREAKOUT_ROOM_LENGTH:
            raise invalid_request(f"a breakout room name is 1 to {MAX_BREAKOUT_ROOM_LENGTH} characters")
        if not grant.can_join_breakout_room(breakout_room):
            raise permission_denied(f"the token does not allow joining breakout room {breakout_room!r}")
    url, key, secret = livekit_settings()
    mint = partial(mint_livekit_token, key=key, secret=secret, identity=call.caller.id, name=call.caller.name, room=livekit_room_name(call.room, breakout_room))
    token = await trio.to_thread.run_sync(mint)  # the first call imports livekit-api (~0.3 s)
    return JsonContent(json=msgspec.to_builtins(ConnectOutput(url=url, token=token)))
