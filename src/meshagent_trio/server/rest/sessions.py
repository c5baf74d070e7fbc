"""REST handlers of room sessions, room status, events and volumes (REST_API §19, §4)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
