"""Routes of LLM loggers and LLM delegation (protocol/rest.md §12)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
