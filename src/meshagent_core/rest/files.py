"""Routes of the Files API (protocol/rest.md §22)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
