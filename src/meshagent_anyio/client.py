"""The room client on AnyIO (asyncio or Trio): the shared `RoomClient` bound to this package's connection."""

from __future__ import annotations

from meshagent_core.client import room as _room

from .connection import RoomConnection


class RoomClient(_room.RoomClient):
    __doc__ = _room.RoomClient.__doc__
    connection_class = RoomConnection


#: `async with connect(url_or_room_name, token) as room:` — see `RoomClient.connect`.
connect = RoomClient.connect
