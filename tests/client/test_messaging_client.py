"""room.messaging: presence, messages, broadcast, streams and their errors — on Trio and on AnyIO
(asyncio and Trio), against the real local server."""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import anyio
import pytest

from meshagent_core import ConnectionLost, RoomException
from meshagent_core.client.messaging_streams import (
    IncomingMessagingStreamRequest,
    MessagingStreamClientDisconnected,
    PresenceEvent,
    RoomMessage,
)
from meshagent_core.client.room import RemoteParticipant, RoomClosed
from meshagent_core.session import events as ev
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import MessagingGrant
from meshagent_trio.server import LocalServerProcess
from roomtest import mint

pytestmark = pytest.mark.anyio

#: A safety net so a broken feature fails instead of hanging; never an assertion about time.
LIMIT = 10


def room_name(test: str, client_variant: tuple[str, str]) -> str:
    return f"msg-{test}-{client_variant[0]}-{client_variant[1]}"


class People:
    """Join participants to one room, all left when the block ends."""

    def __init__(self, client_module: Any, local_server: Any, room: str, stack: AsyncExitStack) -> None:
        self.client_module, self.local_server, self.room, self.stack = client_module, local_server, room, stack

    async def join(self, name: str, *, scope: ApiScope | None = None, enable: bool = True) -> Any:
        token = mint(self.local_server.credentials, self.room, name=name, scope=scope)
        room = await self.stack.enter_async_context(self.client_module.connect(self.local_server.room_url(self.room), token))
        if enable:
            await room.messaging.enable()
        return room


@asynccontextmanager
async def people(client_module: Any, local_server: Any, room: str) -> AsyncIterator[People]:
    with anyio.fail_after(LIMIT):
        async with AsyncExitStack() as stack:
            yield People(client_module, local_server, room, stack)


def scope_with(messaging: MessagingGrant | None) -> ApiScope:
    scope = ApiScope.agent_default()
    scope.messaging = messaging
    return scope


async def seen(room: Any, other: Any) -> RemoteParticipant:
    """`other` as `room` lists it, once `room` has heard of it (other participants learn of an
    enable after the enabler's own `enable()` has returned)."""
    async with room.messaging.presence_events("participant_added") as presence:
        participant = room.messaging.get_participant(other.local_participant.id)
        while participant is None:
            await presence.__anext__()
            participant = room.messaging.get_participant(other.local_participant.id)
    return participant


async def next_presence(feed: Any, type: str) -> PresenceEvent:
    async for event in feed:
        if event.type == type:
            return event
    raise AssertionError(f"the presence feed ended before a {type} event")


# --- presence ------------------------------------------------------------------------------------


async def test_enable_returns_with_the_participant_list(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("enable", client_variant)) as p:
        alice = await p.join("alice")
        assert alice.messaging.is_enabled and alice.messaging.online
        assert alice.messaging.remote_participants == []
        bob = await p.join("bob", enable=False)
        assert not bob.messaging.is_enabled and not bob.messaging.online
        await bob.messaging.enable()
        # enable() has waited for `messaging.enabled`: the list is there, without self.
        [listed] = bob.messaging.remote_participants
        assert isinstance(listed, RemoteParticipant) and listed.online
        assert listed.id == alice.local_participant.id and listed.get_attribute("name") == "alice"
        assert listed.role == "agent"
        assert bob.messaging.get_participants() == [listed]
        assert bob.messaging.get_participant(alice.local_participant.id) is listed
        assert bob.messaging.get_participant_by_name("alice") is listed
        assert bob.messaging.get_participant_by_name("bob") is None
        assert bob.messaging.get_participant(bob.local_participant.id) is None
        # Enabling again while online changes nothing.
        await bob.messaging.enable()
        assert bob.messaging.get_participant(alice.local_participant.id) is listed

        async with alice.messaging.presence_events() as presence:
            await bob.messaging.disable()
            assert not bob.messaging.is_enabled and not bob.messaging.online
            assert bob.messaging.remote_participants == [] and listed.online is False
            removed = await next_presence(presence, "participant_removed")
            assert removed.participant is not None and removed.participant.id == bob.local_participant.id
            assert removed.participant.online is False
        assert alice.messaging.remote_participants == []


async def test_joins_and_leaves_update_the_list(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("joins", client_variant)) as p:
        alice = await p.join("alice")
        presence = alice.messaging.presence_events("participant_added", "participant_removed")
        async with AsyncExitStack() as bob_stack:
            bob_people = People(client_module, local_server, p.room, bob_stack)
            bob = await bob_people.join("bob")
            bob_id = bob.local_participant.id
            added = await presence.__anext__()
            assert added.type == "participant_added" and added.participant.id == bob_id
            assert added.participant.get_attribute("name") == "bob"
            assert alice.messaging.get_participant(bob_id) is added.participant
        # bob left the room (its connection ended): the others are told.
        removed = await presence.__anext__()
        assert removed.type == "participant_removed" and removed.participant is added.participant
        assert added.participant.online is False
        assert alice.messaging.get_participant(bob_id) is None
        await presence.aclose()


async def test_attribute_changes_update_the_participant(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("attributes", client_variant)) as p:
        alice = await p.join("alice")
        bob = await p.join("bob")
        bob_there = await seen(alice, bob)
        async with alice.messaging.presence_events("participant_attributes_updated") as presence:
            bob.local_participant.set_attribute("color", "blue")
            updated = await presence.__anext__()
        assert updated.participant is bob_there
        assert bob_there.attributes == {"name": "bob", "color": "blue"}


async def test_presence_follows_the_room(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("lifetime", client_variant)) as p:
        alice = await p.join("alice", enable=False)
        presence = alice.messaging.presence_events("online", "offline", "messaging_enabled")
        messages = alice.messaging.messages()
        await alice.messaging.enable()
        assert [await presence.__anext__(), await presence.__anext__()] == [
            PresenceEvent("online"),
            PresenceEvent("messaging_enabled"),
        ]
    # Leaving the room ends the iterators (after an `offline`).
    assert [event async for event in presence] == [PresenceEvent("offline")]
    assert [message async for message in messages] == []
    assert not alice.messaging.online


# --- messages ------------------------------------------------------------------------------------


async def test_send_message_with_attachment(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("send", client_variant)) as p:
        alice = await p.join("alice")
        async with alice.messaging.messages() as messages:
            bob = await p.join("bob")  # its `participant.enabled` is not a message
            to_alice = bob.messaging.get_participant_by_name("alice")
            await bob.messaging.send_message(to=to_alice, type="greeting", message={"text": "hi"}, attachment=b"\x00\x01\xff")
            await bob.messaging.send_message(to=alice.local_participant.id, type="plain", message={"n": [1, 2]})
            first, second = await messages.__anext__(), await messages.__anext__()
        assert first == RoomMessage(
            from_participant_id=bob.local_participant.id, type="greeting", message={"text": "hi"}, attachment=b"\x00\x01\xff"
        )
        assert second == RoomMessage(from_participant_id=bob.local_participant.id, type="plain", message={"n": [1, 2]}, attachment=b"")
        # A closed iterator ends, and gets nothing more.
        await bob.messaging.send_message(to=alice.local_participant.id, type="late", message={})
        assert [message async for message in messages] == []


async def test_broadcast_reaches_the_others_only(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("broadcast", client_variant)) as p:
        alice, bob, carol = await p.join("alice"), await p.join("bob"), await p.join("carol")
        feeds = {room: room.messaging.messages() for room in (alice, bob, carol)}
        for feed in feeds.values():
            p.stack.push_async_callback(feed.aclose)
        await alice.messaging.broadcast_message(type="news", message={"v": 1}, attachment=b"att")
        for room in (bob, carol):
            message = await feeds[room].__anext__()
            assert (message.from_participant_id, message.type, message.message, message.attachment) == (
                alice.local_participant.id,
                "news",
                {"v": 1},
                b"att",
            )
        # alice's own broadcast did not come back: the next thing she gets is this message to herself.
        await alice.messaging.send_message(to=alice.local_participant.id, type="self", message={})
        assert (await feeds[alice].__anext__()).type == "self"


async def test_send_to_a_participant_that_is_no_longer_online(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("stale", client_variant)) as p:
        alice, bob = await p.join("alice"), await p.join("bob")
        stale = await seen(alice, bob)
        async with alice.messaging.presence_events("participant_added") as presence:
            await bob.messaging.disable()
            await bob.messaging.enable()  # bob is back, as a new participant object
            fresh = (await presence.__anext__()).participant
        assert fresh is not stale and stale.online is False
        async with bob.messaging.messages() as bobs:
            with pytest.raises(RoomException) as info:
                await alice.messaging.send_message(to=stale, type="lost", message={})
            assert info.value.code == 1003 and info.value.message == "the participant was not found"
            # Nothing was sent: the server would have delivered it to bob, who is here.
            await alice.messaging.send_message(to=fresh, type="found", message={})
            assert (await bobs.__anext__()).type == "found"


async def test_send_to_a_participant_that_left(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("left", client_variant)) as p:
        alice = await p.join("alice")
        async with alice.messaging.presence_events("participant_removed") as presence:
            async with client_module.connect(p.local_server.room_url(p.room), mint(local_server.credentials, p.room, name="bob")) as bob:
                await bob.messaging.enable()
                gone = await seen(alice, bob)
            await presence.__anext__()
        with pytest.raises(RoomException) as info:
            await alice.messaging.send_message(to=gone, type="lost", message={})
        assert info.value.code == 1003


async def test_send_to_an_unknown_participant(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("unknown", client_variant)) as p:
        alice = await p.join("alice")
        with pytest.raises(RoomException) as info:
            await alice.messaging.send_message(to="nobody-here", type="x", message={})
        assert info.value.code == 1003
        # A participant the list still holds but the server no longer knows: the 1003 answer
        # removes it. (The stale entry is what a `participant.enabled` event makes of it.)
        ghost_event = ev.MessageReceived(
            "room", "participant.enabled", {"id": "ghost", "role": "user", "attributes": {"name": "ghost"}}
        )
        async with alice.messaging.presence_events("participant_added", "participant_removed") as presence:
            alice.messaging._on_message(ghost_event)
            ghost = (await presence.__anext__()).participant
            assert alice.messaging.get_participant("ghost") is ghost and ghost.online
            with pytest.raises(RoomException) as info:
                await alice.messaging.send_message(to=ghost, type="x", message={})
            assert info.value.code == 1003
            removed = await presence.__anext__()
        assert removed == PresenceEvent("participant_removed", ghost)
        assert ghost.online is False and alice.messaging.get_participant("ghost") is None


async def test_bad_messages_are_refused(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("bad", client_variant)) as p:
        alice = await p.join("alice")
        me = alice.local_participant.id
        for type in ("messaging.enabled", "participant.enabled", "participant.attributes"):
            with pytest.raises(RoomException) as info:
                await alice.messaging.send_message(to=me, type=type, message={})
            assert info.value.code == 1002
        with pytest.raises(RoomException) as info:
            await alice.messaging.broadcast_message(type="participant.disabled", message={"id": me})
        assert info.value.code == 1002
        with pytest.raises(RoomException) as info:
            await alice.messaging.send_message(to=me, type="list", message=[1, 2])  # type: ignore[arg-type]
        assert info.value.code == 1002
        with pytest.raises(TypeError):
            await alice.messaging.send_message(to=42, type="x", message={})  # type: ignore[arg-type]
        with pytest.raises(NotImplementedError):
            alice.messaging.on("message", print)


async def test_dismiss_is_surfaced(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("dismiss", client_variant)) as p:
        alice, bob = await p.join("alice"), await p.join("bob")
        async with alice.messaging.messages() as messages:
            await bob.messaging.send_message(to=alice.local_participant.id, type="dismiss", message={"why": "done"})
            message = await messages.__anext__()
        assert (message.type, message.message, message.from_participant_id) == ("dismiss", {"why": "done"}, bob.local_participant.id)


async def test_dismiss_closes_the_room(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("dismissed", client_variant)) as p:
        alice, bob = await p.join("alice"), await p.join("bob")
        closed = alice.subscribe(RoomClosed)
        await bob.messaging.send_message(to=alice.local_participant.id, type="dismiss", message={})
        assert isinstance(await closed.__anext__(), RoomClosed)
        with pytest.raises(ConnectionLost):
            await alice.messaging.broadcast_message(type="x", message={})


# --- streams -------------------------------------------------------------------------------------


async def open_stream(initiator: Any, recipient: Any, requests: Any, **first: Any) -> tuple[Any, Any, IncomingMessagingStreamRequest]:
    """The initiator opens a stream, the recipient accepts: (outgoing, incoming, request)."""
    result: dict[str, Any] = {}

    async def initiate() -> None:
        to = await seen(initiator, recipient)
        result["outgoing"] = await initiator.messaging.stream(to=to, **first)

    async with anyio.create_task_group() as group:
        group.start_soon(initiate)
        request = await requests.__anext__()
        result["incoming"] = await request.accept()
    return result["outgoing"], result["incoming"], request


async def test_stream_both_ways_closed_by_the_initiator(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("stream-a", client_variant)) as p:
        alice, bob = await p.join("alice"), await p.join("bob")
        alice_id, bob_id = alice.local_participant.id, bob.local_participant.id
        async with alice.messaging.stream_requests() as requests:
            outgoing, incoming, request = await open_stream(
                bob, alice, requests, type="chat", message={"hello": 1}, attachment=b"first"
            )
        assert (request.from_participant_id, request.type, request.message, request.attachment) == (bob_id, "chat", {"hello": 1}, b"first")
        assert request.accepted and not request.closed
        assert outgoing.stream_id == incoming.stream_id == request.stream_id
        assert outgoing.remote_participant_id == alice_id and incoming.remote_participant_id == bob_id

        await outgoing.send_message(type="up", message={"n": 1}, attachment=b"\x01")
        await outgoing.send_message(type="up", message={"n": 2})
        assert await incoming.receive() == RoomMessage(from_participant_id=bob_id, type="up", message={"n": 1}, attachment=b"\x01")
        assert await incoming.receive() == RoomMessage(from_participant_id=bob_id, type="up", message={"n": 2}, attachment=None)
        await incoming.send_message(type="down", message={"n": 3}, attachment=b"\x02")
        assert await outgoing.receive() == RoomMessage(from_participant_id=alice_id, type="down", message={"n": 3}, attachment=b"\x02")

        await outgoing.close()
        assert outgoing.closed and await outgoing.receive() is None
        with pytest.raises(RoomException) as info:
            await outgoing.send_message(type="late", message={})
        assert info.value.code == 1006
        # The recipient hears that the initiator closed, then its stream ends.
        assert [event async for event in incoming] == [
            MessagingStreamClientDisconnected(stream_id=incoming.stream_id, participant_id=bob_id)
        ]
        assert incoming.closed


async def test_stream_closed_by_the_recipient(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("stream-b", client_variant)) as p:
        alice, bob = await p.join("alice"), await p.join("bob")
        async with alice.messaging.stream_requests() as requests:
            outgoing, incoming, _ = await open_stream(bob, alice, requests, type="chat", message={})
        await incoming.send_message(type="bye", message={"last": True})
        async with incoming:  # leaving the block closes it
            pass
        assert incoming.closed
        with pytest.raises(RoomException):
            await incoming.send_message(type="late", message={})
        events = [event async for event in outgoing]
        assert events == [
            RoomMessage(from_participant_id=alice.local_participant.id, type="bye", message={"last": True}),
            MessagingStreamClientDisconnected(stream_id=outgoing.stream_id, participant_id=alice.local_participant.id),
        ]
        assert outgoing.closed
        await outgoing.close()  # closing again is harmless


async def test_stream_rejected(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("stream-reject", client_variant)) as p:
        alice, bob = await p.join("alice"), await p.join("bob")
        failures: list[RoomException] = []

        async def initiate(message: str) -> None:
            with pytest.raises(RoomException) as info:
                await bob.messaging.stream(to=alice.local_participant.id, type="ask", message={"q": message})
            failures.append(info.value)

        async with alice.messaging.stream_requests() as requests:
            async with anyio.create_task_group() as group:
                group.start_soon(initiate, "one")
                request = await requests.__anext__()
                await request.reject(message="busy")
            assert request.closed and request.close_reason == "rejected" and not request.accepted
            with pytest.raises(RoomException) as info:
                await request.accept()
            assert info.value.code == 1006
            async with anyio.create_task_group() as group:
                group.start_soon(initiate, "two")
                await (await requests.__anext__()).reject()
        assert [failure.message for failure in failures] == ["busy", "messaging stream rejected"]


async def test_stream_refused_when_nobody_listens(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("stream-deaf", client_variant)) as p:
        alice, bob = await p.join("alice"), await p.join("bob")
        with pytest.raises(RoomException) as info:
            await bob.messaging.stream(to=alice.local_participant.id, type="ask", message={})
        assert info.value.message == "the participant is not accepting messaging streams"


async def test_stream_to_an_unknown_participant(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("stream-unknown", client_variant)) as p:
        bob = await p.join("bob")
        with pytest.raises(RoomException) as info:
            await bob.messaging.stream(to="nobody-here", type="ask", message={})
        assert info.value.code == 1003
        # A participant present but without messaging enabled is not found either.
        carol = await p.join("carol", enable=False)
        with pytest.raises(RoomException) as info:
            await bob.messaging.stream(to=carol.local_participant.id, type="ask", message={})
        assert info.value.code == 1003


async def test_stream_ends_when_the_other_end_leaves(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("stream-leave", client_variant)) as p:
        bob = await p.join("bob")
        async with client_module.connect(p.local_server.room_url(p.room), mint(local_server.credentials, p.room, name="alice")) as alice:
            await alice.messaging.enable()
            async with alice.messaging.stream_requests() as requests:
                outgoing, incoming, _ = await open_stream(bob, alice, requests, type="chat", message={})
        # alice's room closed: her end ended too.
        assert incoming.closed
        assert [event async for event in incoming] == [
            MessagingStreamClientDisconnected(stream_id=incoming.stream_id, participant_id=bob.local_participant.id)
        ]
        events = [event async for event in outgoing]
        assert len(events) == 1 and events[0].stream_id == outgoing.stream_id
        assert outgoing.closed


# --- grants --------------------------------------------------------------------------------------


async def test_without_the_messaging_grant(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("no-grant", client_variant)) as p:
        alice = await p.join("alice")
        mallory = await p.join("mallory", scope=scope_with(None), enable=False)
        with pytest.raises(RoomException) as info:
            await mallory.messaging.enable()
        assert info.value.code == 1001
        assert not mallory.messaging.is_enabled and not mallory.messaging.online
        for attempt in (
            mallory.messaging.send_message(to=alice.local_participant.id, type="x", message={}),
            mallory.messaging.broadcast_message(type="x", message={}),
            mallory.messaging.stream(to=alice.local_participant.id, type="x", message={}),
        ):
            with pytest.raises(RoomException) as info:
                await attempt
            assert info.value.code == 1001


async def test_send_and_broadcast_flags(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("flags", client_variant)) as p:
        alice = await p.join("alice")
        quiet = await p.join("quiet", scope=scope_with(MessagingGrant(send=False, broadcast=True, list=True)))
        mute = await p.join("mute", scope=scope_with(MessagingGrant(send=True, broadcast=False, list=True)))
        alice_id = alice.local_participant.id
        with pytest.raises(RoomException) as info:
            await quiet.messaging.send_message(to=alice_id, type="x", message={})
        assert info.value.code == 1001
        with pytest.raises(RoomException) as info:
            await quiet.messaging.stream(to=alice_id, type="x", message={})
        assert info.value.code == 1001
        with pytest.raises(RoomException) as info:
            await mute.messaging.broadcast_message(type="x", message={})
        assert info.value.code == 1001
        async with alice.messaging.messages() as messages:
            await quiet.messaging.broadcast_message(type="allowed", message={})
            await mute.messaging.send_message(to=alice_id, type="allowed too", message={})
            assert {(await messages.__anext__()).type, (await messages.__anext__()).type} == {"allowed", "allowed too"}


async def test_without_the_list_flag(client_module, client_variant, local_server) -> None:
    async with people(client_module, local_server, room_name("no-list", client_variant)) as p:
        alice = await p.join("alice")
        blind = await p.join("blind", scope=scope_with(MessagingGrant(list=False)))
        # Online, but told about nobody; still listed to the others and reachable.
        assert blind.messaging.online and blind.messaging.remote_participants == []
        listed = await seen(alice, blind)
        assert alice.messaging.get_participant_by_name("blind") is listed
        async with blind.messaging.messages() as messages:
            await alice.messaging.send_message(to=listed, type="hi", message={})
            assert (await messages.__anext__()).type == "hi"


# --- reconnect -----------------------------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[LocalServerProcess]:
    with LocalServerProcess(tmp_path / "data") as server:
        yield server


async def test_messaging_is_enabled_again_after_a_reconnect(client_module, own_server) -> None:
    url = own_server.room_url("msg-reconnect")
    with anyio.fail_after(30):
        async with client_module.connect(url, mint(own_server.credentials, "msg-reconnect", name="alice"), reconnect_timeout=30) as alice:
            await alice.messaging.enable()
            async with alice.messaging.presence_events("online", "offline", "messaging_enabled") as presence:
                await anyio.to_thread.run_sync(own_server.kill)  # a transport loss: the client reconnects
                assert await presence.__anext__() == PresenceEvent("offline")
                assert not alice.messaging.online and alice.messaging.is_enabled
                await anyio.to_thread.run_sync(own_server.restart)
                assert [await presence.__anext__(), await presence.__anext__()] == [
                    PresenceEvent("online"),
                    PresenceEvent("messaging_enabled"),
                ]
            assert alice.messaging.online
            # The new server knows alice is enabled: a newcomer lists her and can message her.
            async with client_module.connect(url, mint(own_server.credentials, "msg-reconnect", name="bob")) as bob:
                await bob.messaging.enable()
                listed = bob.messaging.get_participant_by_name("alice")
                assert listed is not None and listed.id == alice.local_participant.id
                async with alice.messaging.messages() as messages:
                    await bob.messaging.send_message(to=listed, type="welcome back", message={})
                    assert (await messages.__anext__()).type == "welcome back"
