"""The control plane's store of mailboxes and their deliveries (protocol/rest.md §18)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = []


class MailboxesStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane
