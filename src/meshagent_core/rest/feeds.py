"""Routes of feeds and feed subscriptions (protocol/rest.md §11)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
