"""REST handlers of services, room services, service templates and MCP discovery (protocol/rest.md §8)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
