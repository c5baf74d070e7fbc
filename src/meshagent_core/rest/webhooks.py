"""Routes of the seed's webhooks and shares (protocol/rest.md §17)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
