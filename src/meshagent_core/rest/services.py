"""Routes of services, room services, service templates and MCP discovery (protocol/rest.md §8)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
