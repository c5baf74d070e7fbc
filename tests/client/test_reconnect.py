"""Reconnect (protocol/wire.md §8): a lost connection comes back, a server close is final, refusals
are permanent, requests pending at the drop fail with ConnectionLost."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.abc
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


async def test_first_connection_gives_up_and_names_the_url(client_module, own_server) -> None:
    url = own_server.room_url("nobody")
    token = mint(own_server.credentials, "nobody")
    await anyio.to_thread.run_sync(own_server.stop, abandon_on_cancel=True)  # nothing listens on the port now
    with anyio.fail_after(20), pytest.raises(ConnectionLost) as info:
        async with client_module.connect(url, token, connect_timeout=1):
            pass
    message = str(info.value)
    assert message.startswith(f"could not connect to {url} within 1s: ")
    assert "meshagent-trio serve" in message


async def test_a_peer_that_never_answers_the_handshake_is_cut_off(client_module) -> None:
    accepted = []

    async def silent(stream) -> None:
        accepted.append(stream)
        await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, silent)
        with anyio.fail_after(20), pytest.raises(ConnectionLost) as info:
            async with client_module.connect(f"ws://127.0.0.1:{port}/rooms/r", "token", connect_timeout=1.5):
                pass
        group.cancel_scope.cancel()
    assert accepted, "the client never reached the silent peer"
    assert "no answer to the WebSocket handshake" in str(info.value)


def test_the_cloud_default_is_announced(caplog: pytest.LogCaptureFixture) -> None:
    from meshagent_core.client.room import meshagent_base_url, websocket_room_url

    with caplog.at_level("WARNING", logger="meshagent_core.client"):
        assert websocket_room_url(room_name="r", environ={}) == "wss://api.meshagent.com/rooms/r"
        assert meshagent_base_url(environ={}) == "https://api.meshagent.com"
    assert len([r for r in caplog.records if "MESHAGENT_API_URL is not set" in r.getMessage()]) == 2
    caplog.clear()
    with caplog.at_level("WARNING", logger="meshagent_core.client"):
        websocket_room_url(room_name="r", environ={"MESHAGENT_API_URL": "http://127.0.0.1:1"})
    assert not caplog.records
