"""A participant's room connection on Trio: `meshagent_core.client.connection` bound to Trio."""

from __future__ import annotations

from meshagent_core.client import connection as _connection
from meshagent_core.client.connection import ToolCallStream

from . import backend


class RoomConnection(_connection.RoomConnection):
    backend = backend  # type: ignore[assignment]


__all__ = ["RoomConnection", "ToolCallStream"]
