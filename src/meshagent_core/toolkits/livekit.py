"""`livekit` toolkit contract (protocol/room-apis.md §10): how to join the room's media session.

| tool | input | answer |
|---|---|---|
| `connect` | `ConnectInput` (`{"breakout_room": str or null}`) | `json` `ConnectOutput` — `{"url", "token"}` |

Both answer fields are required (a missing `token` makes the official client fail with 1100);
extra keys are ignored.
"""

from __future__ import annotations

from typing import Any

import msgspec

TOOLKIT = "livekit"


class ConnectInput(msgspec.Struct, kw_only=True):
    """`connect`: the breakout room to join, or None for the room's main session."""

    breakout_room: str | None = None


class ConnectOutput(msgspec.Struct, kw_only=True):
    """The `connect` answer: the LiveKit server's URL and a LiveKit access token for it (the
    official `LivekitConnectionInfo`)."""

    url: str
    token: str


def read_connect_output(value: Any) -> ConnectOutput:
    """A `connect` answer's JSON read as the official client reads it; `msgspec.ValidationError`
    when it does not fit."""
    return msgspec.convert(value, ConnectOutput, strict=False)


__all__ = ["TOOLKIT", "ConnectInput", "ConnectOutput", "read_connect_output"]
