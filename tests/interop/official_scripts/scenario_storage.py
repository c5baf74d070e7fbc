"""Storage with the official client: upload, exists, stat, list, download, move, delete, error
answers, and a second official participant receiving the file events."""

from __future__ import annotations

import hashlib
import os

from _official import connect, expect_error, observed, run, timed, wait_until


def entry(e) -> dict:
    return {
        "name": e.name,
        "is_folder": e.is_folder,
        "size": e.size,
        "created_at": None if e.created_at is None else e.created_at.isoformat(),
        "updated_at": None if e.updated_at is None else e.updated_at.isoformat(),
    }


async def main() -> dict:
    small = b"hello, local meshagent\n"
    big = os.urandom(300 * 1024 + 17)  # several pulls of 64 KiB
    streamed_parts = [os.urandom(10_000), b"", os.urandom(100_000), os.urandom(1)]
    streamed = b"".join(streamed_parts)

    async with connect("writer") as writer, connect("watcher") as watcher:
        events: list[dict] = []
        watcher.storage.on("file.updated", lambda **kw: events.append({"event": "file.updated", **kw}))
        watcher.storage.on("file.deleted", lambda **kw: events.append({"event": "file.deleted", **kw}))
        watcher.storage.on("file.moved", lambda **kw: events.append({"event": "file.moved", **kw}))
        observed["writer_id"] = writer.local_participant.id
        observed["watcher_id"] = watcher.local_participant.id

        observed["exists_before"] = await timed("exists (missing)", writer.storage.exists(path="docs/hello.txt"))
        observed["stat_missing"] = await timed("stat (missing)", writer.storage.stat(path="docs/hello.txt"))
        await timed("upload small", writer.storage.upload(path="docs/hello.txt", data=small))
        await timed("upload big", writer.storage.upload(path="docs/big.bin", data=big))

        async def chunks():
            for part in streamed_parts:
                yield part

        await timed("upload_stream", writer.storage.upload_stream(path="docs/streamed.bin", chunks=chunks(), chunk_size=32 * 1024))
        await timed("upload empty", writer.storage.upload(path="empty.txt", data=b""))

        observed["exists_after"] = await timed("exists", writer.storage.exists(path="docs/hello.txt"))
        observed["exists_folder"] = await timed("exists folder", writer.storage.exists(path="docs"))
        stat = await timed("stat", writer.storage.stat(path="docs/hello.txt"))
        observed["stat"] = None if stat is None else entry(stat)
        folder = await timed("stat folder", writer.storage.stat(path="docs"))
        observed["stat_folder"] = None if folder is None else entry(folder)
        observed["list_root"] = sorted((entry(e) for e in await timed("list root", writer.storage.list(path=""))), key=lambda e: e["name"])
        observed["list_docs"] = sorted((entry(e) for e in await timed("list docs", writer.storage.list(path="docs"))), key=lambda e: e["name"])

        file = await timed("download small", writer.storage.download(path="docs/hello.txt"))
        observed["download_small"] = {"data": file.data.decode(), "name": file.name, "mime_type": file.mime_type}
        file = await timed("download big (other participant)", watcher.storage.download(path="docs/big.bin"))
        observed["download_big_ok"] = file.data == big
        observed["download_big_size"] = len(file.data)
        file = await timed("download streamed", writer.storage.download(path="docs/streamed.bin"))
        observed["download_streamed_ok"] = file.data == streamed
        file = await timed("download empty", writer.storage.download(path="empty.txt"))
        observed["download_empty"] = {"size": len(file.data), "name": file.name}

        sizes = []

        async def collect():
            async for chunk in writer.storage.download_stream(path="docs/big.bin", chunk_size=100_000):
                sizes.append((chunk.headers.get("kind"), len(chunk.data)))

        await timed("download_stream chunk_size=100000", collect())
        observed["download_stream_kinds"] = sizes

        # Errors: overwrite refused, missing file, path escaping the room, no overwrite on move.
        observed["upload_exists_error"] = await expect_error("upload over existing", writer.storage.upload(path="docs/hello.txt", data=b"x"))
        observed["after_refused_overwrite"] = (await timed("download after refused overwrite", writer.storage.download(path="docs/hello.txt"))).data.decode()
        await timed("upload overwrite", writer.storage.upload(path="docs/hello.txt", data=b"v2", overwrite=True))
        observed["after_overwrite"] = (await timed("download after overwrite", writer.storage.download(path="docs/hello.txt"))).data.decode()
        observed["download_missing_error"] = await expect_error("download missing", writer.storage.download(path="nope/missing.bin"))
        observed["escape_error"] = await expect_error("upload ../", writer.storage.upload(path="../outside.txt", data=b"x"))
        observed["exists_escape_error"] = await expect_error("exists ../", writer.storage.exists(path="../../etc/passwd"))

        await timed("move", writer.storage.move(source_path="docs/big.bin", destination_path="archive/big-moved.bin"))
        observed["moved_source_exists"] = await timed("exists moved source", writer.storage.exists(path="docs/big.bin"))
        moved = await timed("download moved", writer.storage.download(path="archive/big-moved.bin"))
        observed["moved_ok"] = moved.data == big
        observed["move_onto_existing_error"] = await expect_error(
            "move onto existing", writer.storage.move(source_path="docs/streamed.bin", destination_path="docs/hello.txt")
        )
        observed["move_missing_error"] = await expect_error(
            "move missing", writer.storage.move(source_path="docs/none.bin", destination_path="docs/none2.bin")
        )

        await timed("delete", writer.storage.delete("docs/hello.txt"))
        observed["deleted_exists"] = await timed("exists deleted", writer.storage.exists(path="docs/hello.txt"))
        observed["delete_missing_error"] = await expect_error("delete missing", writer.storage.delete("docs/hello.txt"))
        observed["delete_folder_error"] = await expect_error("delete non-empty folder", writer.storage.delete("docs"))
        await timed("delete folder recursive", writer.storage.delete("docs", recursive=True))
        observed["folder_exists_after_recursive_delete"] = await timed("exists docs", writer.storage.exists(path="docs"))
        observed["list_root_final"] = sorted(e["name"] for e in map(entry, await timed("list root final", writer.storage.list(path=""))))

        expected = {
            ("file.updated", "docs/hello.txt"),
            ("file.updated", "docs/big.bin"),
            ("file.updated", "docs/streamed.bin"),
            ("file.moved", "archive/big-moved.bin"),
            ("file.deleted", "docs/hello.txt"),
        }

        def seen() -> set:
            found = set()
            for e in events:
                found.add((e["event"], e.get("destination_path") or e.get("path")))
            return found

        observed["all_events_arrived"] = await wait_until("file events", lambda: expected <= seen())
        observed["events"] = events
        observed["sha_big"] = hashlib.sha256(big).hexdigest()
    return observed


run(main)
