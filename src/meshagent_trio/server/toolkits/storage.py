"""The `storage` toolkit: a room's files, under `room.storage_dir` (protocol/room-apis.md §2).

Paths are canonicalised and located by `storage_paths` (3004 for anything that is not a plain
relative path or would escape the storage); files on disk are handled by `storage_disk`.

Permissions (the caller's `storage` grant, files policy of protocol/tokens.md §5.3; no grant at all ⇒ 1001).
protocol/room-apis.md §2.2 notes that the hosted server does not gate `list`/`exists`/`stat`/`delete`; this server
gates every operation, since a read-only or folder-limited token must mean what it says:

* `exists` / `stat`: `read` on the path, or the path is listable (`can_list_directory`: listing
  its parent already reveals the same facts, and parents of a granted folder are listable);
* `list`: `can_list_directory(path)`; entries the caller could not `stat` are left out;
* `download` and `download_url`: `read`;
* `upload`: `write` on the path;
* `delete`: `delete` on the path (a subtree check for a recursive delete of a non-empty folder);
* `move`: `read` and `delete` on the source, `write` on the destination (subtree checks for a
  folder). `read` is required too because a move makes the content readable at its target.

Errors: missing path 3001; a non-empty folder deleted without `recursive` 3002; invalid path, an
escape, the root as a file target, a file where a folder is needed (or the reverse) 3004;
`upload`/`move` onto an existing path without `overwrite` 3005 (a folder is never overwritten,
with or without `overwrite`); malformed arguments or stream chunks 1002. Errors known before a
stream starts (bad path, permission, `overwrite:false` on an existing file, missing file) are the
`__response__` of the call; later ones are an `error` chunk followed by `control/close`.

Listing [inferred]: `list` of a missing folder answers `{"files": []}` (object-store semantics:
agents list `.schemas` in fresh rooms without catching errors); entries are sorted by name;
folders carry no `size`. Timestamps are UTC ISO-8601: `updated_at` is the modification time,
`created_at` the birth time where the platform has one, else the earlier of ctime and mtime.

Writes are atomic (see `storage_disk`): a failed, cancelled or abandoned upload (caller left,
input closed abnormally, size limit) leaves nothing behind, and a temporary file left by a crash
is removed the first time the room's storage is used after a restart.

Upload details: the server pulls `PULL_CHUNK_SIZE` bytes at a time, one data chunk per pull. The
whole upload may not exceed `ServerConfig.max_upload_size` (1002 when it does, also refused up
front from the declared `size`). When the
start chunk declares a `size`, the upload must deliver exactly that many bytes (1002 otherwise;
nothing is written). Missing parent folders are created. The `mime_type` of the start chunk is
kept in the extended attribute `user.meshagent.mime_type` where the filesystem supports it; the
`name` field is not stored (a download is named after the last path segment).

Download: `start` with `name`, `mime_type` (the stored one, else guessed from the extension,
else `application/octet-stream`) and `size`, then one `data` chunk per pull of at most the
requested `chunk_size` (≤0 ⇒ 64 KiB, capped at `MAX_DOWNLOAD_CHUNK`), then `control/close`. The
file is opened once, so an upload that replaces it meanwhile does not tear the download.

`download_url`: after the usual checks (path 3004, `read` 1001, existence 3001, a folder 3004)
it answers `{"url"}`: a URL of this server's HTTP front, signed and good for an hour
(`signed_downloads`), that serves the file with byte ranges whether or not the room is still
active. `download: true` asks for `Content-Disposition: attachment` (default `inline`).

Events [inferred]: after a change, `storage.file.updated` (upload committed),
`storage.file.deleted` and `storage.file.moved` go to **every** participant of the room,
including the one that caused it (protocol/room-apis.md §2.6 "all connected participants"; the official
client needs no subscription and simply raises a local event), with exactly the documented keys
and canonical paths. One event per operation: a recursive delete or a folder move sends one
event naming the folder, not one per file inside it. A `move` onto itself is a no-op without an
event.
"""

from __future__ import annotations

import logging
import os
import stat as stat_module
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import trio

from meshagent_core import BinaryContent, Content, ErrorCode, JsonContent, RoomException
from meshagent_core.tokens.grants import StorageGrant
from meshagent_core.toolkits.storage import (
    DEFAULT_CHUNK_SIZE,
    FILE_DELETED,
    FILE_MOVED,
    FILE_UPDATED,
    DeleteInput,
    DownloadData,
    DownloadStart,
    DownloadStarted,
    DownloadUrlInput,
    DownloadUrlOutput,
    ExistsOutput,
    FileDeletedEvent,
    FileMovedEvent,
    FileUpdatedEvent,
    ListOutput,
    MoveInput,
    PathInput,
    StatOutput,
    UploadPull,
    UploadStart,
)

from .. import signed_downloads
from ..toolkit import Toolkit, ToolCall, invalid_request, permission_denied
from .storage_disk import (
    AtomicUpload,
    delete_path,
    describe_for_delete,
    entry_of,
    is_folder,
    join_path,
    list_folder,
    move_path,
    open_for_download,
    sweep_data_dir,
    sweep_upload_leftovers,
)
from .storage_paths import canonical_path, invalid_path, locate, lookup, lookup_text, not_found, show

log = logging.getLogger("meshagent_trio.server")

toolkit = Toolkit("storage")

T = TypeVar("T")

#: Bytes the server asks for with each upload pull.
PULL_CHUNK_SIZE = 256 * 1024
#: Largest data chunk a download sends, whatever the caller asks for.
MAX_DOWNLOAD_CHUNK = 4 * 1024 * 1024


# --- per-room state --------------------------------------------------------------------------


class StorageState:
    """The room's real storage root, prepared (and swept of stale upload files) on first use."""

    def __init__(self, room: Any) -> None:
        self.room = room
        self.root: Path | None = None
        self._lock = trio.Lock()

    async def get_root(self) -> Path:
        if self.root is None:
            async with self._lock:
                if self.root is None:
                    self.root = await trio.to_thread.run_sync(self._prepare)
        return self.root

    def _prepare(self) -> Path:
        root = Path(os.path.realpath(self.room.storage_dir))
        sweep_upload_leftovers(root)
        return root


async def storage_root(room: Any) -> Path:
    """The room's prepared storage root (for work that lands in a room from outside a tool call)."""
    state: StorageState = room.toolkit_state("storage", StorageState)
    return await state.get_root()


async def _root(call: ToolCall) -> Path:
    return await storage_root(call.room)


def _grant(call: ToolCall) -> StorageGrant:
    grant = call.scope.storage if call.scope is not None else None
    if grant is None:
        raise permission_denied("the token does not grant the storage API")
    return grant


def _can_see(grant: StorageGrant, path: str) -> bool:
    return grant.can_read(path) or grant.can_list_directory(path)


def _can_see_canonical(grant: StorageGrant, path: str) -> bool:
    """`_can_see` for a path from `canonical_path`."""
    return grant.allows_canonical("read", path) or grant.can_list_directory_canonical(path)


def _require(allowed: bool, action: str, path: str) -> None:
    if not allowed:
        raise permission_denied(f"you do not have permission to {action} {show(path)}")


async def _run(function: Any, *args: Any) -> Any:
    return await trio.to_thread.run_sync(function, *args)


def _json(value: msgspec.Struct) -> JsonContent:
    return JsonContent(json=msgspec.to_builtins(value))


# --- unary tools -----------------------------------------------------------------------------


# `exists` and `stat` are a few stat calls on the local disk: once the room's storage root is
# prepared, the dispatcher answers them inline (`answer_now`), with no task and no worker thread
# (measured: a worker thread round trip was about a third of a sequential `exists`).


def _prepared_root(call: ToolCall) -> Path | None:
    state: StorageState = call.room.toolkit_state("storage", StorageState)
    return state.root


def _exists_answer(root: Path, call: ToolCall) -> Content:
    grant = _grant(call)
    path = canonical_path(call.json_arguments(PathInput).path)
    _require(_can_see_canonical(grant, path), "read", path)
    _, info = lookup_text(str(root), path)
    return _json(ExistsOutput(exists=info is not None))


def _stat_answer(root: Path, call: ToolCall) -> Content:
    grant = _grant(call)
    path = canonical_path(call.json_arguments(PathInput).path)
    _require(_can_see_canonical(grant, path), "read", path)
    _, info = lookup_text(str(root), path)
    if info is None:
        return _json(StatOutput(exists=False))
    entry = entry_of(path.rpartition("/")[2], info)
    return _json(StatOutput(exists=True, **msgspec.structs.asdict(entry)))


def _inline(answer: Any) -> Any:
    def answer_now(call: ToolCall) -> Any:
        root = _prepared_root(call)
        return NotImplemented if root is None else answer(root, call)

    return answer_now


@toolkit.tool("exists")
async def exists(call: ToolCall) -> Content:
    return _exists_answer(await _root(call), call)


@toolkit.tool("stat")
async def stat(call: ToolCall) -> Content:
    return _stat_answer(await _root(call), call)


exists.answer_now = _inline(_exists_answer)  # type: ignore[attr-defined]
stat.answer_now = _inline(_stat_answer)  # type: ignore[attr-defined]


@toolkit.tool("list")
async def list_(call: ToolCall) -> Content:
    """A missing folder lists as empty (agents list `.schemas` in fresh rooms)."""
    grant = _grant(call)
    path = canonical_path(call.json_arguments(PathInput).path)
    _require(grant.can_list_directory(path), "list", path)
    entries = await _run(list_folder, await _root(call), path)
    return _json(ListOutput(files=[entry for entry in entries if _can_see(grant, join_path(path, entry.name))]))


@toolkit.tool("delete")
async def delete(call: ToolCall) -> None:
    grant = _grant(call)
    arguments = call.json_arguments(DeleteInput)
    path = canonical_path(arguments.path)
    if path == "":
        raise invalid_path("the storage root cannot be deleted")
    _require(grant.can_delete(path), "delete", path)
    root = await _root(call)
    location, is_folder, has_contents = await _run(describe_for_delete, root, path)
    if is_folder and has_contents:
        if not arguments.recursive:
            raise RoomException(
                f"{show(path)} is a folder that is not empty: pass recursive=true to delete it with its contents",
                code=ErrorCode.STORAGE_RECURSIVE_REQUIRED,
            )
        _require(grant.can_delete(path, recursive=True), "delete everything in", path)
    await _run(delete_path, location, path, bool(arguments.recursive))
    call.room.broadcast(FILE_DELETED, FileDeletedEvent(path=path, participant_id=call.caller.id))


@toolkit.tool("move")
async def move(call: ToolCall) -> None:
    grant = _grant(call)
    arguments = call.json_arguments(MoveInput)
    source = canonical_path(arguments.source_path)
    destination = canonical_path(arguments.destination_path)
    if source == "" or destination == "":
        raise invalid_path("the storage root cannot be moved or replaced")
    if destination.startswith(source + "/"):
        raise invalid_path(f"cannot move {show(source)} into itself ({show(destination)})")
    _require(grant.can_read(source) and grant.can_delete(source), "move", source)
    _require(grant.can_write(destination), "write", destination)
    root = await _root(call)
    if await _run(is_folder, root, source):
        _require(
            grant.can_read(source, subtree=True) and grant.can_delete(source, recursive=True),
            "move everything in",
            source,
        )
        _require(grant.can_write(destination, subtree=True), "write everything in", destination)
    if await _run(move_path, root, source, destination, arguments.overwrite):
        call.room.broadcast(
            FILE_MOVED, FileMovedEvent(source_path=source, destination_path=destination, participant_id=call.caller.id)
        )


@toolkit.tool("download_url")
async def download_url(call: ToolCall) -> Content:
    grant = _grant(call)
    arguments = call.json_arguments(DownloadUrlInput)
    path = canonical_path(arguments.path)
    _require(grant.can_read(path), "read", path)
    _, info = await _run(lookup, await _root(call), path)
    if info is None:
        raise not_found(path)
    if stat_module.S_ISDIR(info.st_mode):
        raise invalid_path(f"{show(path)} is a folder, not a file")
    # The token was verified for this room, so its project is the room's.
    url = signed_downloads.download_url(
        call.room.config,
        call.caller.token.project_id or call.room.config.credentials.project_id,
        call.room.name,
        path,
        disposition="attachment" if arguments.download else "inline",
    )
    return _json(DownloadUrlOutput(url=url))


# --- streams ---------------------------------------------------------------------------------


def _binary_headers(chunk: Content | None, kind: str, tool: str) -> BinaryContent:
    if not isinstance(chunk, BinaryContent) or chunk.headers.get("kind") != kind:
        got = "the end of the input" if chunk is None else f"a {getattr(chunk, 'type', type(chunk).__name__)} chunk"
        if isinstance(chunk, BinaryContent):
            got = f"a binary chunk of kind {chunk.headers.get('kind')!r}"
        raise invalid_request(f"storage.{tool} expected a binary chunk of kind {kind!r}, got {got}")
    return chunk


async def _start_chunk(call: ToolCall, type: type[T]) -> T:
    if not call.has_input_stream:
        raise invalid_request(f"storage.{call.tool} expects a streamed input whose first chunk is binary {{kind: start}}")
    chunk = _binary_headers(await call.next_input(), "start", call.tool)
    try:
        return msgspec.convert(chunk.headers, type=type)
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid start chunk for storage.{call.tool}: {error}") from None


def _max_upload_size(call: ToolCall) -> int:
    return call.room.config.max_upload_size


@toolkit.tool("upload")
async def upload(call: ToolCall) -> None:
    grant = _grant(call)
    start = await _start_chunk(call, UploadStart)
    path = canonical_path(start.path)
    if path == "":
        raise invalid_path("the storage root is a folder: upload needs a file path")
    _require(grant.can_write(path), "write", path)
    limit = _max_upload_size(call)
    if start.size is not None and not 0 <= start.size <= limit:
        raise invalid_request(f"an upload of {start.size} bytes is not allowed: the limit is {limit} bytes")
    writer = AtomicUpload(await _root(call), path, start.overwrite)
    await _run(writer.begin)
    committed = False
    try:
        await call.open_stream()
        received = 0
        while True:
            await call.send(BinaryContent(headers=msgspec.to_builtins(UploadPull(chunk_size=PULL_CHUNK_SIZE))))
            chunk = await call.next_input()
            if chunk is None:
                break
            data = _binary_headers(chunk, "data", "upload").data
            received += len(data)
            if received > limit:
                raise invalid_request(f"the upload exceeds the limit of {limit} bytes")
            if start.size is not None and received > start.size:
                raise invalid_request(f"the upload sent more than the {start.size} bytes it announced")
            if data:
                await _run(writer.write, data)
        if start.size is not None and received != start.size:
            raise invalid_request(f"the upload ended after {received} of the {start.size} bytes it announced")
        await _run(writer.commit, start.mime_type)
        committed = True
    finally:
        if not committed:
            with trio.CancelScope(shield=True):
                await _run(writer.abort)
    call.room.broadcast(FILE_UPDATED, FileUpdatedEvent(path=path, participant_id=call.caller.id))


def _write_whole(writer: AtomicUpload, data: bytes, mime_type: str | None) -> None:
    writer.begin()
    try:
        writer.write(data)
        writer.commit(mime_type)
    except BaseException:
        writer.abort()
        raise


async def write_file(room: Any, path: str, data: bytes, *, participant_id: str, mime_type: str | None = None, overwrite: bool = False) -> None:
    """Write `data` at the canonical `path` of the room's storage as `upload` does (atomically;
    3005 if the path exists and not `overwrite`), then send `storage.file.updated` naming
    `participant_id` to the room's participants: work that lands in a room from outside a tool
    call (a feed message)."""
    await _run(_write_whole, AtomicUpload(await storage_root(room), path, overwrite), data, mime_type)
    room.broadcast(FILE_UPDATED, FileUpdatedEvent(path=path, participant_id=participant_id))


@toolkit.tool("download")
async def download(call: ToolCall) -> None:
    grant = _grant(call)
    start = await _start_chunk(call, DownloadStart)
    path = canonical_path(start.path)
    _require(grant.can_read(path), "read", path)
    chunk_size = start.chunk_size if start.chunk_size > 0 else DEFAULT_CHUNK_SIZE
    chunk_size = min(chunk_size, MAX_DOWNLOAD_CHUNK)
    file, size, mime_type = await _run(open_for_download, await _root(call), path)
    try:
        await call.open_stream()
        started = DownloadStarted(name=path.rpartition("/")[2], mime_type=mime_type, size=size)
        await call.send(BinaryContent(headers=msgspec.to_builtins(started)))
        data_headers = msgspec.to_builtins(DownloadData())
        sent = 0
        while sent < size:
            pull = await call.next_input()
            if pull is None:
                return  # the caller stopped pulling
            _binary_headers(pull, "pull", "download")
            data = await _run(file.read, min(chunk_size, size - sent))
            if not data:
                raise RoomException(f"{show(path)} shrank while it was being downloaded", code=ErrorCode.OPERATION_FAILED)
            sent += len(data)
            await call.send(BinaryContent(headers=dict(data_headers), data=data))
    finally:
        file.close()


__all__ = [
    "PULL_CHUNK_SIZE",
    "AtomicUpload",
    "StorageState",
    "canonical_path",
    "locate",
    "sweep_data_dir",
    "storage_root",
    "sweep_upload_leftovers",
    "toolkit",
    "write_file",
]
