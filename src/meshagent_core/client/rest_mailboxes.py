"""The official conveniences of `Meshagent` for mailboxes and their deliveries (protocol/rest.md §18): methods that are more than one
route call (paging loops, reshaped answers). `Meshagent` inherits them; they call `self.call`."""

from __future__ import annotations

from typing import Any


class MailboxesMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError
