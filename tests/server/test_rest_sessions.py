"""Room sessions over real sockets: participants join and leave a room over WebSockets while
our `Meshagent` client reads what the server recorded (sessions, participants by role, events,
room status), terminates and kills sessions, and manages room volumes; sessions left active by
a stopped server are ended at the next start; and the session store (Hypothesis) stays
consistent through any order of joins, leaves, terminations and kills."""

from __future__ import annotations

import uuid
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import ROUTES, ConflictError, NotFoundError, RestError, ServerError, ValidationErrorResponse
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server, ServerConfig
from meshagent_trio.server.control import ControlPlane
from meshagent_trio.server.control.sessions import Attendance
from roomtest import mint, room_url, running_server


def api(server: Server, credentials: Credentials) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=credentials.api_key)


async def eventually(check: Callable[[], Awaitable[Any]]) -> Any:
    """`check()` until it returns something true (the server records a leave after the socket
    closed)."""
    with trio.fail_after(10):
        while not (value := await check()):
            await trio.sleep(0.02)
    return value


async def join(stack: AsyncExitStack, server: Server, credentials: Credentials, room: str, name: str, role: str) -> RoomConnection:
    return await stack.enter_async_context(RoomConnection.open(room_url(server, room), mint(credentials, room, name=name, role=role)))


async def test_a_session_from_first_join_to_last_leave(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials) as client:
        room = await client.create_room(project_id=own, name="studio")
        assert (await client.get_room_status(project_id=own, name="studio")).status == "Unallocated"
        assert await client.list_recent_room_sessions(own, "studio") == []
        with trio.fail_after(10):
            async with AsyncExitStack() as everyone:
                await join(everyone, server, credentials, "studio", "alice", "agent")
                async with AsyncExitStack() as bob_and_carol:
                    await join(bob_and_carol, server, credentials, "studio", "bob", "user")
                    await join(bob_and_carol, server, credentials, "studio", "carol", "user")
                    status = await client.get_room_status(project_id=own, name="studio")
                    assert status.status == "Allocated" and status.allocated_at and status.running_for_seconds >= 0
                    (active,) = await client.list_active_sessions(own)
                    assert (active.room_id, active.room_name, active.is_active, active.kind) == (room.id, "studio", True, "room")
                    assert active.participants == {"agent": 1, "user": 2}
                    assert await client.get_session_participant_counts(own, active.id) == {"agent": 1, "user": 2}
                    assert status.allocated_at == active.created_at
                # two have left, alice is still there: the same session goes on
                assert await eventually(lambda: _left(client, own, active.id, 2))
                assert [s.id for s in await client.list_active_sessions(own)] == [active.id]
        ended = await eventually(lambda: _ended(client, own, active.id))
        assert ended["room_id"] == room.id and ended["ended_at"] and ended["participants"] == {"agent": 1, "user": 2}
        assert (await client.get_room_status(project_id=own, name="studio")).status == "Unallocated"
        assert await client.list_active_sessions(own) == []

        events = await client.list_session_events(own, active.id)
        assert [e["type"] for e in events] == ["room.lifecycle.start"] + ["room.participant.joined"] * 3 + ["room.participant.left"] * 3 + [
            "room.lifecycle.stop"
        ]
        assert {e["session_id"] for e in events} == {active.id} and all(e["room_name"] == "studio" for e in events)
        assert "alice joined as agent" in [e["message"] for e in events]
        assert events[-1]["message"] == "session ended: the last participant left"
        room_events = await client.list_room_events(project_id=own, name="studio")
        assert [e.id for e in room_events] == [e["id"] for e in reversed(events)]  # newest first
        assert len(await client.list_room_events(project_id=own, name="studio", limit=2)) == 2
        assert await client.list_session_spans(own, active.id) == [] and await client.list_session_metrics(own, active.id) == []

        async with RoomConnection.open(room_url(server, "studio"), mint(credentials, "studio", name="dave")):
            (second,) = await client.list_active_sessions(own)
        assert second.id != active.id
        await eventually(lambda: _ended(client, own, second.id))
        recent = await client.list_recent_sessions(own)
        assert [s.id for s in recent] == [second.id, active.id]
        assert [s.id for s in await client.list_recent_sessions(own, limit=1)] == [second.id]
        assert [s.id for s in await client.list_recent_sessions(own, room_id=room.id)] == [second.id, active.id]
        assert [s.id for s in await client.list_recent_room_sessions(own, "studio", limit=5)] == [second.id, active.id]


async def _left(client: Meshagent, project_id: str, session_id: str, count: int) -> bool:
    events = await client.list_session_events(project_id, session_id)
    return sum(e["type"] == "room.participant.left" for e in events) >= count


async def _ended(client: Meshagent, project_id: str, session_id: str) -> dict[str, Any] | None:
    session = await client.get_session(project_id, session_id)
    return None if session["is_active"] else session


async def test_a_room_joined_without_rest_has_sessions_too(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials) as client:
        with trio.fail_after(10):
            async with RoomConnection.open(room_url(server, "adhoc"), mint(credentials, "adhoc")):
                (session,) = await client.list_recent_room_sessions(own, "adhoc")
                assert session.room_id is None and session.is_active
                assert (await client.get_room_status(project_id=own, name="adhoc")).status == "Allocated"
        assert (await client.get_session(own, session.id))["room_id"] is None


async def test_terminate_and_kill_disconnect_the_participants(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials) as client:
        with trio.fail_after(20):
            async with AsyncExitStack() as stack:
                alice = await join(stack, server, credentials, "hall", "alice", "agent")
                bob = await join(stack, server, credentials, "hall", "bob", "user")
                (session,) = await client.list_active_sessions(own)
                await client.terminate(project_id=own, session_id=session.id)
                # terminate answers once they are gone (their leaves are recorded)
                assert await _left_all(client, own, session.id)
                while not (alice.closed and bob.closed):
                    await trio.sleep(0.02)
                assert (alice.close_code, bob.close_code) == (1000, 1000)
                assert "terminated" in alice.close_reason
                assert (await client.get_room_status(project_id=own, name="hall")).status == "Unallocated"
                ended = await client.get_session(own, session.id)
                assert not ended["is_active"] and ended["ended_at"]
                with pytest.raises(ConflictError, match="has already ended"):
                    await client.terminate(project_id=own, session_id=session.id)
                with pytest.raises(ConflictError, match="has already ended"):
                    await client.kill_session(project_id=own, session_id=session.id)

            async with AsyncExitStack() as stack:
                carol = await join(stack, server, credentials, "hall", "carol", "user")
                (again,) = await client.list_active_sessions(own)
                assert again.id != session.id
                await client.kill_session(project_id=own, session_id=again.id)
                assert not (await client.get_session(own, again.id))["is_active"]  # ended at once
                while not carol.closed:
                    await trio.sleep(0.02)
                assert carol.close_code == 1000 and "killed" in carol.close_reason

        types = [e["type"] for e in await client.list_session_events(own, session.id)]
        assert types.index("room.session.terminated") < types.index("room.lifecycle.stop")
        assert types.count("room.lifecycle.stop") == 1 and types.count("room.participant.left") == 2
        killed = await eventually(lambda: _left_all(client, own, again.id))
        assert "room.session.killed" in [e["type"] for e in killed]


async def _left_all(client: Meshagent, project_id: str, session_id: str) -> list[dict[str, Any]] | None:
    events = await client.list_session_events(project_id, session_id)
    joined = sum(e["type"] == "room.participant.joined" for e in events)
    return events if sum(e["type"] == "room.participant.left" for e in events) == joined else None


async def test_unknown_sessions_rooms_and_projects(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials) as client:
        for method in (
            client.get_session,
            client.get_session_participant_counts,
            client.list_session_events,
            client.list_session_spans,
            client.list_session_metrics,
            client.terminate,
            client.kill_session,
        ):
            with pytest.raises(NotFoundError, match="session 'nope' does not exist"):
                await method(project_id=own, session_id="nope")
        for method in (client.get_room_status, client.list_room_events):
            with pytest.raises(RestError, match="room not found") as info:
                await method(project_id=own, name="nowhere")
            assert info.value.http_status == 404
        with pytest.raises(NotFoundError, match="room 'nowhere' does not exist"):
            await client.list_recent_room_sessions(own, "nowhere")
        with pytest.raises(NotFoundError, match="room id 'r-1' does not exist"):
            await client.list_recent_sessions(own, room_id="r-1")
        with pytest.raises(NotFoundError, match="project 'elsewhere' does not exist"):
            await client.list_active_sessions("elsewhere")
        with pytest.raises(NotFoundError, match="project 'elsewhere' does not exist"):
            await client.list_active_agent_sessions("elsewhere")
        with pytest.raises(ValidationErrorResponse, match="limit must be at least 1"):
            await client.list_recent_sessions(own, limit=0)
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"http://127.0.0.1:{server.port}/accounts/projects/{own}/sessions",
            params={"limit": "many"},
            headers={"Authorization": f"Bearer {credentials.api_key}"},
        )
    assert answer.status_code == 400 and "limit" in answer.json()["error"]["message"]


async def test_agent_sessions_are_none_on_the_local_server(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials) as client:
        assert await client.list_active_agent_sessions(own) == []
        assert await client.list_recent_agent_sessions(own, limit=5) == []
        with pytest.raises(NotFoundError, match="agent id 'a1' does not exist"):
            await client.list_recent_agent_sessions(own, agent_id="a1")
        with pytest.raises(NotFoundError, match="agent 'helper' does not exist"):
            await client.list_recent_single_agent_sessions(own, "helper")
        helper = await server.control.agents.create_agent(own, "helper", {"name": "helper"}, if_not_exists=False)
        assert await client.list_recent_single_agent_sessions(own, "helper") == []
        assert await client.list_recent_agent_sessions(own, agent_id=helper.id) == []


def test_literal_segments_win_over_parameters() -> None:
    base = "/accounts/projects/p"
    assert ROUTES.match("GET", base + "/sessions/active")[0].name == "list_active_sessions"
    assert ROUTES.match("GET", base + "/sessions/s1")[0].name == "get_session"
    assert ROUTES.match("GET", base + "/agents/sessions")[0].name == "list_recent_agent_sessions"
    assert ROUTES.match("GET", base + "/agents/sessions/active")[0].name == "list_active_agent_sessions"
    assert ROUTES.match("GET", base + "/agents/helper/sessions")[0].name == "list_recent_single_agent_sessions"
    assert ROUTES.match("GET", base + "/rooms/lobby/sessions")[0].name == "list_recent_room_sessions"


async def test_a_session_active_when_the_server_stopped_is_ended_at_the_next_start(tmp_path: Path, credentials: Credentials) -> None:
    config = ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0)
    earlier = ControlPlane(config)  # a run of the server that stops with alice in the room
    attendance = await earlier.sessions.participant_joined(credentials.project_id, "lobby", name="alice", role="user", disconnect=lambda code, reason: None)
    assert (await earlier.sessions.get_session(credentials.project_id, attendance.session_id)).is_active
    await earlier.store.close()
    async with running_server(tmp_path / "data", credentials) as server:
        async with api(server, credentials) as client:
            session = await client.get_session(credentials.project_id, attendance.session_id)
            assert not session["is_active"] and session["ended_at"]
            stop = (await client.list_session_events(credentials.project_id, attendance.session_id))[-1]
            assert (stop["type"], stop["severity"]) == ("room.lifecycle.stop", "warning") and "server stopped" in stop["message"]
            assert (await client.get_room_status(project_id=credentials.project_id, name="lobby")).status == "Unallocated"


async def test_a_server_stopped_with_participants_in_a_room_leaves_no_active_session(tmp_path: Path, credentials: Credentials) -> None:
    own = credentials.project_id

    async def stay(server: Server, task_status: trio.TaskStatus[None]) -> None:
        async with RoomConnection.open(room_url(server, "lobby"), mint(credentials, "lobby")):
            task_status.started()
            await trio.sleep_forever()

    with trio.fail_after(20):
        async with trio.open_nursery() as participants:
            async with running_server(tmp_path / "data", credentials) as server:
                await participants.start(stay, server)
                async with api(server, credentials) as client:
                    (session,) = await client.list_active_sessions(own)
            participants.cancel_scope.cancel()  # after the server stopped
        async with running_server(tmp_path / "data", credentials) as server:
            async with api(server, credentials) as client:
                assert await client.list_active_sessions(own) == []
                assert not (await client.get_session(own, session.id))["is_active"]


async def test_a_join_that_cannot_be_recorded_still_enters_the_room(server: Server, credentials: Credentials, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("control.db is unwell")

    monkeypatch.setattr(server.control.sessions, "participant_joined", broken)
    with trio.fail_after(10):
        async with RoomConnection.open(room_url(server, "lobby"), mint(credentials, "lobby")) as joined:
            assert joined.participant_id
    async with api(server, credentials) as client:
        assert await client.list_active_sessions(credentials.project_id) == []


async def test_room_volumes(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials) as client:
        await client.create_room(project_id=own, name="vault")
        assert await client.list_room_volumes(project_id=own, room="vault") == []
        data = await client.create_room_volume(project_id=own, room="vault", name="data", description="d", metadata={"k": 1}, max_size_mb=10)
        assert (data.name, data.subpath, data.phase, data.storage_class, data.max_size_mb, data.metadata) == (
            "data",
            "volumes/data",
            "bound",
            "standard",
            10,
            {"k": 1},
        )
        directory = server.config.room_data_dir(own, "vault") / data.subpath
        assert directory.is_dir()
        with pytest.raises(ConflictError, match="volume 'data' already exists"):
            await client.create_room_volume(project_id=own, room="vault", name="data")
        cache = await client.create_room_volume(project_id=own, room="vault", name="cache")
        assert cache.max_size_mb is None
        assert [v.name for v in await client.list_room_volumes(project_id=own, room="vault")] == ["cache", "data"]

        grown = await client.expand_room_volume(project_id=own, room="vault", volume_id=data.id, max_size_mb=20)
        assert grown.max_size_mb == 20 and grown.created_at == data.created_at
        with pytest.raises(ValidationErrorResponse, match="only grows"):
            await client.expand_room_volume(project_id=own, room="vault", volume_id=data.id, max_size_mb=5)

        (directory / "file.txt").write_text("x")
        deleted = await client.delete_room_volume(project_id=own, room="vault", volume_id=data.id)
        assert deleted.id == data.id and not directory.exists()
        assert [v.name for v in await client.list_room_volumes(project_id=own, room="vault")] == ["cache"]
        with pytest.raises(NotFoundError, match=f"volume '{data.id}' does not exist"):
            await client.delete_room_volume(project_id=own, room="vault", volume_id=data.id)
        with pytest.raises(NotFoundError, match=f"volume '{data.id}' does not exist"):
            await client.expand_room_volume(project_id=own, room="vault", volume_id=data.id, max_size_mb=50)
        with pytest.raises(NotFoundError, match="room 'nowhere' does not exist"):
            await client.list_room_volumes(project_id=own, room="nowhere")
        with pytest.raises(NotFoundError, match="room 'nowhere' does not exist"):
            await client.create_room_volume(project_id=own, room="nowhere", name="v")
        with pytest.raises(ValidationErrorResponse, match="invalid volume name"):
            await client.create_room_volume(project_id=own, room="vault", name="../up")
        with pytest.raises(ValidationErrorResponse, match="max_size_mb must be at least 1"):
            await client.create_room_volume(project_id=own, room="vault", name="v", max_size_mb=0)
        with pytest.raises(ServerError, match="storage_class 'juice' is not available"):
            await client.create_room_volume(project_id=own, room="vault", name="v", storage_class="juice")


async def test_deleting_a_room_deletes_its_volumes(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials) as client:
        room = await client.create_room(project_id=own, name="vault")
        volume = await client.create_room_volume(project_id=own, room="vault", name="data")
        directory = server.config.room_data_dir(own, "vault") / volume.subpath
        (directory / "file.txt").write_text("x")
        await client.delete_room(project_id=own, room_id=room.id)
        assert not directory.exists()
        await client.create_room(project_id=own, name="vault")  # the same name again: a new room
        assert await client.list_room_volumes(project_id=own, room="vault") == []


# --- the session recorder as a state machine -------------------------------------------------

ROOMS = ("a", "b")
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.sampled_from(ROOMS), st.sampled_from(("user", "agent", "tool"))),
        st.tuples(st.just("leave"), st.integers(0, 5), st.just("")),
        st.tuples(st.sampled_from(("terminate", "kill")), st.sampled_from(ROOMS), st.just("")),
        st.tuples(st.just("settle"), st.just(""), st.just("")),
    ),
    max_size=16,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_any_sequence_of_joins_leaves_and_terminations_is_recorded_consistently(tmp_path: Path, operations: list[tuple[str, Any, str]]) -> None:
    """Participants join and leave two rooms, and sessions are terminated or killed, in any order
    (the disconnected leave in tasks of their own, as connections do, also after a kill has
    answered, while others join); whenever nobody is still leaving, the store agrees with what
    happened: a room has an active session exactly while someone is in it, everyone in a room is
    in its session, and each session counts everyone who took part by role, and who left, and
    ended once."""
    trio.run(_run_operations, tmp_path / str(uuid.uuid4()), operations)


async def _run_operations(data_dir: Path, operations: list[tuple[str, Any, str]]) -> None:
    config = ServerConfig(data_dir=data_dir, credentials=Credentials(str(uuid.uuid4()), "k", "s"))
    plane = ControlPlane(config)
    store, project = plane.sessions, config.credentials.project_id
    present: dict[str, list[tuple[Attendance, str]]] = {room: [] for room in ROOMS}
    took_part: dict[str, Counter[str]] = {}
    leaving: set[Attendance] = set()  # disconnected, their leave not recorded yet

    async def leave(attendance: Attendance) -> None:
        await store.participant_left(attendance)
        leaving.discard(attendance)

    async with trio.open_nursery() as nursery:

        def disconnect_of(room: str) -> Callable[[int, str], None]:
            def disconnect(code: int, reason: str) -> None:
                assert code == 1000 and reason in ("the session was terminated", "the session was killed")
                for attendance, _ in present[room]:
                    leaving.add(attendance)
                    nursery.start_soon(leave, attendance)
                present[room].clear()

            return disconnect

        for operation, argument, role in operations:
            if operation == "join":
                attendance = await store.participant_joined(project, argument, name="p", role=role, disconnect=disconnect_of(argument))
                present[argument].append((attendance, role))
                took_part.setdefault(attendance.session_id, Counter())[role] += 1
            elif operation == "leave":
                everyone = [(room, entry) for room in ROOMS for entry in present[room]]
                if everyone:
                    room, entry = everyone[argument % len(everyone)]
                    present[room].remove(entry)
                    await store.participant_left(entry[0])
            elif operation in ("terminate", "kill"):
                active = {s.room_name: s.id for s in await store.active_sessions(project)}
                if argument in active:
                    await store.end_session(project, active[argument], kill=operation == "kill")
                    if operation == "terminate":  # it answers once they have gone
                        assert not any(a.session_id == active[argument] for a in leaving)
            elif operation == "settle":
                while leaving:
                    await trio.sleep(0.001)
            if leaving:
                continue  # the killed are still leaving (a join now starts a new session)
            active = {s.room_name: s for s in await store.active_sessions(project)}
            assert set(active) == {room for room in ROOMS if present[room]}
            for room, session in active.items():
                assert {attendance.session_id for attendance, _ in present[room]} == {session.id}
            for session_id, roles in took_part.items():
                session = await store.get_session(project, session_id)
                assert session.participants == dict(roles)
                types = Counter(e.type for e in await store.session_events(project, session_id))
                assert types["room.lifecycle.start"] == 1 and types["room.participant.joined"] == sum(roles.values())
                assert types["room.lifecycle.stop"] == (0 if session.is_active else 1)
                assert types["room.participant.left"] == sum(roles.values()) - (len(present[session.room_name]) if session.is_active else 0)
        nursery.cancel_scope.cancel()
    await plane.store.close()
