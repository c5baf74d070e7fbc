"""Routes of project storage (REST_API §7)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
