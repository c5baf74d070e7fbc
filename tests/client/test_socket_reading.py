"""Who reads the socket (`RoomConnection`'s module docstring): a request that is the only one in
flight is read by its own caller. These tests check that the path is taken, and that while a
caller reads, everything else still arrives; that a cancelled caller hands the socket back; and
that closing the connection under a reading caller fails its request instead of hanging.
On Trio and on AnyIO (asyncio and Trio), against the real local server."""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anyio
import pytest

from meshagent_core import ConnectionLost
from meshagent_core.client.connection import _Outcome
from meshagent_core.client.tools import Toolkit, tool
from roomtest import mint, record_own_reads

pytestmark = pytest.mark.anyio

#: A safety net so a broken feature fails instead of hanging; never an assertion about time.
LIMIT = 10


class Gate:
    """A hosted tool that answers only once `release` is set."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.release = anyio.Event()

        @tool
        async def wait() -> str:
            self.entered.set()
            await self.release.wait()
            return "released"

        self.toolkit = Toolkit(name="gate", tools=[wait])


@asynccontextmanager
async def host_and_caller(client_module: Any, local_server: Any, test: str, variant: tuple[str, str]) -> AsyncIterator[tuple[Any, Any, Gate]]:
    room = f"reads-{test}-{'-'.join(variant)}"
    url, credentials = local_server.room_url(room), local_server.credentials
    gate = Gate()
    with anyio.fail_after(LIMIT):
        async with client_module.connect(url, mint(credentials, room, name="host")) as host:
            async with client_module.connect(url, mint(credentials, room, name="caller")) as caller:
                async with host.agents.host(gate.toolkit):
                    yield host, caller, gate


def reads_its_own_answer(room: Any) -> bool:
    return isinstance(room.connection._socket_reader, _Outcome)


async def test_sequential_calls_read_their_own_answers(client_module, client_variant, local_server) -> None:
    room = f"reads-sequential-{'-'.join(client_variant)}"
    async with client_module.connect(local_server.room_url(room), mint(local_server.credentials, room)) as client:
        reads = record_own_reads(client.connection)
        for _ in range(20):
            assert await client.storage.exists(path="nothing/here.txt") is False
        # The first call may find the reader task reading; every later one reads its own answer.
        assert len(reads) >= 19


async def test_everything_else_arrives_while_a_caller_reads(client_module, client_variant, local_server) -> None:
    async with host_and_caller(client_module, local_server, "meanwhile", client_variant) as (host, caller, gate):
        await caller.messaging.enable()
        await host.messaging.enable()
        caller_id = caller.local_participant.id
        to_caller = host.messaging.get_participant(caller_id)
        while to_caller is None:
            await anyio.sleep(0.01)
            to_caller = host.messaging.get_participant(caller_id)
        received: list[Any] = []

        async def meanwhile() -> None:
            await gate.entered.wait()
            assert reads_its_own_answer(caller)
            async with caller.messaging.messages() as messages:
                await host.messaging.send_message(to=to_caller, type="note", message={"n": 1})
                received.append(await messages.__anext__())
            # A second call: answered while the first caller reads, and routed to its caller.
            assert await caller.storage.exists(path="nothing/here.txt") is False
            assert reads_its_own_answer(caller)
            gate.release.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(meanwhile)
            assert await caller.storage.exists(path="nothing/here.txt") is False  # hands the reader's turn over
            answer = await caller.agents.invoke_tool(toolkit="gate", tool="wait", input={})
        assert answer.text == "released"
        assert [(m.type, m.message) for m in received] == [("note", {"n": 1})]


async def test_a_cancelled_caller_hands_the_socket_back(client_module, client_variant, local_server) -> None:
    async with host_and_caller(client_module, local_server, "cancelled", client_variant) as (host, caller, gate):
        await caller.storage.exists(path="nothing/here.txt")
        with anyio.CancelScope() as scope:

            async def cancel_once_reading() -> None:
                await gate.entered.wait()
                assert reads_its_own_answer(caller)
                scope.cancel()

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(cancel_once_reading)
                await caller.agents.invoke_tool(toolkit="gate", tool="wait", input={})
        assert scope.cancelled_caught
        assert not reads_its_own_answer(caller)
        # The reader task reads again: events arrive with no call in flight, and calls work.
        async with caller.storage.file_events() as events:
            await host.storage.upload(path="after-cancel.txt", data=b"x")
            event = await events.__anext__()
            assert event.path == "after-cancel.txt"
        assert await caller.storage.exists(path="after-cancel.txt") is True
        gate.release.set()


async def test_closing_the_connection_under_a_reading_caller_fails_its_call(client_module, client_variant, local_server) -> None:
    async with host_and_caller(client_module, local_server, "closed", client_variant) as (host, caller, gate):
        await caller.storage.exists(path="nothing/here.txt")
        connection = caller.connection

        async def close_once_reading() -> None:
            await gate.entered.wait()
            assert reads_its_own_answer(caller)
            connection.close_soon()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(close_once_reading)
            with pytest.raises(ConnectionLost):
                await caller.agents.invoke_tool(toolkit="gate", tool="wait", input={})
        assert connection.closed
        gate.release.set()


@pytest.mark.parametrize("seed", range(10))
async def test_mixed_calls_cancellations_and_events_lose_nothing(client_module, client_variant, local_server, seed) -> None:
    """Several tasks make calls alone, in bursts and at once, some cancelled at random moments,
    while messages arrive: every answer that is returned is right, every message arrives,
    and afterwards no call is left behind and the reader task reads again."""
    rng = random.Random(seed)
    async with host_and_caller(client_module, local_server, f"mixed-{seed}", client_variant) as (host, caller, gate):
        existing = {f"mixed/{i}.txt" for i in range(5)}
        for path in existing:
            await host.storage.upload(path=path, data=b"x")
        paths = sorted(existing | {f"mixed/missing-{i}.txt" for i in range(5)})
        await caller.messaging.enable()
        await host.messaging.enable()
        caller_id = caller.local_participant.id
        while (to_caller := host.messaging.get_participant(caller_id)) is None:
            await anyio.sleep(0.01)
        messages_sent = 40
        plans = [[rng.choice(["call", "burst", "cancelled", "pause"]) for _ in range(25)] for _ in range(4)]
        timeouts = [rng.choice([0, 0.0002, 0.001, 0.005]) for _ in range(200)]
        answered = cancelled = 0

        async def check(path: str) -> None:
            nonlocal answered
            assert await caller.storage.exists(path=path) is (path in existing)
            answered += 1

        async def worker(plan: list[str], worker_rng: random.Random) -> None:
            nonlocal cancelled
            for step in plan:
                if step == "call":
                    await check(worker_rng.choice(paths))
                elif step == "burst":
                    for _ in range(3):
                        await check(worker_rng.choice(paths))
                elif step == "cancelled":
                    with anyio.move_on_after(timeouts[worker_rng.randrange(len(timeouts))]) as scope:
                        await check(worker_rng.choice(paths))
                    cancelled += scope.cancelled_caught
                else:
                    await anyio.sleep(worker_rng.choice([0, 0.001]))

        async def send_messages() -> None:
            for n in range(messages_sent):
                await host.messaging.send_message(to=to_caller, type="mixed", message={"n": n})
                await anyio.sleep(rng.choice([0, 0, 0.001]))

        received: list[int] = []
        async with caller.messaging.messages() as messages:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(send_messages)
                for index, plan in enumerate(plans):
                    tasks.start_soon(worker, plan, random.Random(seed * 100 + index))
            async for message in messages:
                received.append(message.message["n"])
                if len(received) == messages_sent:
                    break
        assert received == list(range(messages_sent))
        assert answered > 0 and cancelled > 0  # both kinds of call happened
        connection = caller.connection
        assert not connection._outcomes  # nothing left behind, answered or abandoned
        assert not reads_its_own_answer(caller)
        # The socket is read again with no call in flight: a file event arrives.
        async with caller.storage.file_events() as events:
            await host.storage.upload(path="mixed/after.txt", data=b"y")
            assert (await events.__anext__()).path == "mixed/after.txt"
        gate.release.set()
