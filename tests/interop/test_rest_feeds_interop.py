"""The official `Meshagent` client (0.56, out of process) against our server for every feed method
of protocol/rest.md §11, while one of our participants is in a subscribed room over a real
WebSocket: the messages the official client publishes arrive there as files (storage events,
then downloads), and a subscribed room nobody is in gets them on disk; the refusals raise the
official exceptions."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import trio

from meshagent_core.client.storage import FileUpdated
from meshagent_trio import connect
from official_rest import official_rest
from roomtest import mint

pytestmark = pytest.mark.interop

STAMPED = re.compile(r"^inbox/(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)(_\d{6})?\.json$")


async def test_the_official_client_publishes_into_a_live_room(official_python: str, server_process: Any) -> None:
    credentials = server_process.credentials
    own = credentials.project_id
    in_project = {"project_id": own}
    on_feed = {**in_project, "feed_id": "$0.id"}
    on_subscription = {**on_feed, "subscription_id": "$6.id"}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("create_feed", {**in_project, "name": "News", "description": " d ", "annotations": {"a": "b"}, "message_schema": {"type": "object"}}),  # 0
        ("get_feed", on_feed),
        ("get_feed_by_name", {**in_project, "name": "news"}),
        ("update_feed", {**on_feed, "name": "news", "description": "e", "paused": False, "annotations": {"c": "d"}}),
        ("list_feeds_page", {**in_project, "page_size": 10}),
        ("list_feeds", in_project),  # 5
        ("create_feed_subscription", {**on_feed, "room": "official-feeds", "path": "inbox", "annotations": {"s": "t"}}),
        ("create_feed_subscription", {**on_feed, "room": "official-quiet", "path": "in/box", "filename_datetime_format": "%Y%m%d-%H%M%S"}),
        ("update_feed_subscription", {**on_subscription, "annotations": {"u": "v"}}),
        ("get_feed_subscription", on_subscription),
        ("list_feed_subscriptions", on_feed),  # 10
        ("list_room_feeds_page", {**in_project, "room_name": "official-feeds"}),
        ("list_room_feeds", {**in_project, "room_name": "official-quiet", "count": 5, "offset": 0}),
        ("publish_feed_message", {**on_feed, "message": {"headline": "one"}}),
        ("publish_feed_batch", {**on_feed, "messages": [{"headline": "two"}, "three"]}),
        ("create_feed", {**in_project, "name": "news"}),  # 15
        ("get_feed", {**in_project, "feed_id": "nope"}),
        ("get_feed_subscription", {**on_feed, "subscription_id": "nope"}),
        ("create_feed_subscription", {**on_feed, "room": "official-feeds", "path": "inbox"}),
        ("publish_feed_message", {**on_feed, "message": "x" * (1024 * 1024 + 1)}),
        ("create_feed_subscription", {**on_feed, "room": "official-feeds", "path": "../up"}),  # 20
        ("delete_feed_subscription", {**on_feed, "subscription_id": "$7.id"}),
        ("list_feed_subscriptions", on_feed),
        ("delete_feed", on_feed),
        ("get_feed_by_name", {**in_project, "name": "news"}),
    ]
    with trio.fail_after(120):
        async with connect(server_process.room_url("official-feeds"), mint(credentials, "official-feeds", name="reader")) as room:
            async with room.storage.file_events() as events:
                answers = await official_rest(official_python, server_process.api_url, server_process.api_key, calls)
                arrived = [await events.__anext__() for _ in range(3)]
            contents = [json.loads((await room.storage.download(path=event.path)).data) for event in arrived]
        async with connect(server_process.room_url("official-quiet"), mint(credentials, "official-quiet")) as quiet:
            quiet_names = [entry.name for entry in await quiet.storage.list(path="in/box")]
            quiet_contents = [json.loads((await quiet.storage.download(path=f"in/box/{name}")).data) for name in quiet_names]

    def returned(index: int) -> Any:
        assert "returned" in answers[index], (calls[index], answers[index])
        return answers[index]["returned"]

    def raised(index: int, kind: str, *words: str) -> None:
        answer = answers[index]
        assert answer.get("raised") == kind and all(word in answer["message"] for word in words), (calls[index], answer)

    feed = returned(0)
    assert (feed["name"], feed["description"], feed["visibility"], feed["paused"], feed["status"]) == ("news", "d", "private", False, "ready")
    assert (feed["annotations"], feed["message_schema"], feed["project_id"]) == ({"a": "b"}, {"type": "object"}, own)
    assert returned(1) == returned(2) == feed
    assert returned(3) is None
    page = returned(4)
    assert [f["name"] for f in page["feeds"]] == ["news"] and page["total"] == 1 and "continuation_token" not in page
    updated = returned(5)[0]
    assert (updated["id"], updated["description"], updated["annotations"]) == (feed["id"], "e", {"c": "d"}) and "message_schema" not in updated
    inbox, quiet_subscription = returned(6), returned(7)
    assert (inbox["room"], inbox["path"], inbox["annotations"], inbox["feed_id"], inbox["status"]) == ("official-feeds", "inbox", {"s": "t"}, feed["id"], "ready")
    assert "filename_datetime_format" not in inbox and quiet_subscription["filename_datetime_format"] == "%Y%m%d-%H%M%S"
    assert returned(8) is None and returned(9) == {**inbox, "annotations": {"u": "v"}}
    assert [s["id"] for s in returned(10)] == [inbox["id"], quiet_subscription["id"]]
    assert [f["id"] for f in returned(11)["feeds"]] == [feed["id"]] and returned(11)["total"] == 1
    assert [f["id"] for f in returned(12)] == [feed["id"]]
    assert returned(13) is None and returned(14) is None

    assert all(isinstance(event, FileUpdated) and event.participant_id == f"feed:{feed['id']}" for event in arrived)
    stamps = [STAMPED.match(event.path) for event in arrived]
    assert all(stamps), [event.path for event in arrived]
    batch = [match.group(1) for match in stamps[1:]]
    assert batch[0] == batch[1] and stamps[2].group(2)  # one stamp for the batch: the second file has a suffix
    assert contents == [{"headline": "one"}, {"headline": "two"}, "three"]
    assert quiet_contents == [{"headline": "one"}, {"headline": "two"}, "three"] and len(quiet_names) == 3

    raised(15, "ConflictError", "Status=409", "feed 'news' already exists")
    raised(16, "NotFoundError", "Status=404", "feed 'nope' does not exist")
    raised(17, "NotFoundError", "Status=404", "feed subscription 'nope' does not exist")
    raised(18, "ConflictError", "Status=409", "already has a subscription to room 'official-feeds' at path 'inbox'")
    raised(19, "RoomException", "Status=413", "over the limit of 1048576 bytes per feed message")
    raised(20, "ValidationErrorResponse", "Status=400", "path")
    assert returned(21) is None and [s["id"] for s in returned(22)] == [inbox["id"]]
    assert returned(23) is None
    raised(24, "NotFoundError", "Status=404", "feed 'news' does not exist")
