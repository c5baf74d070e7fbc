"""The official conveniences of `Meshagent` for OAuth clients and the token endpoint (protocol/rest.md §15), and external OAuth registrations (§16): methods that are more than one
route call (paging loops, reshaped answers). `Meshagent` inherits them; they call `self.call`."""

from __future__ import annotations

from typing import Any


class OauthMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError
