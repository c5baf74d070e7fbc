"""REST handlers of the Files API (protocol/rest.md §22)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
