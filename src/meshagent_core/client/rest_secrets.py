"""The official conveniences of `Meshagent` for secrets: project, user, service-account, room, agent and pull secrets, with versions (protocol/rest.md §9): methods that are more than one
route call (paging loops, reshaped answers). `Meshagent` inherits them; they call `self.call`."""

from __future__ import annotations

from typing import Any


class SecretsMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError
