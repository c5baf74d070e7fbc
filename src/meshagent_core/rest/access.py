"""Routes of access control: IAM resource policies, groups and members, access tests, and the seed's room grants, agent grants and agent-room grants (REST_API §6)."""

from __future__ import annotations

from .routes import Route

ROUTES: list[Route] = []
