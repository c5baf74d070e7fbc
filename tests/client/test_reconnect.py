"""Reconnect (ROOM_WIRE §4.7): a lost connection comes back, a server close is final, refusals
are permanent, requests pending at the drop fail with ConnectionLost."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from meshagent_core import ConnectionLost
from meshagent_core.client.room import Disconnected, Reconnected, RoomClosed, retry_delay
from meshagent_trio.server import LocalServerProcess
from roomtest import mint

pytestmark = pytest.mark.anyio


def test_retry_delays() -> None:
    assert [retry_delay(n, bounded=False) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert [retry_delay(n, bounded=True) for n in range(4)] == [0, 0.5, 1, 2]


@pytest.fixture
def own_server(tmp_path: Path):
    with LocalServerProcess(tmp_path / "data") as server:
        yield server


async def next_of(subscription, kind: type):
    with anyio.fail_after(30):
        async for event in subscription:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"the room closed before {kind.__name__}")


async def test_lost_connection_is_restored(client_module, own_server) -> None:
    url = own_server.room_url("re")
    with anyio.fail_after(60):
        await _lost_and_restored(client_module, own_server, url)


async def _lost_and_restored(client_module, own_server, url: str) -> None:
    async with client_module.connect(url, mint(own_server.credentials, "re", name="alice"), reconnect_timeout=30) as room:
        room.local_participant.set_attribute("color", "blue")
        await room.queues.send(name="jobs", message={"n": 1}) if hasattr(room.queues, "send") else await room.invoke(
            "queues", "send", {"name": "jobs", "message": {"n": 1}}
        )
        events = room.subscribe(Disconnected, Reconnected, RoomClosed)
        failed: list[BaseException] = []

        async def waiting_receive() -> None:
            try:
                await room.invoke("queues", "receive", {"name": "never", "wait": True})
            except ConnectionLost as error:
                failed.append(error)

        async with anyio.create_task_group() as group:
            group.start_soon(waiting_receive)
            await anyio.sleep(0.1)
            first_id = room.local_participant.id
            await anyio.to_thread.run_sync(own_server.kill, abandon_on_cancel=True)  # no close frame: a transport loss
            assert isinstance(await next_of(events, Disconnected), Disconnected)
            await anyio.to_thread.run_sync(own_server.restart, abandon_on_cancel=True)
            await next_of(events, Reconnected)
        assert failed and "closed before request completed" in str(failed[0])
        assert room.local_participant.id != first_id  # a new session
        assert room.local_participant.get_attribute("color") == "blue"
        # the queued message survived the server restart and the client works again
        answer = await room.invoke("queues", "receive", {"name": "jobs", "wait": False})
        assert answer.json == {"n": 1}


async def test_server_close_is_final(client_module, own_server) -> None:
    url = own_server.room_url("final")
    async with client_module.connect(url, mint(own_server.credentials, "final"), reconnect_timeout=30) as room:
        events = room.subscribe(Disconnected, RoomClosed)
        await anyio.to_thread.run_sync(own_server.stop, abandon_on_cancel=True)  # SIGTERM: the server closes with a close frame
        closed = await next_of(events, RoomClosed)
        assert "closed" in closed.reason
        with pytest.raises(ConnectionLost) as info:
            await room.invoke("queues", "list", {})
        assert info.value.code == 1006


async def test_reconnect_timeout_gives_up(client_module, own_server) -> None:
    url = own_server.room_url("gone")
    async with client_module.connect(url, mint(own_server.credentials, "gone"), reconnect_timeout=1.5) as room:
        events = room.subscribe(RoomClosed)
        await anyio.to_thread.run_sync(own_server.kill, abandon_on_cancel=True)
        closed = await next_of(events, RoomClosed)
        assert "timed out after 1.5s" in closed.reason


async def test_refused_token_is_permanent(client_module, own_server) -> None:
    url = own_server.room_url("refused")
    with anyio.fail_after(10), pytest.raises(ConnectionLost) as info:
        async with client_module.connect(url, mint(own_server.credentials, "another-room")):
            pass
    assert info.value.code == 403 and "does not grant access" in str(info.value)


async def test_startup_waits_for_the_server(client_module, own_server) -> None:
    url = own_server.room_url("late")
    token = mint(own_server.credentials, "late")
    await anyio.to_thread.run_sync(own_server.stop, abandon_on_cancel=True)
    async with anyio.create_task_group() as group:

        async def start_later() -> None:
            await anyio.sleep(0.3)
            await anyio.to_thread.run_sync(own_server.restart, abandon_on_cancel=True)

        group.start_soon(start_later)
        async with client_module.connect(url, token, reconnect_timeout=30) as room:
            assert room.room_name == "late"
