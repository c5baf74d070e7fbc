"""REST handlers of access control: IAM policies, groups, room/agent grants (REST_API §6, seed)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
