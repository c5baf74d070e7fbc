"""REST handlers of project storage (protocol/rest.md §7): `upload` and `download`, raw bytes, in the
project's own storage folder (`config.project_storage_dir`, not a room's storage).

Paths are the room storage's (`storage_paths.canonical_path`: relative, no `..`, no empty
segments or reserved names) and, unlike in rooms, an absolute path is refused rather than read
as relative: 400 either way, naming the path. An unknown project is 404 naming it; a missing
file 404 (the official client says "file was not found"); downloading a folder is 400, uploading onto one 409.

`upload` streams the body into a temporary file beside the target, at most
`config.max_upload_size` bytes (413 beyond; it may be larger than `max_request_body`), and
renames it over the target once complete: a failed or cut-off upload leaves nothing behind and
the previous file, if any, untouched. `download` streams the file in bounded chunks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import trio

from meshagent_core import ErrorCode, RoomException

from ..control import Conflict, ControlError, NotFound
from ..http.files import BodyStream, OpenFile
from ..toolkits.storage_disk import AtomicUpload, open_for_download
from ..toolkits.storage_paths import canonical_path
from .context import Caller, Handler, RestContext


class StorageFailed(ControlError):
    status = 500
    code = "storage_failed"


def _refusal(error: RoomException) -> ControlError:
    """The REST refusal of a storage error."""
    kind = {
        ErrorCode.STORAGE_NOT_FOUND: NotFound,
        ErrorCode.STORAGE_INVALID_PATH: ControlError,
        ErrorCode.STORAGE_ALREADY_EXISTS: Conflict,
    }.get(error.code, StorageFailed)
    return kind(error.message)


def _path(route: str, raw: str) -> str:
    """The canonical file path of the `path` argument (400 naming it when it is not one)."""
    if raw.startswith("/") or raw.startswith("\\"):
        raise ControlError(f"{route}: path {raw[:200]!r} is absolute: project storage paths are relative")
    try:
        path = canonical_path(raw)
    except RoomException as error:
        raise ControlError(f"{route}: {error.message}") from None
    if not path:
        raise ControlError(f"{route}: path {raw[:200]!r} names the storage root, not a file")
    return path


async def _root(context: RestContext, project_id: str, *, create: bool) -> Path:
    await context.control.get_project(project_id)  # 404 naming an unknown project
    folder = context.config.project_storage_dir(project_id)

    def prepare() -> Path:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return Path(os.path.realpath(folder))

    return await trio.to_thread.run_sync(prepare)


async def upload(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    path = _path("upload", a["path"])
    body: BodyStream = a["data"]
    root = await _root(context, a["project_id"], create=True)
    writer = AtomicUpload(root, path, overwrite=True)
    try:
        await trio.to_thread.run_sync(writer.begin)
    except RoomException as error:
        raise _refusal(error) from None
    committed = False
    try:
        async for chunk in body.chunks():
            await trio.to_thread.run_sync(writer.write, chunk)
        await trio.to_thread.run_sync(writer.commit, None)
        committed = True
    except RoomException as error:
        raise _refusal(error) from None
    finally:
        if not committed:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(writer.abort)


async def download(context: RestContext, a: dict[str, Any], caller: Caller) -> OpenFile:
    path = _path("download", a["path"])
    root = await _root(context, a["project_id"], create=False)
    try:
        file, size, content_type = await trio.to_thread.run_sync(open_for_download, root, path)
    except RoomException as error:
        raise _refusal(error) from None
    return OpenFile(file, size, content_type, path.rpartition("/")[2])


HANDLERS: dict[str, Handler] = {"upload": upload, "download": download}
