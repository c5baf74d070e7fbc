"""Users, project members, profiles and settings documents (REST_API §3)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from meshagent_core.rest.models import User


if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = []


class AccountStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    def owner_user(self) -> User:
        """The local server's single owner: the person holding the server's API key. Its id is
        stable for a data directory (derived from the server's project id)."""
        project_id = self.plane.config.credentials.project_id
        return User(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"meshagent-trio:owner:{project_id}")), email="owner@localhost", first_name="Local", last_name="Owner")
