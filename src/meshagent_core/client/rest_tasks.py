"""The official conveniences of `Meshagent` for scheduled tasks and their runs (protocol/rest.md §20): methods that are more than one
route call (paging loops, reshaped answers). `Meshagent` inherits them; they call `self.call`."""

from __future__ import annotations

from typing import Any


class TasksMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError
