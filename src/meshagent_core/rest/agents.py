"""Routes of managed agents (REST_API §5)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
