"""REST handlers of scheduled tasks and their runs (protocol/rest.md §20)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
