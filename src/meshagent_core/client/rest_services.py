"""The official conveniences of `Meshagent` for services, room services, service templates and MCP discovery (protocol/rest.md §8): methods that are more than one
route call (paging loops, reshaped answers). `Meshagent` inherits them; they call `self.call`."""

from __future__ import annotations

from typing import Any


class ServicesMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError
