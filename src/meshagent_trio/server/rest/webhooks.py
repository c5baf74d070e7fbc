"""REST handlers of the seed's webhooks and shares (protocol/rest.md §17)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
