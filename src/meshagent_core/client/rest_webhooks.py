"""The conveniences of `Meshagent` for the seed's webhooks and shares (protocol/rest.md §17):
the list methods answer the list. `Meshagent` inherits them; they call `self.call`."""

from __future__ import annotations

from typing import Any

from ..rest.webhooks import Share, Webhook


class WebhooksMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def list_webhooks(self, *, project_id: str) -> list[Webhook]:
        return (await self.call("list_webhooks", project_id=project_id)).webhooks  # type: ignore[no-any-return]

    async def list_shares(self, *, project_id: str) -> list[Share]:
        return (await self.call("list_shares", project_id=project_id)).shares  # type: ignore[no-any-return]
