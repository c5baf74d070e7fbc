"""`storage` toolkit contract (protocol/room-apis.md §2, events protocol/room-apis.md §2.6).

Unary inputs and outputs, the chunk headers of the pull-driven `upload` and `download`
streams, and the `storage.file.*` event headers. Responses and events the official client
validates strictly (no extra keys) are Structs with `omit_defaults`, so an unset optional field
is left out rather than sent as `null` where that matters (`stat` of a missing path is exactly
`{"exists": false}`).

Stream chunk headers are tagged Structs (`tag_field="kind"`): `msgspec.to_builtins(header)`
gives the `headers` object of a `binary` chunk, and `msgspec.convert(headers, type=...)` checks
the `kind` while decoding one.

Paths travel as the caller wrote them; both ends canonicalise them with
`meshagent_core.tokens.file_permissions.storage_request_path` (leading `./` and `/` dropped,
`.` is the root, `..`, empty segments, backslashes, control characters and the reserved names
`.meshagent-directory` / `.meshagent-upload-*` refused). Events carry canonical paths.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

# The event types and headers are session-level messages, defined once in `messages`.
from ..messages import FILE_DELETED, FILE_MOVED, FILE_UPDATED
from ..messages import FileDeleted as FileDeletedEvent
from ..messages import FileMoved as FileMovedEvent
from ..messages import FileUpdated as FileUpdatedEvent

TOOLKIT = "storage"

#: The official client's chunk size for downloads and for uploads whose pull names none.
DEFAULT_CHUNK_SIZE = 64 * 1024

#: Prefix of the temporary files an upload writes before its atomic rename (a reserved name:
#: no request path may contain a segment starting with it).
UPLOAD_TEMP_PREFIX = ".meshagent-upload-"


# --- unary inputs ---------------------------------------------------------------------------


class PathInput(msgspec.Struct):
    """`exists`, `stat`, `list`."""

    path: str


class DeleteInput(msgspec.Struct):
    """`delete`: a folder with contents needs `recursive`."""

    path: str
    recursive: bool | None = None


class MoveInput(msgspec.Struct):
    """`move`: `overwrite` lets a file replace an existing file at `destination_path`."""

    source_path: str
    destination_path: str
    overwrite: bool = False


class DownloadUrlInput(msgspec.Struct):
    """`download_url` (the 0.56 client always sends `download: null`)."""

    path: str
    download: bool | None = None


# --- unary outputs (strict on the client) ---------------------------------------------------


class ExistsOutput(msgspec.Struct):
    exists: bool


class StatOutput(msgspec.Struct, omit_defaults=True):
    """`exists: false` alone for a missing path; otherwise `name` and `is_folder` are required."""

    exists: bool
    name: str | None = None
    is_folder: bool | None = None
    size: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class StorageEntry(msgspec.Struct, omit_defaults=True):
    """One entry of `list` (and the shape `stat` describes)."""

    name: str
    is_folder: bool
    size: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ListOutput(msgspec.Struct):
    files: list[StorageEntry]


class DownloadUrlOutput(msgspec.Struct):
    url: str


# --- upload stream (input pull-driven by the server) ----------------------------------------


class UploadStart(msgspec.Struct, tag_field="kind", tag="start"):
    """First request chunk (`binary`, empty data)."""

    path: str
    overwrite: bool = False
    name: str | None = None
    mime_type: str | None = None
    size: int | None = None


class UploadData(msgspec.Struct, tag_field="kind", tag="data"):
    """A request chunk carrying up to the pulled number of bytes."""


class UploadPull(msgspec.Struct, tag_field="kind", tag="pull", omit_defaults=True):
    """Response chunk asking for the next data chunk (`chunk_size` absent or ≤0: client default)."""

    chunk_size: int | None = None


# --- download stream (output pull-driven by the client) -------------------------------------


class DownloadStart(msgspec.Struct, tag_field="kind", tag="start"):
    """First request chunk (`binary`, empty data)."""

    path: str
    chunk_size: int = DEFAULT_CHUNK_SIZE


class DownloadPull(msgspec.Struct, tag_field="kind", tag="pull"):
    """Request chunk asking for the next data chunk."""


class DownloadStarted(msgspec.Struct, tag_field="kind", tag="start"):
    """First response chunk (`binary`, empty data); strict on the client."""

    name: str
    mime_type: str
    size: int


class DownloadData(msgspec.Struct, tag_field="kind", tag="data"):
    """A response chunk carrying file bytes; strict on the client."""


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FILE_DELETED",
    "FILE_MOVED",
    "FILE_UPDATED",
    "TOOLKIT",
    "UPLOAD_TEMP_PREFIX",
    "DeleteInput",
    "DownloadData",
    "DownloadPull",
    "DownloadStart",
    "DownloadStarted",
    "DownloadUrlInput",
    "DownloadUrlOutput",
    "ExistsOutput",
    "FileDeletedEvent",
    "FileMovedEvent",
    "FileUpdatedEvent",
    "ListOutput",
    "MoveInput",
    "PathInput",
    "StatOutput",
    "StorageEntry",
    "UploadData",
    "UploadPull",
    "UploadStart",
]
