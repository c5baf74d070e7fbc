"""Storage files on disk (blocking): entries, listing, atomic uploads, reading a file for a
download, delete, move, and sweeping what a crash left behind.

Writes are atomic. An upload streams into a temporary file named `.meshagent-upload-<hex>` in
the target's folder (a reserved name: invisible to every request), which is fsynced, then
renamed over the target (`overwrite`) or hard-linked to it (no-clobber, so two concurrent
uploads with `overwrite:false` cannot both win) and the folder is fsynced. A failed upload
removes its temporary file and any folder it created (`AtomicUpload.abort`); a temporary file
left by a crash is removed by `sweep_upload_leftovers`. `delete` and `move` fsync the folders
they change. The MIME type an upload declares is kept in the extended attribute
`user.meshagent.mime_type` where the filesystem supports it; a download reports it, else one
guessed from the extension, else `application/octet-stream`.

Listing: entries sorted by name; folders carry no `size`. Timestamps are UTC ISO-8601:
`updated_at` is the modification time, `created_at` the birth time where the platform has one,
else the earlier of ctime and mtime.
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
from typing import Any

from meshagent_core import ErrorCode, RoomException
from meshagent_core.tokens.file_permissions import is_valid_file_path
from meshagent_core.toolkits.storage import UPLOAD_TEMP_PREFIX, StorageEntry

from .storage_paths import already_exists, inside, invalid_path, locate, lookup, not_found, os_error, show

log = logging.getLogger("meshagent_trio.server")

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


def _timestamp(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


def entry_of(name: str, info: os.stat_result) -> StorageEntry:
    is_folder = stat_module.S_ISDIR(info.st_mode)
    created = getattr(info, "st_birthtime", None) or min(info.st_ctime, info.st_mtime)
    return StorageEntry(
        name=name,
        is_folder=is_folder,
        size=None if is_folder else info.st_size,
        created_at=_timestamp(created),
        updated_at=_timestamp(info.st_mtime),
    )


def join_path(folder: str, name: str) -> str:
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
                raise invalid_path(f"{show('/'.join(parts[: index + 1]))} is a file, not a folder") from None
            continue
        except OSError as error:
            raise os_error(error, path) from None
        created.append(folder)
    return created


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            os.rmdir(folder)
        except OSError:
            return  # something else was put there meanwhile: keep it


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
    uploads and document writes), of every project, in every project storage, and the
    credentials file's temporary; returns how many."""
    removed = 0
    storages = list(data_dir.glob("rooms/*/storage"))
    storages += data_dir.glob("projects/*/rooms/*/storage")
    storages += data_dir.glob("projects/*/storage")
    for storage in storages:
        if storage.is_dir() and not storage.is_symlink():
            removed += sweep_upload_leftovers(storage)
    leftover = data_dir / "credentials.tmp"
    try:
        leftover.unlink()
        removed += 1
    except OSError:
        pass
    return removed


def list_folder(root: Path, path: str) -> list[StorageEntry]:
    location, info = lookup(root, path)
    if info is None:
        return []
    if not stat_module.S_ISDIR(info.st_mode):
        raise invalid_path(f"{show(path)} is a file, not a folder")
    root_text = str(root)
    entries: list[StorageEntry] = []
    try:
        with os.scandir(location) as scan:
            for item in scan:
                if "/" in item.name or not is_valid_file_path(item.name):
                    continue  # reserved (upload temporaries, …) or not addressable
                try:
                    if item.is_symlink() and not inside(root_text, os.path.realpath(item.path)):
                        continue
                    info = item.stat()
                except OSError:
                    continue
                if stat_module.S_ISREG(info.st_mode) or stat_module.S_ISDIR(info.st_mode):
                    entries.append(entry_of(item.name, info))
    except FileNotFoundError:
        return []
    except OSError as error:
        raise os_error(error, path) from None
    entries.sort(key=lambda entry: entry.name)
    return entries


def describe_for_delete(root: Path, path: str) -> tuple[Path, bool, bool]:
    """(location, is_folder, has_contents); 3001 when missing."""
    location = locate(root, path)
    try:
        info = os.lstat(location)
    except (FileNotFoundError, NotADirectoryError):
        raise not_found(path) from None
    except OSError as error:
        raise os_error(error, path) from None
    if stat_module.S_ISDIR(info.st_mode):
        try:
            with os.scandir(location) as scan:
                has_contents = next(iter(scan), None) is not None
        except OSError as error:
            raise os_error(error, path) from None
        return location, True, has_contents
    if stat_module.S_ISREG(info.st_mode) or stat_module.S_ISLNK(info.st_mode):
        if stat_module.S_ISLNK(info.st_mode) and lookup(root, path)[1] is None:
            raise not_found(path)  # a dangling link does not exist for the API
        return location, False, False
    raise not_found(path)


def delete_path(location: Path, path: str, recursive: bool) -> None:
    try:
        if location.is_symlink() or not location.is_dir():
            os.unlink(location)
        elif recursive:
            shutil.rmtree(location)
        else:
            os.rmdir(location)
    except FileNotFoundError:
        raise not_found(path) from None
    except OSError as error:
        if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise RoomException(
                f"{show(path)} is a folder that is not empty: pass recursive=true to delete it with its contents",
                code=ErrorCode.STORAGE_RECURSIVE_REQUIRED,
            ) from None
        raise os_error(error, path) from None
    _fsync_folder(location.parent)


def move_path(root: Path, source: str, destination: str, overwrite: bool) -> bool:
    """Move `source` to `destination` (blocking); False when there was nothing to do."""
    source_location, source_info = lookup(root, source)
    if source_info is None:
        raise not_found(source)
    if source == destination:
        return False
    source_is_folder = stat_module.S_ISDIR(source_info.st_mode)
    created = _make_parents(root, destination)
    try:
        destination_location, destination_info = lookup(root, destination)
        if destination_info is None and os.path.lexists(destination_location):
            raise already_exists(f"{show(destination)} already exists")
        if destination_info is not None:
            if not overwrite:
                raise already_exists(f"{show(destination)} already exists: pass overwrite=true to replace it")
            if stat_module.S_ISDIR(destination_info.st_mode) or source_is_folder:
                raise already_exists(f"{show(destination)} already exists and a folder is never overwritten")
            os.replace(source_location, destination_location)
        elif source_is_folder or os.path.islink(source_location):
            os.rename(source_location, destination_location)
        else:
            try:
                os.link(source_location, destination_location, follow_symlinks=False)
            except FileExistsError:
                raise already_exists(f"{show(destination)} already exists") from None
            except OSError:
                os.rename(source_location, destination_location)  # no hard links here
            else:
                os.unlink(source_location)
    except RoomException:
        _remove_created(created)
        raise
    except OSError as error:
        _remove_created(created)
        raise os_error(error, source) from None
    _fsync_folder(destination_location.parent)
    if source_location.parent != destination_location.parent:
        _fsync_folder(source_location.parent)
    return True


def is_folder(root: Path, path: str) -> bool:
    _, info = lookup(root, path)
    return info is not None and stat_module.S_ISDIR(info.st_mode)


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
            self.target, info = lookup(self.root, self.path)
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
                raise already_exists(f"{show(self.path)} already exists")
            return
        if stat_module.S_ISDIR(info.st_mode):
            raise already_exists(f"{show(self.path)} is a folder")
        if not self.overwrite:
            raise already_exists(f"{show(self.path)} already exists: pass overwrite=true to replace it")

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
                    raise already_exists(f"{show(self.path)} is a folder")
                os.replace(self.temporary, self.target)
            else:
                try:
                    os.link(self.temporary, self.target, follow_symlinks=False)
                except FileExistsError:
                    raise already_exists(f"{show(self.path)} already exists: pass overwrite=true to replace it") from None
                except OSError:
                    if os.path.lexists(self.target):  # no hard links on this filesystem
                        raise already_exists(f"{show(self.path)} already exists: pass overwrite=true to replace it") from None
                    os.replace(self.temporary, self.target)
                else:
                    os.unlink(self.temporary)
            self.temporary = None
            self.created = []
            _fsync_folder(self.target.parent)
        except OSError as error:
            raise os_error(error, self.path) from None

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


def guess_mime_type(name: str) -> str:
    extension = os.path.splitext(name)[1].lower()
    return _EXTRA_MIME_TYPES.get(extension) or mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def open_for_download(root: Path, path: str) -> tuple[Any, int, str]:
    """(open file, size, mime type); 3001 when missing, 3004 for a folder."""
    location, info = lookup(root, path)
    if info is None:
        raise not_found(path)
    if stat_module.S_ISDIR(info.st_mode):
        raise invalid_path(f"{show(path)} is a folder, not a file")
    try:
        file = open(location, "rb")
    except OSError as error:
        raise os_error(error, path) from None
    try:
        info = os.fstat(file.fileno())
        if not stat_module.S_ISREG(info.st_mode):
            raise not_found(path)
        try:
            mime_type = os.getxattr(file.fileno(), MIME_XATTR).decode("utf-8")
        except (AttributeError, OSError, UnicodeDecodeError):
            mime_type = ""
        return file, info.st_size, mime_type or guess_mime_type(path.rpartition("/")[2])
    except BaseException:
        file.close()
        raise


__all__ = [
    "MIME_XATTR",
    "AtomicUpload",
    "delete_path",
    "describe_for_delete",
    "entry_of",
    "guess_mime_type",
    "is_folder",
    "join_path",
    "list_folder",
    "move_path",
    "open_for_download",
    "sweep_data_dir",
    "sweep_upload_leftovers",
]
