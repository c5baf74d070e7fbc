"""Toolkits hosted by participants: registration, listing and calls routed through the server."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import trio

from meshagent_core import CONTROL_CLOSE, CONTROL_OPEN, ControlContent, ErrorContent, JsonContent, RoomException, TextContent
from meshagent_core.session import events as ev
from meshagent_core.tokens import AgentsGrant, ApiScope
from meshagent_trio.connection import RoomConnection
from roomtest import mint, room_url

TOOLS = {"echo": {"title": "Echo", "description": "echo", "input_spec": None, "output_spec": None}}


async def register(room: RoomConnection, name: str = "tk", public: bool = True) -> str:
    answer = await room.request(
        "room.register_toolkit",
        {"name": name, "title": "T", "description": "d", "tools": TOOLS, "public": public, "annotations": {"a": "b"}},
    )
    return answer.json["id"]


@asynccontextmanager
async def pair(server, credentials, **scopes):
    async with RoomConnection.open(room_url(server), mint(credentials, name="host")) as host:
        async with RoomConnection.open(room_url(server), mint(credentials, name="caller", **scopes)) as caller:
            yield host, caller


async def test_register_list_and_unregister(server, credentials) -> None:
    async with pair(server, credentials) as (host, caller):
        registration = await register(host)
        listed = (await caller.request("room.list_toolkits", {})).json["tools"]
        assert listed["tk"]["participant_id"] == host.participant_id
        assert listed["tk"]["tools"] == TOOLS and listed["tk"]["annotations"] == {"a": "b"}
        assert (await caller.request("room.list_toolkits", {"participant_id": caller.participant_id})).json == {"tools": {}}
        await host.request("room.unregister_toolkit", {"id": registration})
        assert (await caller.request("room.list_toolkits", {})).json == {"tools": {}}
        with pytest.raises(RoomException) as info:
            await host.request("room.unregister_toolkit", {"id": registration})
        assert info.value.code == 1003


async def test_private_toolkits_are_listed_to_their_host_only(server, credentials) -> None:
    async with pair(server, credentials) as (host, caller):
        await register(host, "secret", public=False)
        assert "secret" in (await host.request("room.list_toolkits", {})).json["tools"]
        assert (await caller.request("room.list_toolkits", {})).json["tools"] == {}


async def test_list_waits_for_a_named_participant_up_to_timeout(server, credentials) -> None:
    async with pair(server, credentials) as (host, caller):
        async with trio.open_nursery() as nursery:
            result = {}

            async def list_waiting() -> None:
                result.update((await caller.request("room.list_toolkits", {"participant_name": "host", "timeout": 10})).json)

            nursery.start_soon(list_waiting)
            await trio.sleep(0.05)
            await register(host)
        assert "tk" in result["tools"]


async def test_unary_call_is_routed_with_the_callers_ids(server, credentials) -> None:
    async with pair(server, credentials) as (host, caller):
        await register(host)
        async with trio.open_nursery() as nursery:
            answer = {}

            async def call() -> None:
                answer["content"] = await caller.invoke("tk", "echo", {"x": 1})

            nursery.start_soon(call)
            received = await host.next_event(ev.ToolCallReceived)
            assert (received.toolkit, received.name, received.caller_id) == ("tk", "echo", caller.participant_id)
            assert received.arguments == JsonContent(json={"x": 1})
            host.respond_to_tool_call(received.call_id, JsonContent(json={"y": 2}))
        assert answer["content"] == JsonContent(json={"y": 2})


async def test_streams_both_ways(server, credentials) -> None:
    async with pair(server, credentials) as (host, caller):
        await register(host)
        async with caller.stream_call("tk", "echo") as call:
            call.send(TextContent(text="in-1"))
            received = await host.next_event(ev.ToolCallReceived)
            assert received.arguments == CONTROL_OPEN and received.tool_call_id == call.tool_call_id
            chunk = await host.next_event(ev.ToolCallInputChunk)
            assert chunk.chunk == TextContent(text="in-1")
            host.respond_to_tool_call(received.call_id, CONTROL_OPEN)
            host.send_tool_call_chunk(received.call_id, {"type": "progress", "step": 1})
            host.send_tool_call_chunk(received.call_id, TextContent(text="out-1"))
            call.close_input()
            closed = await host.next_event(ev.ToolCallInputClosed)
            assert closed.status_code == 1000
            host.send_tool_call_chunk(received.call_id, CONTROL_CLOSE)
            assert await call.response() == CONTROL_OPEN
            assert [c async for c in call.chunks()] == [{"type": "progress", "step": 1}, TextContent(text="out-1")]


async def test_host_error_reaches_the_caller(server, credentials) -> None:
    async with pair(server, credentials) as (host, caller):
        await register(host)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _answer_next(host, ErrorContent(text="tool exploded", code=1008)))
            with pytest.raises(RoomException, match="tool exploded") as info:
                await caller.invoke("tk", "echo", {})
            assert info.value.code == 1008
        # the room is fine afterwards
        assert "tk" in (await caller.request("room.list_toolkits", {})).json["tools"]


async def _answer_next(host: RoomConnection, content) -> None:
    received = await host.next_event(ev.ToolCallReceived)
    host.respond_to_tool_call(received.call_id, content)


async def test_host_leaving_mid_call_fails_the_call(server, credentials) -> None:
    async with RoomConnection.open(room_url(server), mint(credentials, name="caller")) as caller:
        outcome: dict[str, BaseException] = {}

        async def call() -> None:
            try:
                await caller.invoke("tk", "echo", {})
            except RoomException as error:
                outcome["error"] = error

        async with trio.open_nursery() as nursery:
            async with RoomConnection.open(room_url(server), mint(credentials, name="host")) as host:
                await register(host)
                nursery.start_soon(call)
                await host.next_event(ev.ToolCallReceived)
            # the host has left without answering
        assert "left before the call completed" in str(outcome["error"])
        assert (await caller.request("room.list_toolkits", {})).json == {"tools": {}}


async def test_caller_leaving_forgets_the_routed_call(server, credentials) -> None:
    async with RoomConnection.open(room_url(server), mint(credentials, name="host")) as host:
        await register(host)
        async with RoomConnection.open(room_url(server), mint(credentials, name="caller")) as caller:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: caller.invoke("tk", "echo", {}))
                received = await host.next_event(ev.ToolCallReceived)
                nursery.cancel_scope.cancel()
        await trio.sleep(0.05)
        participant = server.rooms["test-room"].participants[host.participant_id]
        assert participant.hosted_calls == {}
        host.respond_to_tool_call(received.call_id, JsonContent(json={}))  # late answer: dropped, no crash
        assert (await host.request("room.list_toolkits", {})).json["tools"]["tk"]


async def test_caller_leaving_closes_the_input_it_was_streaming(server, credentials) -> None:
    """A hosted tool reading a caller's input stream is not left waiting for input that
    cannot come: the caller's departure closes the stream for the host, with 1001."""
    async with RoomConnection.open(room_url(server), mint(credentials, name="host")) as host:
        await register(host)
        with trio.fail_after(10):
            async with RoomConnection.open(room_url(server), mint(credentials, name="caller")) as caller:
                async with caller.stream_call("tk", "echo") as call:
                    call.send(TextContent(text="part 1"))
                    received = await host.next_event(ev.ToolCallReceived)
                    assert (await host.next_event(ev.ToolCallInputChunk)).chunk == TextContent(text="part 1")
                    host.respond_to_tool_call(received.call_id, CONTROL_OPEN)
                    assert await call.response() == CONTROL_OPEN
                    await caller.websocket.abort()  # the caller's connection drops, its input still open
                    closed = await host.next_event(ev.ToolCallInputClosed)
        assert closed.tool_call_id == received.tool_call_id
        assert closed.status_code == 1001 and closed.message == "the caller left"
        participant = server.rooms["test-room"].participants[host.participant_id]
        assert participant.hosted_calls == {}


async def test_allowed_toolkits_restricts_calls(server, credentials) -> None:
    scope = ApiScope.agent_default()
    scope.agents = AgentsGrant(allowed_toolkits=["other*"])
    async with pair(server, credentials, scope=scope) as (host, caller):
        await register(host)
        with pytest.raises(RoomException) as info:
            await caller.invoke("tk", "echo", {})
        assert info.value.code == 1001


async def test_registering_needs_the_grant(server, credentials) -> None:
    scope = ApiScope.agent_default()
    scope.agents = AgentsGrant(register_public_toolkit=False)
    async with RoomConnection.open(room_url(server), mint(credentials, scope=scope)) as room:
        with pytest.raises(RoomException) as info:
            await register(room)
        assert info.value.code == 1001
        assert (await room.request("room.register_toolkit", {"name": "p", "tools": {}, "public": False})).json["id"]


async def test_malformed_registration(server, credentials) -> None:
    async with RoomConnection.open(room_url(server), mint(credentials)) as room:
        with pytest.raises(RoomException, match="invalid room.register_toolkit request") as info:
            await room.request("room.register_toolkit", {"title": "no name"})
        assert info.value.code == 1002


async def test_abnormal_close_from_host_reaches_the_caller(server, credentials) -> None:
    async with pair(server, credentials) as (host, caller):
        await register(host)
        async with caller.stream_call("tk", "echo", {}, input_stream=False) as call:
            received = await host.next_event(ev.ToolCallReceived)
            host.respond_to_tool_call(received.call_id, CONTROL_OPEN)
            host.send_tool_call_chunk(received.call_id, ControlContent(method="close", status_code=1007, message="bad schema"))
            assert await call.response() == CONTROL_OPEN
            with pytest.raises(RoomException, match="bad schema") as info:
                await call.next_chunk()
            assert info.value.status_code == 1007
