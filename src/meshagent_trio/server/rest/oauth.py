"""REST handlers of OAuth clients and the token endpoint (protocol/rest.md §15), and external OAuth registrations (§16)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
