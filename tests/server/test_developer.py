"""The developer toolkit: log entries reach every open `logs` stream."""

from __future__ import annotations

import json

import pytest

from meshagent_core import BinaryContent, CONTROL_OPEN, RoomException
from meshagent_core.tokens import ApiScope, DeveloperGrant
from meshagent_trio.connection import RoomConnection
from roomtest import mint, room_url


async def test_log_and_levels_reach_a_logs_stream(server, credentials) -> None:
    async with RoomConnection.open(room_url(server), mint(credentials, name="watcher")) as watcher:
        async with RoomConnection.open(room_url(server), mint(credentials, name="agent")) as agent:
            async with watcher.stream_call("developer", "logs") as logs:
                assert await logs.response() == CONTROL_OPEN
                await agent.invoke("developer", "log", {"type": "custom", "data": {"n": 1}})
                await agent.invoke("developer", "warning", {"message": "careful", "extra": {"k": "v"}})
                first, second = await logs.next_chunk(), await logs.next_chunk()
                assert isinstance(first, BinaryContent) and first.headers == {"type": "custom"}
                assert json.loads(first.data) == {"n": 1}
                assert second.headers == {"type": "warning"}
                assert json.loads(second.data) == {"message": "careful", "extra": {"k": "v"}}
                logs.close_input()
                assert await logs.next_chunk() is None  # closing the input ends the stream


async def test_malformed_log_arguments(server, credentials) -> None:
    async with RoomConnection.open(room_url(server), mint(credentials)) as room:
        with pytest.raises(RoomException, match="invalid arguments for developer.log") as info:
            await room.invoke("developer", "log", {"data": {}})
        assert info.value.code == 1002
        with pytest.raises(RoomException, match="expects json arguments"):
            await room.invoke("developer", "info", "plain text")


async def test_grants(server, credentials) -> None:
    no_developer = ApiScope(storage=ApiScope.agent_default().storage)
    async with RoomConnection.open(room_url(server), mint(credentials, scope=no_developer)) as room:
        with pytest.raises(RoomException) as info:
            await room.invoke("developer", "info", {"message": "x"})
        assert info.value.code == 1001
    no_logs = ApiScope.agent_default()
    no_logs.developer = DeveloperGrant(logs=False)
    async with RoomConnection.open(room_url(server), mint(credentials, scope=no_logs)) as room:
        await room.invoke("developer", "info", {"message": "writing is allowed"})
        async with room.stream_call("developer", "logs") as logs:
            with pytest.raises(RoomException) as info:
                await logs.response()
            assert info.value.code == 1001


async def test_pipelined_calls_take_effect_in_order(server, credentials) -> None:
    """Calls sent back to back (as the official client's pipelined sends are) are started in
    arrival order, whatever order the scheduler picks for new tasks."""
    async with RoomConnection.open(room_url(server), mint(credentials, name="watcher")) as watcher:
        async with RoomConnection.open(room_url(server), mint(credentials, name="writer")) as writer:
            async with watcher.stream_call("developer", "logs") as logs:
                await logs.response()
                for i in range(40):
                    writer.session.invoke_tool("developer", "log", {"type": "seq", "data": {"i": i}})
                writer._kick()
                seen = [json.loads((await logs.next_chunk()).data)["i"] for _ in range(40)]
                assert seen == list(range(40))
