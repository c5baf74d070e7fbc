"""`meshagent-trio room storage`: the room's files. Room paths are written `room://PATH`
(`room://` alone is the root); any other path is a local one.

`cp` streams in every direction (local to room, room to local, room to room) a bounded block at
a time, so files of any size copy in bounded memory; a download is written to a temporary file
next to its destination and renamed into place only once complete."""

from __future__ import annotations

import fnmatch
import glob
import os
import posixpath
import sys
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Optional

import typer

from .common import (
    CommandFailed,
    OutputFormat,
    OutputOption,
    ProjectIdOption,
    RoomOption,
    example,
    group,
    in_room,
    room_session,
    run,
)
from .output import print_data

EXTENSIONS = (
    "room storage mv",
    "room storage stat",
    "room storage url",
    "room storage cp --progress",
    "room storage cp --no-progress",
    "room storage ls --output",
    "room storage ls -o",
    "room storage exists --output",
    "room storage exists -o",
    "room storage presign --output",
    "room storage presign -o",
)

app = group("Manage storage for a room.")

SCHEME = "room://"
#: Bytes per chunk asked of the server (downloads) and offered to it (uploads).
CHUNK_SIZE = 512 * 1024

PathArgument = Annotated[str, typer.Argument(help="A room path: room://PATH (room:// is the root).")]
RecursiveOption = Annotated[bool, typer.Option("-r", "--recursive", help="Include folders and their contents.")]


# --- paths -------------------------------------------------------------------------------------


def is_room_path(text: str) -> bool:
    return text.startswith(SCHEME)


def room_path(text: str, hint: str = "PATH", *, bare: bool = False) -> str:
    """The storage path of `room://PATH` (`""` for the root). With `bare`, a path without a
    scheme names a room path too (for commands that have no local meaning)."""
    if is_room_path(text):
        return text[len(SCHEME) :].strip("/")
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise typer.BadParameter(f"{scheme}:// paths are not supported: write room://PATH", param_hint=hint)
    if bare:
        return text.strip("/")
    raise typer.BadParameter(f"{text!r} is not a room path: write room://PATH", param_hint=hint)


def shown(path: str) -> str:
    return SCHEME + path


def _join(folder: str, name: str) -> str:
    return posixpath.join(folder, name) if folder else name


def _entry_record(path: str, entry: Any) -> dict[str, Any]:
    return {
        "path": path,
        "name": entry.name,
        "is_folder": entry.is_folder,
        "size": entry.size,
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
    }


async def _stat(storage: Any, path: str) -> Any:
    entry = await storage.stat(path=path)
    if entry is None:
        raise CommandFailed(f"{shown(path)} does not exist")
    return entry


async def _matches(storage: Any, path: str) -> list[tuple[str, Any]]:
    """(path, entry) of what `path` names: itself, or what a glob in its last segment matches
    (an entry whose name really holds the glob characters wins)."""
    if glob.has_magic(path):
        entry = await storage.stat(path=path)
        if entry is not None:
            return [(path, entry)]
        folder, pattern = posixpath.split(path)
        found = [(_join(folder, e.name), e) for e in await storage.list(path=folder) if fnmatch.fnmatchcase(e.name, pattern)]
        if not found:
            raise CommandFailed(f"nothing matches {shown(path)}")
        return sorted(found, key=lambda item: item[0])
    return [(path, await _stat(storage, path))]


async def _walk(storage: Any, folder: str) -> list[tuple[str, Any]]:
    """(path, entry) of everything under `folder`, depth first, sorted by name."""
    found: list[tuple[str, Any]] = []
    for entry in sorted(await storage.list(path=folder), key=lambda e: e.name):
        path = _join(folder, entry.name)
        found.append((path, entry))
        if entry.is_folder:
            found.extend(await _walk(storage, path))
    return found


# --- inspecting --------------------------------------------------------------------------------


@app.command(
    "ls",
    epilog=example(
        "meshagent-trio room storage ls --room lobby room://",
        "meshagent-trio room storage ls --room lobby -r room://docs -o json",
        "meshagent-trio room storage ls --room lobby 'room://docs/*.md'",
    ),
)
def ls(
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    path: PathArgument = SCHEME,
    recursive: RecursiveOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the files and folders at a room path (a glob in its last segment matches names)."""
    target = room_path(path)

    async def body() -> list[dict[str, Any]]:
        async with room_session(room) as client:
            storage = client.storage
            if not glob.has_magic(target):
                entry = await _stat(storage, target)
                if entry.is_folder:
                    listed = await _walk(storage, target) if recursive else [
                        (_join(target, e.name), e) for e in sorted(await storage.list(path=target), key=lambda e: e.name)
                    ]
                    return [_entry_record(p, e) for p, e in listed]
                return [_entry_record(target, entry)]
            rows = []
            for found, entry in await _matches(storage, target):
                rows.append(_entry_record(found, entry))
                if recursive and entry.is_folder:
                    rows.extend(_entry_record(p, e) for p, e in await _walk(storage, found))
            return rows

    rows = run(body)
    if output is OutputFormat.json:
        print_data(rows, output)
        return
    table = [{**row, "path": row["path"] + ("/" if row["is_folder"] else "")} for row in rows]
    print_data(table, output, columns=["path", "size", "updated_at"], empty="(empty)")


@app.command(
    "stat",
    epilog=example("meshagent-trio room storage stat --room lobby room://docs/readme.md", "meshagent-trio room storage stat --room lobby room://docs -o json"),
)
def stat(path: PathArgument, project_id: ProjectIdOption = None, room: RoomOption = None, output: OutputOption = OutputFormat.table) -> None:
    """Show a file's or folder's name, kind, size and times."""
    target = room_path(path, bare=True)

    async def body() -> dict[str, Any]:
        async with room_session(room) as client:
            return _entry_record(target, await _stat(client.storage, target))

    print_data(run(body), output)


@app.command(
    "exists",
    epilog=example("meshagent-trio room storage exists --room lobby room://docs/readme.md", "meshagent-trio room storage exists --room lobby room://docs -o json"),
)
def exists(path: PathArgument, project_id: ProjectIdOption = None, room: RoomOption = None, output: OutputOption = OutputFormat.table) -> None:
    """Say whether a file or folder exists at a room path."""
    target = room_path(path, bare=True)

    found = in_room(room, lambda client: client.storage.exists(path=target))
    if output is OutputFormat.json:
        print_data({"path": target, "exists": found}, output)
    else:
        print(f"'{shown(target)}' {'exists' if found else 'does NOT exist'} in the room's storage.")


@app.command("get", epilog=example("meshagent-trio room storage get --room lobby room://docs/readme.md"))
def get(
    path: PathArgument,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    encoding: Annotated[str, typer.Option("--encoding", help="The file's text encoding.")] = "utf-8",
) -> None:
    """Print a room file's text (streamed: any size)."""
    import codecs

    target = room_path(path)
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    except LookupError:
        raise typer.BadParameter(f"unknown encoding {encoding!r}", param_hint="--encoding") from None

    async def body() -> None:
        last = ""  # the last text written: a final newline is added when the file lacks one
        async with room_session(room) as client:
            async with client.storage.download_stream(path=target, chunk_size=CHUNK_SIZE) as stream:
                async for data in stream.iter_bytes():
                    text = decoder.decode(data)
                    sys.stdout.write(text)
                    last = text or last
        text = decoder.decode(b"", final=True)
        sys.stdout.write(text)
        last = text or last
        if last and not last.endswith("\n"):
            sys.stdout.write("\n")

    run(body)


@app.command(
    "presign",
    epilog=example("meshagent-trio room storage presign --room lobby room://docs/readme.md", "curl -O \"$(meshagent-trio room storage presign --room lobby room://a.bin)\""),
)
def presign(path: PathArgument, project_id: ProjectIdOption = None, room: RoomOption = None, output: OutputOption = OutputFormat.table) -> None:
    """Print a temporary URL a room file can be downloaded from over HTTP."""
    target = room_path(path, bare=True)

    url = in_room(room, lambda client: client.storage.download_url(path=target))
    if output is OutputFormat.json:
        print_data({"path": target, "url": url}, output)
    else:
        print(url)


app.command("url", hidden=True, help="Print a temporary download URL of a room file (as presign).", epilog=example("meshagent-trio room storage url --room lobby room://docs/readme.md"))(presign)


# --- changing ------------------------------------------------------------------------------------


@app.command("rm", epilog=example("meshagent-trio room storage rm --room lobby room://old.txt", "meshagent-trio room storage rm --room lobby -r room://drafts"))
def rm(path: PathArgument, project_id: ProjectIdOption = None, room: RoomOption = None, recursive: RecursiveOption = False) -> None:
    """Remove room files (a glob in the last segment matches names); folders need -r."""
    target = room_path(path)
    if not target:
        raise typer.BadParameter("refusing to remove the storage root: remove what it holds, e.g. -r 'room://*'", param_hint="PATH")

    async def body() -> None:
        async with room_session(room) as client:
            found = await _matches(client.storage, target)
            for item, entry in found:
                if entry.is_folder and not recursive:
                    raise typer.BadParameter(f"{shown(item)} is a folder: pass -r to remove it with its contents", param_hint="--recursive")
            for item, entry in found:
                await client.storage.delete(item, recursive=True if entry.is_folder else None)
                print(f"removed {shown(item)}", file=sys.stderr)

    run(body)


@app.command("mv", epilog=example("meshagent-trio room storage mv --room lobby room://draft.md room://docs/final.md", "meshagent-trio room storage mv --room lobby room://a.txt room://archive/"))
def mv(
    source_path: Annotated[str, typer.Argument(help="The room path to move: room://PATH.")],
    dest_path: Annotated[str, typer.Argument(help="Where to: room://PATH (into it when it is a folder or ends with /).")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
) -> None:
    """Move or rename a room file or folder (a file at the destination is replaced)."""
    source = room_path(source_path, "SOURCE_PATH")
    destination = room_path(dest_path, "DEST_PATH")
    if not source:
        raise typer.BadParameter("the storage root cannot be moved", param_hint="SOURCE_PATH")

    async def body() -> None:
        async with room_session(room) as client:
            storage = client.storage
            target = destination
            if dest_path.endswith("/") or not target:
                target = _join(target, posixpath.basename(source))
            else:
                entry = await storage.stat(path=target)
                if entry is not None and entry.is_folder:
                    target = _join(target, posixpath.basename(source))
            await storage.move(source_path=source, destination_path=target, overwrite=True)
            print(f"moved {shown(source)} to {shown(target)}", file=sys.stderr)

    run(body)


# --- copying ---------------------------------------------------------------------------------


@dataclass
class Copy:
    """One file to copy: `source` and `dest` are room paths when `*_room`, local paths else."""

    source: str
    dest: str
    size: int | None
    source_room: bool
    dest_room: bool
    folder: bool = False  # a local folder to make (so that empty room folders are copied too)


@app.command(
    "cp",
    epilog=example(
        "meshagent-trio room storage cp --room lobby ./report.pdf room://docs/",
        "meshagent-trio room storage cp --room lobby room://docs/report.pdf ./report.pdf",
        "meshagent-trio room storage cp --room lobby -r room://docs room://backup/docs",
        "meshagent-trio room storage cp --room lobby -r ./site room://site",
    ),
)
def cp(
    source_path: Annotated[str, typer.Argument(help="What to copy: a local path or room://PATH (a glob in the last segment matches names).")],
    dest_path: Annotated[str, typer.Argument(help="Where to: a local path or room://PATH (into it when it is a folder or ends with /).")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    recursive: RecursiveOption = False,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Draw a progress bar (default: when stderr is a terminal).")] = None,
) -> None:
    """Copy files between this machine and the room, or within the room (streamed: any size)."""
    from .progress import transfer_bar

    source_room, dest_room = is_room_path(source_path), is_room_path(dest_path)
    source = room_path(source_path, "SOURCE_PATH") if source_room else _local(source_path, "SOURCE_PATH")
    dest = room_path(dest_path, "DEST_PATH") if dest_room else _local(dest_path, "DEST_PATH")
    if not (source_room or dest_room):
        raise typer.BadParameter("one of SOURCE_PATH and DEST_PATH must be a room path (room://PATH)", param_hint="SOURCE_PATH")

    async def body() -> tuple[int, int]:
        async with room_session(room) as client:
            storage = client.storage
            plan = await _plan(storage, source, source_room, dest, dest_room, dest_path, recursive)
            total = sum(item.size or 0 for item in plan)
            with transfer_bar(f"copy {source_path}", total, show=progress) as advance:
                for item in plan:
                    await _copy(storage, item, advance)
            return sum(not item.folder for item in plan), total

    from rich.filesize import decimal

    count, total = run(body)
    print(f"copied {count} file{'s' if count != 1 else ''} ({decimal(total)}) to {dest_path}", file=sys.stderr)


def _local(text: str, hint: str) -> str:
    if not text:
        raise typer.BadParameter("a path is needed", param_hint=hint)
    if "://" in text:
        room_path(text, hint)  # raises: an unsupported scheme
    return text


async def _plan(
    storage: Any, source: str, source_room: bool, dest: str, dest_room: bool, dest_text: str, recursive: bool
) -> list[Copy]:
    """Every file the copy writes, checked before anything is written."""
    # (path, is_folder, size) of the named sources
    if source_room:
        named = [(path, entry.is_folder, entry.size) for path, entry in await _matches(storage, source)]
    else:
        named = _local_matches(source)
    for path, is_folder, _size in named:
        if is_folder and not recursive:
            shown_path = shown(path) if source_room else path
            raise typer.BadParameter(f"{shown_path} is a folder: pass -r to copy it with its contents", param_hint="--recursive")

    if dest_room:
        existing = await storage.stat(path=dest)
        dest_is_folder = existing is not None and existing.is_folder
        dest_exists = existing is not None
    else:
        dest_is_folder, dest_exists = os.path.isdir(dest), os.path.lexists(dest)
    into = dest_is_folder or dest_text.endswith(("/", os.sep)) or (dest_room and not dest)
    if len(named) > 1 and not into:
        if dest_exists:
            raise typer.BadParameter(f"{dest_text} is not a folder: several sources need a folder to copy into", param_hint="DEST_PATH")
        into = True

    join = _join if dest_room else os.path.join
    plan: list[Copy] = []
    for path, is_folder, size in named:
        name = posixpath.basename(path) if source_room else os.path.basename(os.path.abspath(path))
        target = join(dest, name) if into and name else dest
        if not is_folder:
            plan.append(Copy(path, target, size, source_room, dest_room))
            continue
        if source_room:
            for inner, entry in await _walk(storage, path):
                relative = posixpath.relpath(inner, path) if path else inner
                if dest_room:
                    if not entry.is_folder:
                        plan.append(Copy(inner, _join(target, relative), entry.size, True, True))
                    continue
                if any(part in ("", ".", "..") or "\\" in part for part in relative.split("/")):
                    raise CommandFailed(f"the room named a file {inner!r}, which is not a safe local name")
                local = os.path.join(target, *relative.split("/"))
                plan.append(Copy(inner, local, None if entry.is_folder else entry.size, True, False, folder=entry.is_folder))
        else:
            for folder, _dirs, files in sorted(os.walk(path)):
                for file in sorted(files):
                    local = os.path.join(folder, file)
                    relative = os.path.relpath(local, path).replace(os.sep, "/")
                    plan.append(Copy(local, _join(target, relative), os.path.getsize(local), False, True))
    for item in plan:
        if item.source_room == item.dest_room and item.source == item.dest:
            raise typer.BadParameter(f"{shown(item.source)} would be copied onto itself", param_hint="DEST_PATH")
    return plan


def _local_matches(source: str) -> list[tuple[str, bool, int | None]]:
    paths = [source]
    if glob.has_magic(source) and not os.path.lexists(source):
        paths = sorted(glob.glob(source))
        if not paths:
            raise CommandFailed(f"nothing matches {source}")
    found = []
    for path in paths:
        if not os.path.exists(path):
            raise CommandFailed(f"{path}: no such file or folder")
        found.append((path, os.path.isdir(path), None if os.path.isdir(path) else os.path.getsize(path)))
    return found


async def _copy(storage: Any, item: Copy, advance: Callable[[int], None]) -> None:
    if item.source_room and item.dest_room:
        async with storage.download_stream(path=item.source, chunk_size=CHUNK_SIZE) as stream:
            chunks = _counted(stream.iter_bytes(), advance)
            try:
                await storage.upload_stream(
                    path=item.dest, chunks=chunks, overwrite=True, chunk_size=CHUNK_SIZE, size=stream.size, mime_type=stream.mime_type
                )
            finally:
                await chunks.aclose()
    elif item.source_room:
        if item.folder:
            os.makedirs(item.dest, exist_ok=True)
        else:
            await _download(storage, item.source, item.dest, advance)
    else:
        await _upload(storage, item.source, item.dest, advance)


async def _counted(chunks: Any, advance: Callable[[int], None]) -> Any:
    async for data in chunks:
        advance(len(data))
        yield data


async def _upload(storage: Any, local: str, dest: str, advance: Callable[[int], None]) -> None:
    import trio

    async with await trio.open_file(local, "rb") as file:
        size = os.fstat(file.fileno()).st_size

        async def chunks() -> Any:
            remaining = size
            while remaining > 0:
                data = await file.read(min(CHUNK_SIZE, remaining))
                if not data:
                    raise CommandFailed(f"{local} shrank while it was being copied")
                remaining -= len(data)
                advance(len(data))
                yield data

        source = chunks()
        try:
            await storage.upload_stream(path=dest, chunks=source, overwrite=True, chunk_size=CHUNK_SIZE, size=size)
        finally:
            await source.aclose()


async def _download(storage: Any, source: str, local: str, advance: Callable[[int], None]) -> None:
    import tempfile

    import trio

    folder = os.path.dirname(os.path.abspath(local))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(local)}.", suffix=".part")
    os.close(handle)
    try:
        async with await trio.open_file(temporary, "wb") as file:
            async with storage.download_stream(path=source, chunk_size=CHUNK_SIZE) as stream:
                async for data in stream.iter_bytes():
                    await file.write(data)
                    advance(len(data))
        os.replace(temporary, local)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
