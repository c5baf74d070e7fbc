"""Routes of registries: OCI repositories and repository tokens (protocol/rest.md §13)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
