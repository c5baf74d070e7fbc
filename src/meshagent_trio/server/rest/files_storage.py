"""The Files API's work on disk (blocking; errors are the storage toolkit's `RoomException`s):
where a target's files live, a page of a listing, what `stat` answers, `mkdir`, and copying a
file or a folder between two storage roots. Uploads, downloads, deletes and moves within one
root are the storage toolkit's own functions (`toolkits/storage_disk.py`), used as they are.

A room's files are the room storage the room API sees (`signed_downloads.room_storage_dir`); a
managed agent's are `projects/<project_id>/agents/<name>/storage` under the data directory
(the local server runs no agents: these files are reachable through the Files API only).
"""

from __future__ import annotations

import os
import stat as stat_module
from email.utils import formatdate
from pathlib import Path

from meshagent_core.rest.files import FileEntry, FilesPage, FilesTarget

from ..config import ServerConfig
from ..signed_downloads import room_storage_dir
from ..toolkits.storage_disk import MIME_XATTR, AtomicUpload, join_path, list_folder
from ..toolkits.storage_paths import already_exists, invalid_path, locate, lookup, not_found, os_error, show

#: Bytes copied at a time.
COPY_CHUNK = 1024 * 1024


def storage_dir(config: ServerConfig, target: FilesTarget) -> Path:
    if target.kind == "room":
        return room_storage_dir(config, target.project_id, target.name)
    return config.data_dir / "projects" / target.project_id / "agents" / target.name / "storage"


def real_root(config: ServerConfig, target: FilesTarget) -> Path:
    """The target's storage folder, made if missing, resolved (as the room toolkit's root)."""
    folder = storage_dir(config, target)
    folder.mkdir(parents=True, exist_ok=True)
    return Path(os.path.realpath(folder))


def list_page(root: Path, folder: str, *, after: str | None, limit: int) -> FilesPage:
    """At most `limit` entries of `folder` whose names sort after `after` (the continuation
    token is the last name of a page that is not the last)."""
    entries = [entry for entry in list_folder(root, folder) if after is None or entry.name > after]
    page = entries[:limit]
    token = page[-1].name if len(entries) > limit else None
    return FilesPage(entries=[FileEntry(**_fields(entry)) for entry in page], continuation_token=token)


def _fields(entry: object) -> dict[str, object]:
    return {name: getattr(entry, name) for name in ("name", "is_folder", "size", "created_at", "updated_at")}


def stat_headers(root: Path, path: str) -> list[tuple[str, str]] | None:
    """The headers of a `HEAD` of `path` (None when it is not there): a file's size, ETag and
    Last-Modified; a folder's `X-Meshagent-Is-Folder: true`."""
    _, info = lookup(root, path)
    if info is None:
        return None
    if stat_module.S_ISDIR(info.st_mode):
        return [("content-length", "0"), ("x-meshagent-is-folder", "true"), ("last-modified", formatdate(info.st_mtime, usegmt=True))]
    return [("content-length", str(info.st_size)), *validators(info)]


def validators(info: os.stat_result) -> list[tuple[str, str]]:
    """`ETag` (changes with the content's size or modification time) and `Last-Modified`."""
    return [("etag", f'"{info.st_mtime_ns:x}-{info.st_size:x}"'), ("last-modified", formatdate(info.st_mtime, usegmt=True))]


def make_folder(root: Path, path: str) -> None:
    """Create the folder `path` and its missing parents; 3005 when something is there already."""
    if path == "":
        raise already_exists("the storage root already exists")
    location, info = lookup(root, path)
    if info is not None or os.path.lexists(location):
        raise already_exists(f"{show(path)} already exists")
    parts = path.split("/")
    for index in range(1, len(parts) + 1):
        folder = locate(root, "/".join(parts[:index]))
        try:
            os.mkdir(folder)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise invalid_path(f"{show('/'.join(parts[:index]))} is a file, not a folder") from None
        except OSError as error:
            raise os_error(error, path) from None


def copy_tree(source_root: Path, source: str, destination_root: Path, destination: str, overwrite: bool) -> None:
    """Copy the file or folder `source` to `destination` (other root or the same). A file is
    written atomically (replacing a file at the destination only with `overwrite`); a folder is
    copied file by file into a destination that must not exist (a folder is never overwritten)."""
    location, info = lookup(source_root, source)
    if info is None:
        raise not_found(source)
    if source_root == destination_root and (destination == source or destination.startswith(source + "/")) and stat_module.S_ISDIR(info.st_mode):
        raise invalid_path(f"cannot copy {show(source)} into itself ({show(destination)})")
    if not stat_module.S_ISDIR(info.st_mode):
        _copy_file(location, destination_root, destination, overwrite)
        return
    if lookup(destination_root, destination)[1] is not None:
        raise already_exists(f"{show(destination)} already exists and a folder is never overwritten")
    make_folder(destination_root, destination)
    for entry in list_folder(source_root, source):
        copy_tree(source_root, join_path(source, entry.name), destination_root, join_path(destination, entry.name), False)


def _copy_file(location: Path, root: Path, path: str, overwrite: bool) -> None:
    writer = AtomicUpload(root, path, overwrite)
    writer.begin()
    try:
        with open(location, "rb") as file:
            while data := file.read(COPY_CHUNK):
                writer.write(data)
        try:
            mime_type = os.getxattr(location, MIME_XATTR).decode("utf-8")
        except (AttributeError, OSError, UnicodeDecodeError):
            mime_type = None
        writer.commit(mime_type)
    except OSError as error:
        writer.abort()
        raise os_error(error, path) from None
    except BaseException:
        writer.abort()
        raise


__all__ = ["copy_tree", "list_page", "make_folder", "real_root", "stat_headers", "storage_dir", "validators"]
