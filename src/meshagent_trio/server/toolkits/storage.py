"""The `storage` toolkit: a room's files, under `room.storage_dir` (protocol/room-apis.md §2).

Paths. A request path is canonicalised with the token-side rules (protocol/tokens.md §5.3,
`storage_request_path`): leading `./` and `/` are dropped (so `/etc/passwd` names the storage
file `etc/passwd`, never the host's), `.` is the root, and `..`, empty segments, backslashes,
control characters and the reserved names `.meshagent-directory` / `.meshagent-upload-*` are
refused with 3004, as are names longer than 255 bytes and paths longer than 4096 bytes. On disk,
the parent of the target is resolved (symlinks followed) and must lie inside the storage root; a
final symlink must point inside it too. Anything that would escape is refused with 3004. Only
regular files and folders exist for the API: other kinds of file (fifos, sockets, devices) and
entries whose names cannot be addressed are treated as absent and left out of listings.

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

Writes are atomic. An upload streams into a temporary file named `.meshagent-upload-<hex>` in
the target's folder (a reserved name: invisible to every request), which is fsynced, then
renamed over the target (`overwrite`) or hard-linked to it (no-clobber, so two concurrent
uploads with `overwrite:false` cannot both win) and the folder is fsynced. A failed, cancelled or
abandoned upload (caller left, input closed abnormally, size limit) removes its temporary file
and any folder it created; a temporary file left by a crash is removed the first time the room's
storage is used after a restart. `delete` and `move` fsync the folders they change.

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

`download_url` [inferred]: this local server has no HTTP route serving room files, so it cannot
give an honest URL. After the usual checks (path 3004, `read` 1001, existence 3001, a folder
3004) it answers 1007 DEPENDENCY_MISSING saying so; use `download`. It never returns a fake URL.

Events [inferred]: after a change, `storage.file.updated` (upload committed),
`storage.file.deleted` and `storage.file.moved` go to **every** participant of the room,
including the one that caused it (protocol/room-apis.md §2.6 "all connected participants"; the official
client needs no subscription and simply raises a local event), with exactly the documented keys
and canonical paths. One event per operation: a recursive delete or a folder move sends one
event naming the folder, not one per file inside it. A `move` onto itself is a no-op without an
event.
"""

from __future__ import annotations

import errno
import logging
import mimetypes
import os
import shutil
import stat as stat_module
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

import msgspec
import trio

from meshagent_core import BinaryContent, Content, ErrorCode, JsonContent, RoomException
from meshagent_core.tokens.file_permissions import is_valid_file_path, storage_request_path
from meshagent_core.tokens.grants import StorageGrant
from meshagent_core.toolkits.storage import (
    DEFAULT_CHUNK_SIZE,
    FILE_DELETED,
    FILE_MOVED,
    FILE_UPDATED,
    UPLOAD_TEMP_PREFIX,
    DeleteInput,
    DownloadData,
    DownloadStart,
    DownloadStarted,
    DownloadUrlInput,
    ExistsOutput,
    FileDeletedEvent,
    FileMovedEvent,
    FileUpdatedEvent,
    ListOutput,
    MoveInput,
    PathInput,
    StatOutput,
    StorageEntry,
    UploadPull,
    UploadStart,
)

from ..toolkit import Toolkit, ToolCall, invalid_request, permission_denied

log = logging.getLogger("meshagent_trio.server")

toolkit = Toolkit("storage")

T = TypeVar("T")

#: Bytes the server asks for with each upload pull.
PULL_CHUNK_SIZE = 256 * 1024
#: Largest data chunk a download sends, whatever the caller asks for.
MAX_DOWNLOAD_CHUNK = 4 * 1024 * 1024
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
#: Extended attribute holding the MIME type an upload declared.
MIME_XATTR = "user.meshagent.mime_type"

_EXTRA_MIME_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".py": "text/x-python",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
}


# --- errors ----------------------------------------------------------------------------------


def _not_found(path: str) -> RoomException:
    return RoomException(f"{_show(path)} was not found in the room storage", code=ErrorCode.STORAGE_NOT_FOUND)


def _invalid_path(message: str) -> RoomException:
    return RoomException(message, code=ErrorCode.STORAGE_INVALID_PATH)


def _already_exists(message: str) -> RoomException:
    return RoomException(message, code=ErrorCode.STORAGE_ALREADY_EXISTS)


def _escapes(path: str) -> RoomException:
    return _invalid_path(f"{_show(path)} resolves outside the room storage")


def _show(path: str) -> str:
    return repr(path if len(path) <= 200 else path[:200] + "…") if path else "the storage root"


def _os_error(error: OSError, path: str) -> RoomException:
    if isinstance(error, FileNotFoundError):
        return _not_found(path)
    if isinstance(error, NotADirectoryError):
        return _invalid_path(f"a parent of {_show(path)} is a file, not a folder")
    if error.errno == errno.ENAMETOOLONG:
        return _invalid_path(f"{_show(path)} is too long")
    if error.errno == errno.ELOOP:
        return _invalid_path(f"{_show(path)} is a symbolic link loop")
    return RoomException(f"storage operation on {_show(path)} failed: {error.strerror or error}", code=ErrorCode.OPERATION_FAILED)


# --- paths -----------------------------------------------------------------------------------


def canonical_path(raw: str) -> str:
    """The canonical storage path of a request path, or `RoomException` 3004."""
    try:
        path = storage_request_path(raw)
        encoded = path.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        raise _invalid_path(
            f"invalid storage path {_show(raw)}: paths are relative to the room storage and may not contain "
            "'..', empty segments, backslashes, control characters or reserved names (.meshagent-*)"
        ) from None
    if len(encoded) > MAX_PATH_BYTES or (
        len(encoded) > MAX_NAME_BYTES  # else no name in it can be too long
        and any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in path.split("/"))
    ):
        raise _invalid_path(f"invalid storage path {_show(raw)}: too long")
    return path


def _inside(root: str, real: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def locate(root: Path, path: str) -> Path:
    """Where the canonical `path` lives under the real (resolved) storage `root` (blocking).

    The parent folder is resolved and must be inside `root`; a final symbolic link must point
    inside `root` as well. The returned path is the resolved parent joined with the last segment
    (not followed), so `delete`/`move` act on a link itself. Raises 3004 for an escape.
    """
    if path == "":
        return root
    root_text = str(root)
    parent, _, name = path.rpartition("/")
    real_parent = _resolve_below(root_text, parent)[0] if parent else root_text
    if not _inside(root_text, real_parent):
        raise _escapes(path)
    candidate = os.path.join(real_parent, name)
    if os.path.islink(candidate) and not _inside(root_text, os.path.realpath(candidate)):
        raise _escapes(path)
    return Path(candidate)


def _os_join(folder: str, name: str) -> str:
    """`os.path.join(folder, name)` for an absolute `folder` and one path segment `name` (no
    separator in it), several times cheaper: this runs per segment of every storage call."""
    return folder + name if folder.endswith(os.sep) else folder + os.sep + name


def _resolve_below(root_text: str, relative: str) -> tuple[str, bool]:
    """`os.path.realpath(root/relative)` for a real `root_text` and a canonical `relative` (no
    `..`, no empty segments), with one `lstat` per existing segment instead of realpath's walk
    from `/`: only what lies below the root can be a link. A link hands over to realpath.
    The flag is True when a segment does not exist (so nothing below it does either)."""
    current = root_text
    parts = relative.split("/")
    for index, part in enumerate(parts):
        candidate = _os_join(current, part)
        try:
            mode = os.lstat(candidate).st_mode
        except OSError as error:
            # Missing (or unreadable): nothing further down can be a link to follow.
            rest = parts[index + 1 :]
            missing = isinstance(error, FileNotFoundError)
            return (os.sep.join((candidate, *rest)) if rest else candidate), missing
        if stat_module.S_ISLNK(mode):
            return os.path.realpath(os.path.join(root_text, relative)), False
        current = candidate
    return current, False


def _lookup(root: Path, path: str) -> tuple[Path, os.stat_result | None]:
    """The location of `path` and its stat (links followed), None when absent or not a regular
    file or folder."""
    location, info = _lookup_text(str(root), path)
    return Path(location), info


def _lookup_text(root_text: str, path: str) -> tuple[str, os.stat_result | None]:
    """`_lookup` for a root given as text: the checks of `locate` and then a stat, with fewer
    system calls. Below a missing folder nothing exists, so the walk stops there; for the last
    segment one `lstat` serves both as the link check and, unless it is a link, as its stat."""
    if path == "":
        location = root_text
        info = _stat_or_none(os.stat, location, path)
    else:
        parent, _, name = path.rpartition("/")
        real_parent, parent_missing = _resolve_below(root_text, parent) if parent else (root_text, False)
        if not _inside(root_text, real_parent):
            raise _escapes(path)
        location = _os_join(real_parent, name)
        if parent_missing:
            return location, None
        info = _stat_or_none(os.lstat, location, path)
        if info is not None and stat_module.S_ISLNK(info.st_mode):
            if not _inside(root_text, os.path.realpath(location)):
                raise _escapes(path)
            info = _stat_or_none(os.stat, location, path)
    if info is None or not (stat_module.S_ISREG(info.st_mode) or stat_module.S_ISDIR(info.st_mode)):
        return location, None
    return location, info


def _stat_or_none(stat: Callable[[str], os.stat_result], location: str, path: str) -> os.stat_result | None:
    """`stat(location)` (`os.stat` or `os.lstat`); None when there is nothing there."""
    try:
        return stat(location)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise _os_error(error, path) from None


def _timestamp(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


def _entry(name: str, info: os.stat_result) -> StorageEntry:
    is_folder = stat_module.S_ISDIR(info.st_mode)
    created = getattr(info, "st_birthtime", None) or min(info.st_ctime, info.st_mtime)
    return StorageEntry(
        name=name,
        is_folder=is_folder,
        size=None if is_folder else info.st_size,
        created_at=_timestamp(created),
        updated_at=_timestamp(info.st_mtime),
    )


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _fsync_folder(folder: Path | str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every platform/filesystem can fsync a directory
    finally:
        os.close(fd)


def _make_parents(root: Path, path: str) -> list[Path]:
    """Create the missing folders above `path`; returns those created (outermost first)."""
    created: list[Path] = []
    folder = root
    parts = path.split("/")[:-1]
    for index, part in enumerate(parts):
        folder = locate(root, "/".join(parts[: index + 1]))
        try:
            os.mkdir(folder)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise _invalid_path(f"{_show('/'.join(parts[: index + 1]))} is a file, not a folder") from None
            continue
        except OSError as error:
            raise _os_error(error, path) from None
        created.append(folder)
    return created


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            os.rmdir(folder)
        except OSError:
            return  # something else was put there meanwhile: keep it


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


def sweep_upload_leftovers(root: Path) -> int:
    """Remove `.meshagent-upload-*` files a crashed server left behind (blocking); returns how many."""
    removed = 0
    for folder, folders, files in os.walk(root):
        for name in files:
            if name.startswith(UPLOAD_TEMP_PREFIX):
                try:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
                except OSError:
                    pass
    if removed:
        log.info("removed %d unfinished upload file(s) from %s", removed, root)
    return removed


def sweep_data_dir(data_dir: Path) -> int:
    """At server start (blocking): remove what a crash left in every room's storage (unfinished
    uploads and document writes) and the credentials file's temporary; returns how many."""
    removed = 0
    rooms = data_dir / "rooms"
    if rooms.is_dir():
        for room in rooms.iterdir():
            storage = room / "storage"
            if storage.is_dir():
                removed += sweep_upload_leftovers(storage)
    leftover = data_dir / "credentials.tmp"
    try:
        leftover.unlink()
        removed += 1
    except OSError:
        pass
    return removed


async def _root(call: ToolCall) -> Path:
    state: StorageState = call.room.toolkit_state("storage", StorageState)
    return await state.get_root()


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
        raise permission_denied(f"you do not have permission to {action} {_show(path)}")


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
    _, info = _lookup_text(str(root), path)
    return _json(ExistsOutput(exists=info is not None))


def _stat_answer(root: Path, call: ToolCall) -> Content:
    grant = _grant(call)
    path = canonical_path(call.json_arguments(PathInput).path)
    _require(_can_see_canonical(grant, path), "read", path)
    _, info = _lookup_text(str(root), path)
    if info is None:
        return _json(StatOutput(exists=False))
    entry = _entry(path.rpartition("/")[2], info)
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


def _list(root: Path, path: str) -> list[StorageEntry]:
    location, info = _lookup(root, path)
    if info is None:
        return []
    if not stat_module.S_ISDIR(info.st_mode):
        raise _invalid_path(f"{_show(path)} is a file, not a folder")
    root_text = str(root)
    entries: list[StorageEntry] = []
    try:
        with os.scandir(location) as scan:
            for item in scan:
                if "/" in item.name or not is_valid_file_path(item.name):
                    continue  # reserved (upload temporaries, …) or not addressable
                try:
                    if item.is_symlink() and not _inside(root_text, os.path.realpath(item.path)):
                        continue
                    info = item.stat()
                except OSError:
                    continue
                if stat_module.S_ISREG(info.st_mode) or stat_module.S_ISDIR(info.st_mode):
                    entries.append(_entry(item.name, info))
    except FileNotFoundError:
        return []
    except OSError as error:
        raise _os_error(error, path) from None
    entries.sort(key=lambda entry: entry.name)
    return entries


@toolkit.tool("list")
async def list_(call: ToolCall) -> Content:
    """A missing folder lists as empty (agents list `.schemas` in fresh rooms)."""
    grant = _grant(call)
    path = canonical_path(call.json_arguments(PathInput).path)
    _require(grant.can_list_directory(path), "list", path)
    entries = await _run(_list, await _root(call), path)
    return _json(ListOutput(files=[entry for entry in entries if _can_see(grant, _join(path, entry.name))]))


def _describe_for_delete(root: Path, path: str) -> tuple[Path, bool, bool]:
    """(location, is_folder, has_contents); 3001 when missing."""
    location = locate(root, path)
    try:
        info = os.lstat(location)
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path) from None
    except OSError as error:
        raise _os_error(error, path) from None
    if stat_module.S_ISDIR(info.st_mode):
        try:
            with os.scandir(location) as scan:
                has_contents = next(iter(scan), None) is not None
        except OSError as error:
            raise _os_error(error, path) from None
        return location, True, has_contents
    if stat_module.S_ISREG(info.st_mode) or stat_module.S_ISLNK(info.st_mode):
        if stat_module.S_ISLNK(info.st_mode) and _lookup(root, path)[1] is None:
            raise _not_found(path)  # a dangling link does not exist for the API
        return location, False, False
    raise _not_found(path)


def _delete(location: Path, path: str, recursive: bool) -> None:
    try:
        if location.is_symlink() or not location.is_dir():
            os.unlink(location)
        elif recursive:
            shutil.rmtree(location)
        else:
            os.rmdir(location)
    except FileNotFoundError:
        raise _not_found(path) from None
    except OSError as error:
        if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise RoomException(
                f"{_show(path)} is a folder that is not empty: pass recursive=true to delete it with its contents",
                code=ErrorCode.STORAGE_RECURSIVE_REQUIRED,
            ) from None
        raise _os_error(error, path) from None
    _fsync_folder(location.parent)


@toolkit.tool("delete")
async def delete(call: ToolCall) -> None:
    grant = _grant(call)
    arguments = call.json_arguments(DeleteInput)
    path = canonical_path(arguments.path)
    if path == "":
        raise _invalid_path("the storage root cannot be deleted")
    _require(grant.can_delete(path), "delete", path)
    root = await _root(call)
    location, is_folder, has_contents = await _run(_describe_for_delete, root, path)
    if is_folder and has_contents:
        if not arguments.recursive:
            raise RoomException(
                f"{_show(path)} is a folder that is not empty: pass recursive=true to delete it with its contents",
                code=ErrorCode.STORAGE_RECURSIVE_REQUIRED,
            )
        _require(grant.can_delete(path, recursive=True), "delete everything in", path)
    await _run(_delete, location, path, bool(arguments.recursive))
    call.room.broadcast(FILE_DELETED, FileDeletedEvent(path=path, participant_id=call.caller.id))


def _move(root: Path, source: str, destination: str, overwrite: bool) -> bool:
    """Move `source` to `destination` (blocking); False when there was nothing to do."""
    source_location, source_info = _lookup(root, source)
    if source_info is None:
        raise _not_found(source)
    if source == destination:
        return False
    source_is_folder = stat_module.S_ISDIR(source_info.st_mode)
    created = _make_parents(root, destination)
    try:
        destination_location, destination_info = _lookup(root, destination)
        if destination_info is None and os.path.lexists(destination_location):
            raise _already_exists(f"{_show(destination)} already exists")
        if destination_info is not None:
            if not overwrite:
                raise _already_exists(f"{_show(destination)} already exists: pass overwrite=true to replace it")
            if stat_module.S_ISDIR(destination_info.st_mode) or source_is_folder:
                raise _already_exists(f"{_show(destination)} already exists and a folder is never overwritten")
            os.replace(source_location, destination_location)
        elif source_is_folder or os.path.islink(source_location):
            os.rename(source_location, destination_location)
        else:
            try:
                os.link(source_location, destination_location, follow_symlinks=False)
            except FileExistsError:
                raise _already_exists(f"{_show(destination)} already exists") from None
            except OSError:
                os.rename(source_location, destination_location)  # no hard links here
            else:
                os.unlink(source_location)
    except RoomException:
        _remove_created(created)
        raise
    except OSError as error:
        _remove_created(created)
        raise _os_error(error, source) from None
    _fsync_folder(destination_location.parent)
    if source_location.parent != destination_location.parent:
        _fsync_folder(source_location.parent)
    return True


def _is_folder(root: Path, path: str) -> bool:
    _, info = _lookup(root, path)
    return info is not None and stat_module.S_ISDIR(info.st_mode)


@toolkit.tool("move")
async def move(call: ToolCall) -> None:
    grant = _grant(call)
    arguments = call.json_arguments(MoveInput)
    source = canonical_path(arguments.source_path)
    destination = canonical_path(arguments.destination_path)
    if source == "" or destination == "":
        raise _invalid_path("the storage root cannot be moved or replaced")
    if destination.startswith(source + "/"):
        raise _invalid_path(f"cannot move {_show(source)} into itself ({_show(destination)})")
    _require(grant.can_read(source) and grant.can_delete(source), "move", source)
    _require(grant.can_write(destination), "write", destination)
    root = await _root(call)
    if await _run(_is_folder, root, source):
        _require(
            grant.can_read(source, subtree=True) and grant.can_delete(source, recursive=True),
            "move everything in",
            source,
        )
        _require(grant.can_write(destination, subtree=True), "write everything in", destination)
    if await _run(_move, root, source, destination, arguments.overwrite):
        call.room.broadcast(
            FILE_MOVED, FileMovedEvent(source_path=source, destination_path=destination, participant_id=call.caller.id)
        )


@toolkit.tool("download_url")
async def download_url(call: ToolCall) -> Content:
    grant = _grant(call)
    path = canonical_path(call.json_arguments(DownloadUrlInput).path)
    _require(grant.can_read(path), "read", path)
    _, info = await _run(_lookup, await _root(call), path)
    if info is None:
        raise _not_found(path)
    if stat_module.S_ISDIR(info.st_mode):
        raise _invalid_path(f"{_show(path)} is a folder, not a file")
    raise RoomException(
        "storage.download_url is not available on this local server: it has no HTTP route serving room files; "
        "use storage.download instead",
        code=ErrorCode.DEPENDENCY_MISSING,
    )


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


class AtomicUpload:
    """A file written beside its target, then renamed (or hard-linked) over it; blocking methods."""

    def __init__(self, root: Path, path: str, overwrite: bool) -> None:
        self.root = root
        self.path = path
        self.overwrite = overwrite
        self.target: Path | None = None
        self.temporary: Path | None = None
        self.file: Any = None
        self.created: list[Path] = []

    def begin(self) -> None:
        self.created = _make_parents(self.root, self.path)
        try:
            self.target, info = _lookup(self.root, self.path)
            self._check_target(info)
            self.temporary = self.target.parent / f"{UPLOAD_TEMP_PREFIX}{uuid.uuid4().hex}"
            fd = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            self.file = os.fdopen(fd, "wb")
        except BaseException:
            self.abort()
            raise

    def _check_target(self, info: os.stat_result | None) -> None:
        assert self.target is not None
        if info is None:
            if os.path.lexists(self.target):
                raise _already_exists(f"{_show(self.path)} already exists")
            return
        if stat_module.S_ISDIR(info.st_mode):
            raise _already_exists(f"{_show(self.path)} is a folder")
        if not self.overwrite:
            raise _already_exists(f"{_show(self.path)} already exists: pass overwrite=true to replace it")

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def commit(self, mime_type: str | None) -> None:
        assert self.target is not None and self.temporary is not None
        try:
            self.file.flush()
            if mime_type and len(mime_type) <= 255 and mime_type.isprintable():
                try:
                    os.setxattr(self.file.fileno(), MIME_XATTR, mime_type.encode("utf-8"))
                except (AttributeError, OSError):
                    pass  # no xattrs here: downloads guess from the extension
            os.fsync(self.file.fileno())
            self.file.close()
            self.file = None
            if self.overwrite:
                if os.path.isdir(self.target) and not os.path.islink(self.target):
                    raise _already_exists(f"{_show(self.path)} is a folder")
                os.replace(self.temporary, self.target)
            else:
                try:
                    os.link(self.temporary, self.target, follow_symlinks=False)
                except FileExistsError:
                    raise _already_exists(f"{_show(self.path)} already exists: pass overwrite=true to replace it") from None
                except OSError:
                    if os.path.lexists(self.target):  # no hard links on this filesystem
                        raise _already_exists(f"{_show(self.path)} already exists: pass overwrite=true to replace it") from None
                    os.replace(self.temporary, self.target)
                else:
                    os.unlink(self.temporary)
            self.temporary = None
            self.created = []
            _fsync_folder(self.target.parent)
        except OSError as error:
            raise _os_error(error, self.path) from None

    def abort(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
            self.file = None
        if self.temporary is not None:
            try:
                os.unlink(self.temporary)
            except FileNotFoundError:
                pass
            self.temporary = None
        _remove_created(self.created)
        self.created = []


def _max_upload_size(call: ToolCall) -> int:
    return call.room.config.max_upload_size


@toolkit.tool("upload")
async def upload(call: ToolCall) -> None:
    grant = _grant(call)
    start = await _start_chunk(call, UploadStart)
    path = canonical_path(start.path)
    if path == "":
        raise _invalid_path("the storage root is a folder: upload needs a file path")
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


def _guess_mime_type(name: str) -> str:
    extension = os.path.splitext(name)[1].lower()
    return _EXTRA_MIME_TYPES.get(extension) or mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def _open_for_download(root: Path, path: str) -> tuple[Any, int, str]:
    """(open file, size, mime type); 3001 when missing, 3004 for a folder."""
    location, info = _lookup(root, path)
    if info is None:
        raise _not_found(path)
    if stat_module.S_ISDIR(info.st_mode):
        raise _invalid_path(f"{_show(path)} is a folder, not a file")
    try:
        file = open(location, "rb")
    except OSError as error:
        raise _os_error(error, path) from None
    try:
        info = os.fstat(file.fileno())
        if not stat_module.S_ISREG(info.st_mode):
            raise _not_found(path)
        try:
            mime_type = os.getxattr(file.fileno(), MIME_XATTR).decode("utf-8")
        except (AttributeError, OSError, UnicodeDecodeError):
            mime_type = ""
        return file, info.st_size, mime_type or _guess_mime_type(path.rpartition("/")[2])
    except BaseException:
        file.close()
        raise


@toolkit.tool("download")
async def download(call: ToolCall) -> None:
    grant = _grant(call)
    start = await _start_chunk(call, DownloadStart)
    path = canonical_path(start.path)
    _require(grant.can_read(path), "read", path)
    chunk_size = start.chunk_size if start.chunk_size > 0 else DEFAULT_CHUNK_SIZE
    chunk_size = min(chunk_size, MAX_DOWNLOAD_CHUNK)
    file, size, mime_type = await _run(_open_for_download, await _root(call), path)
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
                raise RoomException(f"{_show(path)} shrank while it was being downloaded", code=ErrorCode.OPERATION_FAILED)
            sent += len(data)
            await call.send(BinaryContent(headers=dict(data_headers), data=data))
    finally:
        file.close()


__all__ = ["AtomicUpload", "StorageState", "canonical_path", "locate", "sweep_data_dir", "sweep_upload_leftovers", "toolkit"]
