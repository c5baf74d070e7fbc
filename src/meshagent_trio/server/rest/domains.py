"""REST handlers of routes and custom domains (protocol/rest.md §10)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
