"""The control plane's store of secrets: project, user, service-account, room, agent and pull secrets, with versions (protocol/rest.md §9)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = []


class SecretsStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane
