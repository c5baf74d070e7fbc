"""The queues toolkit end to end: FIFO JSON queues, long polls, grants, limits, durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshagent_core import EmptyContent, JsonContent, RoomException
from meshagent_core.tokens import ApiScope, QueuesGrant
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.toolkits.queues import Queues, queues_state
from roomtest import mint, room_url, running_server

ROOM = "test-room"


def connect(server: Server, credentials: Credentials, name: str = "alice", scope: ApiScope | None = None):
    return RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name=name, scope=scope))


def state(server: Server) -> Queues:
    return queues_state(server.room(ROOM))


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for a server-side condition (polling; the bound only guards against a hang)."""
    with trio.fail_after(10):
        while not predicate():
            await trio.sleep(0.005)


def waiting(server: Server, queue: str) -> int:
    q = state(server).queues.get(queue)
    return 0 if q is None else len(q.waiters)


async def send(room: RoomConnection, name: str, message: dict[str, Any], **options: Any) -> None:
    assert await room.invoke("queues", "send", {"name": name, "message": message, **options}) == EmptyContent()


async def receive(room: RoomConnection, name: str, **options: Any) -> dict[str, Any] | None:
    result = await room.invoke("queues", "receive", {"name": name, **options})
    if isinstance(result, EmptyContent):
        return None
    assert isinstance(result, JsonContent), result
    return result.json


async def listing(room: RoomConnection) -> Any:
    result = await room.invoke("queues", "list", {})
    assert isinstance(result, JsonContent)
    return result.json


async def refused(code: int, awaitable: Any, match: str | None = None) -> RoomException:
    with pytest.raises(RoomException, match=match) as info:
        await awaitable
    assert info.value.code == code, info.value
    return info.value


# --- the tools -------------------------------------------------------------------------------


async def test_send_list_receive_in_fifo_order(server, credentials) -> None:
    async with connect(server, credentials) as room:
        assert await room.invoke("queues", "open", {"name": "jobs"}) == EmptyContent()
        assert await listing(room) == {"queues": [{"name": "jobs", "size": 0}]}
        for n in range(5):
            await send(room, "jobs", {"n": n, "nested": {"list": [n, "x", None, 1.5, True]}})
        await send(room, "other", {"k": "v"})  # create defaults to true
        assert await listing(room) == {"queues": [{"name": "jobs", "size": 5}, {"name": "other", "size": 1}]}
        for n in range(5):
            assert await receive(room, "jobs") == {"n": n, "nested": {"list": [n, "x", None, 1.5, True]}}
        assert await receive(room, "jobs", wait=False) is None  # empty and not waiting: `empty` at once
        assert await listing(room) == {"queues": [{"name": "jobs", "size": 0}, {"name": "other", "size": 1}]}
        assert await room.invoke("queues", "list", {"name": "ignored", "create": True}) == JsonContent(
            json={"queues": [{"name": "jobs", "size": 0}, {"name": "other", "size": 1}]}
        )


async def test_receive_creates_a_missing_queue_unless_told_not_to(server, credentials) -> None:
    async with connect(server, credentials) as room:
        await refused(5001, receive(room, "nope", create=False, wait=False), match="queue nope does not exist")
        await refused(5001, room.invoke("queues", "send", {"name": "nope", "message": {}, "create": False}))
        await refused(5001, room.invoke("queues", "drain", {"name": "nope"}))
        await refused(5001, room.invoke("queues", "close", {"name": "nope"}))
        assert await listing(room) == {"queues": []}  # none of that created anything
        assert await receive(room, "fresh", wait=False) is None
        assert await listing(room) == {"queues": [{"name": "fresh", "size": 0}]}
        await send(room, "fresh", {"a": 1}, create=False)  # exists now
        assert await receive(room, "fresh", create=False) == {"a": 1}


async def test_open_on_an_open_queue_is_a_no_op(server, credentials) -> None:
    async with connect(server, credentials) as room:
        await send(room, "q", {"kept": True})
        assert await room.invoke("queues", "open", {"name": "q"}) == EmptyContent()
        assert await listing(room) == {"queues": [{"name": "q", "size": 1}]}
        assert await receive(room, "q") == {"kept": True}


async def test_drain_removes_every_message(server, credentials) -> None:
    async with connect(server, credentials) as room:
        for n in range(3):
            await send(room, "q", {"n": n})
        assert await room.invoke("queues", "drain", {"name": "q"}) == EmptyContent()
        assert await listing(room) == {"queues": [{"name": "q", "size": 0}]}
        assert await receive(room, "q", wait=False) is None
        await send(room, "q", {"n": 3})  # the queue still works
        assert await receive(room, "q") == {"n": 3}


async def test_closed_queue(server, credentials) -> None:
    async with connect(server, credentials, "a") as a, connect(server, credentials, "b") as b:
        await send(a, "q", {"n": 1})
        await send(a, "q", {"n": 2})
        await a.invoke("queues", "open", {"name": "idle"})
        outcome: list[Any] = []

        async def poll() -> None:
            try:
                outcome.append(await receive(b, "idle"))
            except RoomException as error:
                outcome.append(error)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(poll)
            await until(lambda: waiting(server, "idle") == 1)
            assert await a.invoke("queues", "close", {"name": "idle"}) == EmptyContent()
        # closing answers the waiting receiver at once with the closed-queue error
        [error] = outcome
        assert isinstance(error, RoomException) and error.code == 1006 and "queue idle is closed" in error.message

        assert await a.invoke("queues", "close", {"name": "q"}) == EmptyContent()
        assert await a.invoke("queues", "close", {"name": "q"}) == EmptyContent()  # again: no-op
        await refused(1006, send(a, "q", {"n": 3}), match="queue q is closed")
        await refused(1006, send(a, "q", {"n": 3}, create=True))
        await refused(1006, receive(b, "q", wait=False))
        await refused(1006, receive(b, "q"))
        # a closed queue keeps its messages and is still listed
        assert await listing(a) == {"queues": [{"name": "idle", "size": 0}, {"name": "q", "size": 2}]}
        assert await a.invoke("queues", "open", {"name": "q"}) == EmptyContent()  # reopens
        await send(a, "q", {"n": 3})
        assert [await receive(b, "q") for _ in range(3)] == [{"n": 1}, {"n": 2}, {"n": 3}]
        # drain works on a closed queue
        await send(a, "q", {"n": 4})
        await a.invoke("queues", "close", {"name": "q"})
        await a.invoke("queues", "drain", {"name": "q"})
        await a.invoke("queues", "open", {"name": "q"})
        assert await receive(b, "q", wait=False) is None


# --- long polls ------------------------------------------------------------------------------


async def test_long_poll_is_woken_by_another_participants_send(server, credentials) -> None:
    async with connect(server, credentials, "worker") as worker, connect(server, credentials, "producer") as producer:
        received: list[Any] = []

        async def poll() -> None:
            received.append(await receive(worker, "jobs"))

        with trio.fail_after(10):  # the server-side timeout is 30 s: only a wake-up ends this early
            async with trio.open_nursery() as nursery:
                nursery.start_soon(poll)
                await until(lambda: waiting(server, "jobs") == 1)
                # the waiting poll does not block other requests on the same connection
                assert await listing(worker) == {"queues": [{"name": "jobs", "size": 0}]}
                await send(producer, "jobs", {"task": "wake up"})
        assert received == [{"task": "wake up"}]
        assert await listing(producer) == {"queues": [{"name": "jobs", "size": 0}]}


async def test_long_poll_times_out_with_empty(server, credentials) -> None:
    state(server).receive_timeout = 0.05
    async with connect(server, credentials) as room:
        assert await receive(room, "q") is None
        assert waiting(server, "q") == 0
        await send(room, "q", {"after": "timeout"})
        assert await receive(room, "q", wait=False) == {"after": "timeout"}


async def test_concurrent_receivers_get_distinct_messages(server, credentials) -> None:
    async with connect(server, credentials, "a") as a, connect(server, credentials, "b") as b:
        got: list[Any] = []

        async def poll(room: RoomConnection) -> None:
            got.append(await receive(room, "q"))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for n in range(6):
                    nursery.start_soon(poll, a if n % 2 else b)
                await until(lambda: waiting(server, "q") == 6)
                for n in range(6):
                    await send(a, "q", {"n": n})
        assert sorted(m["n"] for m in got) == list(range(6))
        # and messages already queued, taken by concurrent non-waiting receives
        for n in range(20):
            await send(a, "q", {"n": n})
        taken: list[Any] = []

        async def take(room: RoomConnection) -> None:
            taken.append(await receive(room, "q", wait=False))

        async with trio.open_nursery() as nursery:
            for n in range(24):
                nursery.start_soon(take, a if n % 2 else b)
        assert taken.count(None) == 4
        assert sorted(m["n"] for m in taken if m is not None) == list(range(20))


async def test_a_disconnected_poll_takes_nothing(server, credentials) -> None:
    async with connect(server, credentials, "producer") as producer:
        async with connect(server, credentials, "worker") as worker:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive, worker, "q")
                await until(lambda: waiting(server, "q") == 1)
                nursery.cancel_scope.cancel()
        # the worker left while its poll was waiting
        await until(lambda: waiting(server, "q") == 0)
        await send(producer, "q", {"n": 1})
        await send(producer, "q", {"n": 2})
        async with connect(server, credentials, "next") as following:
            assert await receive(following, "q", wait=False) == {"n": 1}
            assert await receive(following, "q", wait=False) == {"n": 2}


async def test_an_abandoned_poll_does_not_swallow_the_next_message(server, credentials) -> None:
    """A poll given up on without disconnecting (the protocol cannot tell the server) stays
    registered; the next poll is served first, so the message reaches it."""
    async with connect(server, credentials, "worker") as worker, connect(server, credentials, "producer") as producer:
        with trio.move_on_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive, worker, "q")
                await until(lambda: waiting(server, "q") == 1)
                nursery.cancel_scope.cancel()  # abandoned client-side
        received: list[Any] = []

        async def poll() -> None:
            received.append(await receive(worker, "q"))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(poll)
                await until(lambda: waiting(server, "q") == 2)
                await send(producer, "q", {"n": 1})
        assert received == [{"n": 1}]
        assert waiting(server, "q") == 1  # the stale poll is still there, holding nothing
        await send(producer, "q", {"n": 2})  # ... and it takes the next one, which the client drops
        await until(lambda: waiting(server, "q") == 0)


# --- grants, arguments, limits -----------------------------------------------------------------


async def test_no_queues_grant_refuses_every_tool(server, credentials) -> None:
    async with connect(server, credentials, "owner") as owner:
        await send(owner, "q", {"n": 1})
        async with connect(server, credentials, "nobody", scope=ApiScope(messaging={})) as nobody:
            for tool, arguments in [
                ("list", {}),
                ("open", {"name": "q"}),
                ("send", {"name": "q", "message": {}}),
                ("receive", {"name": "q", "wait": False}),
                ("drain", {"name": "q"}),
                ("close", {"name": "q"}),
            ]:
                await refused(1001, nobody.invoke("queues", tool, arguments), match="does not grant the queues API")
        assert await listing(owner) == {"queues": [{"name": "q", "size": 1}]}  # untouched


async def test_grant_lists_restrict_queues(server, credentials) -> None:
    scope = ApiScope(queues=QueuesGrant(send=["outbox"], receive=["inbox"], list=False))
    async with connect(server, credentials, "owner") as owner, connect(server, credentials, "limited", scope=scope) as limited:
        await send(owner, "inbox", {"for": "limited"})
        await send(limited, "outbox", {"from": "limited"})
        await refused(1001, send(limited, "inbox", {"n": 1}), match="sending to queue 'inbox'")
        assert await receive(limited, "inbox") == {"for": "limited"}
        await refused(1001, receive(limited, "outbox", wait=False), match="receiving from queue 'outbox'")
        await refused(1001, listing(limited), match="listing queues")
        for tool in ("open", "drain", "close"):
            await refused(1001, limited.invoke("queues", tool, {"name": "elsewhere"}))
        assert await limited.invoke("queues", "drain", {"name": "inbox"}) == EmptyContent()  # receive list
        assert await limited.invoke("queues", "close", {"name": "outbox"}) == EmptyContent()  # send list
        assert await limited.invoke("queues", "open", {"name": "outbox"}) == EmptyContent()
        assert await listing(owner) == {"queues": [{"name": "inbox", "size": 0}, {"name": "outbox", "size": 1}]}
        assert await receive(owner, "outbox") == {"from": "limited"}


@pytest.mark.parametrize(
    "tool, arguments, match",
    [
        ("send", {"name": "q"}, "invalid arguments for queues.send"),
        ("send", {"name": "q", "message": [1, 2]}, "invalid arguments for queues.send"),
        ("send", {"name": "q", "message": "text"}, "invalid arguments for queues.send"),
        ("send", {"name": 5, "message": {}}, "invalid arguments for queues.send"),
        ("send", {"name": "", "message": {}}, "a queue name is 1 to 256 characters"),
        ("send", {"name": "x" * 257, "message": {}}, "a queue name is 1 to 256 characters"),
        ("send", {"name": "q", "message": {}, "create": "yes"}, "invalid arguments for queues.send"),
        ("send", "plain text", "expects json arguments"),
        ("receive", {"name": "q", "wait": "no"}, "invalid arguments for queues.receive"),
        ("receive", {}, "invalid arguments for queues.receive"),
        ("receive", None, "expects json arguments"),
        ("open", {"queue": "q"}, "invalid arguments for queues.open"),
        ("drain", {"name": None}, "invalid arguments for queues.drain"),
        ("close", [], "invalid arguments for queues.close"),
        ("list", "text", "expects json arguments"),
        ("list", [1], "invalid arguments for queues.list"),
    ],
)
async def test_malformed_arguments(server, credentials, tool: str, arguments: Any, match: str) -> None:
    async with connect(server, credentials) as room:
        await refused(1002, room.invoke("queues", tool, arguments if not isinstance(arguments, list) else JsonContent(json=arguments)), match=match)
        assert await listing(room) == {"queues": []}  # nothing was created or stored


async def test_message_size_limit(server, credentials) -> None:
    async with connect(server, credentials) as room:
        await refused(1002, send(room, "q", {"blob": "x" * (1024 * 1024)}), match=r"bytes of JSON, more than the limit of 1048576")
        largest = {"blob": "x" * (1024 * 1024 - len('{"blob":""}'))}
        await send(room, "q", largest)  # exactly 1 MiB of JSON is accepted
        state(server).max_message_bytes = 100
        await refused(1002, send(room, "q", {"blob": "y" * 100}), match="more than the limit of 100")
        assert await listing(room) == {"queues": [{"name": "q", "size": 1}]}
        assert await receive(room, "q") == largest


async def test_full_queue_refuses_sends(server, credentials) -> None:
    state(server).max_queue_bytes = 50
    async with connect(server, credentials) as room:
        await send(room, "q", {"pad": "x" * 30})
        await refused(1008, send(room, "q", {"pad": "y" * 30}), match="queue q is full")
        await receive(room, "q")
        await send(room, "q", {"pad": "y" * 30})  # room again once it was taken
        assert await receive(room, "q") == {"pad": "y" * 30}


async def test_unknown_tool(server, credentials) -> None:
    async with connect(server, credentials) as room:
        await refused(1003, room.invoke("queues", "peek", {"name": "q"}), match="no tool named 'peek'")


# --- durability --------------------------------------------------------------------------------


async def test_messages_and_closed_state_survive_a_restart(tmp_path, credentials) -> None:
    data_dir = tmp_path / "data"
    async with running_server(data_dir, credentials) as server:
        async with connect(server, credentials) as room:
            for n in range(10):
                await send(room, "jobs", {"n": n})
            assert await receive(room, "jobs") == {"n": 0}  # handed out: gone for good
            await send(room, "parked", {"kept": "while closed"})
            await room.invoke("queues", "close", {"name": "parked"})
            await send(room, "drained", {"n": 1})
            await room.invoke("queues", "drain", {"name": "drained"})
            await room.invoke("queues", "open", {"name": "empty"})
    async with running_server(data_dir, credentials) as server:
        async with connect(server, credentials) as room:
            assert await listing(room) == {
                "queues": [
                    {"name": "drained", "size": 0},
                    {"name": "empty", "size": 0},
                    {"name": "jobs", "size": 9},
                    {"name": "parked", "size": 1},
                ]
            }
            assert [await receive(room, "jobs", wait=False) for _ in range(9)] == [{"n": n} for n in range(1, 10)]
            await refused(1006, receive(room, "parked", wait=False))
            await room.invoke("queues", "open", {"name": "parked"})
            assert await receive(room, "parked") == {"kept": "while closed"}
            await send(room, "jobs", {"n": 10})  # sequence numbers carry on after the restart
            assert await receive(room, "jobs") == {"n": 10}


_CHILD_SERVER = """
import sys, trio
from pathlib import Path
from meshagent_trio.server import Credentials, Server, ServerConfig

async def main():
    config = ServerConfig(data_dir=Path(sys.argv[1]), credentials=Credentials(*sys.argv[2:5]), port=0)
    server = Server(config)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve)
        print(port, flush=True)

trio.run(main)
"""


async def test_acknowledged_sends_survive_sigkill(tmp_path, credentials) -> None:
    data_dir = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD_SERVER, str(data_dir), credentials.project_id, credentials.key_id, credentials.secret],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        port = int(await trio.to_thread.run_sync(child.stdout.readline))  # type: ignore[union-attr]
        url = f"ws://127.0.0.1:{port}/rooms/{ROOM}"
        async with RoomConnection.open(url, mint(credentials, ROOM)) as room:
            for n in range(25):
                await send(room, "jobs", {"n": n})
            child.send_signal(signal.SIGKILL)  # no shutdown of any kind
            await trio.to_thread.run_sync(child.wait)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    async with running_server(data_dir, credentials) as server:
        async with connect(server, credentials) as room:
            assert [await receive(room, "jobs", wait=False) for _ in range(26)] == [{"n": n} for n in range(25)] + [None]


# --- a model of the queue, under random operations and restarts ------------------------------

_names = st.sampled_from(["a", "b"])
_operations = st.lists(
    st.one_of(
        st.tuples(st.just("send"), _names, st.integers(0, 1000), st.booleans()),
        st.tuples(st.just("receive"), _names, st.booleans()),
        st.tuples(st.just("drain"), _names),
        st.tuples(st.just("close"), _names),
        st.tuples(st.just("open"), _names),
        st.tuples(st.just("restart"),),
    ),
    max_size=25,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=_operations)
def test_queues_follow_a_fifo_model_across_restarts(operations: list[tuple[Any, ...]]) -> None:
    credentials = Credentials("project", "key", "secret-" + "x" * 20)

    async def run(data_dir: Path) -> None:
        model: dict[str, tuple[bool, list[int]]] = {}  # name -> (closed, messages)
        index = 0
        while True:
            async with running_server(data_dir, credentials) as server:
                async with connect(server, credentials) as room:
                    while index < len(operations):
                        operation, *rest = operations[index]
                        index += 1
                        if operation == "restart":
                            break
                        await apply(room, model, operation, *rest)
                    assert await listing(room) == {"queues": [{"name": n, "size": len(m)} for n, (_, m) in sorted(model.items())]}
            if index >= len(operations):
                return

    async def apply(room: RoomConnection, model: dict[str, tuple[bool, list[int]]], operation: str, name: str, *rest: Any) -> None:
        closed, messages = model.get(name, (False, []))
        exists = name in model
        if operation == "send":
            value, create = rest
            if not exists and not create:
                await refused(5001, send(room, name, {"v": value}, create=False))
            elif closed:
                await refused(1006, send(room, name, {"v": value}, create=create))
            else:
                await send(room, name, {"v": value}, create=create)
                model[name] = (False, messages + [value])
        elif operation == "receive":
            (create,) = rest
            if not exists and not create:
                await refused(5001, receive(room, name, create=False, wait=False))
            elif closed:
                await refused(1006, receive(room, name, wait=False))
            else:
                got = await receive(room, name, create=create, wait=False)
                assert got == ({"v": messages[0]} if messages else None)
                model[name] = (False, messages[1:])
        elif operation in ("drain", "close"):
            if not exists:
                await refused(5001, room.invoke("queues", operation, {"name": name}))
            else:
                assert await room.invoke("queues", operation, {"name": name}) == EmptyContent()
                model[name] = (closed or operation == "close", [] if operation == "drain" else messages)
        elif operation == "open":
            assert await room.invoke("queues", "open", {"name": name}) == EmptyContent()
            model[name] = (False, messages)

    with tempfile.TemporaryDirectory() as directory:
        trio.run(run, Path(directory) / "data")
