"""What a connection may make the server hold: a participant that stops reading neither grows
the server's memory without bound nor holds up the room; it is disconnected (close 1008, after
which our client reconnects), and a client that only pauses gets everything once it reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

import meshagent_trio
from meshagent_core import ClientSession
from meshagent_core.client.room import Disconnected
from meshagent_core.session import events as ev
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Server, ServerConfig
from meshagent_trio.server.process import LocalServerProcess
from meshagent_trio.websocket import WebSocketClosed, WebSocketConnection, connect_websocket
from roomtest import mint, room_url

ROOM = "test-room"
#: Seconds a participant's output may stay over the high-water mark (in-process servers here).
SLOW_READER_TIMEOUT = 1.5


# --- helpers ---------------------------------------------------------------------------------


async def start_server(nursery: trio.Nursery, tmp_path: Path, credentials, **limits: Any) -> Server:
    server = Server(ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, **limits))
    await nursery.start(server.serve)
    return server


async def raw_participant(url: str, token: str) -> tuple[WebSocketConnection, ClientSession]:
    """A participant on a bare WebSocket: it reads only when the test says so."""
    websocket = await connect_websocket(url, headers={"Authorization": "Bearer " + token})
    session = ClientSession()
    while not any(isinstance(event, ev.SessionReady) for event in session.events_received()):
        session.receive_packets(await websocket.receive_packets())
    return websocket, session


async def raw_messaging_participant(server: Server, credentials, name: str) -> tuple[WebSocketConnection, ClientSession, Any]:
    """A raw participant with messaging enabled; also its `Participant` on the server."""
    websocket, session = await raw_participant(room_url(server), mint(credentials, name=name))
    session.invoke_tool("messaging", "enable", {})
    await websocket.send_packets(session.packets_to_send())
    await read_answers(websocket, session, 1)
    return websocket, session, participant_named(server, name)


async def read_answers(websocket: WebSocketConnection, session: ClientSession, count: int) -> list[ev.Event]:
    """Read until `count` requests have their outcome; the outcomes, in arrival order."""
    outcomes: list[ev.Event] = []
    while len(outcomes) < count:
        session.receive_packets(await websocket.receive_packets())
        outcomes += [event for event in session.events_received() if isinstance(event, (ev.ResponseReceived, ev.RequestFailed))]
    return outcomes


async def read_until_closed(websocket: WebSocketConnection) -> int:
    """Read (and drop) everything until the server ends the connection; its close code (1006
    when the socket was dropped without a close frame)."""
    try:
        while True:
            await websocket.receive_packets()
    except WebSocketClosed as closed:
        return closed.code
    except trio.BrokenResourceError:
        return 1006


async def until(condition: Any) -> None:
    while not condition():
        await trio.sleep(0.01)


def participant_named(server: Server, name: str, room: str = ROOM) -> Any:
    return next((p for p in server.rooms[room].participants.values() if p.name == name), None)


def memory_mb(pid: int, key: str) -> float:
    """`VmRSS` (resident now) or `VmHWM` (resident at its peak) of a process, in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {key} in /proc/{pid}/status")


# --- 1. bounded memory: a connection that pipelines requests and never reads ----------------

PIPELINED = 10_000
MEMORY_BUDGET_MB = 64
#: How long the server's memory is watched after the requests went out (storage.list answers
#: come from worker threads, at some 15 MB/s here: long enough to see it pass the budget).
WATCH_SECONDS = {"room.list_toolkits": 5.0, "storage.list": 12.0}


def queue_request(session: ClientSession, kind: str) -> None:
    if kind == "storage.list":
        session.invoke_tool("storage", "list", {"path": ""})
    else:
        session.send_request("room.list_toolkits", {})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("request_kind", ["room.list_toolkits", "storage.list"])
async def test_pipelined_requests_never_read_keep_memory_bounded(tmp_path: Path, request_kind: str) -> None:
    """One connection pipelines 10,000 requests whose answers are 50-100 KB (as a busy room's
    listings are) and never reads: the server's resident memory grows by less than 64 MB."""
    with LocalServerProcess(tmp_path / "data") as server, trio.fail_after(60):
        pid = server.pid
        assert pid is not None
        credentials = server.credentials
        async with RoomConnection.open(server.room_url(ROOM), mint(credentials, ROOM, name="host")) as host:
            if request_kind == "room.list_toolkits":
                # A hosted toolkit with a long description: every list_toolkits answer carries it.
                await host.request("room.register_toolkit", {"name": "catalogue", "description": "d" * 50_000, "tools": {}, "public": True})
            else:
                storage = server.data_dir / "rooms" / ROOM / "storage"
                storage.mkdir(parents=True, exist_ok=True)
                for n in range(250):
                    (storage / f"report-{n:04d}-{'x' * 200}.txt").write_bytes(b"")
            websocket, session = await raw_participant(server.room_url(ROOM), mint(credentials, ROOM, name="hog"))
            # One answer read, to know its size (and that the setup works).
            queue_request(session, request_kind)
            await websocket.send_packets(session.packets_to_send())
            [answer] = await read_answers(websocket, session, 1)
            assert isinstance(answer, ev.ResponseReceived), answer
            answer_size = len(json.dumps(answer.content.json))  # type: ignore[union-attr]
            await trio.sleep(0.3)
            before = memory_mb(pid, "VmRSS")

            for _ in range(PIPELINED):
                queue_request(session, request_kind)
            packets = session.packets_to_send()
            peak = before
            async with trio.open_nursery() as nursery:
                # Sent from a task of its own: a server that stops reading may block this send.
                nursery.start_soon(websocket.send_packets, packets)
                sent_at = trio.current_time()
                deadline = sent_at + WATCH_SECONDS[request_kind]
                while trio.current_time() < deadline and peak - before <= MEMORY_BUDGET_MB:
                    await trio.sleep(0.05)
                    peak = max(peak, memory_mb(pid, "VmHWM"))
                watched = trio.current_time() - sent_at
                nursery.cancel_scope.cancel()
            await websocket.abort()
    growth = peak - before
    print(
        f"{request_kind}: {PIPELINED} pipelined, answers ~{answer_size // 1024} KB: "
        f"server memory grew {growth:.0f} MB (peak) within {watched:.1f}s"
    )
    assert growth < MEMORY_BUDGET_MB, f"the server's memory grew by {growth:.0f} MB for one connection that does not read"


# --- 2. the reader pause resumes -------------------------------------------------------------


async def test_a_client_that_pipelines_then_reads_gets_every_answer(tmp_path: Path, credentials, nursery) -> None:
    """The server stops reading a connection whose answers pile up over output_high_water and
    resumes once they are read: nothing is lost and nobody is evicted."""
    high_water = 256
    server = await start_server(nursery, tmp_path, credentials, output_high_water=high_water, slow_reader_timeout=5)
    first_wave, second_wave = 2000, 4000
    with trio.fail_after(60):
        async with RoomConnection.open(room_url(server), mint(credentials, name="host")) as host:
            # Every list_toolkits answer carries this description: some 5 packets each.
            await host.request("room.register_toolkit", {"name": "catalogue", "description": "d" * 4000, "tools": {}, "public": True})
            websocket, session = await raw_participant(room_url(server), mint(credentials, name="pipeliner"))
            participant = participant_named(server, "pipeliner")

            async def backlog_after(requests: int) -> int:
                for _ in range(requests):
                    session.send_request("room.list_toolkits", {})
                sending.start_soon(websocket.send_packets, session.packets_to_send())
                await trio.sleep(0.5)  # not reading, for less than slow_reader_timeout
                return participant.backlog

            async with trio.open_nursery() as sending:
                # The first wave's answers fill the socket and pile up past the high-water mark;
                # of the second, the server reads about one read's worth, then waits.
                before = await backlog_after(first_wave)
                assert before > high_water, f"the answers did not pile up ({before} packets): nothing to test"
                after = await backlog_after(second_wave)
                outcomes = await read_answers(websocket, session, first_wave + second_wave)
    assert participant.connected and participant.close is None  # not evicted
    failed = [outcome for outcome in outcomes if not isinstance(outcome, ev.ResponseReceived)]
    assert not failed, failed[:3]
    assert len({outcome.request_id for outcome in outcomes}) == first_wave + second_wave  # every answer, once
    assert all("catalogue" in outcome.content.json["tools"] for outcome in outcomes)  # type: ignore[union-attr]
    grown = after - before
    print(f"backlog {before} packets after the first wave, {after} after the second (high water {high_water})")
    per_answer = before / first_wave  # packets per answer, at least (some are in the socket)
    assert grown < second_wave * per_answer / 2, f"the server read on: {grown} more packets queued for a client that did not read"
    await websocket.close()


async def test_an_answer_never_lands_inside_a_large_message_being_written(tmp_path: Path, credentials, nursery) -> None:
    server = await start_server(nursery, tmp_path, credentials)
    with trio.fail_after(20):
        async with RoomConnection.open(room_url(server), mint(credentials, name="host")) as host:
            # list_toolkits answers with some 3,000 packets: more than one write slice, and more
            # than the socket takes while the client is not reading.
            await host.request("room.register_toolkit", {"name": "big", "description": "d" * 3_000_000, "tools": {}, "public": True})
            await host.invoke("storage", "exists", {"path": "x"})  # storage is ready: exists is answered inline
            websocket, session = await raw_participant(room_url(server), mint(credentials, name="reader"))
            session.send_request("room.list_toolkits", {})
            await websocket.send_packets(session.packets_to_send())
            await trio.sleep(0.3)  # the big answer is half written, waiting for the client to read
            session.invoke_tool("storage", "exists", {"path": "x"})
            await websocket.send_packets(session.packets_to_send())
            await trio.sleep(0.3)
            outcomes = await read_answers(websocket, session, 2)  # HEAD: FramingError (interleaved messages)
    assert all(isinstance(outcome, ev.ResponseReceived) for outcome in outcomes), outcomes
    await websocket.close()


# --- 3. slow readers never stall others --------------------------------------------------------

BROADCASTS = 3000
MESSAGE_SIZE = 10 * 1024


async def receive_bulk(room: Any, counts: dict[str, list[int]], name: str) -> None:
    async with room.messaging.messages() as messages:
        async for message in messages:
            if message.type == "bulk":
                counts[name].append(message.message["i"])
                assert len(message.attachment) == MESSAGE_SIZE


@dataclass
class MuteRun:
    """What happened while alice broadcast to bob and to a participant that never reads."""

    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    over_at: float | None = None  # when the mute one's backlog first went over the high-water mark
    evicted_at: float | None = None  # when it left the room
    close_code: int | None = None
    bob_received: list[int] = field(default_factory=list)
    #: Broadcasts that returned while the mute one was in the room with its output over the
    #: high-water mark (a broadcast that waited on it would return only once it drained or left).
    returned_past_mute: int = 0


async def broadcast_past_a_mute_participant(server: Server, credentials) -> MuteRun:
    """alice broadcasts 10 KB messages to bob (who reads) and to a raw participant that enabled
    messaging and then never reads again, until 200 broadcasts after the mute one is gone."""
    config = server.config
    run = MuteRun()
    counts = {"bob": run.bob_received}
    async with (
        meshagent_trio.connect(room_url(server), mint(credentials, name="alice")) as alice,
        meshagent_trio.connect(room_url(server), mint(credentials, name="bob")) as bob,
    ):
        await alice.messaging.enable()
        await bob.messaging.enable()
        websocket, session, mute = await raw_messaging_participant(server, credentials, "mute")
        assert mute.messaging_enabled
        bob_lost = bob.subscribe(Disconnected)

        async def watch_mute() -> None:
            while mute.id in server.rooms[ROOM].participants:
                if run.over_at is None and mute.backlog > config.output_high_water:
                    run.over_at = trio.current_time()
                await trio.sleep(0.005)
            run.evicted_at = trio.current_time()

        async with trio.open_nursery() as tasks:
            tasks.start_soon(receive_bulk, bob, counts, "bob")
            tasks.start_soon(watch_mute)
            attachment = os.urandom(MESSAGE_SIZE)
            after_eviction = 0  # broadcasts once the mute one is gone: the room flows on
            while run.sent < BROADCASTS and after_eviction < 200:
                started = trio.current_time()
                await alice.messaging.broadcast_message(type="bulk", message={"i": run.sent}, attachment=attachment)
                run.latencies.append(trio.current_time() - started)
                run.sent += 1
                after_eviction += run.evicted_at is not None
                if mute.id in server.rooms[ROOM].participants and mute.backlog > config.output_high_water:
                    run.returned_past_mute += 1
            await until(lambda: len(run.bob_received) == run.sent)
            # The burst may end before the deadline: the mute one goes once its output has not
            # moved for slow_reader_timeout (reading its socket before that would revive it).
            await until(lambda: run.evicted_at is not None)
            tasks.cancel_scope.cancel()
        run.close_code = await read_until_closed(websocket)
        # bob was never disconnected, and the room still works for those who stayed.
        assert bob.connection is not None and not bob.connection.closed
        bob_lost.close()
        assert [event async for event in bob_lost] == []
        async with bob.messaging.messages() as messages:
            await alice.messaging.broadcast_message(type="after", message={})
            assert (await messages.__anext__()).type == "after"
    return run


async def test_a_participant_that_never_reads_is_closed_and_the_others_carry_on(tmp_path: Path, credentials, nursery) -> None:
    server = await start_server(nursery, tmp_path, credentials, slow_reader_timeout=SLOW_READER_TIMEOUT)
    with trio.fail_after(60):
        run = await broadcast_past_a_mute_participant(server, credentials)
    assert run.evicted_at is not None and run.over_at is not None, f"not evicted after {run.sent} broadcasts"
    waited = run.evicted_at - run.over_at
    print(
        f"mute participant: evicted {waited:.2f}s after its backlog went over the high-water mark "
        f"(slow_reader_timeout {SLOW_READER_TIMEOUT}s), close code {run.close_code}; {run.sent} broadcasts, "
        f"longest {max(run.latencies):.2f}s, bob received {len(run.bob_received)}"
    )
    assert run.bob_received == list(range(run.sent))
    assert run.close_code in (1008, 1006), run.close_code  # a close frame, or dropped when none fits
    # When: the deadline, or sooner once its queue passes output_hard_limit (the fail_after
    # above is the guard; the figure is printed, not asserted).


async def test_a_broadcast_does_not_wait_for_a_participant_that_stopped_reading(tmp_path: Path, credentials, nursery) -> None:
    server = await start_server(nursery, tmp_path, credentials, slow_reader_timeout=SLOW_READER_TIMEOUT)
    with trio.fail_after(60):
        run = await broadcast_past_a_mute_participant(server, credentials)
    assert run.bob_received == list(range(run.sent))
    print(f"{run.returned_past_mute} broadcasts returned while the mute one was backed up; longest {max(run.latencies):.3f}s")
    assert run.returned_past_mute > 0, "every broadcast waited for the participant that stopped reading"


#: A participant in a process of its own, so it can really stop (SIGSTOP): it prints what
#: happens to it as JSON lines.
SLEEPER = """
import json, sys
import trio
import meshagent_trio
from meshagent_core.client.room import Disconnected, Reconnected, RoomClosed


def emit(**fields):
    print(json.dumps(fields), flush=True)


async def main(url, token):
    async with meshagent_trio.connect(url, token) as room:
        lifecycle = room.subscribe(Disconnected, Reconnected, RoomClosed)
        await room.messaging.enable()
        emit(event="ready", id=room.local_participant.id)
        bulk = 0

        async def report():
            async for event in lifecycle:
                if isinstance(event, Disconnected):
                    emit(event="disconnected", reason=event.reason, bulk=bulk)
                elif isinstance(event, Reconnected):
                    emit(event="reconnected", id=room.local_participant.id)
                else:
                    emit(event="closed", reason=event.reason)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(report)
            async with room.messaging.messages() as messages:
                async for message in messages:
                    if message.type == "bulk":
                        bulk += 1
                        continue
                    emit(event="message", type=message.type, bulk=bulk)
                    if message.type == "bye":
                        break
            nursery.cancel_scope.cancel()


trio.run(main, sys.argv[1], sys.argv[2])
"""


class Lines:
    """The JSON lines a child process prints, as they come."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self._send, self._receive = trio.open_memory_channel[dict[str, Any]](1000)

    async def pump(self, stdout: trio.abc.ReceiveStream) -> None:
        buffer = b""
        async with self._send:
            while chunk := await stdout.receive_some(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        event = json.loads(line)
                        self.seen.append(event)
                        await self._send.send(event)

    async def expect(self, kind: str) -> dict[str, Any]:
        async for event in self._receive:
            if event["event"] == kind:
                return event
        raise AssertionError(f"the process ended before printing a {kind!r} event; it printed {self.seen}")


def _package_path() -> str:
    root = str(Path(meshagent_trio.__file__).resolve().parent.parent)
    return os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])


async def test_a_stopped_participant_is_evicted_and_reconnects_while_the_room_carries_on(
    tmp_path: Path, credentials, nursery
) -> None:
    server = await start_server(nursery, tmp_path, credentials, slow_reader_timeout=SLOW_READER_TIMEOUT)
    config = server.config
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    counts: dict[str, list[int]] = {"bob": [], "carol": []}
    lines = Lines()
    latencies: list[float] = []
    process = await trio.lowlevel.open_process(
        [sys.executable, str(script), room_url(server), mint(credentials, name="sleeper")],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": _package_path()},
    )
    try:
        with trio.fail_after(60):
            async with (
                meshagent_trio.connect(room_url(server), mint(credentials, name="alice")) as alice,
                meshagent_trio.connect(room_url(server), mint(credentials, name="bob")) as bob,
                meshagent_trio.connect(room_url(server), mint(credentials, name="carol")) as carol,
                trio.open_nursery() as tasks,
            ):
                for room in (alice, bob, carol):
                    await room.messaging.enable()
                healthy_lost = [bob.subscribe(Disconnected), carol.subscribe(Disconnected)]
                tasks.start_soon(lines.pump, process.stdout)
                first = await lines.expect("ready")
                sleeper = server.rooms[ROOM].participants[first["id"]]
                await until(lambda: sleeper.messaging_enabled)
                tasks.start_soon(receive_bulk, bob, counts, "bob")
                tasks.start_soon(receive_bulk, carol, counts, "carol")

                process.send_signal(signal.SIGSTOP)
                stopped_at = trio.current_time()
                over_at: float | None = None  # its backlog first over the high-water mark
                evicted_at: float | None = None  # it left the room

                async def watch_sleeper() -> None:
                    nonlocal over_at, evicted_at
                    while sleeper.id in server.rooms[ROOM].participants:
                        if over_at is None and sleeper.backlog > config.output_high_water:
                            over_at = trio.current_time()
                        await trio.sleep(0.005)
                    evicted_at = trio.current_time()

                tasks.start_soon(watch_sleeper)
                attachment = os.urandom(MESSAGE_SIZE)
                for i in range(BROADCASTS):
                    started = trio.current_time()
                    await alice.messaging.broadcast_message(type="bulk", message={"i": i}, attachment=attachment)
                    latencies.append(trio.current_time() - started)
                broadcast_done = trio.current_time()
                await until(lambda: len(counts["bob"]) == len(counts["carol"]) == BROADCASTS)
                # Evicted while it was stopped (it cannot have left by itself): when its output
                # has not moved for slow_reader_timeout, or sooner if its queue passed
                # output_hard_limit. The test's fail_after guards the wait.
                await until(lambda: evicted_at is not None)
                assert over_at is not None

                process.send_signal(signal.SIGCONT)
                lost = await lines.expect("disconnected")
                back = await lines.expect("reconnected")
                assert back["id"] != first["id"]  # a new connection: a new participant id
                # It is in the room again, with messaging, and reachable.
                await until(lambda: back["id"] in server.rooms[ROOM].participants)
                await until(lambda: server.rooms[ROOM].participants[back["id"]].messaging_enabled)
                await alice.messaging.send_message(to=back["id"], type="ping", message={})
                assert (await lines.expect("message"))["type"] == "ping"
                await alice.messaging.send_message(to=back["id"], type="bye", message={})
                assert await process.wait() == 0

                assert counts["bob"] == counts["carol"] == list(range(BROADCASTS))
                for subscription in healthy_lost:
                    subscription.close()
                    assert [event async for event in subscription] == []
                tasks.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
    print(
        f"sleeper: stopped, over the high-water mark after {over_at - stopped_at:.2f}s, "
        f"evicted {evicted_at - stopped_at:.2f}s after SIGSTOP; reconnected after '{lost['reason']}' "
        f"having read {lost['bulk']} of the messages; {BROADCASTS} broadcasts in {broadcast_done - stopped_at:.2f}s, "
        f"longest {max(latencies):.2f}s, bob {len(counts['bob'])}, carol {len(counts['carol'])}"
    )


async def test_a_reader_slower_than_a_burst_is_not_evicted_while_it_keeps_reading(tmp_path: Path, credentials, nursery) -> None:
    """A burst of 20 MB to a participant that reads at a few MB/s: its queue goes far over the
    high-water mark, but every write completes within the deadline, so it stays and gets all."""
    server = await start_server(nursery, tmp_path, credentials, slow_reader_timeout=SLOW_READER_TIMEOUT)
    burst = 2000
    with trio.fail_after(60):
        async with meshagent_trio.connect(room_url(server), mint(credentials, name="alice")) as alice:
            await alice.messaging.enable()
            websocket, session, slow = await raw_messaging_participant(server, credentials, "slow")
            received: list[int] = []
            peak = 0

            async def read_slowly() -> None:
                nonlocal peak
                while len(received) < burst:
                    session.receive_packets(await websocket.receive_packets())
                    for event in session.events_received():
                        if isinstance(event, ev.MessageReceived) and event.type == "bulk":
                            received.append(event.message["i"])
                    peak = max(peak, slow.backlog)
                    await trio.sleep(0.01)  # ~64 KiB per 10 ms: a few MB/s

            async with trio.open_nursery() as tasks:
                tasks.start_soon(read_slowly)
                attachment = os.urandom(MESSAGE_SIZE)
                for i in range(burst):
                    await alice.messaging.broadcast_message(type="bulk", message={"i": i}, attachment=attachment)
            print(f"slow reader: peak backlog {peak} packets (high water {server.config.output_high_water}), got {len(received)}")
            assert peak > server.config.output_high_water  # the burst did outrun it
            assert received == list(range(burst))
            assert slow.connected and slow.close is None
    await websocket.close()
