"""Routes of mailboxes and their deliveries (protocol/rest.md §18)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
