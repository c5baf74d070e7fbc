"""The scheduler of scheduled tasks (protocol/rest.md §20) on a real server whose clock the test
holds: a due task's message reaches a participant waiting on the room queue over a real
WebSocket; a due time fires once, whoever ticks and even when the clock goes back; due times
missed while the server was stopped are coalesced into one run at the next start; a run a
stopped server left unfinished is failed, never resent; `once` tasks, intervals and failures."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core import JsonContent
from meshagent_core.client.rest import Meshagent
from meshagent_core.rest.tasks import Schedule, ScheduledTaskQueueSpec, ScheduledTaskSpec, check_spec
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server, ServerConfig
from meshagent_trio.server.toolkits.queues import queues_state
from roomtest import mint, room_url

ROOM = "scheduled-room"
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc).timestamp()
HOUR = 3600.0
TEN = T0 + 30 * 60  # the first hourly due time after T0


class FakeClock:
    """The server's `config.clock`, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat()


def spec(schedule: str = "0 * * * *", queue: str = "jobs", payload: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"schedule": schedule, "queue": {"name": queue, "payload": payload or {"action": "sync"}}, **fields}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@asynccontextmanager
async def running(data_dir: Path, credentials: Credentials, clock: FakeClock) -> AsyncIterator[Server]:
    server = Server(ServerConfig(data_dir=data_dir, credentials=credentials, port=0, clock=clock))
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


@pytest.fixture
async def server(tmp_path: Path, credentials: Credentials, clock: FakeClock) -> AsyncIterator[Server]:
    async with running(tmp_path / "data", credentials, clock) as server:
        yield server


def api(server: Server) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=server.config.credentials.api_key)


async def make_task(server: Server, task_spec: dict[str, Any]) -> str:
    own = server.config.credentials.project_id
    async with api(server) as client:
        await client.create_room(project_id=own, name=ROOM, if_not_exists=True)
        return await client.create_scheduled_task(project_id=own, room_name=ROOM, spec=task_spec)


async def runs(server: Server, task_id: str) -> list[Any]:
    async with api(server) as client:
        return await client.list_scheduled_task_runs(project_id=server.config.credentials.project_id, task_id=task_id)


async def finished_runs(server: Server, task_id: str) -> list[Any]:
    """The task's runs once none is being sent (the server's own loop may be sending one)."""
    found: list[Any] = []

    async def finished() -> bool:
        found[:] = await runs(server, task_id)
        return all(run.status != "submitting" for run in found)

    await until(finished)
    return found


async def task(server: Server, task_id: str) -> Any:
    async with api(server) as client:
        [found] = await client.list_scheduled_tasks(project_id=server.config.credentials.project_id, task_id=task_id)
        return found


async def queued(server: Server, queue: str = "jobs") -> list[bytes]:
    state = await queues_state(server.room(ROOM)).ready()
    found = state.queues.get(queue)
    return [] if found is None else [body for _, body in found.messages]


async def until(predicate: Callable[[], Any]) -> None:
    """Wait for a server-side condition (polling; the bound only guards against a hang)."""
    with trio.fail_after(10):
        while not await predicate():
            await trio.sleep(0.005)


# --- firing into a live room -----------------------------------------------------------------------


async def test_a_due_task_reaches_a_participant_waiting_on_the_queue(server: Server, credentials: Credentials, clock: FakeClock) -> None:
    task_id = await make_task(server, spec(payload={"action": "sync", "n": 1}))
    assert (await task(server, task_id)).next_run_time == iso(TEN)
    received: list[Any] = []
    async with RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM)) as room:
        async with trio.open_nursery() as nursery:

            async def receive() -> None:
                received.append(await room.invoke("queues", "receive", {"name": "jobs", "create": True, "wait": True}))

            nursery.start_soon(receive)

            async def receiving() -> bool:
                queue = (await queues_state(server.room(ROOM)).ready()).queues.get("jobs")
                return queue is not None and len(queue.waiters) == 1

            await until(receiving)
            assert await server.scheduler.tick() == []  # not due yet
            clock.now = TEN + 5
            server.scheduler.wake()  # the server's own loop fires it
            with trio.fail_after(10):
                while not received:
                    await trio.sleep(0.005)
    assert received == [JsonContent(json={"action": "sync", "n": 1})]
    [run] = await runs(server, task_id)
    assert (run.status, run.target, run.scheduled_time, run.started_at, run.task_id) == ("submitted", "queue", iso(TEN), iso(TEN + 5), task_id)
    assert run.completed_at and run.error is None and run.room_name == ROOM
    after = await task(server, task_id)
    assert (after.last_run_id, after.last_status, after.last_start_time, after.next_run_time) == (int(run.id), "submitted", iso(TEN + 5), iso(TEN + HOUR))


# --- never twice -------------------------------------------------------------------------------------


async def test_a_due_time_fires_once_whoever_ticks(server: Server, clock: FakeClock) -> None:
    task_id = await make_task(server, spec())
    clock.now = TEN + 1
    fired: list[int] = []

    async def tick() -> None:
        fired.extend(await server.scheduler.tick())

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(tick)
        server.scheduler.wake()  # and the server's loop too
    assert [run.status for run in await finished_runs(server, task_id)] == ["submitted"]  # whoever fired it
    assert len(fired) <= 1 and len(await queued(server)) == 1
    assert await server.scheduler.tick(TEN + HOUR - 1) == []  # later in the same hour: nothing
    clock.now = TEN + HOUR
    assert len(await server.scheduler.tick()) == 1 and len(await queued(server)) == 2


async def test_a_clock_that_goes_back_does_not_fire_a_due_time_again(server: Server, clock: FakeClock) -> None:
    task_id = await make_task(server, spec())
    clock.now = TEN + 1
    assert len(await server.scheduler.tick()) == 1
    clock.now = TEN - 60  # the clock is set back; the schedule is reset onto 10:00 again
    async with api(server) as client:
        await client.update_scheduled_task(project_id=server.config.credentials.project_id, task_id=task_id, spec=spec())
    assert (await task(server, task_id)).next_run_time == iso(TEN)
    assert await server.scheduler.tick(TEN + 30) == []
    assert len(await runs(server, task_id)) == 1 and len(await queued(server)) == 1
    assert (await task(server, task_id)).next_run_time == iso(TEN + HOUR)  # moved on past it


# --- restarts ----------------------------------------------------------------------------------------


async def test_due_times_missed_while_stopped_are_one_run_at_the_next_start(tmp_path: Path, credentials: Credentials, clock: FakeClock) -> None:
    data_dir = tmp_path / "data"
    async with running(data_dir, credentials, clock) as server:
        task_id = await make_task(server, spec())
    clock.now = T0 + 5 * HOUR + 600  # 14:40: 10:00 to 14:00 were missed
    async with running(data_dir, credentials, clock) as server:
        await server.scheduler.tick()  # the start already did, or this does: one run either way
        [run] = await finished_runs(server, task_id)
        assert (run.status, run.scheduled_time, run.started_at) == ("submitted", iso(TEN + 4 * HOUR), iso(clock.now))
        assert len(await queued(server)) == 1
        assert (await task(server, task_id)).next_run_time == iso(TEN + 5 * HOUR)
        assert await server.scheduler.tick() == []


async def test_a_run_interrupted_by_a_stop_is_failed_and_never_resent(tmp_path: Path, credentials: Credentials, clock: FakeClock) -> None:
    data_dir = tmp_path / "data"
    async with running(data_dir, credentials, clock) as server:
        task_id = await make_task(server, spec())
        # as if the server stopped between recording the run and sending its message
        assert await server.control.tasks.claim(task_id, TEN + 1) is not None
        assert [r.status for r in await runs(server, task_id)] == ["submitting"]
    async with running(data_dir, credentials, clock) as server:
        [run] = await runs(server, task_id)
        assert run.status == "failed" and "the server stopped while sending" in (run.error or "")
        clock.now = TEN + 2
        assert await server.scheduler.tick() == [] and await queued(server) == []


# --- once, intervals, inactive tasks, failures ---------------------------------------------------------


async def test_a_once_task_fires_once_and_is_then_inactive(server: Server, clock: FakeClock) -> None:
    task_id = await make_task(server, spec(once=True))
    clock.now = TEN
    assert len(await server.scheduler.tick()) == 1
    after = await task(server, task_id)
    assert (after.active, after.spec.active, after.once, after.next_run_time) == (False, False, True, None)
    assert await server.scheduler.tick(TEN + 10 * HOUR) == [] and len(await queued(server)) == 1


async def test_an_interval_counts_from_when_the_schedule_was_set(server: Server, clock: FakeClock) -> None:
    task_id = await make_task(server, spec("20 minutes"))
    assert (await task(server, task_id)).next_run_time == iso(T0 + 1200)
    assert await server.scheduler.tick(T0 + 1199) == []
    assert len(await server.scheduler.tick(T0 + 1200)) == 1
    assert (await task(server, task_id)).next_run_time == iso(T0 + 2400)


async def test_an_inactive_task_does_not_fire_until_activated(server: Server, clock: FakeClock) -> None:
    task_id = await make_task(server, spec(active=False))
    assert (await task(server, task_id)).next_run_time is None
    assert await server.scheduler.tick(TEN + 5 * HOUR) == []
    clock.now = TEN + 5 * HOUR + 60
    async with api(server) as client:
        await client.update_scheduled_task(project_id=server.config.credentials.project_id, task_id=task_id, spec=spec())
    assert (await task(server, task_id)).next_run_time == iso(TEN + 6 * HOUR)  # nothing missed while inactive is run
    assert await server.scheduler.tick() == []


async def test_a_refused_message_is_a_failed_run(server: Server, credentials: Credentials, clock: FakeClock) -> None:
    task_id = await make_task(server, spec())
    async with RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM)) as room:
        await room.invoke("queues", "open", {"name": "jobs"})
        await room.invoke("queues", "close", {"name": "jobs"})
    clock.now = TEN
    assert len(await server.scheduler.tick()) == 1
    [run] = await runs(server, task_id)
    assert (run.status, run.error) == ("failed", "queue jobs is closed") and run.completed_at
    assert (await task(server, task_id)).last_return_message == "queue jobs is closed"


async def test_a_deleted_room_takes_its_tasks_and_runs(server: Server, clock: FakeClock) -> None:
    own = server.config.credentials.project_id
    await make_task(server, spec())
    async with api(server) as client:
        room = await client.get_room(project_id=own, name=ROOM)
        await client.delete_room(project_id=own, room_id=room.id)
        assert await client.list_scheduled_tasks(project_id=own) == []
    assert await server.scheduler.tick(TEN) == []


# --- schedules -------------------------------------------------------------------------------------------

CRONS = st.sampled_from(["0 * * * *", "*/15 * * * *", "30 9 * * 1-5", "0 0 1 * *", "@daily", "5 4 * * sun", "0 12 29 2 *"])
MOMENTS = st.floats(min_value=T0 - 400 * 86400, max_value=T0 + 400 * 86400, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(expression=CRONS, moment=MOMENTS, anchor_back=st.floats(min_value=0, max_value=10 * 86400))
def test_a_cron_schedule_brackets_every_moment(expression: str, moment: float, anchor_back: float) -> None:
    schedule = Schedule.parse(expression)
    latest = schedule.latest_at_or_before(moment, anchor=moment - anchor_back)
    following = schedule.next_after(moment, anchor=moment - anchor_back)
    assert latest is not None and latest <= moment < following
    assert schedule.next_after(latest, anchor=0) == following  # nothing due in between


@settings(max_examples=200, deadline=None)
@given(seconds=st.integers(min_value=900, max_value=30 * 86400), anchor=MOMENTS, offset=st.floats(min_value=-86400, max_value=86400 * 90))
def test_an_interval_schedule_brackets_every_moment(seconds: int, anchor: float, offset: float) -> None:
    schedule = Schedule.parse(f"{seconds} seconds")
    moment = anchor + offset
    following = schedule.next_after(moment, anchor=anchor)
    latest = schedule.latest_at_or_before(moment, anchor=anchor)
    assert moment < following and following > anchor
    assert (following - anchor) / seconds == pytest.approx(round((following - anchor) / seconds))
    if latest is None:
        assert following == anchor + seconds
    else:
        assert latest <= moment and following - latest == pytest.approx(seconds)


CRON_FIELDS = st.one_of(st.sampled_from(["*", "0", "*/15", "1-5", "mon", "L", "?", "99", "-1", "1,2", "jan", "5#3", "@daily", "@reboot"]), st.text(max_size=4))


@settings(max_examples=500, deadline=None)
@given(expression=st.one_of(st.lists(CRON_FIELDS, max_size=8).map(" ".join), st.text(max_size=20)))
def test_any_text_is_a_schedule_or_a_refusal_naming_the_field(expression: str) -> None:
    try:
        check_spec(ScheduledTaskSpec(schedule=expression, queue=ScheduledTaskQueueSpec(name="q")))
    except ValueError as error:
        assert str(error).startswith("spec.schedule: ")
    else:
        assert Schedule.parse(expression).shortest_interval() >= 15 * 60
