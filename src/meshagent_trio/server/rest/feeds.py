"""REST handlers of feeds and feed subscriptions (protocol/rest.md §11)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
