"""REST handlers of service accounts, API keys, participant tokens and `whoami` (REST_API §14, §3)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
