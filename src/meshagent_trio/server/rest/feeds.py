"""REST handlers of feeds and feed subscriptions (protocol/rest.md §11): the records live in the
control plane (`control.feeds`); publishing delivers each message, per subscription, as a file
in the subscribed room's storage.

Delivery. A message is written, for every subscription of the feed, as one file
`<path>/<stamp>.json` of the subscription's room (the server's `Room`, made on first use, so a
room nobody is in gets its file on disk too), holding the message's JSON. `stamp` is the time of
the publish call (UTC, the server's clock) formatted by the subscription's
`filename_datetime_format` (Python `strftime`; a `/` in it makes sub-folders), by default
`DEFAULT_FILENAME_FORMAT` (`2026-12-06T08-50-43Z`: sortable, and no `:`, which some file
systems and URLs refuse). Each file is written as a storage upload is (the storage toolkit's
`write_file`: atomically, never replacing a file), and the room's participants get the same
`storage.file.updated` event an upload sends, with `participant_id` `feed:<feed id>`.

No overwrite. When `<stamp>.json` exists (two messages in the same second, the messages of one
batch, which share the call's stamp, or a file someone put there), the message takes the first
free name of `<stamp>_000001.json`, `<stamp>_000002.json`, …; the no-clobber write decides, so two
publishes at once never take the same name. Names of one stamp sort in publish order (`.` sorts
before `_`). A batch is written in its order, to every subscription at once.

Bounds. One message may take `MAX_MESSAGE_BYTES` of JSON and a batch `MAX_BATCH_MESSAGES`
messages (413 naming the message and the limit); the whole request body is also bounded by the
server's `max_request_body` (413). A message must be a JSON value other than null, a batch a
JSON array (400). Nothing is written when a bound is broken.

Refusals: an unknown feed or subscription 404; a duplicate feed name or a second subscription of
a feed to the same room and folder 409; a paused feed refuses publishing (409: nothing is
written). A subscription whose folder cannot take the file (a file is where its folder should
be) fails with 409 naming it, after the other subscriptions got theirs. `message_schema` is
stored and answered: a `false` schema refuses every message (400), any other schema is not
checked (the local server has no JSON Schema validator). `filter` and `view` of the listings are
not implemented (501).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import msgspec
import trio

from meshagent_core import ErrorCode, RoomException
from meshagent_core.rest.feeds import FeedAnswer, FeedsPage, FeedSubscription, FeedSubscriptionAnswer, FeedSubscriptions

from ..control import Conflict, ControlError
from ..toolkits.storage import write_file
from ..toolkits.storage_paths import canonical_path
from .context import Caller, Handler, NotImplementedHere, RestContext

DEFAULT_FILENAME_FORMAT = "%Y-%m-%dT%H-%M-%SZ"
#: Largest JSON encoding of one message.
MAX_MESSAGE_BYTES = 1024 * 1024
#: Most messages of one batch.
MAX_BATCH_MESSAGES = 1000
MESSAGE_MIME_TYPE = "application/json"
#: Per-room state: the next free suffix of the latest stamp, by subscription folder (a hint;
#: the no-clobber write decides).
_NAMES_STATE = "feeds"
_SAMPLE_MOMENT = datetime(2026, 12, 31, 23, 59, 58, 999999, tzinfo=timezone.utc)


class TooLarge(ControlError):
    status = 413
    code = "too_large"


class DeliveryFailed(ControlError):
    status = 409
    code = "delivery_failed"


# --- file names ---------------------------------------------------------------------------------


def file_name(stamp: str, suffix: int) -> str:
    return f"{stamp}.json" if suffix == 0 else f"{stamp}_{suffix:06d}.json"


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def message_path(folder: str, stamp: str, suffix: int = 0) -> str:
    """The canonical storage path of a message file (`RoomException` 3004 if it is not valid)."""
    return canonical_path(_join(folder, file_name(stamp, suffix)))


def _checked_folder(path: str) -> str:
    try:
        return canonical_path(path)
    except RoomException as error:
        raise ControlError(f"path: {error}") from None


def _check_format(folder: str, filename_format: Any) -> str | None:
    """The format to store (None: the default); 400 naming `filename_datetime_format` unless it
    makes valid file names in `folder`."""
    if filename_format is msgspec.UNSET or filename_format is None:
        return None
    if not filename_format.strip():
        raise ControlError("filename_datetime_format: must not be empty (leave it out for the default)")
    try:
        message_path(folder, _SAMPLE_MOMENT.strftime(filename_format), suffix=1)
    except (ValueError, RoomException) as error:
        raise ControlError(f"filename_datetime_format {filename_format!r} does not make a valid file name: {error}") from None
    return filename_format  # type: ignore[no-any-return]


# --- feeds --------------------------------------------------------------------------------------


async def create_feed(context: RestContext, a: dict[str, Any], caller: Caller) -> FeedAnswer:
    feed = await context.control.feeds.create_feed(
        a["project_id"],
        name=a["name"],
        description=a["description"],
        visibility=a["visibility"],
        paused=a["paused"],
        annotations=a["annotations"],
        message_schema=a.get("message_schema"),
    )
    return FeedAnswer(feed=feed)


async def update_feed(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.feeds.update_feed(
        a["project_id"],
        a["feed_id"],
        name=a["name"],
        description=a["description"],
        paused=a["paused"],
        annotations=a["annotations"],
        message_schema=a.get("message_schema"),
        visibility=a.get("visibility", msgspec.UNSET),
    )


async def get_feed(context: RestContext, a: dict[str, Any], caller: Caller) -> FeedAnswer:
    return FeedAnswer(feed=await context.control.feeds.get_feed(a["project_id"], a["feed_id"]))


async def get_feed_by_name(context: RestContext, a: dict[str, Any], caller: Caller) -> FeedAnswer:
    return FeedAnswer(feed=await context.control.feeds.get_feed_by_name(a["project_id"], a["name"]))


def _refuse_filters(method: str, a: dict[str, Any], names: tuple[str, ...]) -> None:
    given = [name for name in names if a.get(name)]
    if given:
        raise NotImplementedHere(f"{method}: {' and '.join(given)} {'is' if len(given) == 1 else 'are'} not implemented by the local server")


async def list_feeds_page(context: RestContext, a: dict[str, Any], caller: Caller) -> FeedsPage:
    _refuse_filters("list_feeds", a, ("filter", "view"))
    page_size = max(1, min(int(a["page_size"]), 1000))
    feeds, total, token = await context.control.feeds.list_feeds(a["project_id"], page_size=page_size, after=a.get("continuation_token"))
    return FeedsPage(feeds=feeds, total=total, continuation_token=token)


async def list_room_feeds_page(context: RestContext, a: dict[str, Any], caller: Caller) -> FeedsPage:
    _refuse_filters("list_room_feeds", a, ("filter",))
    if a["count"] < 0 or a["offset"] < 0:
        raise ControlError("count and offset must not be negative")
    feeds, total = await context.control.feeds.list_room_feeds(a["project_id"], a["room_name"], count=min(a["count"], 1000), offset=a["offset"])
    return FeedsPage(feeds=feeds, total=total)


async def delete_feed(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.feeds.delete_feed(a["project_id"], a["feed_id"])


# --- subscriptions ------------------------------------------------------------------------------


async def create_feed_subscription(context: RestContext, a: dict[str, Any], caller: Caller) -> FeedSubscriptionAnswer:
    folder = _checked_folder(a["path"])
    subscription = await context.control.feeds.create_subscription(
        a["project_id"],
        a["feed_id"],
        room=a["room"],
        path=folder,
        filename_datetime_format=_check_format(folder, a.get("filename_datetime_format")),
        annotations=a["annotations"],
    )
    return FeedSubscriptionAnswer(subscription=subscription)


async def update_feed_subscription(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    feeds = context.control.feeds
    current = await feeds.get_subscription(a["project_id"], a["feed_id"], a["subscription_id"])
    filename_format = _check_format(current.path, a.get("filename_datetime_format"))
    await feeds.update_subscription(
        a["project_id"], a["feed_id"], a["subscription_id"], filename_datetime_format=filename_format, annotations=a["annotations"]
    )


async def get_feed_subscription(context: RestContext, a: dict[str, Any], caller: Caller) -> FeedSubscriptionAnswer:
    return FeedSubscriptionAnswer(subscription=await context.control.feeds.get_subscription(a["project_id"], a["feed_id"], a["subscription_id"]))


async def list_feed_subscriptions(context: RestContext, a: dict[str, Any], caller: Caller) -> FeedSubscriptions:
    return FeedSubscriptions(subscriptions=await context.control.feeds.list_subscriptions(a["project_id"], a["feed_id"]))


async def delete_feed_subscription(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.feeds.delete_subscription(a["project_id"], a["feed_id"], a["subscription_id"])


# --- publishing ---------------------------------------------------------------------------------


def encode_messages(messages: list[Any]) -> list[bytes]:
    """The files' contents: each message's JSON (400 for null, 413 over `MAX_MESSAGE_BYTES`)."""
    if len(messages) > MAX_BATCH_MESSAGES:
        raise TooLarge(f"messages: a batch of {len(messages)} messages is over the limit of {MAX_BATCH_MESSAGES} messages")
    encoded = []
    for index, message in enumerate(messages):
        name = "message" if len(messages) == 1 else f"messages[{index}]"
        if message is None:
            raise ControlError(f"{name}: a feed message is a JSON value other than null")
        data = msgspec.json.encode(message)
        if len(data) > MAX_MESSAGE_BYTES:
            raise TooLarge(f"{name}: {len(data)} bytes of JSON is over the limit of {MAX_MESSAGE_BYTES} bytes per feed message")
        encoded.append(data)
    return encoded


async def _deliver(context: RestContext, feed_id: str, subscription: FeedSubscription, moment: datetime, payloads: list[bytes]) -> None:
    """Write the payloads, in order, as files of the subscription's room (see the module docstring)."""
    room = context.room(subscription.project_id, subscription.room)
    next_suffixes: dict[str, tuple[str, int]] = room.toolkit_state(_NAMES_STATE, lambda _: {})
    stamp = moment.strftime(subscription.filename_datetime_format or DEFAULT_FILENAME_FORMAT)
    for data in payloads:
        latest, suffix = next_suffixes.get(subscription.path, (None, 0))
        suffix = suffix if latest == stamp else 0
        while True:
            path = message_path(subscription.path, stamp, suffix)
            next_suffixes[subscription.path] = (stamp, suffix + 1)  # before the write: a publish at once moves on
            try:
                await write_file(room, path, data, participant_id=f"feed:{feed_id}", mime_type=MESSAGE_MIME_TYPE)
            except RoomException as error:
                if error.code != ErrorCode.STORAGE_ALREADY_EXISTS:
                    raise
                suffix += 1
                continue
            break


async def _publish(context: RestContext, a: dict[str, Any], messages: list[Any]) -> None:
    payloads = encode_messages(messages)
    feed, subscriptions = await context.control.feeds.feed_and_subscriptions(a["project_id"], a["feed_id"])
    if feed.paused:
        raise Conflict(f"feed {feed.name!r} is paused: nothing was published")
    if feed.message_schema is False:
        raise ControlError(f"feed {feed.name!r} has the message_schema false: it accepts no message")
    moment = datetime.fromtimestamp(context.config.clock(), timezone.utc)
    failures: list[str] = []

    async def deliver(subscription: FeedSubscription) -> None:
        try:
            await _deliver(context, feed.id, subscription, moment, payloads)
        except (RoomException, OSError, ValueError) as error:
            failures.append(f"subscription {subscription.id!r} (room {subscription.room!r}, path {subscription.path!r}): {error}")

    async with trio.open_nursery() as nursery:
        for subscription in subscriptions:
            nursery.start_soon(deliver, subscription)
    if failures:
        delivered = len(subscriptions) - len(failures)
        raise DeliveryFailed(f"delivered to {delivered} of {len(subscriptions)} subscriptions; " + "; ".join(failures))


async def publish_feed_message(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await _publish(context, a, [a["message"]])


async def publish_feed_batch(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    if not isinstance(a["messages"], list):
        raise ControlError("messages: the body of publish_feed_batch is a JSON array of messages")
    await _publish(context, a, a["messages"])


HANDLERS: dict[str, Handler] = {
    "create_feed": create_feed,
    "update_feed": update_feed,
    "get_feed": get_feed,
    "get_feed_by_name": get_feed_by_name,
    "list_feeds_page": list_feeds_page,
    "list_room_feeds_page": list_room_feeds_page,
    "delete_feed": delete_feed,
    "publish_feed_message": publish_feed_message,
    "publish_feed_batch": publish_feed_batch,
    "create_feed_subscription": create_feed_subscription,
    "update_feed_subscription": update_feed_subscription,
    "get_feed_subscription": get_feed_subscription,
    "list_feed_subscriptions": list_feed_subscriptions,
    "delete_feed_subscription": delete_feed_subscription,
}
