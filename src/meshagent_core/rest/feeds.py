"""Routes of feeds and feed subscriptions (protocol/rest.md §11), their answer models (the
official 0.56 `Feed`, `FeedSubscription`, `FeedsPage`), and the feed-name rule both sides use.

A feed's name is what the official client accepts (protocol/rest.md §1.6): after trimming and
lower-casing, 1-63 lowercase letters, digits or hyphens, starting and ending with a letter or
digit (the official room-name rule). `normalize_feed_name` applies it as the official client
does; the server refuses a name that is not already normal.

`publish_feed_message` sends the message as the body, any JSON value; `publish_feed_batch` sends
a JSON array of them. Neither answer is read.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from .accounts import PROJECT
from .models import Model
from .routes import Route

FEEDS = PROJECT + "/feeds"
FEED = FEEDS + "/{feed_id}"
SUBSCRIPTIONS = FEED + "/subscriptions"
SUBSCRIPTION = SUBSCRIPTIONS + "/{subscription_id}"

FeedVisibility = Literal["public", "project", "private"]
#: A feed's `message_schema`: a JSON Schema object, or a boolean schema.
FeedJsonSchema = dict[str, Any] | bool

_FEED_NAME = re.compile(r"^(?=.{1,63}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$")
FEED_NAME_RULE = "1-63 lowercase letters, digits or hyphens, starting and ending with a letter or digit"


def is_valid_feed_name(name: str) -> bool:
    return _FEED_NAME.match(name) is not None


def normalize_feed_name(name: str) -> str:
    """The name as the official client sends it (trimmed, lower-cased); ValueError if invalid."""
    normalized = name.strip().lower()
    if not is_valid_feed_name(normalized):
        raise ValueError(f"invalid feed name {name!r}: {FEED_NAME_RULE}")
    return normalized


# --- answers ----------------------------------------------------------------------------------


class Feed(Model):
    id: str
    project_id: str
    created_at: str
    name: str
    description: str = ""
    visibility: FeedVisibility = "private"
    paused: bool = False
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    message_schema: FeedJsonSchema | None = None
    desired_generation: int = 1
    applied_generation: int = 1
    deletion_requested_at: str | None = None

    @property
    def status(self) -> Literal["ready", "provisioning", "deleting"]:
        """As the official model derives it."""
        if self.deletion_requested_at is not None:
            return "deleting"
        return "ready" if self.applied_generation == self.desired_generation else "provisioning"


class FeedSubscription(Model):
    id: str
    feed_id: str
    project_id: str
    room: str
    path: str
    created_at: str
    room_id: str | None = None
    filename_datetime_format: str | None = None
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    desired_generation: int = 1
    applied_generation: int = 1


class FeedAnswer(Model):
    feed: Feed


class FeedSubscriptionAnswer(Model):
    subscription: FeedSubscription


class FeedSubscriptions(Model):
    subscriptions: list[FeedSubscription]


class FeedsPage(Model):
    feeds: list[Feed]
    total: int = 0
    continuation_token: str | None = None


# --- requests ---------------------------------------------------------------------------------


class FeedsQuery(msgspec.Struct, kw_only=True):
    page_size: int = 100
    continuation_token: str | UnsetType = UNSET
    filter: str | UnsetType = UNSET
    view: str | UnsetType = UNSET


class RoomFeedsQuery(msgspec.Struct, kw_only=True):
    count: int = 100
    offset: int = 0
    filter: str | UnsetType = UNSET


class CreateFeedBody(msgspec.Struct, kw_only=True):
    name: str
    description: str = ""
    visibility: FeedVisibility = "private"
    paused: bool = False
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    message_schema: FeedJsonSchema | UnsetType = UNSET


class UpdateFeedBody(msgspec.Struct, kw_only=True):
    """A replacement: what is left out takes its default (no `message_schema`), except
    `visibility`, which the official client never sends and which is kept unless given."""

    name: str
    description: str = ""
    paused: bool = False
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    message_schema: FeedJsonSchema | UnsetType = UNSET
    visibility: FeedVisibility | UnsetType = UNSET


class CreateSubscriptionBody(msgspec.Struct, kw_only=True):
    room: str
    path: str
    filename_datetime_format: str | UnsetType = UNSET
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class UpdateSubscriptionBody(msgspec.Struct, kw_only=True):
    """A replacement, as `UpdateFeedBody`: a format left out is the server's default."""

    filename_datetime_format: str | UnsetType = UNSET
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


ROUTES = [
    Route("create_feed", "POST", FEEDS, FeedAnswer, body=CreateFeedBody, payload_noun="feed"),
    Route("update_feed", "PUT", FEED, Any, body=UpdateFeedBody),
    Route("get_feed", "GET", FEED, FeedAnswer, payload_noun="feed"),
    Route("get_feed_by_name", "GET", FEEDS + "/by-name/{name}", FeedAnswer, payload_noun="feed"),
    Route("list_feeds_page", "GET", FEEDS, FeedsPage, query=FeedsQuery, aliases=("list_feeds",), payload_noun="feeds"),
    Route(
        "list_room_feeds_page",
        "GET",
        PROJECT + "/rooms/{room_name}/feeds",
        FeedsPage,
        query=RoomFeedsQuery,
        aliases=("list_room_feeds",),
        payload_noun="feeds",
    ),
    Route("delete_feed", "DELETE", FEED, Any),
    Route("publish_feed_message", "POST", FEED + "/messages", Any, raw_body_argument="message"),
    Route("publish_feed_batch", "POST", FEED + "/messages/batch", Any, raw_body_argument="messages"),
    Route("create_feed_subscription", "POST", SUBSCRIPTIONS, FeedSubscriptionAnswer, body=CreateSubscriptionBody, payload_noun="feed subscription"),
    Route("update_feed_subscription", "PUT", SUBSCRIPTION, Any, body=UpdateSubscriptionBody),
    Route("get_feed_subscription", "GET", SUBSCRIPTION, FeedSubscriptionAnswer, payload_noun="feed subscription"),
    Route("list_feed_subscriptions", "GET", SUBSCRIPTIONS, FeedSubscriptions, payload_noun="feed subscriptions"),
    Route("delete_feed_subscription", "DELETE", SUBSCRIPTION, Any),
]

__all__ = [
    "FEED_NAME_RULE",
    "Feed",
    "FeedAnswer",
    "FeedJsonSchema",
    "FeedSubscription",
    "FeedSubscriptionAnswer",
    "FeedSubscriptions",
    "FeedVisibility",
    "FeedsPage",
    "ROUTES",
    "is_valid_feed_name",
    "normalize_feed_name",
]
