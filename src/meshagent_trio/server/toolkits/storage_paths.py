"""Storage paths of a room (or project) storage root: canonical request paths, and where one
lives on disk without escaping the root. Blocking functions; errors are `RoomException`s.

A request path is canonicalised with the token-side rules (protocol/tokens.md §5.3,
`storage_request_path`): leading `./` and `/` are dropped (so `/etc/passwd` names the storage
file `etc/passwd`, never the host's), `.` is the root, and `..`, empty segments, backslashes,
control characters and the reserved names `.meshagent-directory` / `.meshagent-upload-*` are
refused with 3004, as are names longer than 255 bytes and paths longer than 4096 bytes. On disk,
the parent of the target is resolved (symlinks followed) and must lie inside the storage root; a
final symlink must point inside it too. Anything that would escape is refused with 3004. Only
regular files and folders exist for the API: other kinds of file (fifos, sockets, devices) and
entries whose names cannot be addressed are treated as absent.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
from pathlib import Path
from typing import Callable

from meshagent_core import ErrorCode, RoomException
from meshagent_core.tokens.file_permissions import storage_request_path

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


# --- errors ----------------------------------------------------------------------------------


def not_found(path: str) -> RoomException:
    return RoomException(f"{show(path)} was not found in the room storage", code=ErrorCode.STORAGE_NOT_FOUND)


def invalid_path(message: str) -> RoomException:
    return RoomException(message, code=ErrorCode.STORAGE_INVALID_PATH)


def already_exists(message: str) -> RoomException:
    return RoomException(message, code=ErrorCode.STORAGE_ALREADY_EXISTS)


def _escapes(path: str) -> RoomException:
    return invalid_path(f"{show(path)} resolves outside the room storage")


def show(path: str) -> str:
    return repr(path if len(path) <= 200 else path[:200] + "…") if path else "the storage root"


def os_error(error: OSError, path: str) -> RoomException:
    if isinstance(error, FileNotFoundError):
        return not_found(path)
    if isinstance(error, NotADirectoryError):
        return invalid_path(f"a parent of {show(path)} is a file, not a folder")
    if error.errno == errno.ENAMETOOLONG:
        return invalid_path(f"{show(path)} is too long")
    if error.errno == errno.ELOOP:
        return invalid_path(f"{show(path)} is a symbolic link loop")
    return RoomException(f"storage operation on {show(path)} failed: {error.strerror or error}", code=ErrorCode.OPERATION_FAILED)


# --- paths -----------------------------------------------------------------------------------


def canonical_path(raw: str) -> str:
    """The canonical storage path of a request path, or `RoomException` 3004."""
    try:
        path = storage_request_path(raw)
        encoded = path.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        raise invalid_path(
            f"invalid storage path {show(raw)}: paths are relative to the room storage and may not contain "
            "'..', empty segments, backslashes, control characters or reserved names (.meshagent-*)"
        ) from None
    if len(encoded) > MAX_PATH_BYTES or (
        len(encoded) > MAX_NAME_BYTES  # else no name in it can be too long
        and any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in path.split("/"))
    ):
        raise invalid_path(f"invalid storage path {show(raw)}: too long")
    return path


def inside(root: str, real: str) -> bool:
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
    if not inside(root_text, real_parent):
        raise _escapes(path)
    candidate = os.path.join(real_parent, name)
    if os.path.islink(candidate) and not inside(root_text, os.path.realpath(candidate)):
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


def lookup(root: Path, path: str) -> tuple[Path, os.stat_result | None]:
    """The location of `path` and its stat (links followed), None when absent or not a regular
    file or folder."""
    location, info = lookup_text(str(root), path)
    return Path(location), info


def lookup_text(root_text: str, path: str) -> tuple[str, os.stat_result | None]:
    """`lookup` for a root given as text: the checks of `locate` and then a stat, with fewer
    system calls. Below a missing folder nothing exists, so the walk stops there; for the last
    segment one `lstat` serves both as the link check and, unless it is a link, as its stat."""
    if path == "":
        location = root_text
        info = _stat_or_none(os.stat, location, path)
    else:
        parent, _, name = path.rpartition("/")
        real_parent, parent_missing = _resolve_below(root_text, parent) if parent else (root_text, False)
        if not inside(root_text, real_parent):
            raise _escapes(path)
        location = _os_join(real_parent, name)
        if parent_missing:
            return location, None
        info = _stat_or_none(os.lstat, location, path)
        if info is not None and stat_module.S_ISLNK(info.st_mode):
            if not inside(root_text, os.path.realpath(location)):
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
        raise os_error(error, path) from None


__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "already_exists",
    "canonical_path",
    "inside",
    "invalid_path",
    "locate",
    "lookup",
    "lookup_text",
    "not_found",
    "os_error",
    "show",
]
