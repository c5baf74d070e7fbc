"""Feeds and feed subscriptions over REST (protocol/rest.md §11), against a real server on a real
socket with our `Meshagent` client: the records and their refusals, and publishing, which writes
each message, per subscription, as a file of the subscribed room's storage that connected
participants see arrive as a storage event (over a real WebSocket, with our `connect`)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core.client.rest import Meshagent
from meshagent_core.client.storage import FileUpdated
from meshagent_core.rest import ConflictError, NotFoundError, PermissionDeniedError, RestError, ValidationErrorResponse
from meshagent_trio import connect
from meshagent_trio.server import Credentials, Server, ServerConfig
from meshagent_trio.server.rest.feeds import DEFAULT_FILENAME_FORMAT, MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES, file_name
from roomtest import mint

#: The server's clock in these tests: fixed, so two publishes fall in the same second.
NOW = 1_796_000_000.25
STAMP = datetime.fromtimestamp(NOW, timezone.utc).strftime(DEFAULT_FILENAME_FORMAT)


@pytest.fixture
async def clocked(tmp_path: Path, credentials: Credentials, nursery: trio.Nursery) -> AsyncIterator[Server]:
    """A server whose clock stands still at `NOW` (tokens are minted without expiry)."""
    server = Server(ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, clock=lambda: NOW))
    await nursery.start(server.serve)
    yield server


def api(server: Server, token: str | None) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=token)


async def raw_post(server: Server, credentials: Credentials, path: str, body: bytes) -> httpx.Response:
    """A request our client would not send."""
    async with httpx.AsyncClient() as raw:
        headers = {"authorization": f"Bearer {credentials.api_key}", "content-type": "application/json"}
        return await raw.post(f"http://127.0.0.1:{server.port}{path}", content=body, headers=headers)


def room_files(server: Server, room: str, folder: str) -> dict[str, bytes]:
    """The files of a room's storage folder on disk (the server's own project)."""
    path = server.config.room_data_dir(server.config.credentials.project_id, room) / "storage" / folder
    return {item.name: item.read_bytes() for item in sorted(path.iterdir())} if path.exists() else {}


# --- feeds ----------------------------------------------------------------------------------------


async def test_feeds(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        news = await client.create_feed(
            project_id=own, name=" News ", description="d", visibility="project", annotations={"a": "b"}, message_schema={"type": "object"}
        )
        assert (news.name, news.description, news.visibility, news.paused, news.annotations) == ("news", "d", "project", False, {"a": "b"})
        assert (news.project_id, news.message_schema, news.status) == (own, {"type": "object"}, "ready") and news.created_at
        assert await client.get_feed(project_id=own, feed_id=news.id) == news
        assert await client.get_feed_by_name(project_id=own, name="news") == news
        for name in ("alpha", "beta", "gamma"):
            await client.create_feed(project_id=own, name=name)
        first = await client.list_feeds_page(project_id=own, page_size=2)
        assert [f.name for f in first.feeds] == ["alpha", "beta"] and first.total == 4 and first.continuation_token
        second = await client.list_feeds_page(project_id=own, page_size=2, continuation_token=first.continuation_token)
        assert [f.name for f in second.feeds] == ["gamma", "news"] and second.continuation_token is None
        assert [f.name for f in await client.list_feeds(project_id=own)] == ["alpha", "beta", "gamma", "news"]

        await client.update_feed(project_id=own, feed_id=news.id, name="headlines", paused=True, annotations={"c": "d"})
        updated = await client.get_feed(project_id=own, feed_id=news.id)
        assert (updated.name, updated.description, updated.paused, updated.annotations) == ("headlines", "", True, {"c": "d"})
        assert (updated.visibility, updated.message_schema) == ("project", None)  # kept; replaced by its default

        with pytest.raises(ConflictError, match="feed 'alpha' already exists"):
            await client.create_feed(project_id=own, name="alpha")
        with pytest.raises(ConflictError, match="feed 'alpha' already exists"):
            await client.update_feed(project_id=own, feed_id=news.id, name="alpha")
        with pytest.raises(ValueError, match="invalid feed name"):
            await client.create_feed(project_id=own, name="-bad-")
        for bad in ("Upper", "-dash", "a" * 64, "under_score"):  # the server refuses what the client would not send
            with pytest.raises(ValidationErrorResponse, match="invalid feed name"):
                await client.call("create_feed", project_id=own, name=bad)
        answer = await raw_post(server, credentials, f"/accounts/projects/{own}/feeds", b'{"name": "x", "visibility": "everyone"}')
        assert answer.status_code == 400 and "visibility" in answer.text
        with pytest.raises(RestError, match="501.*filter is not implemented"):
            await client.list_feeds_page(project_id=own, filter="name = 'x'")
        with pytest.raises(NotFoundError, match="feed 'nope' does not exist"):
            await client.get_feed(project_id=own, feed_id="nope")
        with pytest.raises(NotFoundError, match="feed 'nope' does not exist"):
            await client.get_feed_by_name(project_id=own, name="nope")
        with pytest.raises(NotFoundError, match="project 'elsewhere' does not exist"):
            await client.list_feeds(project_id="elsewhere")

        await client.delete_feed(project_id=own, feed_id=news.id)
        with pytest.raises(NotFoundError, match=news.id):
            await client.delete_feed(project_id=own, feed_id=news.id)
        with pytest.raises(NotFoundError):
            await client.update_feed(project_id=own, feed_id=news.id, name="news")

        other = await client.create_project(name="other")
        account = await client.create_service_account(project_id=other.id, name="bot")
        key = await client.create_api_key(project_id=other.id, service_account_id=account.id, name="k", description="")
        assert (await client.create_feed(project_id=other.id, name="alpha")).project_id == other.id  # names are per project
    async with api(server, key.value) as stranger:
        with pytest.raises(PermissionDeniedError, match="another project"):
            await stranger.list_feeds(project_id=own)
        assert [f.name for f in await stranger.list_feeds(project_id=other.id)] == ["alpha"]


async def test_subscriptions(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        feed = await client.create_feed(project_id=own, name="news")
        other_feed = await client.create_feed(project_id=own, name="other")
        lobby = await client.create_room(project_id=own, name="lobby")
        ids = {"project_id": own, "feed_id": feed.id}
        plain = await client.create_feed_subscription(**ids, room="lobby", path="/inbox/", annotations={"k": "v"})
        assert (plain.feed_id, plain.project_id, plain.room, plain.room_id, plain.path) == (feed.id, own, "lobby", lobby.id, "inbox")
        assert (plain.filename_datetime_format, plain.annotations) == (None, {"k": "v"}) and plain.created_at
        daily = await client.create_feed_subscription(**ids, room="no-rest-record", path="daily", filename_datetime_format="%Y/%m/%d/%H%M%S")
        assert (daily.room_id, daily.filename_datetime_format) == (None, "%Y/%m/%d/%H%M%S")
        await client.create_feed_subscription(project_id=own, feed_id=other_feed.id, room="lobby", path="other")
        assert await client.get_feed_subscription(**ids, subscription_id=plain.id) == plain
        assert [s.id for s in await client.list_feed_subscriptions(**ids)] == [plain.id, daily.id]

        await client.update_feed_subscription(**ids, subscription_id=plain.id, filename_datetime_format="%H%M%S", annotations={})
        changed = await client.get_feed_subscription(**ids, subscription_id=plain.id)
        assert (changed.filename_datetime_format, changed.annotations, changed.path) == ("%H%M%S", {}, "inbox")
        await client.update_feed_subscription(**ids, subscription_id=plain.id)
        assert (await client.get_feed_subscription(**ids, subscription_id=plain.id)).filename_datetime_format is None

        assert [f.name for f in await client.list_room_feeds(project_id=own, room_name="lobby")] == ["news", "other"]
        page = await client.list_room_feeds_page(project_id=own, room_name="lobby", count=1, offset=1)
        assert [f.name for f in page.feeds] == ["other"] and page.total == 2
        assert await client.list_room_feeds(project_id=own, room_name="nowhere") == []

        with pytest.raises(ConflictError, match="already has a subscription to room 'lobby' at path 'inbox'"):
            await client.create_feed_subscription(**ids, room="lobby", path="inbox")
        refused = [
            ({"path": "../up"}, "path"),
            ({"path": "a//b"}, "path"),
            ({"room": "a b"}, "room name"),
            ({"filename_datetime_format": "../%Y"}, "filename_datetime_format"),
            ({"filename_datetime_format": " "}, "filename_datetime_format"),
        ]
        for bad, field in refused:
            arguments = {"room": "lobby", "path": "x", **bad}
            with pytest.raises(ValidationErrorResponse, match=field):
                await client.create_feed_subscription(**ids, **arguments)
        with pytest.raises(ValidationErrorResponse, match="filename_datetime_format"):
            await client.update_feed_subscription(**ids, subscription_id=plain.id, filename_datetime_format="a/../%S")
        with pytest.raises(NotFoundError, match="feed subscription 'nope' does not exist"):
            await client.get_feed_subscription(**ids, subscription_id="nope")
        with pytest.raises(NotFoundError, match="feed subscription"):
            await client.get_feed_subscription(project_id=own, feed_id=other_feed.id, subscription_id=plain.id)  # another feed's
        with pytest.raises(NotFoundError, match="feed 'nope' does not exist"):
            await client.create_feed_subscription(project_id=own, feed_id="nope", room="lobby", path="x")

        await client.delete_feed_subscription(**ids, subscription_id=daily.id)
        with pytest.raises(NotFoundError):
            await client.delete_feed_subscription(**ids, subscription_id=daily.id)
        await client.delete_feed(**ids)  # takes its subscriptions
        assert [f.name for f in await client.list_room_feeds(project_id=own, room_name="lobby")] == ["other"]


# --- publishing -----------------------------------------------------------------------------------


async def test_a_message_arrives_as_a_file_in_a_room_a_participant_is_in(clocked: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(clocked, credentials.api_key) as client:
        feed = await client.create_feed(project_id=own, name="news")
        await client.create_feed_subscription(project_id=own, feed_id=feed.id, room="lobby", path="inbox")
        await client.create_feed_subscription(project_id=own, feed_id=feed.id, room="lobby", path="dated", filename_datetime_format="%Y/%m/%d/%H-%M-%S")
        with trio.fail_after(20):
            async with connect(clocked.config.room_url("lobby"), mint(credentials, "lobby", name="reader")) as room:
                async with room.storage.file_events() as events:
                    await client.publish_feed_message(project_id=own, feed_id=feed.id, message={"title": "hello", "n": 1})
                    seen = {(await events.__anext__()).path, (await events.__anext__()).path}
                    moment = datetime.fromtimestamp(NOW, timezone.utc)
                    dated = moment.strftime("dated/%Y/%m/%d/%H-%M-%S.json")
                    assert seen == {f"inbox/{STAMP}.json", dated}
                    for path in seen:
                        content = await room.storage.download(path=path)
                        assert (json.loads(content.data), content.mime_type) == ({"title": "hello", "n": 1}, "application/json")

                    await client.publish_feed_batch(project_id=own, feed_id=feed.id, messages=["two", 3, [4]])
                    arrived = [await events.__anext__() for _ in range(6)]
                    assert all(isinstance(e, FileUpdated) and e.participant_id == f"feed:{feed.id}" for e in arrived)
                    inbox = [e.path for e in arrived if e.path.startswith("inbox/")]
                    assert inbox == [f"inbox/{file_name(STAMP, n)}" for n in (1, 2, 3)]  # in the batch's order
                    listed = [entry.name for entry in await room.storage.list(path="inbox")]
                    assert listed == [file_name(STAMP, n) for n in range(4)]
                    bodies = [json.loads((await room.storage.download(path=f"inbox/{name}")).data) for name in listed]
                    assert bodies == [{"title": "hello", "n": 1}, "two", 3, [4]]


async def test_messages_in_the_same_second_never_overwrite(clocked: Server, credentials: Credentials) -> None:
    """A file already there and publishes at once: every message gets a file of its own."""
    own = credentials.project_id
    async with api(clocked, credentials.api_key) as client:
        feed = await client.create_feed(project_id=own, name="burst")
        await client.create_feed_subscription(project_id=own, feed_id=feed.id, room="burst", path="in")
        folder = clocked.config.room_data_dir(own, "burst") / "storage" / "in"
        folder.mkdir(parents=True)
        (folder / file_name(STAMP, 1)).write_bytes(b"someone else's")
        async with trio.open_nursery() as nursery:
            for n in range(8):
                nursery.start_soon(lambda n=n: client.publish_feed_message(project_id=own, feed_id=feed.id, message={"n": n}))
        files = room_files(clocked, "burst", "in")
        assert files.pop(file_name(STAMP, 1)) == b"someone else's"
        assert sorted(json.loads(data)["n"] for data in files.values()) == list(range(8))
        assert set(files) == {file_name(STAMP, n) for n in (0, *range(2, 9))}


async def test_a_subscribed_room_nobody_is_in_gets_the_file(clocked: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(clocked, credentials.api_key) as client:
        other = await client.create_project(name="second")
        feed = await client.create_feed(project_id=other.id, name="news")
        await client.create_feed_subscription(project_id=other.id, feed_id=feed.id, room="quiet", path="feed")
        own_feed = await client.create_feed(project_id=own, name="news")
        await client.create_feed_subscription(project_id=own, feed_id=own_feed.id, room="empty", path="")
        await client.publish_feed_message(project_id=other.id, feed_id=feed.id, message={"to": "quiet"})
        await client.publish_feed_batch(project_id=own, feed_id=own_feed.id, messages=[{"to": "empty"}])
    on_disk = clocked.config.room_data_dir(other.id, "quiet") / "storage" / "feed" / f"{STAMP}.json"
    assert json.loads(on_disk.read_bytes()) == {"to": "quiet"}
    assert room_files(clocked, "empty", "") == {f"{STAMP}.json": b'{"to":"empty"}'}
    with trio.fail_after(20):  # who joins later finds it
        async with connect(clocked.config.room_url("empty"), mint(credentials, "empty")) as room:
            assert json.loads((await room.storage.download(path=f"{STAMP}.json")).data) == {"to": "empty"}


async def test_what_a_publish_may_carry(clocked: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(clocked, credentials.api_key) as client:
        feed = await client.create_feed(project_id=own, name="bounded")
        ids = {"project_id": own, "feed_id": feed.id}
        await client.create_feed_subscription(**ids, room="bounded", path="in")
        with pytest.raises(RestError, match=rf"413.*message: {MAX_MESSAGE_BYTES + 3} bytes of JSON is over the limit of {MAX_MESSAGE_BYTES} bytes") as info:
            await client.publish_feed_message(**ids, message="x" * (MAX_MESSAGE_BYTES + 1))
        assert info.value.http_status == 413
        with pytest.raises(RestError, match=r"413.*messages\[1\]: .* over the limit"):
            await client.publish_feed_batch(**ids, messages=["small", "x" * MAX_MESSAGE_BYTES])
        with pytest.raises(RestError, match=rf"413.*batch of {MAX_BATCH_MESSAGES + 1} messages is over the limit"):
            await client.publish_feed_batch(**ids, messages=[1] * (MAX_BATCH_MESSAGES + 1))
        with pytest.raises(ValidationErrorResponse, match="message: a feed message is a JSON value other than null"):
            await client.publish_feed_message(**ids, message=None)
        with pytest.raises(ValidationErrorResponse, match="messages: the body of publish_feed_batch is a JSON array"):
            await client.publish_feed_batch(**ids, messages={"not": "a list"})
        answer = await raw_post(clocked, credentials, f"/accounts/projects/{own}/feeds/{feed.id}/messages", b"{")
        assert answer.status_code == 400 and "not JSON" in answer.text
        await client.update_feed(**ids, name="bounded", paused=True)
        with pytest.raises(ConflictError, match="feed 'bounded' is paused: nothing was published"):
            await client.publish_feed_message(**ids, message={"a": 1})
        await client.update_feed(**ids, name="bounded", message_schema=False)
        with pytest.raises(ValidationErrorResponse, match="message_schema false"):
            await client.publish_feed_message(**ids, message={"a": 1})
        with pytest.raises(NotFoundError, match="feed 'nope' does not exist"):
            await client.publish_feed_message(project_id=own, feed_id="nope", message={"a": 1})
        assert room_files(clocked, "bounded", "in") == {}  # nothing of the refused publishes was written
        await client.update_feed(**ids, name="bounded")
        await client.publish_feed_batch(**ids, messages=[])  # nothing to do
        assert room_files(clocked, "bounded", "in") == {}


async def test_a_subscription_whose_folder_is_a_file_fails_alone(clocked: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(clocked, credentials.api_key) as client:
        feed = await client.create_feed(project_id=own, name="split")
        good = await client.create_feed_subscription(project_id=own, feed_id=feed.id, room="split", path="good")
        bad = await client.create_feed_subscription(project_id=own, feed_id=feed.id, room="split", path="blocked")
        storage = clocked.config.room_data_dir(own, "split") / "storage"
        storage.mkdir(parents=True)
        (storage / "blocked").write_bytes(b"a file, not a folder")
        with pytest.raises(ConflictError, match=rf"delivered to 1 of 2 subscriptions; subscription '{bad.id}' \(room 'split', path 'blocked'\)"):
            await client.publish_feed_message(project_id=own, feed_id=feed.id, message={"a": 1})
        assert good.path == "good" and room_files(clocked, "split", "good") == {f"{STAMP}.json": b'{"a":1}'}
        assert (storage / "blocked").read_bytes() == b"a file, not a folder"


@settings(deadline=None)  # pure, but the first example may pay for warming up
@given(
    stamp=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30),
    suffixes=st.lists(st.integers(0, 999_999), unique=True, max_size=20),
)
def test_names_of_one_stamp_sort_in_publish_order(stamp: str, suffixes: list[int]) -> None:
    names = [file_name(stamp, suffix) for suffix in sorted(suffixes)]
    assert sorted(names) == names and len(set(names)) == len(names)
