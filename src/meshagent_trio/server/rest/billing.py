"""REST handlers of billing and usage (protocol/rest.md §21)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
