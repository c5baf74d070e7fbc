"""The official `Meshagent` client (0.56, out of process) against our server's session routes,
room status, room events and room volumes, while real participants are in two rooms: it reads
what the server recorded, and its `terminate` and `kill_session` end the sessions (the
participants get a close frame)."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_trio.connection import RoomConnection
from official_rest import official_rest
from roomtest import mint

pytestmark = pytest.mark.interop



async def test_the_official_client_with_live_sessions(official_python: str, server_process) -> None:
    credentials = server_process.credentials
    own = credentials.project_id
    async with Meshagent(base_url=server_process.api_url, token=server_process.api_key) as client:
        room = await client.create_room(project_id=own, name="official-sessions")
        await client.create_room(project_id=own, name="official-kill")
        kept = await client.create_room_volume(project_id=own, room="official-sessions", name="kept", max_size_mb=5)
        with trio.fail_after(180):
            async with AsyncExitStack() as stack:

                async def join(room_name: str, name: str, role: str) -> RoomConnection:
                    token = mint(credentials, room_name, name=name, role=role)
                    return await stack.enter_async_context(RoomConnection.open(server_process.room_url(room_name), token))

                joined = [await join("official-sessions", "alice", "agent"), await join("official-sessions", "bob", "user")]
                joined.append(await join("official-kill", "carol", "user"))
                sessions = {s.room_name: s for s in await client.list_active_sessions(own)}
                main, other = sessions["official-sessions"].id, sessions["official-kill"].id
                on_main = {"project_id": own, "session_id": main}
                on_room = {"project_id": own, "room": "official-sessions"}
                calls = [
                    ("get_room_status", {"project_id": own, "name": "official-sessions"}),
                    ("list_active_sessions", {"project_id": own}),
                    ("get_session", on_main),
                    ("get_session_participant_counts", on_main),
                    ("list_recent_sessions", {"project_id": own, "limit": 10, "room_id": room.id}),
                    ("list_recent_room_sessions", {"project_id": own, "room_name": "official-sessions", "limit": 10}),
                    ("list_session_events", on_main),
                    ("list_session_spans", on_main),
                    ("list_session_metrics", on_main),
                    ("list_active_agent_sessions", {"project_id": own}),
                    ("list_recent_agent_sessions", {"project_id": own, "limit": 5}),
                    ("list_recent_single_agent_sessions", {"project_id": own, "agent_name": "helper"}),
                    ("list_room_events", {"project_id": own, "name": "official-sessions", "limit": 10}),
                    ("list_room_volumes", on_room),
                    ("create_room_volume", {**on_room, "name": "scratch", "description": "s", "max_size_mb": 1}),
                    ("expand_room_volume", {**on_room, "volume_id": kept.id, "max_size_mb": 50}),
                    ("delete_room_volume", {**on_room, "volume_id": kept.id}),
                    ("get_session", {"project_id": own, "session_id": "nope"}),
                    ("get_room_status", {"project_id": own, "name": "nowhere"}),
                    ("list_room_events", {"project_id": own, "name": "nowhere"}),
                    ("create_room_volume", {**on_room, "name": "scratch"}),
                    ("expand_room_volume", {**on_room, "volume_id": kept.id, "max_size_mb": 60}),
                    ("terminate", on_main),
                    ("kill_session", {"project_id": own, "session_id": other}),
                    ("get_room_status", {"project_id": own, "name": "official-sessions"}),
                    ("terminate", on_main),
                ]
                answers = dict(zip(range(len(calls)), await official_rest(official_python, server_process.api_url, server_process.api_key, calls)))
                while not all(connection.closed for connection in joined):
                    await trio.sleep(0.02)
                assert [connection.close_code for connection in joined] == [1000, 1000, 1000]

        def returned(index: int):
            assert "returned" in answers[index], (calls[index], answers[index])
            return answers[index]["returned"]

        status = returned(0)
        assert status["status"] == "Allocated" and status["running_for_seconds"] >= 0 and status["allocated_at"]
        assert {s["id"] for s in returned(1)} == {main, other}
        session = returned(2)
        assert (session["id"], session["room_id"], session["room_name"], session["is_active"]) == (main, room.id, "official-sessions", True)
        assert returned(3) == {"agent": 1, "user": 1}
        assert [s["id"] for s in returned(4)] == [main] == [s["id"] for s in returned(5)]
        assert returned(4)[0]["participants"] == {"agent": 1, "user": 1}
        assert [e["type"] for e in returned(6)] == ["room.lifecycle.start", "room.participant.joined", "room.participant.joined"]
        assert returned(7) == [] and returned(8) == []
        assert returned(9) == [] and returned(10) == []
        assert answers[11]["raised"] == "NotFoundError" and "agent 'helper' does not exist" in answers[11]["message"]
        assert [e["type"] for e in returned(12)] == ["room.participant.joined", "room.participant.joined", "room.lifecycle.start"]
        assert all(e["session_id"] == main and e["severity"] == "info" for e in returned(12))
        assert [v["name"] for v in returned(13)] == ["kept"] and returned(13)[0]["max_size_mb"] == 5
        scratch = returned(14)
        assert (scratch["name"], scratch["subpath"], scratch["phase"], scratch["max_size_mb"]) == ("scratch", "volumes/scratch", "bound", 1)
        assert returned(15)["max_size_mb"] == 50 and returned(16)["id"] == kept.id
        assert answers[17]["raised"] == "NotFoundError" and "session 'nope' does not exist" in answers[17]["message"]
        assert answers[18] == answers[19] == {"raised": "RoomException", "message": "room not found", "status_code": 400, "code": 1002}
        assert answers[20]["raised"] == "ConflictError" and "volume 'scratch' already exists" in answers[20]["message"]
        assert answers[21]["raised"] == "NotFoundError"
        assert returned(22) is None and returned(23) is None
        assert returned(24) == {"status": "Unallocated"}
        assert answers[25]["raised"] == "ConflictError" and "has already ended" in answers[25]["message"]

        ended = await client.get_session(own, main)
        assert not ended["is_active"]
        assert [v.name for v in await client.list_room_volumes(project_id=own, room="official-sessions")] == ["scratch"]
        types = [e["type"] for e in await client.list_session_events(own, other)]
        assert "room.session.killed" in types and "room.lifecycle.stop" in types
