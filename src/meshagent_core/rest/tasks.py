"""Routes of scheduled tasks and their runs (protocol/rest.md §20)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
