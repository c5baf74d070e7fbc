"""`room.queues` against the real local server, on Trio and on AnyIO (asyncio and Trio)."""

from __future__ import annotations

import anyio
import pytest

from meshagent_core import EmptyContent, JsonContent, RoomException
from meshagent_core.client.queues import Queue, _queues_from_list_answer
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import MessagingGrant, QueuesGrant
from roomtest import mint

pytestmark = pytest.mark.anyio


def _room(name: str, client_variant: tuple[str, str]) -> str:
    return f"queues-{name}-{'-'.join(client_variant)}"


async def test_queue_operations(client_module, client_variant, local_server) -> None:
    room_name = _room("ops", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        queues = room.queues
        assert await queues.list() == []
        await queues.open(name="jobs")
        await queues.open(name="jobs")  # opening an open queue is a no-op
        assert await queues.list() == [Queue(name="jobs", size=0)]

        for n in range(3):
            await queues.send(name="jobs", message={"n": n, "nested": {"ok": True}})
        await queues.send(name="other", message={"x": 1})  # create=True makes the queue
        listed = sorted(await queues.list(), key=lambda q: q.name)
        assert [(q.name, q.size) for q in listed] == [("jobs", 3), ("other", 1)]

        assert await queues.receive(name="jobs", wait=False) == {"n": 0, "nested": {"ok": True}}
        assert await queues.receive(name="jobs", wait=True) == {"n": 1, "nested": {"ok": True}}
        assert await queues.receive(name="jobs", wait=False) == {"n": 2, "nested": {"ok": True}}
        assert await queues.receive(name="jobs", wait=False) is None
        assert await queues.receive(name="fresh", wait=False) is None  # create=True

        await queues.send(name="other", message={"x": 2})
        await queues.drain(name="other")
        assert await queues.receive(name="other", wait=False) is None

        await queues.send(name="jobs", message={"kept": True})
        await queues.close(name="jobs")
        for call in (queues.send(name="jobs", message={"n": 9}), queues.receive(name="jobs", wait=False)):
            with pytest.raises(RoomException) as closed:
                await call
            assert closed.value.code == 1006
        assert Queue(name="jobs", size=1) in await queues.list()  # closed queues are listed
        await queues.open(name="jobs")  # reopened, with its messages
        assert await queues.receive(name="jobs", wait=False) == {"kept": True}


async def test_receive_waits_for_another_participants_send(client_module, client_variant, local_server) -> None:
    room_name = _room("wait", client_variant)
    url = local_server.room_url(room_name)
    received: list[object] = []
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="alice")) as alice:
        async with client_module.connect(url, mint(local_server.credentials, room_name, name="bob")) as bob:
            await bob.queues.open(name="inbox")

            async def consume() -> None:
                received.append(await bob.queues.receive(name="inbox", wait=True))

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(consume)
                    await alice.queues.send(name="inbox", message={"from": "alice"})
            assert received == [{"from": "alice"}]
            assert await alice.queues.list() == [Queue(name="inbox", size=0)]


async def test_errors_and_grants(client_module, client_variant, local_server) -> None:
    room_name = _room("errors", client_variant)
    url = local_server.room_url(room_name)
    async with client_module.connect(url, mint(local_server.credentials, room_name)) as room:
        queues = room.queues
        for call in (
            queues.send(name="missing", message={}, create=False),
            queues.receive(name="missing", create=False, wait=False),
            queues.drain(name="missing"),
            queues.close(name="missing"),
        ):
            with pytest.raises(RoomException) as missing:
                await call
            assert missing.value.code == 5001
        assert await queues.list() == []

    limited = ApiScope(queues=QueuesGrant(send=["out"], receive=["in"], list=False))
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="limited", scope=limited)) as room:
        await room.queues.send(name="out", message={"ok": 1})
        assert await room.queues.receive(name="in", wait=False) is None
        for call in (
            room.queues.list(),
            room.queues.send(name="in", message={}),
            room.queues.receive(name="out", wait=False),
            room.queues.open(name="elsewhere"),
        ):
            with pytest.raises(RoomException) as denied:
                await call
            assert denied.value.code == 1001

    no_queues = ApiScope(messaging=MessagingGrant())
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="none", scope=no_queues)) as room:
        for call in (room.queues.open(name="out"), room.queues.drain(name="out"), room.queues.receive(name="out", wait=False)):
            with pytest.raises(RoomException) as denied:
                await call
            assert denied.value.code == 1001


def test_list_answer_is_read_as_the_official_client_reads_it() -> None:
    answer = JsonContent(json={"queues": [{"name": "a", "size": " 4 ", "extra": 1}, {"name": "b", "size": True}, {"name": "c", "size": 5.9}, {"name": "d", "size": "+1_000"}]})
    assert _queues_from_list_answer(answer) == [Queue("a", 4), Queue("b", 1), Queue("c", 5), Queue("d", 1000)]
    for bad in (
        EmptyContent(),
        JsonContent(json={"queues": [], "more": 1}),
        JsonContent(json={"queues": [{"name": "a"}]}),
        JsonContent(json={"queues": [{"name": "a", "size": "many"}]}),
        JsonContent(json={"queues": [{"name": 3, "size": 1}]}),
    ):
        with pytest.raises(RoomException) as info:
            _queues_from_list_answer(bad)
        assert info.value.code == 1100
