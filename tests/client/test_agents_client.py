"""`room.agents` (protocol/room-apis.md §6.1, §6.2, §6.3): invoke_tool (unary, streamed input, errors),
list_toolkits, room.call — against the real local server, on Trio and on AnyIO (asyncio and
Trio). Hosting itself is pinned in test_hosting_client.py."""

from __future__ import annotations

import json
from typing import Any, AsyncIterable, AsyncIterator

import anyio
import pytest

from meshagent_core import RoomException
from meshagent_core.client.agents import (
    ToolContentSpec,
    ToolDescription,
    ToolkitDescription,
    parse_toolkit_descriptions,
)
from meshagent_core.client.tool_values import ToolContext
from meshagent_core.client.tools import Toolkit, tool
from meshagent_core.content import EmptyContent, JsonContent, TextContent
from meshagent_core.tokens import ApiScope
from roomtest import mint
from webhook_receiver import webhook_receiver

pytestmark = pytest.mark.anyio


@tool
async def first_of(items: AsyncIterable[str]) -> str:
    async for item in items:
        return item  # stops reading: the caller's (endless) input must be stopped
    return ""


@tool
async def lengths(items: AsyncIterable[str]) -> AsyncIterator[int]:
    async for item in items:
        yield len(item)


@tool
async def who(context: ToolContext) -> dict:
    return {"caller": context.caller.id, "on_behalf_of": None if context.on_behalf_of is None else context.on_behalf_of.id}


@tool
async def echo(value: str) -> str:
    return value


def room_of(request: pytest.FixtureRequest, client_variant) -> str:
    return f"agents-{request.node.originalname}-{'-'.join(client_variant)}"


async def test_invoke_tool_of_a_missing_toolkit_is_1003(client_module, client_variant, local_server, request) -> None:
    name = room_of(request, client_variant)
    async with client_module.connect(local_server.room_url(name), mint(local_server.credentials, name)) as room:
        with pytest.raises(RoomException) as info:
            await room.agents.invoke_tool(toolkit="nowhere", tool="x", input={"a": 1})
        assert info.value.code == 1003 and "nowhere" in info.value.message

        async def chunks() -> AsyncIterator[TextContent]:
            yield TextContent(text="a")

        with pytest.raises(RoomException) as info:
            await room.agents.invoke_tool(toolkit="nowhere", tool="x", input=chunks())
        assert info.value.code == 1003
        # The room is still usable after the failures.
        assert await room.agents.invoke_tool(toolkit="queues", tool="list", input={}) == JsonContent(json={"queues": []})


async def test_invoke_tool_of_built_in_toolkits(client_module, client_variant, local_server, request) -> None:
    name = room_of(request, client_variant)
    async with client_module.connect(local_server.room_url(name), mint(local_server.credentials, name)) as room:
        invoke = room.agents.invoke_tool
        assert await invoke(toolkit="queues", tool="send", input={"name": "q", "message": {"n": 1}}) == EmptyContent()
        assert await invoke(toolkit="queues", tool="list", input={}) == JsonContent(json={"queues": [{"name": "q", "size": 1}]})
        with pytest.raises(RoomException) as info:
            await invoke(toolkit="queues", tool="nope")
        assert info.value.code == 1003


async def test_invoke_tool_checks_its_arguments(client_module, client_variant, local_server, request) -> None:
    name = room_of(request, client_variant)
    async with client_module.connect(local_server.room_url(name), mint(local_server.credentials, name)) as room:
        with pytest.raises(RoomException, match="invoke_tool input must be"):
            await room.agents.invoke_tool(toolkit="queues", tool="list", input=42)
        with pytest.raises(TypeError, match="stream"):
            await room.agents.invoke_tool(toolkit="queues", tool="list", stream=True)


async def test_streamed_input_is_stopped_when_the_tool_answers_first(client_module, client_variant, local_server, request) -> None:
    name = room_of(request, client_variant)
    url = local_server.room_url(name)
    produced = 0
    closed = anyio.Event()

    async def endless() -> AsyncIterator[TextContent]:
        nonlocal produced
        try:
            while True:
                produced += 1
                yield TextContent(text=f"item {produced}")
                await anyio.sleep(0)
        finally:
            closed.set()

    async def three() -> AsyncIterator[TextContent]:
        for text in ["a", "bb", "ccc"]:
            yield TextContent(text=text)

    async with client_module.connect(url, mint(local_server.credentials, name, name="host")) as host:
        async with client_module.connect(url, mint(local_server.credentials, name, name="caller")) as caller:
            async with host.agents.host(Toolkit(name="text", tools=[first_of, lengths])):
                with anyio.fail_after(20):
                    assert await caller.agents.invoke_tool(toolkit="text", tool="first_of", input=endless()) == TextContent(text="item 1")
                    await closed.wait()  # the caller's input iterator was closed
                    stream = await caller.agents.invoke_tool(toolkit="text", tool="lengths", input=three())
                    assert [item async for item in stream] == [JsonContent(json=1), JsonContent(json=2), JsonContent(json=3)]


async def test_on_behalf_of_id_reaches_the_host(client_module, client_variant, local_server, request) -> None:
    name = room_of(request, client_variant)
    url = local_server.room_url(name)
    async with client_module.connect(url, mint(local_server.credentials, name, name="host")) as host:
        async with client_module.connect(url, mint(local_server.credentials, name, name="caller")) as caller:
            async with host.agents.host(Toolkit(name="ids", tools=[who])):
                answer = await caller.agents.invoke_tool(toolkit="ids", tool="who", on_behalf_of_id=host.local_participant.id)
                assert answer == JsonContent(
                    json={"caller": caller.local_participant.id, "on_behalf_of": host.local_participant.id}
                )


async def test_participant_id_selects_the_host(client_module, client_variant, local_server, request) -> None:
    name = room_of(request, client_variant)
    url = local_server.room_url(name)
    async with client_module.connect(url, mint(local_server.credentials, name, name="host")) as host:
        async with client_module.connect(url, mint(local_server.credentials, name, name="caller")) as caller:
            async with host.agents.host(Toolkit(name="ids", tools=[echo])):
                answer = await caller.agents.invoke_tool(
                    toolkit="ids", tool="echo", input={"value": "v"}, participant_id=host.local_participant.id
                )
                assert answer == TextContent(text="v")
                with pytest.raises(RoomException) as info:
                    await caller.agents.invoke_tool(
                        toolkit="ids", tool="echo", input={"value": "v"}, participant_id=caller.local_participant.id
                    )
                assert info.value.code == 1003


async def test_list_toolkits_of_an_empty_room(client_module, client_variant, local_server, request) -> None:
    name = room_of(request, client_variant)
    async with client_module.connect(local_server.room_url(name), mint(local_server.credentials, name)) as room:
        assert await room.agents.list_toolkits() == []
        assert await room.agents.list_toolkits(participant_id="nobody") == []


async def test_make_call_and_call_reach_the_receiver(client_module, client_variant, local_server, request) -> None:
    """`room.agents.make_call` and its official alias `call`: the server's signed webhook
    reaches the receiver before the call returns; a receiver's refusal is raised."""
    name = room_of(request, client_variant)
    with webhook_receiver() as receiver:
        async with client_module.connect(local_server.room_url(name), mint(local_server.credentials, name)) as room:
            await room.agents.make_call(name="agent", url=receiver.url + "/one", arguments={"x": 1}, api=ApiScope.agent_default())
            await room.agents.call(name="other", url=receiver.url + "/two", arguments={})
            assert [(r.path, json.loads(r.body)["data"]["arguments"]) for r in receiver.taken()] == [("/one", {"x": 1}), ("/two", {})]
            receiver.status = 404
            with pytest.raises(RoomException) as info:
                await room.agents.call(name="agent", url=receiver.url, arguments={})
            assert info.value.code == 1008 and "http status code: 404" in info.value.message


def test_list_toolkits_answer_parsing() -> None:
    """The official client's reading of a `room.list_toolkits` answer, including the legacy
    `input_schema` / `output_schema` keys and dropped non-string annotations."""
    parsed = parse_toolkit_descriptions(
        {
            "tk": {
                "title": "TK",
                "participant_id": "p1",
                "annotations": {"a": "b", "n": 1},
                "tools": {
                    "legacy": {"title": "L", "input_schema": {"type": "object"}, "output_schema": {"type": "string"}},
                    "folded": {"input_spec": {"types": ["json", "text"], "stream": True}, "input_schema": {"type": "object"}},
                    "bare": {"strict": "yes", "defs": {"X": {}}},
                },
            }
        }
    )
    assert parsed == [
        ToolkitDescription(
            name="tk",
            title="TK",
            description="",
            participant_id="p1",
            annotations={"a": "b"},
            tools=[
                ToolDescription(
                    name="legacy",
                    title="L",
                    description="",
                    input_spec=ToolContentSpec(types=["json"], schema={"type": "object"}),
                    output_spec=ToolContentSpec(types=["json"], schema={"type": "string"}),
                ),
                ToolDescription(
                    name="folded",
                    title="",
                    description="",
                    input_spec=ToolContentSpec(types=["json", "text"], stream=True, schema={"type": "object"}),
                ),
                ToolDescription(name="bare", title="", description="", defs={"X": {}}, strict=None),
            ],
        )
    ]
    assert parsed[0].get_tool("legacy").input_schema == {"type": "object"}
    assert parsed[0].get_tool("missing") is None
    assert parsed[0].to_json()["tools"][0]["input_spec"] == {"types": ["json"], "stream": False, "schema": {"type": "object"}}
    with pytest.raises(ValueError, match="unsupported tool content type"):
        parse_toolkit_descriptions({"tk": {"tools": {"t": {"input_spec": {"types": ["video"]}}}}})
    with pytest.raises(TypeError):
        parse_toolkit_descriptions({"tk": {"tools": {"t": {"input_spec": {"types": "json"}}}}})
    with pytest.raises(ValueError):
        ToolContentSpec(types=[])


def test_tool_declarations() -> None:
    """Declaration errors surface when the tool is defined, not when it is called."""
    with pytest.raises(TypeError, match="only input parameter"):

        @tool
        async def mixed(items: AsyncIterable[str], extra: int) -> None: ...

    with pytest.raises(TypeError, match="keyword parameter"):

        @tool
        async def star(*args: Any) -> None: ...

    with pytest.raises(ValueError, match="duplicate tool name"):
        Toolkit(name="dup", tools=[echo, echo])
