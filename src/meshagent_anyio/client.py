"""The room client on AnyIO (asyncio or Trio)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from meshagent_core.client import room as _room
from meshagent_core.client.room import WebSocketClientProtocol

from .connection import RoomConnection


class RoomClient(_room.RoomClient):
    __doc__ = _room.RoomClient.__doc__
    connection_class = RoomConnection


@asynccontextmanager
async def connect(url: str, token: str, *, reconnect_timeout: float | None = None) -> AsyncIterator[RoomClient]:
    """`async with meshagent_anyio.connect(url, token) as room:` — a `RoomClient` for `url`."""
    async with RoomClient(
        protocol=WebSocketClientProtocol(url=url, token=token), reconnect_timeout=reconnect_timeout
    ) as room:
        yield room
