"""The official conveniences of `Meshagent` for mailboxes and their deliveries (protocol/rest.md
§18): `get_mailbox` and `get_mailbox_delivery` answer the object inside the route's answer, and
`list_mailboxes` / `list_room_mailboxes` the list of one page. `Meshagent` inherits them; they
call `self.call`."""

from __future__ import annotations

from typing import Any

from ..rest.mailboxes import Mailbox, MailboxDelivery


class MailboxesMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def get_mailbox(self, *, project_id: str, address: str) -> Mailbox:
        return (await self.call("get_mailbox", project_id=project_id, address=address)).mailbox  # type: ignore[no-any-return]

    async def list_mailboxes(self, *, project_id: str, **query: Any) -> list[Mailbox]:
        """The mailboxes of one page (`list_mailboxes_page(...).mailboxes`)."""
        return list((await self.call("list_mailboxes_page", project_id=project_id, **query)).mailboxes)

    async def list_room_mailboxes(self, *, project_id: str, room_name: str, **query: Any) -> list[Mailbox]:
        """The mailboxes of one room's page (`list_room_mailboxes_page(...).mailboxes`)."""
        return list((await self.call("list_room_mailboxes_page", project_id=project_id, room_name=room_name, **query)).mailboxes)

    async def get_mailbox_delivery(self, *, project_id: str, address: str, delivery_id: str) -> MailboxDelivery:
        return (await self.call("get_mailbox_delivery", project_id=project_id, address=address, delivery_id=delivery_id)).delivery  # type: ignore[no-any-return]
