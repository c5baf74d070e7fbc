"""REST handlers of project members, profiles, settings documents and sysadmin users (REST_API §3)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
