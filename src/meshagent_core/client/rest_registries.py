"""The official conveniences of `Meshagent` for registries: OCI repositories and repository tokens (protocol/rest.md §13): methods that are more than one
route call (paging loops, reshaped answers). `Meshagent` inherits them; they call `self.call`."""

from __future__ import annotations

from typing import Any


class RegistriesMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError
