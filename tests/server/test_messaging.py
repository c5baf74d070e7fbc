"""The `messaging` toolkit over real sockets: presence, send, broadcast, streams (protocol/room-apis.md §3)."""

from __future__ import annotations

import base64
import json
from contextlib import AsyncExitStack
from typing import Any, AsyncContextManager

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from meshagent_core import CONTROL_CLOSE, CONTROL_OPEN, ControlContent, ErrorContent, JsonContent, RoomException, TextContent
from meshagent_core.session import events as ev
from meshagent_core.toolkits import messaging as contract
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import MessagingGrant, StorageGrant
from meshagent_trio.connection import RoomConnection, ToolCallStream

from roomtest import mint, room_url

def join(server, credentials, name: str, scope: ApiScope | None = None) -> AsyncContextManager[RoomConnection]:
    return RoomConnection.open(room_url(server), mint(credentials, name=name, scope=scope))


def only(**flags: bool) -> ApiScope:
    return ApiScope(messaging=MessagingGrant(**flags))


async def drain(room: RoomConnection) -> list[ev.Event]:
    """Every event the server queued for `room` so far, without waiting.

    A round trip on `room`'s connection (a call to a tool that does not exist) is answered after
    everything queued before it, so once it returns those events are in `room.events`.
    """
    with pytest.raises(RoomException):
        await room.invoke("messaging", "no-such-tool", {})
    received = []
    while True:
        try:
            received.append(room.events.receive_nowait())
        except trio.WouldBlock:
            return received


async def settled(room: RoomConnection) -> list[ev.MessageReceived]:
    """The `messaging.send` events among `drain(room)`."""
    return [event for event in await drain(room) if isinstance(event, ev.MessageReceived)]


async def not_asked(room: RoomConnection) -> bool:
    """No call was routed to `room` (among the events not consumed yet)."""
    return not any(isinstance(event, ev.ToolCallReceived) for event in await drain(room))


async def message(room: RoomConnection, type: str) -> ev.MessageReceived:
    """The next `messaging.send` event of `type` (earlier ones of other types are skipped)."""
    with trio.fail_after(10):
        while True:
            event = await room.next_event(ev.MessageReceived)
            assert isinstance(event, ev.MessageReceived)
            if event.type == type:
                return event


async def enable(room: RoomConnection) -> list[dict[str, Any]]:
    """Enable messaging; the participant list of the `messaging.enabled` answer."""
    await room.invoke("messaging", "enable", {})
    enabled = await message(room, "messaging.enabled")
    assert enabled.from_participant_id == room.participant_id
    assert set(enabled.message) == {"participants"}
    return enabled.message["participants"]


def send_args(to: str, type: str = "greeting", message: Any = None, attachment: bytes | None = None) -> dict[str, Any]:
    return {
        "to_participant_id": to,
        "type": type,
        "message_json": json.dumps({"text": "hi"} if message is None else message),
        "attachment_base64": None if attachment is None else base64.b64encode(attachment).decode(),
    }


def presence(room: RoomConnection, name: str, **attributes: Any) -> dict[str, Any]:
    return {"id": room.participant_id, "role": "agent", "attributes": {"name": name, **attributes}}


# --- presence --------------------------------------------------------------------------------


async def test_enable_lists_the_other_enabled_participants(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob, join(
        server, credentials, "carol"
    ) as carol:
        assert await enable(alice) == []
        assert await settled(bob) == []  # not enabled: no presence events
        assert await enable(bob) == [presence(alice, "alice")]  # never itself, never carol

        joined = await message(alice, "participant.enabled")
        assert joined.from_participant_id == bob.participant_id
        assert joined.message == presence(bob, "bob")
        assert joined.attachment == b""
        assert await settled(carol) == []

        assert sorted(map(json.dumps, await enable(carol))) == sorted(
            map(json.dumps, [presence(alice, "alice"), presence(bob, "bob")])
        )
        assert (await message(alice, "participant.enabled")).message["id"] == carol.participant_id
        assert (await message(bob, "participant.enabled")).message["id"] == carol.participant_id


async def test_enabling_again_resends_the_list_without_a_second_announcement(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob:
        await enable(alice)
        await enable(bob)
        await message(alice, "participant.enabled")
        assert await enable(bob) == [presence(alice, "alice")]
        assert await settled(alice) == []


async def test_disable_and_disconnect_announce_participant_disabled(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob:
        async with join(server, credentials, "carol") as carol:
            for room in (alice, bob, carol):
                await enable(room)
            await settled(alice)
            await settled(bob)

            await bob.invoke("messaging", "disable", {})
            for room in (alice, carol):
                gone = await message(room, "participant.disabled")
                assert gone.from_participant_id == bob.participant_id
                assert gone.message == {"id": bob.participant_id}
            with pytest.raises(RoomException, match="the participant was not found") as info:
                await alice.invoke("messaging", "send", send_args(bob.participant_id))
            assert info.value.code == 1003
            carol_id = carol.participant_id
        # carol's connection ended while she was enabled
        gone = await message(alice, "participant.disabled")
        assert gone.message == {"id": carol_id}
        assert await settled(bob) == []  # bob is disabled: he hears nothing any more
        assert await enable(bob) == [presence(alice, "alice")]


async def test_attribute_changes_fan_out_to_enabled_participants(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob, join(
        server, credentials, "carol"
    ) as carol:
        await enable(alice)
        await enable(bob)
        alice.set_attributes({"mood": "happy", "status": {"busy": True}})
        changed = await message(bob, "participant.attributes")
        assert changed.from_participant_id == alice.participant_id
        assert changed.message == {"attributes": {"mood": "happy", "status": {"busy": True}}}
        assert await settled(carol) == []  # not enabled

        carol.set_attributes({"mood": "grumpy"})  # carol is not enabled: nobody is told
        await settled(carol)
        assert await settled(bob) == []

        # a later enabler sees the merged attributes in its list
        lists = await enable(carol)
        assert presence(alice, "alice", mood="happy", status={"busy": True}) in lists


# --- send and broadcast ----------------------------------------------------------------------


async def test_send_delivers_the_message_with_a_raw_attachment(server, credentials) -> None:
    attachment = bytes(range(256)) * 20  # spans several 1 KiB packets, not UTF-8
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob:
        await enable(bob)
        # the sender does not need to be enabled itself
        await alice.invoke("messaging", "send", send_args(bob.participant_id, message={"n": 1, "nested": [1, {"a": None}]}, attachment=attachment))
        got = await message(bob, "greeting")
        assert got.from_participant_id == alice.participant_id
        assert got.message == {"n": 1, "nested": [1, {"a": None}]}
        assert got.attachment == attachment

        await alice.invoke("messaging", "send", send_args(bob.participant_id, type="plain"))
        plain = await message(bob, "plain")
        assert plain.message == {"text": "hi"} and plain.attachment == b""
        assert await settled(alice) == []  # nothing echoed to the sender

        await bob.invoke("messaging", "send", send_args(bob.participant_id, type="note-to-self"))
        assert (await message(bob, "note-to-self")).from_participant_id == bob.participant_id


async def test_a_dismiss_reaches_a_participant_that_never_enabled_messaging(server, credentials) -> None:
    """A called agent is sent away with `dismiss` whether or not it enabled messaging (the
    official ServiceHost's agents do not); other types still need an enabled recipient."""
    async with join(server, credentials, "alice") as alice, join(server, credentials, "agent") as agent:
        with pytest.raises(RoomException) as info:
            await alice.invoke("messaging", "send", send_args(agent.participant_id, type="greeting"))
        assert info.value.code == 1003
        await alice.invoke("messaging", "send", send_args(agent.participant_id, type="dismiss", message={"why": "done"}))
        got = await message(agent, "dismiss")
        assert (got.from_participant_id, got.message) == (alice.participant_id, {"why": "done"})


async def test_send_to_an_absent_or_disabled_participant_is_not_found(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob:
        await enable(alice)
        for target in ("no-such-participant", bob.participant_id):  # bob never enabled messaging
            with pytest.raises(RoomException) as info:
                await alice.invoke("messaging", "send", send_args(target))
            assert info.value.code == 1003
            assert info.value.message == "the participant was not found"
        async with join(server, credentials, "carol") as carol:
            await enable(carol)
            carol_id = carol.participant_id
        with pytest.raises(RoomException) as info:
            await alice.invoke("messaging", "send", send_args(carol_id))
        assert info.value.code == 1003
        assert await settled(bob) == []


async def test_broadcast_reaches_every_other_enabled_participant(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob, join(
        server, credentials, "carol"
    ) as carol, join(server, credentials, "dave") as dave:
        for room in (alice, bob, carol):
            await enable(room)
        for room in (alice, bob, carol):
            await settled(room)
        await alice.invoke(
            "messaging",
            "broadcast",
            {"type": "news", "message_json": json.dumps({"headline": "hello"}), "attachment_base64": base64.b64encode(b"\x00att").decode()},
        )
        for room in (bob, carol):
            news = await message(room, "news")
            assert (news.from_participant_id, news.message, news.attachment) == (alice.participant_id, {"headline": "hello"}, b"\x00att")
        assert await settled(alice) == []  # the sender does not get its own broadcast
        assert await settled(dave) == []  # not enabled


BAD_MESSAGES = [
    pytest.param({"message_json": "not json"}, "message_json is not valid JSON", id="not-json"),
    pytest.param({"message_json": "[1, 2]"}, "must encode a JSON object", id="array"),
    pytest.param({"message_json": "3"}, "must encode a JSON object", id="number"),
    pytest.param({"attachment_base64": "%%%not base64"}, "attachment_base64 is not valid base64", id="bad-base64"),
    pytest.param({"type": "participant.enabled"}, "reserved for presence events", id="presence-type"),
    pytest.param({"type": "messaging.enabled"}, "reserved for presence events", id="enabled-type"),
    pytest.param({"message_json": {"text": "an object, not a string"}}, "invalid arguments", id="message-not-string"),
    pytest.param({"type": None}, "invalid arguments", id="type-null"),
]


@pytest.mark.parametrize("tool", ["send", "broadcast"])
@pytest.mark.parametrize(("change", "error"), BAD_MESSAGES)
async def test_malformed_messages_are_refused_and_nothing_is_delivered(server, credentials, tool, change, error) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob:
        await enable(alice)
        await enable(bob)
        await settled(bob)
        arguments = send_args(bob.participant_id) | change
        if tool == "broadcast":
            del arguments["to_participant_id"]
        with pytest.raises(RoomException, match=error) as info:
            await alice.invoke("messaging", tool, arguments)
        assert info.value.code == 1002
        assert await settled(bob) == []


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("send", {"type": "x", "message_json": "{}"}),  # no recipient
        ("send", TextContent(text="hello")),  # not json
        ("broadcast", {"message_json": "{}"}),  # no type
        ("broadcast", None),  # empty
    ],
)
async def test_arguments_that_do_not_fit_are_refused(server, credentials, tool, arguments) -> None:
    async with join(server, credentials, "alice") as alice:
        await enable(alice)
        with pytest.raises(RoomException) as info:
            await alice.invoke("messaging", tool, arguments)
        assert info.value.code == 1002


# --- grants ----------------------------------------------------------------------------------


async def test_without_the_messaging_grant_every_tool_is_denied(server, credentials) -> None:
    scope = ApiScope(storage=StorageGrant())
    async with join(server, credentials, "alice") as alice, join(server, credentials, "mallory", scope) as mallory:
        await enable(alice)
        for tool, arguments in [
            ("enable", {}),
            ("disable", {}),
            ("send", send_args(alice.participant_id)),
            ("broadcast", {"type": "x", "message_json": "{}", "attachment_base64": None}),
        ]:
            with pytest.raises(RoomException, match="does not grant the messaging API") as info:
                await mallory.invoke("messaging", tool, arguments)
            assert info.value.code == 1001
        assert await settled(alice) == []  # mallory was never announced, sent nothing
        with pytest.raises(RoomException) as info:
            await alice.invoke("messaging", "send", send_args(mallory.participant_id))
        assert info.value.code == 1003


async def test_send_and_broadcast_flags_are_enforced(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "mute", only(send=False)) as mute, join(
        server, credentials, "quiet", only(broadcast=False)
    ) as quiet:
        await enable(alice)
        for room in (mute, quiet):
            await enable(room)
        await settled(alice)
        with pytest.raises(RoomException, match="does not allow sending") as info:
            await mute.invoke("messaging", "send", send_args(alice.participant_id))
        assert info.value.code == 1001
        with pytest.raises(RoomException, match="does not allow broadcasting") as info:
            await quiet.invoke("messaging", "broadcast", {"type": "x", "message_json": "{}", "attachment_base64": None})
        assert info.value.code == 1001
        assert await settled(alice) == []
        # the other flag still works
        await mute.invoke("messaging", "broadcast", {"type": "from-mute", "message_json": "{}", "attachment_base64": None})
        await quiet.invoke("messaging", "send", send_args(alice.participant_id, type="from-quiet"))
        assert {m.type for m in await settled(alice)} == {"from-mute", "from-quiet"}


async def test_without_list_a_participant_sees_no_presence_but_is_seen(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "hermit", only(list=False)) as hermit:
        await enable(alice)
        assert await enable(hermit) == []  # alice is enabled, but hermit may not list
        announced = await message(alice, "participant.enabled")
        assert announced.message == presence(hermit, "hermit")
        async with join(server, credentials, "bob") as bob:
            await enable(bob)
            bob.set_attributes({"mood": "ok"})
            await message(alice, "participant.attributes")
        await message(alice, "participant.disabled")
        assert await settled(hermit) == []  # no enabled / attributes / disabled events
        await alice.invoke("messaging", "send", send_args(hermit.participant_id, type="still-reachable"))
        assert (await message(hermit, "still-reachable")).from_participant_id == alice.participant_id


# --- streams ---------------------------------------------------------------------------------


def stream_start(to: str, type: str = "call", message: Any = None, attachment: bytes | None = None) -> JsonContent:
    return JsonContent(json=send_args(to, type, {"hello": "there"} if message is None else message, attachment))


def stream_message(type: str, message: dict[str, Any], attachment: bytes | None = None) -> JsonContent:
    return JsonContent(
        json={"type": type, "message_json": json.dumps(message), "attachment_base64": None if attachment is None else base64.b64encode(attachment).decode()}
    )


async def incoming(bob: RoomConnection, alice: RoomConnection, call: ToolCallStream) -> ev.ToolCallReceived:
    """bob's side of a stream alice opened: the routed call and its first chunk."""
    with trio.fail_after(10):
        received = await bob.next_event(ev.ToolCallReceived)
    assert isinstance(received, ev.ToolCallReceived)
    assert (received.toolkit, received.name, received.caller_id) == ("messaging", "stream", alice.participant_id)
    assert received.tool_call_id == call.tool_call_id  # the stream id both ends use
    assert received.arguments == CONTROL_OPEN
    first = await input_event(bob)
    assert isinstance(first, ev.ToolCallInputChunk) and first.tool_call_id == call.tool_call_id
    assert first.chunk == JsonContent(
        json={
            "from_participant_id": alice.participant_id,
            "to_participant_id": bob.participant_id,
            "type": "call",
            "message_json": json.dumps({"hello": "there"}),
            "attachment_base64": base64.b64encode(b"ring").decode(),
        }
    )
    return received


async def input_event(bob: RoomConnection) -> ev.ToolCallInputChunk | ev.ToolCallInputClosed:
    with trio.fail_after(10):
        event = await bob.next_event(ev.ToolCallInputChunk, ev.ToolCallInputClosed)
    assert isinstance(event, (ev.ToolCallInputChunk, ev.ToolCallInputClosed))
    return event


async def next_chunk(call: ToolCallStream) -> Any:
    with trio.fail_after(10):
        return await call.next_chunk()


async def refusal(call: ToolCallStream) -> RoomException:
    """The error that answered the call."""
    with trio.fail_after(10), pytest.raises(RoomException) as info:
        await call.response()
    return info.value


async def accepted(call: ToolCallStream) -> None:
    with trio.fail_after(10):
        assert await call.response() == CONTROL_OPEN
    assert await next_chunk(call) == JsonContent(json={"kind": "accepted", "stream_id": call.tool_call_id})


async def test_stream_accepted_carries_messages_both_ways_until_the_recipient_closes(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob:
        await enable(bob)
        async with alice.stream_call("messaging", "stream") as call:
            call.send(stream_start(bob.participant_id, attachment=b"ring"))
            received = await incoming(bob, alice, call)
            bob.respond_to_tool_call(received.call_id, CONTROL_OPEN)
            await accepted(call)

            call.send(stream_message("chat", {"text": "from alice"}, b"\x00\xff"))
            forwarded = await input_event(bob)
            assert isinstance(forwarded, ev.ToolCallInputChunk)
            assert forwarded.chunk == stream_message("chat", {"text": "from alice"}, b"\x00\xff")

            reply = {"kind": "message", "type": "chat", "message": {"text": "from bob"}, "attachment_base64": base64.b64encode(b"\x01").decode()}
            bob.send_tool_call_chunk(received.call_id, JsonContent(json=reply))
            bob.send_tool_call_chunk(received.call_id, JsonContent(json=reply | {"message": {"text": "again"}}))
            assert await next_chunk(call) == JsonContent(json=reply)
            assert await next_chunk(call) == JsonContent(json=reply | {"message": {"text": "again"}})

            bob.send_tool_call_chunk(received.call_id, CONTROL_CLOSE)
            assert await next_chunk(call) is None  # closed normally


async def test_stream_closed_by_the_initiator(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob:
        await enable(bob)
        async with alice.stream_call("messaging", "stream") as call:
            call.send(stream_start(bob.participant_id, attachment=b"ring"))
            received = await incoming(bob, alice, call)
            bob.respond_to_tool_call(received.call_id, CONTROL_OPEN)
            await accepted(call)
            call.close_input()
            closed = await input_event(bob)
            assert isinstance(closed, ev.ToolCallInputClosed) and closed.status_code == 1000
            assert await next_chunk(call) is None  # the initiator's stream ends as well


async def test_stream_rejected_fails_the_call_with_the_recipients_error(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob:
        await enable(bob)
        for error in (ErrorContent(text="not now"), ErrorContent(text="busy", code=1006)):
            async with alice.stream_call("messaging", "stream") as call:
                call.send(stream_start(bob.participant_id, attachment=b"ring"))
                received = await incoming(bob, alice, call)
                bob.respond_to_tool_call(received.call_id, error)
                refused = await refusal(call)
                assert (refused.message, refused.code) == (error.text, error.code)


async def test_stream_initiator_closing_before_acceptance_is_forwarded(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob:
        await enable(bob)
        async with alice.stream_call("messaging", "stream") as call:
            call.send(stream_start(bob.participant_id, attachment=b"ring"))
            received = await incoming(bob, alice, call)
            call.close_input()
            assert isinstance(await input_event(bob), ev.ToolCallInputClosed)
            # the official recipient answers a close before acceptance with an error
            bob.respond_to_tool_call(received.call_id, ErrorContent(text="messaging stream closed before acceptance"))
            refused = await refusal(call)
            assert (refused.message, refused.code) == ("messaging stream closed before acceptance", None)


async def test_stream_recipient_leaving_mid_stream_ends_it_with_closed(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice:
        async with AsyncExitStack() as stack:
            bob = await stack.enter_async_context(join(server, credentials, "bob"))
            await enable(bob)
            bob_id = bob.participant_id
            async with alice.stream_call("messaging", "stream") as call:
                call.send(stream_start(bob_id, attachment=b"ring"))
                received = await incoming(bob, alice, call)
                bob.respond_to_tool_call(received.call_id, CONTROL_OPEN)
                await accepted(call)
                await stack.aclose()  # bob's connection ends
                assert await next_chunk(call) == JsonContent(
                    json={"kind": "closed", "reason": "client_disconnected", "message": f"participant {bob_id} left the room"}
                )
                assert await next_chunk(call) is None


async def test_stream_recipient_leaving_before_answering_is_not_found(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice:
        async with AsyncExitStack() as stack:
            bob = await stack.enter_async_context(join(server, credentials, "bob"))
            await enable(bob)
            async with alice.stream_call("messaging", "stream") as call:
                call.send(stream_start(bob.participant_id, attachment=b"ring"))
                await incoming(bob, alice, call)
                await stack.aclose()
                refused = await refusal(call)
                assert (refused.message, refused.code) == ("the participant was not found", 1003)


async def test_stream_initiator_leaving_closes_the_recipients_input(server, credentials) -> None:
    async with join(server, credentials, "bob") as bob:
        await enable(bob)
        async with join(server, credentials, "alice") as alice:
            call_cm = alice.stream_call("messaging", "stream")
            call = await call_cm.__aenter__()  # left open on purpose: alice vanishes with it
            call.send(stream_start(bob.participant_id, attachment=b"ring"))
            received = await incoming(bob, alice, call)
            bob.respond_to_tool_call(received.call_id, CONTROL_OPEN)
            await accepted(call)
        closed = await input_event(bob)
        assert isinstance(closed, ev.ToolCallInputClosed) and closed.tool_call_id == received.tool_call_id


async def test_stream_recipient_error_chunk_ends_it_with_closed_error(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob:
        await enable(bob)
        async with alice.stream_call("messaging", "stream") as call:
            call.send(stream_start(bob.participant_id, attachment=b"ring"))
            received = await incoming(bob, alice, call)
            bob.respond_to_tool_call(received.call_id, CONTROL_OPEN)
            await accepted(call)
            # what the official recipient sends on a protocol error after acceptance
            bob.send_tool_call_chunk(received.call_id, ErrorContent(text="invalid messaging stream chunk"))
            bob.send_tool_call_chunk(received.call_id, ControlContent(method="close", status_code=1007, message="invalid messaging stream chunk"))
            assert await next_chunk(call) == JsonContent(json={"kind": "closed", "reason": "error", "message": "invalid messaging stream chunk"})
            assert await next_chunk(call) is None


BAD_STARTS = [  # each makes the first chunk from {"alice": id, "bob": id, "carol": id}
    pytest.param(lambda ids: TextContent(text="hi"), 1002, "must be json", id="text"),
    pytest.param(lambda ids: JsonContent(json={"type": "x", "message_json": "{}"}), 1002, "invalid first messaging.stream chunk", id="no-recipient"),
    pytest.param(lambda ids: JsonContent(json=send_args(ids["bob"]) | {"message_json": "nope"}), 1002, "not valid JSON", id="bad-json"),
    pytest.param(lambda ids: JsonContent(json=send_args(ids["bob"]) | {"attachment_base64": "***"}), 1002, "not valid base64", id="bad-base64"),
    pytest.param(lambda ids: JsonContent(json=send_args("nobody")), 1003, "the participant was not found", id="nobody"),
    pytest.param(lambda ids: JsonContent(json=send_args(ids["carol"])), 1003, "the participant was not found", id="not-enabled"),
    pytest.param(lambda ids: JsonContent(json=send_args(ids["alice"])), 1002, "to itself", id="self"),
    pytest.param(None, 1002, "needs a first chunk", id="closed-at-once"),
]


@pytest.mark.parametrize(("start", "code", "error"), BAD_STARTS)
async def test_stream_with_a_bad_start_is_refused(server, credentials, start, code, error) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "bob") as bob, join(
        server, credentials, "carol"
    ) as carol:
        await enable(alice)
        await enable(bob)
        ids = {"alice": alice.participant_id, "bob": bob.participant_id, "carol": carol.participant_id}
        async with alice.stream_call("messaging", "stream") as call:
            if start is None:
                call.close_input()
            else:
                call.send(start(ids))
            refused = await refusal(call)
        assert refused.code == code and error in refused.message
        assert await not_asked(bob)


async def test_stream_needs_a_streamed_input_and_the_send_flag(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice, join(server, credentials, "mute", only(send=False)) as mute:
        await enable(alice)
        with pytest.raises(RoomException, match="expects a streamed input") as info:
            await alice.invoke("messaging", "stream", send_args(alice.participant_id))
        assert info.value.code == 1002
        async with mute.stream_call("messaging", "stream") as call:
            call.send(stream_start(alice.participant_id))
            refused = await refusal(call)
        assert refused.code == 1001 and "does not allow sending" in refused.message
        assert await not_asked(alice)


async def test_unknown_messaging_tool_is_not_found(server, credentials) -> None:
    async with join(server, credentials, "alice") as alice:
        with pytest.raises(RoomException, match="has no tool named 'nope'") as info:
            await alice.invoke("messaging", "nope", {})
        assert info.value.code == 1003



# --- the payload codec shared by client and server --------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.one_of(st.none(), st.binary(max_size=300)))
def test_message_and_attachment_codecs_round_trip(message: dict[str, Any], attachment: bytes | None) -> None:
    assert contract.decode_message(contract.encode_message(message)) == message
    assert contract.decode_attachment(contract.encode_attachment(attachment)) == (attachment or b"")


@given(json_values.filter(lambda value: not isinstance(value, dict)))
def test_message_json_must_be_an_object(value: Any) -> None:
    with pytest.raises(contract.MessagingFormatError, match="must encode a JSON object"):
        contract.decode_message(json.dumps(value))
