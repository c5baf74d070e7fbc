"""Routes of room sessions (REST_API §19)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
