"""Room storage and queues (protocol/room-apis.md §2, §4), through the project's public client.

Storage: a file uploaded by one participant is seen by another (exists, stat, list) and
downloaded byte for byte, an existing file is not overwritten unless asked, a deleted file is
gone; a 1 MiB file travels as many chunks; paths that climb out of the room (`../x`) are
refused, and absolute paths never reach the server's own file system. Queues: FIFO between
participants, sizes in `list`, an empty queue answers nothing, a waiting receive is woken by
a send."""

from __future__ import annotations

import os
import uuid

import trio

from meshagent_core import ErrorCode, RoomException

from .checks_content import expect_error, remove
from .runner import Context, check, expect


@check("storage.basics", "upload, exists, stat, list, download, overwrite and delete, across two participants")
async def storage_basics(ctx: Context) -> str:
    room = ctx.new_room()
    folder = f"conformance-{uuid.uuid4().hex[:8]}/notes"
    path = f"{folder}/hello.txt"
    data = "hello from the conformance runner, é€😀\n".encode() * 3
    async with ctx.connect(room, "writer") as writer, ctx.connect(room, "reader") as reader:
        ctx.step = "checking the file does not exist yet"
        expect(await reader.storage.exists(path=path) is False, f"{path} exists in a fresh room")
        ctx.step = "uploading"
        await writer.storage.upload(path=path, data=data)
        ctx.step = "checking exists and stat from the other participant"
        expect(await reader.storage.exists(path=path) is True, "an uploaded file does not exist for another participant")
        entry = await reader.storage.stat(path=path)
        expect(entry is not None and not entry.is_folder, f"stat of the uploaded file gave {entry!r}")
        expect(entry.size in (None, len(data)), f"stat reports size {entry.size}, the file has {len(data)} bytes")  # type: ignore[union-attr]
        ctx.step = "listing its folder and the folder above"
        names = {(e.name, e.is_folder) for e in await reader.storage.list(path=folder)}
        expect(("hello.txt", False) in names, f"list({folder!r}) does not show hello.txt as a file: {sorted(names)}")
        parent = {(e.name, e.is_folder) for e in await reader.storage.list(path=folder.rsplit("/", 1)[0])}
        expect(("notes", True) in parent, f"the parent folder does not list 'notes' as a folder: {sorted(parent)}")
        ctx.step = "downloading"
        file = await reader.storage.download(path=path)
        expect(file.data == data, f"the download differs from the upload ({len(file.data)} vs {len(data)} bytes)")
        expect(file.name == "hello.txt", f"the download is named {file.name!r}, not 'hello.txt'")
        ctx.step = "uploading over the existing file without overwrite"
        await expect_error(
            writer.storage.upload(path=path, data=b"replaced"),
            "uploading over an existing file without overwrite",
            {ErrorCode.STORAGE_ALREADY_EXISTS, ErrorCode.ALREADY_EXISTS},
        )
        expect((await reader.storage.download(path=path)).data == data, "a refused upload changed the file")
        ctx.step = "uploading with overwrite"
        await writer.storage.upload(path=path, data=b"replaced", overwrite=True)
        expect((await reader.storage.download(path=path)).data == b"replaced", "an overwrite did not replace the file")
        ctx.step = "deleting"
        await reader.storage.delete(path)
        expect(await writer.storage.exists(path=path) is False, "a deleted file still exists")
        await expect_error(writer.storage.download(path=path), "downloading a deleted file", {ErrorCode.STORAGE_NOT_FOUND, ErrorCode.NOT_FOUND})
        await remove(writer, folder.split("/", 1)[0])
    return f"{len(data)}-byte file written, listed, read, replaced and deleted"


@check("storage.large-file", "a 1 MiB file uploads and downloads intact (many chunks, many packets)")
async def large_file(ctx: Context) -> str:
    data = os.urandom(1024 * 1024 + 123)
    path = f"conformance-{uuid.uuid4().hex[:8]}/large.bin"
    async with ctx.connect(ctx.new_room()) as client:
        ctx.step = "uploading 1 MiB"
        await client.storage.upload(path=path, data=data)
        ctx.step = "downloading 1 MiB"
        async with client.storage.download_stream(path=path) as stream:
            parts = [part async for part in stream.iter_bytes()]
        expect(b"".join(parts) == data, f"the download differs from the upload ({sum(map(len, parts))} vs {len(data)} bytes)")
        await remove(client, path.rsplit("/", 1)[0])
    return f"{len(data):,} bytes in {len(parts)} chunks"


ESCAPES = ["../conformance-escape.txt", "a/../../conformance-escape.txt", "./../conformance-escape.txt", "/../conformance-escape.txt", ".."]
CLIMBS = ["../../../../../../etc/passwd", "a/../../../../../../../etc/passwd", "../"]


@check("storage.path-escape", "paths climbing out of the room are refused; absolute paths stay inside it")
async def path_escape(ctx: Context) -> str:
    marker = f"conformance-absolute-{uuid.uuid4().hex[:8]}.txt"
    async with ctx.connect(ctx.new_room()) as client:
        for path in ESCAPES:
            ctx.step = f"uploading to {path!r}"
            await expect_error(
                client.storage.upload(path=path, data=b"escaped"), f"uploading to {path!r}", {ErrorCode.STORAGE_INVALID_PATH, ErrorCode.INVALID_REQUEST}
            )
        for path in CLIMBS:
            ctx.step = f"downloading {path!r}"
            await expect_error(
                client.storage.download(path=path), f"downloading {path!r}", {ErrorCode.STORAGE_INVALID_PATH, ErrorCode.INVALID_REQUEST}
            )
        ctx.step = "looking for the server's /etc/passwd"
        try:
            found = await client.storage.exists(path="/etc/passwd")
        except RoomException:
            found = False
        expect(found is False, "storage.exists('/etc/passwd') is true in a fresh room: absolute paths reach the server's file system")
        try:
            leaked = (await client.storage.download(path="/etc/passwd")).data
        except RoomException:
            leaked = None
        expect(leaked is None, f"storage.download('/etc/passwd') returned {len(leaked or b'')} bytes in a fresh room")
        ctx.step = f"uploading to the absolute path /{marker}"
        try:
            await client.storage.upload(path="/" + marker, data=b"inside")
        except RoomException as error:
            return f"{len(ESCAPES) + len(CLIMBS)} escapes refused; absolute paths refused ({error.code})"
        expect(
            await client.storage.exists(path=marker) and (await client.storage.download(path=marker)).data == b"inside",
            f"an upload to '/{marker}' was accepted but is not the room's {marker!r}",
        )
        await remove(client, marker)
    return f"{len(ESCAPES) + len(CLIMBS)} escapes refused; absolute paths are relative to the room"


@check("queues.basics", "send, list, receive in order across participants; an empty queue; a waiting receive")
async def queues_basics(ctx: Context) -> str:
    room = ctx.new_room()
    queue = f"conformance-{uuid.uuid4().hex[:10]}"
    messages = [{"n": n, "text": f"message {n} é"} for n in range(3)]
    async with ctx.connect(room, "producer") as producer, ctx.connect(room, "consumer") as consumer:
        ctx.step = "sending three messages"
        for message in messages:
            await producer.queues.send(name=queue, message=message)
        ctx.step = "listing the queues"
        sizes = {q.name: q.size for q in await consumer.queues.list()}
        expect(sizes.get(queue) == 3, f"queues.list shows {queue!r} with size {sizes.get(queue)!r}, not 3")
        ctx.step = "receiving them from the other participant"
        received = [await consumer.queues.receive(name=queue, wait=False) for _ in messages]
        expect(received == messages, f"received {received!r:.200} instead of the messages in order")
        expect(await consumer.queues.receive(name=queue, wait=False) is None, "an empty queue answered a message")
        sizes = {q.name: q.size for q in await producer.queues.list()}
        expect(sizes.get(queue) == 0, f"queues.list shows size {sizes.get(queue)!r} for the drained queue, not 0")
        ctx.step = "waking a waiting receive with a send"
        woken: list[object] = []

        async def wait_for_message() -> None:
            while not woken:  # a server may end a long poll with nothing: ask again
                message = await consumer.queues.receive(name=queue, wait=True)
                if message is not None:
                    woken.append(message)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_for_message)
            await producer.queues.send(name=queue, message={"wake": True})
        expect(woken == [{"wake": True}], f"the waiting receive got {woken!r}")
    return "FIFO across participants, sizes listed, long poll woken"
