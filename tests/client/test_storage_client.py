"""`room.storage` against the real local server, on Trio and on AnyIO (asyncio and Trio)."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from datetime import datetime
from typing import AsyncIterator

import anyio
import pytest

from meshagent_core import BinaryContent, FileContent, JsonContent, RoomException
from meshagent_core.client.storage import (
    DownloadStream,
    FileDeleted,
    FileMoved,
    FileUpdated,
    LocalFileChanged,
    StorageEntry,
    _open_local_file,
    _read_local_file,
    decode_strict,
    expect_json,
    guess_mime_type,
)
from meshagent_core.toolkits.storage import DownloadStarted, ExistsOutput, ListOutput, StatOutput
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import MessagingGrant, StorageGrant, StoragePathGrant
from roomtest import mint

pytestmark = pytest.mark.anyio


def _room(name: str, client_variant: tuple[str, str]) -> str:
    return f"storage-{name}-{'-'.join(client_variant)}"


async def _chunks(*parts: bytes, consumed: list[int] | None = None) -> AsyncIterator[bytes]:
    for part in parts:
        if consumed is not None:
            consumed.append(len(part))
        yield part


async def test_unary_operations(client_module, client_variant, local_server) -> None:
    room_name = _room("unary", client_variant)
    token = mint(local_server.credentials, room_name)
    async with client_module.connect(local_server.room_url(room_name), token) as room:
        storage = room.storage
        assert await storage.exists(path="docs/a.md") is False
        assert await storage.stat(path="docs/a.md") is None
        assert await storage.list(path="docs") == []

        await storage.upload(path="docs/a.md", data=b"# hello")
        await storage.upload(path="docs/b.bin", data=b"\x00\x01\x02")
        assert await storage.exists(path="docs/a.md") is True
        assert await storage.exists(path="docs") is True

        entry = await storage.stat(path="docs/a.md")
        assert isinstance(entry, StorageEntry)
        assert (entry.name, entry.is_folder, entry.size) == ("a.md", False, 7)
        assert isinstance(entry.updated_at, datetime) and isinstance(entry.created_at, datetime)
        folder = await storage.stat(path="docs")
        assert folder is not None and folder.is_folder and folder.name == "docs"

        listed = await storage.list(path="docs")
        assert [(e.name, e.is_folder, e.size) for e in listed] == [("a.md", False, 7), ("b.bin", False, 3)]
        assert [(e.name, e.is_folder) for e in await storage.list(path=".")] == [("docs", True)]

        file = await storage.download(path="docs/a.md")
        assert file == FileContent(name="a.md", mime_type="text/markdown", data=b"# hello")

        await storage.move(source_path="docs/a.md", destination_path="archive/a.md")
        assert await storage.exists(path="docs/a.md") is False
        assert (await storage.download(path="archive/a.md")).data == b"# hello"

        await storage.upload(path="docs/b.bin", data=b"replaced", overwrite=True)
        assert (await storage.download(path="docs/b.bin")).data == b"replaced"
        await storage.move(source_path="docs/b.bin", destination_path="archive/a.md", overwrite=True)
        assert (await storage.download(path="archive/a.md")).data == b"replaced"

        await storage.delete("archive/a.md")
        assert await storage.exists(path="archive/a.md") is False
        await storage.upload(path="tree/x/y.txt", data=b"y")
        await storage.delete("tree", recursive=True)
        assert await storage.exists(path="tree") is False

        await storage.upload(path="empty.txt", data=b"")
        assert await storage.download(path="empty.txt") == FileContent(name="empty.txt", mime_type="text/plain", data=b"")


async def test_file_events_seen_by_a_second_participant(client_module, client_variant, local_server) -> None:
    room_name = _room("events", client_variant)
    url = local_server.room_url(room_name)
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="alice")) as alice:
        async with client_module.connect(url, mint(local_server.credentials, room_name, name="bob")) as bob:
            async with bob.storage.file_events() as events:
                await alice.storage.upload(path="notes/one.txt", data=b"1")
                await alice.storage.move(source_path="notes/one.txt", destination_path="notes/two.txt")
                await alice.storage.delete("notes/two.txt")
                seen = []
                with anyio.fail_after(10):
                    async for event in events:
                        seen.append(event)
                        if len(seen) == 3:
                            break
            alice_id = alice.local_participant.id
            assert seen == [
                FileUpdated(path="notes/one.txt", participant_id=alice_id),
                FileMoved(source_path="notes/one.txt", destination_path="notes/two.txt", participant_id=alice_id),
                FileDeleted(path="notes/two.txt", participant_id=alice_id),
            ]
            with pytest.raises(NotImplementedError):
                bob.storage.on("file.updated", print)


async def test_errors(client_module, client_variant, local_server) -> None:
    room_name = _room("errors", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        storage = room.storage
        with pytest.raises(RoomException) as missing:
            await storage.download(path="nope.txt")
        assert missing.value.code == 3001
        with pytest.raises(RoomException) as missing_move:
            await storage.move(source_path="nope.txt", destination_path="other.txt")
        assert missing_move.value.code == 3001
        with pytest.raises(RoomException) as missing_delete:
            await storage.delete("nope.txt")
        assert missing_delete.value.code == 3001

        await storage.upload(path="f.txt", data=b"first")
        await storage.upload(path="g.txt", data=b"second")
        with pytest.raises(RoomException) as exists:
            await storage.upload(path="f.txt", data=b"again")
        assert exists.value.code == 3005
        with pytest.raises(RoomException) as exists_move:
            await storage.move(source_path="g.txt", destination_path="f.txt")
        assert exists_move.value.code == 3005
        assert (await storage.download(path="f.txt")).data == b"first"

        for bad in ("../escape.txt", "a//b.txt", "a\\b.txt"):
            with pytest.raises(RoomException) as invalid:
                await storage.upload(path=bad, data=b"x")
            assert invalid.value.code == 3004, bad
        with pytest.raises(RoomException) as invalid_stat:
            await storage.stat(path="../x")
        assert invalid_stat.value.code == 3004

        await storage.upload(path="full/inner.txt", data=b"x")
        with pytest.raises(RoomException) as not_empty:
            await storage.delete("full")
        assert not_empty.value.code == 3002

        url = await storage.download_url(path="f.txt")  # served: tests/server/test_download_url.py
        assert "/room-files/" in url and "signature=" in url
        with pytest.raises(RoomException) as no_url_missing:
            await storage.download_url(path="nope.txt")
        assert no_url_missing.value.code == 3001

        # The connection is still fine after every error.
        assert await storage.exists(path="f.txt") is True


async def test_missing_grants(client_module, client_variant, local_server) -> None:
    room_name = _room("grants", client_variant)
    url = local_server.room_url(room_name)
    async with client_module.connect(url, mint(local_server.credentials, room_name)) as owner:
        await owner.storage.upload(path="ro/readme.txt", data=b"read me")

    no_storage = mint(local_server.credentials, room_name, name="nostorage", scope=ApiScope(messaging=MessagingGrant()))
    async with client_module.connect(url, no_storage) as room:
        for call in (
            room.storage.exists(path="ro/readme.txt"),
            room.storage.list(path="ro"),
            room.storage.download(path="ro/readme.txt"),
            room.storage.upload(path="ro/new.txt", data=b"x"),
            room.storage.delete("ro/readme.txt"),
        ):
            with pytest.raises(RoomException) as denied:
                await call
            assert denied.value.code == 1001

    read_only = ApiScope(storage=StorageGrant(paths=[StoragePathGrant(path="ro", read_only=True)]))
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="reader", scope=read_only)) as room:
        assert (await room.storage.download(path="ro/readme.txt")).data == b"read me"
        with pytest.raises(RoomException) as denied_write:
            await room.storage.upload(path="ro/new.txt", data=b"x")
        assert denied_write.value.code == 1001
        with pytest.raises(RoomException) as denied_move:
            await room.storage.move(source_path="ro/readme.txt", destination_path="ro/moved.txt")
        assert denied_move.value.code == 1001
        assert await room.storage.exists(path="ro/new.txt") is False


async def test_two_megabyte_round_trip(client_module, client_variant, local_server) -> None:
    room_name = _room("large", client_variant)
    payload = os.urandom(2 * 1024 * 1024 + 13)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        await room.storage.upload(path="big/blob.bin", data=payload)
        assert (await room.storage.stat(path="big/blob.bin")).size == len(payload)  # type: ignore[union-attr]
        file = await room.storage.download(path="big/blob.bin")
        assert (file.name, file.mime_type) == ("blob.bin", "application/octet-stream")
        assert file.data == payload

        # The official chunk view: a start chunk, then data chunks of at most chunk_size bytes.
        chunk_size = 300_000
        async with room.storage.download_stream(path="big/blob.bin", chunk_size=chunk_size) as stream:
            assert isinstance(stream, DownloadStream)
            assert (stream.name, stream.size) == ("blob.bin", len(payload))
            chunks = [chunk async for chunk in stream]
        assert all(isinstance(chunk, BinaryContent) for chunk in chunks)
        assert chunks[0].headers == {"kind": "start", "name": "blob.bin", "mime_type": "application/octet-stream", "size": len(payload)}
        assert chunks[0].data == b""
        assert all(chunk.headers == {"kind": "data"} and 0 < len(chunk.data) <= chunk_size for chunk in chunks[1:])
        assert len(chunks) == 1 + -(-len(payload) // chunk_size)
        assert b"".join(chunk.data for chunk in chunks) == payload

        # Plain iteration and iter_bytes() give the same bytes.
        assert b"".join([data async for data in room.storage.download_stream(path="big/blob.bin").iter_bytes()]) == payload


async def test_upload_stream_rebuffers_to_the_pulled_size(client_module, client_variant, local_server) -> None:
    room_name = _room("rebuffer", client_variant)
    # Caller chunks that do not match the server's pull size (256 KiB): tiny, odd, and larger.
    parts = [b"a", os.urandom(1000), b"", os.urandom(300_000), os.urandom(7), os.urandom(262_144), os.urandom(70_001)]
    expected = b"".join(parts)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        consumed: list[int] = []
        await room.storage.upload_stream(path="s/with-size.bin", chunks=_chunks(*parts, consumed=consumed), size=len(expected))
        assert len(consumed) == len(parts)
        assert (await room.storage.download(path="s/with-size.bin")).data == expected

        await room.storage.upload_stream(
            path="s/no-size.txt", chunks=_chunks(*parts), chunk_size=1000, mime_type="application/x-test"
        )
        assert (await room.storage.download(path="s/no-size.txt")).data == expected

        # Pull-driven: a refused upload never reads the caller's chunks.
        untouched: list[int] = []
        with pytest.raises(RoomException) as exists:
            await room.storage.upload_stream(path="s/no-size.txt", chunks=_chunks(b"x", consumed=untouched))
        assert exists.value.code == 3005 and untouched == []

        # A declared size the chunks do not match is refused and nothing is written.
        with pytest.raises(RoomException) as short:
            await room.storage.upload_stream(path="s/short.bin", chunks=_chunks(b"12345"), size=10)
        assert short.value.code == 1002
        assert await room.storage.exists(path="s/short.bin") is False


async def test_failed_upload_source_writes_nothing(client_module, client_variant, local_server) -> None:
    room_name = _room("abort", client_variant)

    async def failing() -> AsyncIterator[bytes]:
        yield os.urandom(300_000)  # more than one pull: the source is read again
        raise ValueError("disk on fire")

    cancelled = anyio.CancelScope()

    async def cancelling() -> AsyncIterator[bytes]:
        yield os.urandom(300_000)
        cancelled.cancel()
        await anyio.sleep_forever()
        yield b""  # pragma: no cover

    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        async with room.storage.file_events() as events:
            with pytest.raises(ValueError, match="disk on fire"):
                await room.storage.upload_stream(path="partial.bin", chunks=failing())
            with cancelled:
                await room.storage.upload_stream(path="cancelled.bin", chunks=cancelling())
            assert cancelled.cancelled_caught

            # The abandoned uploads end their input abnormally, so the server commits nothing:
            # the first file event is the one of the upload that follows them.
            await room.storage.upload(path="after.bin", data=b"ok")
            with anyio.fail_after(10):
                first = await events.__anext__()
            assert first == FileUpdated(path="after.bin", participant_id=room.local_participant.id)
        assert await room.storage.exists(path="partial.bin") is False
        assert await room.storage.exists(path="cancelled.bin") is False
        assert (await room.storage.download(path="after.bin")).data == b"ok"


async def test_cancelled_download_leaves_the_connection_usable(client_module, client_variant, local_server) -> None:
    room_name = _room("cancel", client_variant)
    payload = os.urandom(1024 * 1024)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        await room.storage.upload(path="big.bin", data=payload)

        received = bytearray()
        with anyio.CancelScope() as scope:
            async for data in room.storage.download_stream(path="big.bin", chunk_size=16 * 1024).iter_bytes():
                received += data
                if len(received) >= 32 * 1024:
                    scope.cancel()  # the next step of the download is cancelled
        assert scope.cancelled_caught
        assert bytes(received) == payload[: len(received)] and len(received) < len(payload)

        # Leaving an `async with` early closes the download too.
        async with room.storage.download_stream(path="big.bin", chunk_size=16 * 1024) as stream:
            async for chunk in stream:
                if chunk.headers["kind"] == "data":
                    break

        assert (await room.storage.download(path="big.bin")).data == payload
        assert await room.storage.exists(path="big.bin") is True


async def test_upload_file(client_module, client_variant, local_server, tmp_path) -> None:
    room_name = _room("from-file", client_variant)
    local = tmp_path / "report.md"
    local.write_bytes(b"# quarterly\n" * 1000)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        async with room.storage.file_events() as events:
            await room.storage.upload_file(path="docs/report.md", local_path=local)
            with anyio.fail_after(10):
                assert await events.__anext__() == FileUpdated(path="docs/report.md", participant_id=room.local_participant.id)
        file = await room.storage.download(path="docs/report.md")
        assert file == FileContent(name="report.md", mime_type="text/markdown", data=local.read_bytes())

        # Same rules as `upload`: no overwrite without `overwrite`; str paths; name and MIME type.
        with pytest.raises(RoomException) as exists:
            await room.storage.upload_file(path="docs/report.md", local_path=str(empty))
        assert exists.value.code == 3005
        assert (await room.storage.download(path="docs/report.md")).data == local.read_bytes()
        await room.storage.upload_file(path="docs/report.md", local_path=str(empty), overwrite=True, mime_type="application/x-empty")
        assert await room.storage.download(path="docs/report.md") == FileContent(name="report.md", mime_type="application/x-empty", data=b"")


async def test_upload_file_refuses_what_is_not_a_readable_file(client_module, client_variant, local_server, tmp_path) -> None:
    room_name = _room("bad-file", client_variant)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        with pytest.raises(FileNotFoundError) as missing:
            await room.storage.upload_file(path="a.bin", local_path=tmp_path / "missing.bin")
        assert str(tmp_path / "missing.bin") in str(missing.value)
        with pytest.raises(IsADirectoryError) as folder:
            await room.storage.upload_file(path="a.bin", local_path=tmp_path)
        assert "folder" in str(folder.value) and str(tmp_path) in str(folder.value)
        with pytest.raises(ValueError, match="not a regular file"):
            await room.storage.upload_file(path="a.bin", local_path=fifo)  # never opened: it would block
        # Nothing reached the room, and the connection is as good as before.
        assert await room.storage.exists(path="a.bin") is False
        assert await room.storage.list(path="") == []


async def test_upload_file_streams_a_big_file_in_bounded_memory(client_module, client_variant, local_server, tmp_path) -> None:
    room_name = _room("big-file", client_variant)
    local = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(local, "wb") as out:
        for _ in range(24):  # 24 MiB, written a MiB at a time
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)
        del block
    size = local.stat().st_size
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        tracemalloc.start()
        try:
            await room.storage.upload_file(path="big/big.bin", local_path=local)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # Read a block at a time as the server pulls: the file is never all in memory.
        assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB while uploading a {size / 2**20:.0f} MiB file"
        assert (await room.storage.stat(path="big/big.bin")).size == size  # type: ignore[union-attr]
        assert hashlib.sha256((await room.storage.download(path="big/big.bin")).data).digest() == digest.digest()


async def test_a_local_file_that_changes_size_uploads_nothing(client_module, client_variant, local_server, tmp_path) -> None:
    """The size declared is the size at open: a file that then grows or shrinks fails the upload
    (`LocalFileChanged`) and the room gets no truncated or mixed file."""
    room_name = _room("changed-file", client_variant)
    local = tmp_path / "log.txt"
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        backend = room.backend
        for change, message in ((lambda: local.write_bytes(b"x" * 300_000 + b"more"), "grew"), (lambda: local.write_bytes(b"x" * 1000), "shrank")):
            local.write_bytes(b"x" * 300_000)
            handle, size = await backend.run_sync_in_thread(_open_local_file, str(local))
            try:
                change()  # after the open, before the reads
                with pytest.raises(LocalFileChanged, match=message):
                    await room.storage.upload_stream(
                        path="log.txt", chunks=_read_local_file(backend, handle, size, str(local)), size=size
                    )
            finally:
                handle.close()
            assert await room.storage.exists(path="log.txt") is False


def test_strict_validation() -> None:
    """Answers the official client rejects are rejected with code 1100 (the real server never
    sends them, so the validation is checked directly)."""
    assert expect_json(JsonContent(json={"exists": True}), ExistsOutput, toolkit="storage", operation="exists").exists
    bad_answers = [
        (JsonContent(json={"exists": True, "extra": 1}), ExistsOutput),
        (JsonContent(json={"exists": "yes"}), ExistsOutput),
        (JsonContent(json=[True]), ExistsOutput),
        (BinaryContent(headers={}), ExistsOutput),
        (JsonContent(json={"exists": True, "name": "a", "is_folder": False, "owner": "x"}), StatOutput),
        (JsonContent(json={"files": [], "cursor": None}), ListOutput),
        (JsonContent(json={"files": [{"name": "a"}]}), ListOutput),
    ]
    for content, type in bad_answers:
        with pytest.raises(RoomException) as info:
            expect_json(content, type, toolkit="storage", operation="op")
        assert info.value.code == 1100, content
    # List entries tolerate extra keys, as the official model does.
    listed = expect_json(
        JsonContent(json={"files": [{"name": "a", "is_folder": False, "etag": "x"}]}), ListOutput, toolkit="storage", operation="list"
    )
    assert listed.files == [StorageEntry(name="a", is_folder=False)]
    with pytest.raises(RoomException) as info:
        decode_strict({"kind": "start", "name": "a", "mime_type": "b", "size": 1, "x": 2}, DownloadStarted, toolkit="storage", operation="download")
    assert info.value.code == 1100
    assert guess_mime_type("x/readme.MD") == "text/markdown"
    assert guess_mime_type("data") == "application/octet-stream"
