"""`GET`/`HEAD /room-files/<project>/<room>/<path>?expires=…&disposition=…&signature=…`: a room
file served through the signed URL `storage.download_url` handed out (`signed_downloads`).

The room is found from the project and its name in the data directory, so the URL works
whether or not the room is active. 400 for a URL that names no plain relative file (or names a
folder), 403 for a bad signature or an expired URL, 404 for a file that is not there (any more),
405 for another verb; otherwise the file as `send_file` sends it (ranges, HEAD, its type, its
name). Answers are plain text; the connection closes after an error other than 404.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import trio

from meshagent_core import ErrorCode, RoomException

from ..config import ServerConfig
from ..signed_downloads import PREFIX, DownloadRefused, room_storage_dir, verify
from ..toolkits.storage_disk import open_for_download
from .files import OpenFile, send_file
from .front import Request, respond

__all__ = ["PREFIX", "serve_room_file"]


async def serve_room_file(request: Request, config: ServerConfig) -> bool:
    """Answer a request under `PREFIX`; returns whether the connection may serve another."""
    stream, connection = request.stream, request.connection
    if request.method not in ("GET", "HEAD"):
        await respond(stream, connection, 405, f"{request.method} is not allowed on a room file (GET or HEAD)\n")
        return False
    try:
        signed = verify(config, request.path, dict(parse_qsl(request.query, keep_blank_values=True)))
        root = Path(os.path.realpath(room_storage_dir(config, signed.project_id, signed.room)))
        file, size, content_type = await trio.to_thread.run_sync(_open, root, signed.path)
    except DownloadRefused as refused:
        await respond(stream, connection, refused.status, f"{refused}\n")
        return refused.status == 404
    name = signed.path.rpartition("/")[2]
    await send_file(request, OpenFile(file, size, content_type, name, signed.disposition), [("cache-control", "private, no-cache")])
    return True


def _open(root: Path, path: str) -> tuple[Any, int, str]:
    """The storage's file (blocking), refusals as HTTP statuses."""
    try:
        return open_for_download(root, path)
    except RoomException as error:
        if error.code == ErrorCode.STORAGE_NOT_FOUND:
            raise DownloadRefused(404, f"{path!r} is not in the room storage (any more)") from None
        if error.code == ErrorCode.STORAGE_INVALID_PATH:
            raise DownloadRefused(400, error.message) from None
        raise DownloadRefused(500, f"the file could not be read: {error.message}") from None
