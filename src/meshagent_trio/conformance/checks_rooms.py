"""Checks with several participants in one room (protocol/room-apis.md §3, §6, §7), through the project's
public client: messages to one participant and to all, presence as participants come, change
their attributes and go, a toolkit one participant hosts and another lists and calls, and a
collaborative document edited at both ends."""

from __future__ import annotations

import uuid
from typing import Any, Callable

from meshagent_core import ErrorCode, JsonContent, TextContent
from meshagent_trio import ChildProperty, ElementType, MeshSchema, ToolContext, Toolkit, ValueProperty, tool

from .checks_content import ALL_BYTES, expect_error
from .runner import CheckFailed, Context, check, expect

MESSAGE = {"text": "héllo 😀", "n": 1, "nested": {"list": [1, None, True]}}


async def _next_message(feed: Any) -> Any:
    async for message in feed:
        return message
    raise CheckFailed("the message feed ended before a message came")


@check("messaging.direct", "a message with an attachment reaches the one participant it is sent to")
async def direct(ctx: Context) -> str:
    room = ctx.new_room()
    async with ctx.connect(room, "sender") as sender, ctx.connect(room, "recipient") as recipient:
        ctx.step = "enabling messaging"
        await recipient.messaging.enable()
        await sender.messaging.enable()
        async with recipient.messaging.messages() as feed:
            ctx.step = "sending a message to the recipient"
            await sender.messaging.send_message(
                to=recipient.local_participant.id, type="conformance.direct", message=MESSAGE, attachment=ALL_BYTES
            )
            ctx.step = "waiting for the recipient to receive it"
            message = await _next_message(feed)
        expect(message.from_participant_id == sender.local_participant.id, f"the message is from {message.from_participant_id!r}, not the sender")
        expect(message.type == "conformance.direct", f"the message type arrived as {message.type!r}")
        expect(message.message == MESSAGE, f"the message arrived as {message.message!r:.160}")
        expect(message.attachment == ALL_BYTES, f"the {len(ALL_BYTES)}-byte attachment arrived as {len(message.attachment or b'')} bytes")
        ctx.step = "sending to a participant that is not in the room"
        code = await expect_error(
            sender.messaging.send_message(to=f"conformance-nobody-{uuid.uuid4().hex}", type="x", message={}),
            "sending to a participant that is not here",
            {ErrorCode.NOT_FOUND},
        )
    return f"delivered with its attachment; an absent recipient gives {code}"


@check("messaging.broadcast", "a broadcast reaches every other participant with messaging enabled")
async def broadcast(ctx: Context) -> str:
    room = ctx.new_room()
    async with ctx.connect(room, "broadcaster") as sender, ctx.connect(room, "first") as first, ctx.connect(room, "second") as second:
        ctx.step = "enabling messaging"
        for client in (first, second, sender):
            await client.messaging.enable()
        async with first.messaging.messages() as first_feed, second.messaging.messages() as second_feed:
            ctx.step = "broadcasting"
            await sender.messaging.broadcast_message(type="conformance.broadcast", message=MESSAGE, attachment=b"attached")
            for name, feed in (("first", first_feed), ("second", second_feed)):
                ctx.step = f"waiting for the {name} participant to receive the broadcast"
                message = await _next_message(feed)
                expect(
                    (message.from_participant_id, message.type, message.message, message.attachment)
                    == (sender.local_participant.id, "conformance.broadcast", MESSAGE, b"attached"),
                    f"the {name} participant received {message!r:.200}",
                )
    return "received by both other participants"


async def _presence(feed: Any, type: str, participant_id: str) -> Any:
    async for event in feed:
        if event.type == type and event.participant is not None and event.participant.id == participant_id:
            return event.participant
    raise CheckFailed(f"the presence feed ended before {type} of {participant_id}")


@check("messaging.presence", "participants are seen arriving, changing attributes, disabling and leaving")
async def presence(ctx: Context) -> str:
    room = ctx.new_room()
    async with ctx.connect(room, "watcher") as watcher:
        ctx.step = "enabling the watcher's messaging"
        await watcher.messaging.enable()
        async with watcher.messaging.presence_events() as feed:
            async with ctx.connect(room, "visitor") as visitor:
                visitor_id = visitor.local_participant.id
                ctx.step = "waiting for the visitor to be added"
                await visitor.messaging.enable()
                await _presence(feed, "participant_added", visitor_id)
                others = {p.id for p in visitor.messaging.remote_participants}
                expect(watcher.local_participant.id in others, f"the visitor's participant list {sorted(others)} lacks the watcher")
                expect(visitor_id not in others, "the visitor's participant list includes the visitor itself")
                ctx.step = "waiting for the visitor's attribute change"
                visitor.local_participant.set_attribute("conformance", "busy")
                seen = await _presence(feed, "participant_attributes_updated", visitor_id)
                expect(seen.get_attribute("conformance") == "busy", f"the watcher sees the attribute as {seen.get_attribute('conformance')!r}")
                ctx.step = "waiting for the visitor's disable"
                await visitor.messaging.disable()
                await _presence(feed, "participant_removed", visitor_id)
            async with ctx.connect(room, "leaver") as leaver:
                leaver_id = leaver.local_participant.id
                ctx.step = "waiting for the leaver to be added"
                await leaver.messaging.enable()
                await _presence(feed, "participant_added", leaver_id)
            ctx.step = "waiting for the leaver, who closed its connection, to be removed"
            await _presence(feed, "participant_removed", leaver_id)
    return "added, attributes, removed on disable and on leaving"


@check("agents.hosted-toolkit", "a toolkit one participant hosts is listed and called by another, then goes away")
async def hosted_toolkit(ctx: Context) -> str:
    @tool
    async def echo(text: str) -> str:
        """Upper-cases text."""
        return text.upper()

    @tool
    async def add(a: int, b: int) -> int:
        """Adds two integers."""
        return a + b

    @tool
    async def whoami(context: ToolContext) -> dict:
        """Who called."""
        return {"caller": context.caller.id}

    room = ctx.new_room()
    name = f"conformance-echo-{uuid.uuid4().hex[:8]}"
    async with ctx.connect(room, "host") as host, ctx.connect(room, "caller") as caller:
        ctx.step = "hosting the toolkit"
        async with host.agents.host(Toolkit(name=name, tools=[echo, add, whoami], description="conformance")):
            ctx.step = "listing toolkits"
            listed = {toolkit.name: toolkit for toolkit in await caller.agents.list_toolkits()}
            expect(name in listed, f"list_toolkits does not show {name!r} (it shows {sorted(listed)})")
            toolkit = listed[name]
            expect({"echo", "add", "whoami"} <= {t.name for t in toolkit.tools}, f"the listing has tools {[t.name for t in toolkit.tools]}")
            expect(
                toolkit.participant_id in (None, host.local_participant.id),
                f"the toolkit is listed as hosted by {toolkit.participant_id!r}, not the host",
            )
            ctx.step = "calling the hosted tools"
            answer = await caller.agents.invoke_tool(toolkit=name, tool="echo", input={"text": "hi there"})
            expect(isinstance(answer, TextContent) and answer.text == "HI THERE", f"echo answered {answer!r:.120}")
            answer = await caller.agents.invoke_tool(toolkit=name, tool="add", input={"a": 2, "b": 40})
            expect(isinstance(answer, JsonContent) and answer.json == 42, f"add answered {answer!r:.120}")
            answer = await caller.agents.invoke_tool(toolkit=name, tool="whoami", input={})
            expect(
                isinstance(answer, JsonContent) and answer.json == {"caller": caller.local_participant.id},
                f"the host saw the caller as {answer!r:.120}, not {caller.local_participant.id!r}",
            )
            await expect_error(
                caller.agents.invoke_tool(toolkit=name, tool="add", input={"a": "two", "b": 1}),
                "calling add with a string",
                {ErrorCode.INVALID_REQUEST},
            )
        ctx.step = "checking the toolkit is gone once its host stopped hosting it"
        expect(name not in {t.name for t in await caller.agents.list_toolkits()}, "the toolkit is still listed after its host stopped")
        await expect_error(
            caller.agents.invoke_tool(toolkit=name, tool="echo", input={"text": "x"}),
            "calling the toolkit after its host stopped",
            {ErrorCode.NOT_FOUND},
        )
    return "listed, called (text, json, caller id, invalid input 1002), unregistered"


async def _until(client: Any, path: str, document: Any, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Wait until `ready(document.to_json())` holds (checked at each change of the document)."""
    async with client.sync.changes(path=path) as changes:
        if ready(document.to_json()):
            return document.to_json()
        async for _ in changes:
            if ready(document.to_json()):
                return document.to_json()
    raise CheckFailed("the document's changes ended")


def _items(json: dict[str, Any]) -> list[dict[str, Any]]:
    return [child["item"] for child in json.get("todo", {}).get("items", []) if "item" in child]


@check("sync.two-participants", "a document opened with a schema is edited at both ends and converges")
async def two_participants(ctx: Context) -> str:
    schema = MeshSchema(
        root_tag_name="todo",
        elements=[
            ElementType(tag_name="todo", properties=[ChildProperty(name="items", child_tag_names=["item"])]),
            ElementType(tag_name="item", properties=[ValueProperty(name="title", type="string"), ValueProperty(name="done", type="boolean")]),
        ],
    )
    path = f"conformance/{uuid.uuid4().hex[:8]}.todo"
    initial = {"todo": {"items": [{"item": {"title": "first é", "done": False}}]}}
    room = ctx.new_room()
    async with ctx.connect(room, "alice") as alice, ctx.connect(room, "bob") as bob:
        ctx.step = "alice opens (creates) the document"
        mine = await alice.sync.open(path=path, schema=schema, initial_json=initial)
        ctx.step = "bob opens it"
        theirs = await bob.sync.open(path=path, create=False)
        expect(theirs.to_json() == mine.to_json(), f"bob opened {theirs.to_json()!r:.160}, alice has {mine.to_json()!r:.160}")
        expect(_items(theirs.to_json()) == [{"title": "first é", "done": False}], f"the initial JSON opened as {theirs.to_json()!r:.160}")
        ctx.step = "waiting for bob to see alice's new item"
        mine.root.append_child("item", {"title": "from alice", "done": False})
        await _until(bob, path, theirs, lambda json: len(_items(json)) == 2)
        ctx.step = "waiting for alice to see bob's edit"
        theirs.root.get_children()[0]["done"] = True
        final = await _until(alice, path, mine, lambda json: _items(json)[0]["done"] is True)
        expect(_items(final) == [{"title": "first é", "done": True}, {"title": "from alice", "done": False}], f"alice ends with {final!r:.200}")
        ctx.step = "closing the document at both ends"
        await bob.sync.close(path=path)
        await alice.sync.close(path=path)
    async with ctx.connect(room, "carol") as carol:
        ctx.step = "describing the document after both closed"
        described = await carol.sync.describe(path=path)
    expect(described == final, f"the room's copy is {described!r:.200}, not {final!r:.200}")
    return "both edits seen at the other end; the room's copy matches"
