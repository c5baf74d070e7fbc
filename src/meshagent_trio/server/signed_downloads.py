"""Signed, expiring download URLs of room files (what `storage.download_url` hands out and the
HTTP route `GET /room-files/...` serves).

    http://<host>:<port>/room-files/<project_id>/<room>/<path>?expires=<unix seconds>&disposition=inline&signature=<hex>

The signature is HMAC-SHA256, under a key derived from the server's secret (so it is not the
key that signs participant tokens), over the project, the room, the canonical file path, the
expiry and the disposition; it is compared in constant time. A URL names its room by project
and name, so it works whether or not the room is active and for rooms of every project. The
protocol's `download_url` takes no lifetime: a URL is good for `DOWNLOAD_URL_LIFETIME` seconds
from the server's `config.clock()`.

Refusals (`DownloadRefused`, with the HTTP status): 400 for a URL whose project, room or path is
not a plain relative name (`..`, empty segments, absolute paths, reserved names) or whose query
is malformed, 403 for a wrong signature or an expired URL. Pure apart from `config`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import quote, unquote, urlencode

import msgspec

from meshagent_core.tokens.file_permissions import storage_request_path

from .config import ServerConfig

#: Where the HTTP front serves signed room files.
PREFIX = "/room-files/"
#: Seconds a download URL stays good.
DOWNLOAD_URL_LIFETIME = 3600
DISPOSITIONS = ("inline", "attachment")
#: The folder of a room's data directory that holds its files (`Room.storage_dir`).
ROOM_STORAGE_FOLDER = "storage"
_KEY_PURPOSE = b"meshagent-trio signed room-file downloads v1"


class DownloadRefused(Exception):
    """A download URL this server will not serve; `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SignedFile:
    """What a verified URL names."""

    project_id: str
    room: str
    path: str
    disposition: str


def room_storage_dir(config: ServerConfig, project_id: str, room: str) -> Path:
    """The folder of a room's files, active or not."""
    return config.room_data_dir(project_id, room) / ROOM_STORAGE_FOLDER


def http_base_url(config: ServerConfig) -> str:
    """The server's public HTTP base URL (`public_url` with ws/wss read as http/https)."""
    base = (config.public_url or f"http://{config.host}:{config.port}").rstrip("/")
    for socket_scheme, web_scheme in (("ws://", "http://"), ("wss://", "https://")):
        if base.startswith(socket_scheme):
            return web_scheme + base[len(socket_scheme) :]
    return base


def _signature(config: ServerConfig, project_id: str, room: str, path: str, expires: int, disposition: str) -> str:
    key = hmac.new(config.credentials.secret.encode("utf-8"), _KEY_PURPOSE, hashlib.sha256).digest()
    message = msgspec.json.encode(["room-file", project_id, room, path, expires, disposition])
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def download_url(
    config: ServerConfig, project_id: str, room: str, path: str, *, disposition: str = "inline", lifetime: int = DOWNLOAD_URL_LIFETIME
) -> str:
    """A signed URL of the room file at the canonical `path`, good for `lifetime` seconds."""
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition must be one of {DISPOSITIONS}")
    expires = int(config.clock()) + lifetime
    segments = "/".join(quote(part, safe="") for part in (project_id, room, *path.split("/")))
    query = urlencode(
        {"expires": str(expires), "disposition": disposition, "signature": _signature(config, project_id, room, path, expires, disposition)}
    )
    return f"{http_base_url(config)}{PREFIX}{segments}?{query}"


def _plain_name(value: str) -> bool:
    """One folder name: no separators, not `.` or `..`, no control characters."""
    return bool(value) and value not in (".", "..") and "/" not in value and "\\" not in value and value.isprintable()


def verify(config: ServerConfig, raw_path: str, query: Mapping[str, str]) -> SignedFile:
    """The file a request for `raw_path` (percent-encoded, starting with `PREFIX`) names, once
    its signature and expiry are checked; `DownloadRefused` otherwise."""
    parts = [unquote(part) for part in raw_path[len(PREFIX) :].split("/")]
    if len(parts) < 3:
        raise DownloadRefused(400, "a room-file URL is /room-files/<project>/<room>/<path>")
    project_id, room, path = parts[0], parts[1], "/".join(parts[2:])
    if not _plain_name(project_id) or not _plain_name(room):
        raise DownloadRefused(400, "the project and the room of a room-file URL must be plain names")
    try:
        canonical = storage_request_path(path)
    except ValueError:
        canonical = None
    if canonical != path or not path:
        raise DownloadRefused(400, f"invalid file path {path[:200]!r}: a relative path without '..', empty segments or reserved names")
    expires_text, disposition, signature = (query.get(name, "") for name in ("expires", "disposition", "signature"))
    if not expires_text.isdigit() or disposition not in DISPOSITIONS or not signature:
        raise DownloadRefused(400, "a room-file URL needs expires, disposition and signature")
    expires = int(expires_text)
    expected = _signature(config, project_id, room, path, expires, disposition)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        raise DownloadRefused(403, "the download URL's signature is not valid")
    if config.clock() >= expires:
        raise DownloadRefused(403, "the download URL has expired")
    return SignedFile(project_id, room, path, disposition)


__all__ = [
    "DISPOSITIONS",
    "DOWNLOAD_URL_LIFETIME",
    "PREFIX",
    "ROOM_STORAGE_FOLDER",
    "DownloadRefused",
    "SignedFile",
    "download_url",
    "http_base_url",
    "room_storage_dir",
    "verify",
]
