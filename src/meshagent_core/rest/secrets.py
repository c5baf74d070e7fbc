"""Routes of secrets: project, user, service-account, room, agent and pull secrets, with versions (protocol/rest.md §9)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
