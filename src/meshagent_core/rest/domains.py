"""Routes of routes and custom domains (protocol/rest.md §10)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
