"""`room.livekit`: connection details for the room's LiveKit media session
(protocol/room-apis.md §10), as the official 0.56 `LivekitClient`.

Anything but a `json` answer holding string `url` and `token` raises `RoomException` with code
1100 (UNEXPECTED_RESPONSE_TYPE), "unexpected return type from livekit.connect".
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..content import JsonContent
from ..toolkits.livekit import TOOLKIT, ConnectInput, ConnectOutput, read_connect_output
from .calls import unexpected_response
from .participants import SubClient

#: Where and how to join the room's media session: `url` (the LiveKit server) and `token` (a
#: LiveKit access token), the official `LivekitConnectionInfo`'s fields. It is the contract's
#: `ConnectOutput` (one definition of the shape).
LivekitConnectionInfo = ConnectOutput


class LivekitClient(SubClient):
    """`room.livekit`: join the room's audio/video session with a LiveKit client.

    Failures raise `RoomException`: on the local server 1001 for a token without the `livekit`
    grant or a breakout room the grant does not list, 1007 when the server has no LiveKit
    configured."""

    async def get_connection_info(self, *, breakout_room: str | None = None) -> LivekitConnectionInfo:
        """The LiveKit URL and token for the room's main session, or for `breakout_room`."""
        arguments = msgspec.to_builtins(ConnectInput(breakout_room=breakout_room))  # null included, as officially
        return connection_info_from_answer(await self.room.invoke(TOOLKIT, "connect", arguments))


def connection_info_from_answer(response: Any) -> LivekitConnectionInfo:
    """The official client's reading of a `connect` answer; code 1100 when it does not fit."""
    if not isinstance(response, JsonContent) or not isinstance(response.json, dict):
        raise unexpected_response(TOOLKIT, "connect")
    try:
        return read_connect_output(response.json)
    except msgspec.ValidationError:
        raise unexpected_response(TOOLKIT, "connect") from None


__all__ = ["LivekitClient", "LivekitConnectionInfo", "connection_info_from_answer"]
