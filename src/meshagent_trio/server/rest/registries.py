"""REST handlers of registries: OCI repositories and repository tokens (protocol/rest.md §13)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
