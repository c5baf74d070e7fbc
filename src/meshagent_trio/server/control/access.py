"""Access control: IAM resource policies, groups, room/agent grants (REST_API §6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshagent_core.tokens import ApiScope


if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = []


class AccessStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    async def room_scope(self, project_id: str, room_name: str, user_id: str) -> ApiScope:
        """The `ApiScope` a participant token minted by `connect_room` for `user_id` carries in
        this room: what the user's grants give."""
        return ApiScope.agent_default()  # until grants are stored (issue 12)
