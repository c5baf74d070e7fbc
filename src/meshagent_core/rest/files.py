"""The Files API (protocol/rest.md §22), defined once for the client (`client.files`) and the
server: its URLs, operations, queries, bodies and answers.

The Files API lives on its own base URL (`get_config().domains.files`; the local server serves it
under `FILES_PREFIX` of its own address) and does not fit the REST route table: its object URLs
end in a file path of any number of segments, one URL takes several operations told apart by a
query key (`?list=`, `?permissions=`, `?action=mkdir`), and `stat` is a `HEAD`. So it has this
small table of its own, `OPERATIONS`, matched by `match`:

    {files_base}/{project_id}/{rooms|agents}/{name}/{path}     object operations
    {files_base}/v1/presign                                    presign (POST)

`project_id` and `name` are one percent-encoded segment each; `path` is percent-encoded with its
`/` kept (so a `%2F` inside a name stays a character of the name). Paths are canonical relative
paths (`validate_file_path`: no leading `/`, no `\\`, no control characters, no empty, `.`
or `..` segments, no reserved `.meshagent-*` names); `""` is the target's root.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote, unquote

import msgspec
from msgspec import UNSET, UnsetType

from ..tokens.file_permissions import validate_file_path
from .models import Model
from .routes import Route, RouteError

#: Where the local server serves the Files API (the path of `domains.files`).
FILES_PREFIX = "/files"
PRESIGN_PATH = "/v1/presign"
#: Target kind -> the URL segment naming it.
NAMESPACES = {"room": "rooms", "agent": "agents"}
FILE_ACTIONS = ("list", "read", "write", "delete", "presign")
PRESIGN_METHODS = ("GET", "HEAD", "PUT", "DELETE")
MAX_LIST_LIMIT = 1000
MAX_PRESIGN_SECONDS = 604800
#: `stat`'s answer header saying the path is a folder.
IS_FOLDER_HEADER = "X-Meshagent-Is-Folder"

TargetKind = Literal["room", "agent"]

#: Nothing in the REST route table: the Files API's operations are `OPERATIONS`.
ROUTES: list[Route] = []


def validate_component(value: str) -> str:
    """A project id or target name: one path component (the official `FilesTarget` rule)."""
    if not value or value in (".", "..") or any(c in "/\\" or ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ValueError("Files resource identifiers must be single path components")
    return value


class FilesTarget(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    project_id: str
    kind: TargetKind
    name: str

    def __post_init__(self) -> None:
        validate_component(self.project_id)
        validate_component(self.name)


class FileLocation(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    target: FilesTarget
    path: str

    def __post_init__(self) -> None:
        validate_file_path(self.path)


class FileEntry(Model):
    """One entry of a listing (the official `StorageEntry`)."""

    name: str
    is_folder: bool
    size: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class FilesPage(msgspec.Struct, kw_only=True):
    entries: list[FileEntry]
    #: None on the last page (sent as null)
    continuation_token: str | None = None


class FilePermissions(msgspec.Struct, kw_only=True):
    actions: list[str]
    recursive_actions: list[str]


class FileMetadata(msgspec.Struct, kw_only=True):
    """What `stat` reads from the `HEAD` answer's headers."""

    path: str
    size: int
    is_folder: bool = False
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None


class PresignedFileUrl(msgspec.Struct, kw_only=True):
    url: str
    method: Literal["GET", "HEAD", "PUT", "DELETE"]
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    expires_at: datetime


# --- queries and bodies ----------------------------------------------------------------------


class ListQuery(msgspec.Struct, kw_only=True):
    list: str = ""
    prefix: str = ""
    limit: int = MAX_LIST_LIMIT
    continuation_token: str | UnsetType = UNSET


class PermissionsQuery(msgspec.Struct, kw_only=True):
    permissions: str = ""


class UploadQuery(msgspec.Struct, kw_only=True):
    overwrite: bool = True


class DeleteQuery(msgspec.Struct, kw_only=True):
    recursive: bool = False


class ActionQuery(msgspec.Struct, kw_only=True):
    action: Literal["mkdir", "copy", "move"]


class TransferBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`copy` and `move`: where from (the destination is the URL)."""

    source: FileLocation
    overwrite: bool = False


class PresignBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    target: FilesTarget
    path: str
    method: Literal["GET", "HEAD", "PUT", "DELETE"] = "GET"
    expires_in: int = 3600


@dataclass(frozen=True)
class FileOperation:
    """One Files operation: its official method name, verb, and the query key that selects it
    among the operations of its verb (None: the verb's default)."""

    name: str
    verb: str
    marker: str | None = None
    query: type[msgspec.Struct] | None = None


OPERATIONS = {
    operation.name: operation
    for operation in (
        FileOperation("permissions", "GET", "permissions", PermissionsQuery),
        FileOperation("list_page", "GET", "list", ListQuery),
        FileOperation("download", "GET"),
        FileOperation("stat", "HEAD"),
        FileOperation("upload", "PUT", None, UploadQuery),
        FileOperation("delete", "DELETE", None, DeleteQuery),
        FileOperation("action", "POST", "action", ActionQuery),
    )
}


def object_path(target: FilesTarget, path: str) -> str:
    """The URL path (below the files base) of `path` in `target`."""
    validate_file_path(path)
    return f"/{quote(target.project_id, safe='')}/{NAMESPACES[target.kind]}/{quote(target.name, safe='')}/{quote(path, safe='/')}"


@dataclass(frozen=True)
class FileRequest:
    """What a Files request is for: the operation, its target and canonical path, and its
    query (converted to the operation's query Struct)."""

    operation: FileOperation
    target: FilesTarget
    path: str
    query: msgspec.Struct | None


def match(verb: str, raw_path: str, query: dict[str, str]) -> FileRequest:
    """The operation a request below the files base is (`raw_path` percent-encoded, starting
    with `/`, not the presign path); `RouteError` naming what does not fit."""
    segments = raw_path.lstrip("/").split("/")
    if len(segments) < 4:
        raise RouteError("a Files URL is /<project_id>/<rooms|agents>/<name>/<path>")
    project_id, namespace, name = unquote(segments[0]), segments[1], unquote(segments[2])
    kinds = {segment: kind for kind, segment in NAMESPACES.items()}
    if namespace not in kinds:
        raise RouteError(f"a Files URL names rooms or agents, not {namespace[:50]!r}")
    try:
        target = FilesTarget(project_id=project_id, kind=kinds[namespace], name=name)  # type: ignore[arg-type]
        path = validate_file_path("/".join(unquote(segment) for segment in segments[3:]))
    except ValueError as error:
        raise RouteError(str(error)) from None
    candidates = [op for op in OPERATIONS.values() if op.verb == verb]
    if not candidates:
        raise RouteError(f"{verb} is not a Files verb")
    chosen = next((op for op in candidates if op.marker is not None and op.marker in query), None)
    chosen = chosen or next((op for op in candidates if op.marker is None or op.name == "action"), candidates[0])
    parsed = None
    if chosen.query is not None:
        unknown = set(query) - set(chosen.query.__struct_fields__)
        if unknown:
            raise RouteError(f"{chosen.name}: unknown query parameter {sorted(unknown)[0]!r}")
        try:
            parsed = msgspec.convert(dict(query), chosen.query, strict=False)
        except msgspec.ValidationError as error:
            raise RouteError(f"{chosen.name}: query: {error}") from None
    elif query:
        raise RouteError(f"{chosen.name}: unknown query parameter {sorted(query)[0]!r}")
    return FileRequest(chosen, target, path, parsed)


__all__ = [
    "FILES_PREFIX",
    "FILE_ACTIONS",
    "IS_FOLDER_HEADER",
    "MAX_LIST_LIMIT",
    "MAX_PRESIGN_SECONDS",
    "NAMESPACES",
    "OPERATIONS",
    "PRESIGN_METHODS",
    "PRESIGN_PATH",
    "ActionQuery",
    "DeleteQuery",
    "FileEntry",
    "FileLocation",
    "FileMetadata",
    "FileOperation",
    "FilePermissions",
    "FileRequest",
    "FilesPage",
    "FilesTarget",
    "ListQuery",
    "PermissionsQuery",
    "PresignBody",
    "PresignedFileUrl",
    "TransferBody",
    "UploadQuery",
    "match",
    "object_path",
    "validate_component",
]
