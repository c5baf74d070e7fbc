"""REST handlers of managed agents (REST_API §5)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
