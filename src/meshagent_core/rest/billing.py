"""Routes of billing and usage (protocol/rest.md §21)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
