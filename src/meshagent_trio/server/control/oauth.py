"""The control plane's store of OAuth clients and the token endpoint (protocol/rest.md §15), and external OAuth registrations (§16)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = []


class OauthStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane
