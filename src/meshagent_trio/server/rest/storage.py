"""REST handlers of project storage (REST_API §7)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
