"""`room.developer` against the real local server, on Trio and on AnyIO (asyncio and Trio)."""

from __future__ import annotations

import logging

import anyio
import pytest

from meshagent_core import BinaryContent, ConnectionLost, RoomException, TextContent
from meshagent_core.client.developer import LogRequest, LogStream, RoomLogEvent, _log_event
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import DeveloperGrant, MessagingGrant
from roomtest import mint

pytestmark = pytest.mark.anyio


def _room(name: str, client_variant: tuple[str, str]) -> str:
    return f"developer-{name}-{'-'.join(client_variant)}"


async def _take(logs: LogStream, count: int) -> list[RoomLogEvent]:
    events: list[RoomLogEvent] = []
    with anyio.fail_after(10):
        async for event in logs:
            events.append(event)
            if len(events) == count:
                break
    return events


async def test_log_levels_and_logs(client_module, client_variant, local_server) -> None:
    room_name = _room("levels", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        async with room.developer.logs() as logs:
            await room.developer.log(type="deploy", data={"version": 3, "ok": True})
            await room.developer.info("hello", extra={"k": 1})
            await room.developer.warning("careful")
            await room.developer.error("broken", extra={"trace": ["a", "b"]})
            assert await _take(logs, 4) == [
                RoomLogEvent(type="deploy", data={"version": 3, "ok": True}),
                RoomLogEvent(type="info", data={"message": "hello", "extra": {"k": 1}}),
                RoomLogEvent(type="warning", data={"message": "careful", "extra": {}}),
                RoomLogEvent(type="error", data={"message": "broken", "extra": {"trace": ["a", "b"]}}),
            ]
        # Leaving the block closed the stream.
        assert not room.connection._streams
        with pytest.raises(NotImplementedError):
            room.developer.on("log", print)


async def test_fire_and_forget_entries_reach_another_participant_in_order(client_module, client_variant, local_server) -> None:
    room_name = _room("watch", client_variant)
    url = local_server.room_url(room_name)
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="alice")) as alice:
        async with client_module.connect(url, mint(local_server.credentials, room_name, name="bob")) as bob:
            async with bob.developer.logs() as logs:
                requests = [
                    alice.developer.info("one"),
                    alice.developer.warning("two", extra={"n": 2}),
                    alice.developer.error("three"),
                    alice.developer.log_nowait(type="custom", data={"n": 4}),
                ]
                assert all(isinstance(request, LogRequest) for request in requests)
                assert await _take(logs, 4) == [
                    RoomLogEvent(type="info", data={"message": "one", "extra": {}}),
                    RoomLogEvent(type="warning", data={"message": "two", "extra": {"n": 2}}),
                    RoomLogEvent(type="error", data={"message": "three", "extra": {}}),
                    RoomLogEvent(type="custom", data={"n": 4}),
                ]
            for request in requests:
                await request  # each was answered without error
                assert request.done

            # A plain `async for` subscribes on its first step: log until the watcher sees an
            # entry (entries written before the subscription are not replayed); aclose() ends it.
            stream = bob.developer.logs()
            seen = anyio.Event()
            first: list[RoomLogEvent] = []

            async def watch() -> None:
                first.append(await stream.__anext__())
                seen.set()

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(watch)
                    while not seen.is_set():
                        await alice.developer.log(type="late", data={})
            assert first == [RoomLogEvent(type="late", data={})]
            await stream.aclose()
            assert not bob.connection._streams


async def test_errors_and_grants(client_module, client_variant, local_server, caplog) -> None:
    room_name = _room("grants", client_variant)
    url = local_server.room_url(room_name)
    no_developer = ApiScope(messaging=MessagingGrant())
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="none", scope=no_developer)) as room:
        with pytest.raises(RoomException) as denied_log:
            await room.developer.log(type="x", data={})
        assert denied_log.value.code == 1001
        for level in (room.developer.info, room.developer.warning, room.developer.error):
            with pytest.raises(RoomException) as denied_level:
                await level("x")
            assert denied_level.value.code == 1001
        with caplog.at_level(logging.WARNING, logger="meshagent_core.client"):
            forgotten = room.developer.info("nobody awaits this")
            with pytest.raises(RoomException):
                await room.developer.warning("sent after it")  # entries go in order: the first is done
        assert forgotten.done
        assert any("unable to write developer log info" in record.getMessage() for record in caplog.records)
        with pytest.raises(RoomException) as denied_logs:
            async with room.developer.logs():
                pass
        assert denied_logs.value.code == 1001

    write_only = ApiScope(developer=DeveloperGrant(logs=False))
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="writer", scope=write_only)) as room:
        await room.developer.info("allowed")
        with pytest.raises(RoomException) as denied_read:
            async for _ in room.developer.logs():
                pass
        assert denied_read.value.code == 1001
        await room.developer.log(type="still", data={"usable": True})
    with pytest.raises(ConnectionLost):
        room.developer.info("the room is closed")


def test_log_chunks_are_validated_as_the_official_client_does() -> None:
    assert _log_event(BinaryContent(headers={"type": "t"})) == RoomLogEvent(type="t", data={})
    assert _log_event(BinaryContent(headers={"type": "t"}, data=b'{"a": 1}')) == RoomLogEvent(type="t", data={"a": 1})
    for chunk, message in (
        (BinaryContent(headers={"type": 3}), "without a valid type"),
        (BinaryContent(headers={}), "without a valid type"),
        (BinaryContent(headers={"type": "t"}, data=b"[1]"), "invalid JSON data"),
        (BinaryContent(headers={"type": "t"}, data=b"{nope"), "invalid JSON data"),
        (BinaryContent(headers={"type": "t"}, data=b"\xff"), "invalid JSON data"),
        (TextContent(text="x"), "unexpected return type"),
    ):
        with pytest.raises(RoomException, match=message) as info:
            _log_event(chunk)
        assert info.value.code == 1100
