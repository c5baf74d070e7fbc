"""Routes of project storage (protocol/rest.md §7): `upload` and `download`, raw bytes both ways, on
paths without the `/accounts` prefix, each with the official client's own error messages."""

from __future__ import annotations

import msgspec

from .routes import Route

STORAGE = "/projects/{project_id}/storage"


class StoragePathQuery(msgspec.Struct, kw_only=True):
    #: the file's path in the project storage (relative; `..` and absolute paths are refused)
    path: str


ROUTES = [
    Route(
        "upload",
        "POST",
        STORAGE + "/upload",
        query=StoragePathQuery,
        raw_body_argument="data",
        raw_body="bytes",
        failure="Failed to upload file",
    ),
    Route(
        "download",
        "GET",
        STORAGE + "/download",
        bytes,
        query=StoragePathQuery,
        raw_answer=True,
        not_found="file was not found",
        failure="Failed to download file",
    ),
]
