"""REST handlers of LLM loggers and LLM delegation (protocol/rest.md §12)."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
