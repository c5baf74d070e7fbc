"""`room.subscribe(...)` iterators end cleanly: buffered events survive `close()`, a waiting
reader wakes up, and no memory channel is left open (AnyIO warns about those when they are
garbage collected), on Trio and on AnyIO (asyncio and Trio)."""

from __future__ import annotations

import gc
import warnings

import anyio
import pytest

from meshagent_core.client.room import RoomClosed
from meshagent_core.client.storage import FileUpdated
from roomtest import mint

pytestmark = pytest.mark.anyio


def _room(name: str, client_variant: tuple[str, str]) -> str:
    return f"subscriptions-{name}-{'-'.join(client_variant)}"


def _unclosed_channel_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) and "MemoryObject" in str(w.message)]


async def _three_file_events(room, buffered) -> None:
    """Upload three files and wait until `buffered` holds their three events."""
    async with room.storage.file_events() as witness:
        for n in range(3):
            await room.storage.upload(path=f"f{n}.txt", data=b"x", overwrite=True)
        with anyio.fail_after(10):
            for _ in range(3):
                await witness.__anext__()
    assert buffered is not None


async def test_closing_keeps_the_buffered_events_and_closes_the_channel(client_module, client_variant, local_server) -> None:
    room_name = _room("buffered", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            subscription = room.subscribe(FileUpdated)
            await _three_file_events(room, subscription)
            subscription.close()
            subscription.close()  # idempotent
            paths = [event.path async for event in subscription]
            assert paths == ["f0.txt", "f1.txt", "f2.txt"]
            with pytest.raises(StopAsyncIteration):
                await subscription.__anext__()
            del subscription
            gc.collect()
        assert _unclosed_channel_warnings(caught) == []


async def test_closing_wakes_a_waiting_reader(client_module, client_variant, local_server) -> None:
    room_name = _room("waiting", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            subscription = room.subscribe(FileUpdated)
            seen: list[object] = []
            ended = anyio.Event()

            async def reader() -> None:
                async for event in subscription:
                    seen.append(event)
                ended.set()

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(reader)
                await anyio.sleep(0.05)  # the reader is now waiting for an event
                subscription.close()
                with anyio.fail_after(10):
                    await ended.wait()
            assert seen == []
            del subscription, reader
            gc.collect()
        assert _unclosed_channel_warnings(caught) == []


async def test_a_cancelled_reader_leaves_the_subscription_usable(client_module, client_variant, local_server) -> None:
    room_name = _room("cancelled", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        subscription = room.subscribe(FileUpdated)
        with anyio.move_on_after(0.05) as scope:
            await subscription.__anext__()
        assert scope.cancelled_caught
        await _three_file_events(room, subscription)
        with anyio.fail_after(10):
            assert (await subscription.__anext__()).path == "f0.txt"
        subscription.close()
        assert [event.path async for event in subscription] == ["f1.txt", "f2.txt"]


async def test_the_room_closing_ends_subscriptions_after_their_events(client_module, client_variant, local_server) -> None:
    room_name = _room("room-closes", client_variant)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
            files = room.subscribe(FileUpdated)
            closed = room.subscribe(RoomClosed)
            await _three_file_events(room, files)
        # Left unclosed by their owner: the room closed them, and what they buffered is kept.
        assert [event.path async for event in files] == ["f0.txt", "f1.txt", "f2.txt"]
        assert [event async for event in closed] == []
        del files, closed, room
        gc.collect()
    assert _unclosed_channel_warnings(caught) == []
