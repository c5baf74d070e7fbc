"""The official conveniences of `Meshagent` for feeds and feed subscriptions (protocol/rest.md §11):
the routes answer `{feed}`, `{subscription}`, `{subscriptions}` and pages, the official methods
the model or the list inside. Feed names are trimmed and lower-cased, and refused with
ValueError when they do not follow the feed-name rule, before anything is sent (as the official
client does). `Meshagent` inherits them; they call `self.call`."""

from __future__ import annotations

from typing import Any

from ..rest.feeds import Feed, FeedSubscription, normalize_feed_name


class FeedsMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def create_feed(self, *, project_id: str, name: str, **fields: Any) -> Feed:
        return (await self.call("create_feed", project_id=project_id, name=normalize_feed_name(name), **fields)).feed

    async def update_feed(self, *, project_id: str, feed_id: str, name: str, **fields: Any) -> None:
        await self.call("update_feed", project_id=project_id, feed_id=feed_id, name=normalize_feed_name(name), **fields)

    async def get_feed(self, *, project_id: str, feed_id: str) -> Feed:
        return (await self.call("get_feed", project_id=project_id, feed_id=feed_id)).feed

    async def get_feed_by_name(self, *, project_id: str, name: str) -> Feed:
        return (await self.call("get_feed_by_name", project_id=project_id, name=name)).feed

    async def list_feeds(self, *, project_id: str, **query: Any) -> list[Feed]:
        """The feeds of one page (`list_feeds_page(...).feeds`)."""
        return (await self.call("list_feeds_page", project_id=project_id, **query)).feeds

    async def list_room_feeds(self, *, project_id: str, room_name: str, **query: Any) -> list[Feed]:
        """The feeds subscribed into the room, of one page (`list_room_feeds_page(...).feeds`)."""
        return (await self.call("list_room_feeds_page", project_id=project_id, room_name=room_name, **query)).feeds

    async def create_feed_subscription(self, *, project_id: str, feed_id: str, **fields: Any) -> FeedSubscription:
        return (await self.call("create_feed_subscription", project_id=project_id, feed_id=feed_id, **fields)).subscription

    async def get_feed_subscription(self, *, project_id: str, feed_id: str, subscription_id: str) -> FeedSubscription:
        answer = await self.call("get_feed_subscription", project_id=project_id, feed_id=feed_id, subscription_id=subscription_id)
        return answer.subscription  # type: ignore[no-any-return]

    async def list_feed_subscriptions(self, *, project_id: str, feed_id: str) -> list[FeedSubscription]:
        return (await self.call("list_feed_subscriptions", project_id=project_id, feed_id=feed_id)).subscriptions
