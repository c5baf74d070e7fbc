"""REST handlers of mailboxes and their deliveries (protocol/rest.md §18)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
