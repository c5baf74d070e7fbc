"""The Files API (protocol/rest.md §22), served under `FILES_PREFIX` of the server's address (the
`domains.files` that `get_config` names): list, stat, download, upload, delete, mkdir, copy,
move, permissions and presigned URLs over a room's storage (the one the room API sees) or a
managed agent's (`files_storage.storage_dir`), with the room storage's path rules.

Authentication is REST's (`keys.bearer_caller`): the server's API key acts in every project, an
API key of a project in that project (403 for another's); a participant JWT is refused (403,
as on REST routes it may not call). Both may do every file action, which `permissions`
answers. A presigned URL carries its own authority instead (`X-Meshagent-Expires` and
`X-Meshagent-Signature`: HMAC-SHA256 under a key derived from the server's secret, over the
method, target, path and expiry, checked against `config.clock()`): 403 when the signature
does not fit the request's method or the URL has expired.

Refusals are REST's JSON errors (none for a `HEAD`, which has no body): 400 a request that does
not fit (a path that is not canonical: `..`, empty segments, absolute, reserved names; a bad
query or body, naming it), 401 no bearer, 403 as above, 404 an unknown project, room or agent
or a missing file, 409 an upload/copy/move onto an existing path without `overwrite`, a folder
where a file would be overwritten, `mkdir` of an existing path, or a non-empty folder deleted
without `recursive`, 413 an upload over `max_upload_size`.

Changes to a room's files reach its connected participants as the room API's own do:
`storage.file.updated` after an upload or a copy (none for `mkdir`), `storage.file.deleted`,
`storage.file.moved` (a move between two targets: updated at the destination, deleted at the
source).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import h11
import msgspec
import trio

from meshagent_core import ErrorCode, RoomException
from meshagent_core.jsondepth import decode_bounded
from meshagent_core.rest import Route, RouteError
from meshagent_core.rest.files import (
    FILE_ACTIONS,
    FILES_PREFIX,
    MAX_LIST_LIMIT,
    MAX_PRESIGN_SECONDS,
    PRESIGN_PATH,
    FilePermissions,
    FileRequest,
    FilesTarget,
    PresignBody,
    PresignedFileUrl,
    TransferBody,
    match,
    object_path,
)
from meshagent_core.toolkits.storage import FILE_DELETED, FILE_MOVED, FILE_UPDATED, FileDeletedEvent, FileMovedEvent, FileUpdatedEvent
from meshagent_core.tokens.file_permissions import validate_file_path

from ..control import Conflict, ControlError, Forbidden, NotFound
from ..http import BodyTooLarge, Request, read_body, respond_json
from ..http.files import BodyStream, OpenFile, send_file
from ..signed_downloads import http_base_url
from ..toolkits.storage_disk import AtomicUpload, delete_path, describe_for_delete, move_path, open_for_download
from . import files_storage as disk
from . import front
from .context import ANONYMOUS, Caller, RestContext
from .keys import bearer_caller

#: The query keys of a presigned URL.
EXPIRES, SIGNATURE = "X-Meshagent-Expires", "X-Meshagent-Signature"
_KEY_PURPOSE = b"meshagent-trio presigned Files API URLs v1"
#: What `bearer_caller` is told the call is (no participant route: participant JWTs are refused).
_FILES_ROUTE = Route("files", "GET", FILES_PREFIX)
_REFUSALS: dict[Any, type[ControlError]] = {
    ErrorCode.STORAGE_NOT_FOUND: NotFound,
    ErrorCode.STORAGE_INVALID_PATH: ControlError,
    ErrorCode.STORAGE_ALREADY_EXISTS: Conflict,
    ErrorCode.STORAGE_RECURSIVE_REQUIRED: Conflict,
}


class StorageFailed(ControlError):
    status = 500
    code = "storage_failed"


def is_files_path(path: str) -> bool:
    return path == FILES_PREFIX or path.startswith(FILES_PREFIX + "/")


async def serve_files(request: Request, context: RestContext) -> bool:
    """Answer a request under `FILES_PREFIX`; returns whether the connection may serve another."""
    body_pending = request.method in ("PUT", "POST")
    try:
        path = request.path[len(FILES_PREFIX) :]
        query = dict(parse_qsl(request.query, keep_blank_values=True))
        if path == PRESIGN_PATH:
            if request.method != "POST":
                raise ControlError(f"{request.method} is not allowed on {FILES_PREFIX}{PRESIGN_PATH} (POST)")
            caller = _authenticate(context, request)
            body = await _read_json_body(request, context)
            body_pending = False
            answer = await presign(context, _convert(body, PresignBody, "presign"), caller)
            await respond_json(request.stream, request.connection, 200, msgspec.json.encode(answer))
            return True
        if SIGNATURE in query:
            found, caller = _verify_presigned(context, request.method, path, query)
        else:
            caller = _authenticate(context, request)
            try:
                found = match(request.method, path, query)
            except RouteError as error:
                raise ControlError(str(error)) from None
        target = found.target
        front.check_project(caller, {"project_id": target.project_id})
        await context.control.files.require_target(target.project_id, target.kind, target.name)
        root = await trio.to_thread.run_sync(disk.real_root, context.config, target)
        return await _serve(request, context, caller, found, root)
    except BodyTooLarge:
        limit = context.config.max_upload_size
        await _refuse(request, _TooLarge(f"the request body is over {limit} bytes"), close=True)
        return False
    except ControlError as refused:
        await _refuse(request, refused, close=body_pending)
        return not body_pending
    except RoomException as error:
        await _refuse(request, _refusal(error), close=body_pending)
        return not body_pending
    except trio.TooSlowError:
        return False


class _TooLarge(ControlError):
    status = 413
    code = "too_large"


def _refusal(error: RoomException) -> ControlError:
    return _REFUSALS.get(error.code, StorageFailed)(error.message)


def _convert(value: Any, type_: type[msgspec.Struct], name: str) -> Any:
    try:
        return msgspec.convert(value, type_)
    except (msgspec.ValidationError, ValueError) as error:
        raise ControlError(f"{name}: body: {error}") from None


async def _refuse(request: Request, refused: ControlError, *, close: bool) -> None:
    headers = [("connection", "close")] if close else []
    if request.method == "HEAD":
        await _respond_head(request, refused.status, headers)
        return
    await respond_json(request.stream, request.connection, refused.status, front.error_body(refused.code, str(refused)), headers)


async def _respond_head(request: Request, status: int, headers: list[tuple[str, str]]) -> None:
    connection = request.connection
    if not any(name == "content-length" for name, _ in headers):
        headers = [*headers, ("content-length", "0")]
    await request.stream.send_all(connection.send(h11.Response(status_code=status, headers=headers)) + connection.send(h11.EndOfMessage()))


def _authenticate(context: RestContext, request: Request) -> Caller:
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not token or token == "None":
        raise front.Unauthorized("the Files API needs Authorization: Bearer <API key>")
    return bearer_caller(context, _FILES_ROUTE, {}, token)


async def _read_json_body(request: Request, context: RestContext) -> Any:
    with trio.fail_after(context.config.request_head_timeout):
        body = await read_body(request, context.config.max_request_body)
    try:
        return decode_bounded(body or b"{}")
    except msgspec.DecodeError as error:
        raise ControlError(f"the body is not JSON: {error}") from None


# --- operations ------------------------------------------------------------------------------


async def _serve(request: Request, context: RestContext, caller: Caller, found: FileRequest, root: Path) -> bool:
    name, path, target = found.operation.name, found.path, found.target
    stream, connection = request.stream, request.connection
    if name == "permissions":
        answer: Any = FilePermissions(actions=list(FILE_ACTIONS), recursive_actions=list(FILE_ACTIONS))
    elif name == "list_page":
        query = found.query
        if not 1 <= query.limit <= MAX_LIST_LIMIT:
            raise ControlError(f"list_page: limit must be between 1 and {MAX_LIST_LIMIT}, not {query.limit}")
        prefix = "/".join(part for part in (path, _path("list_page", query.prefix)) if part)  # official clients list from the root
        after = query.continuation_token if isinstance(query.continuation_token, str) else None
        answer = await trio.to_thread.run_sync(lambda: disk.list_page(root, prefix, after=after, limit=query.limit))
    elif name in ("download", "stat"):
        return await _send(request, root, path)
    elif name == "upload":
        await _upload(request, context, root, path, found.query.overwrite)
        _announce(context, target, FILE_UPDATED, FileUpdatedEvent(path=path, participant_id=_who(caller)))
        answer = {}
    elif name == "delete":
        await _delete(root, path, found.query.recursive)
        _announce(context, target, FILE_DELETED, FileDeletedEvent(path=path, participant_id=_who(caller)))
        answer = {}
    else:
        body = await _read_json_body(request, context)
        await _action(context, caller, found, root, body)
        answer = {}
    await respond_json(stream, connection, 200, msgspec.json.encode(answer))
    return True


def _path(name: str, raw: str) -> str:
    try:
        return validate_file_path(raw)
    except ValueError:
        raise ControlError(f"{name}: {raw[:200]!r} is not a canonical relative path") from None


def _who(caller: Caller) -> str:
    return caller.subject_id or caller.name or caller.kind


def _announce(context: RestContext, target: FilesTarget, type: str, event: msgspec.Struct) -> None:
    """The room API's storage event, to the room's connected participants."""
    if target.kind == "room":
        context.room(target.project_id, target.name).broadcast(type, event)


async def _send(request: Request, root: Path, path: str) -> bool:
    if request.method == "HEAD":
        headers = await trio.to_thread.run_sync(disk.stat_headers, root, path)
        if headers is None:
            raise NotFound(f"{path!r} was not found")
        if any(name == "x-meshagent-is-folder" for name, _ in headers):
            await _respond_head(request, 200, headers)
            return True
    if path == "":
        raise ControlError("download: the storage root is a folder, not a file")
    file, size, content_type = await trio.to_thread.run_sync(open_for_download, root, path)
    validators = disk.validators(os.fstat(file.fileno()))
    await send_file(request, OpenFile(file, size, content_type, path.rpartition("/")[2]), validators)
    return True


async def _upload(request: Request, context: RestContext, root: Path, path: str, overwrite: bool) -> None:
    if path == "":
        raise ControlError("upload: the storage root is a folder: upload needs a file path")
    body = BodyStream(request, limit=context.config.max_upload_size, read_timeout=context.config.request_head_timeout)
    writer = AtomicUpload(root, path, overwrite)
    await trio.to_thread.run_sync(writer.begin)
    committed = False
    try:
        async for chunk in body.chunks():
            await trio.to_thread.run_sync(writer.write, chunk)
        await trio.to_thread.run_sync(writer.commit, request.headers.get("content-type"))
        committed = True
    finally:
        if not committed:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(writer.abort)


async def _delete(root: Path, path: str, recursive: bool) -> None:
    if path == "":
        raise ControlError("delete: the storage root cannot be deleted")

    def work() -> None:
        delete_path(describe_for_delete(root, path)[0], path, recursive)

    await trio.to_thread.run_sync(work)


async def _action(context: RestContext, caller: Caller, found: FileRequest, root: Path, body: Any) -> None:
    action, path, target = found.query.action, found.path, found.target
    if action == "mkdir":
        await trio.to_thread.run_sync(disk.make_folder, root, path)
        return
    transfer: TransferBody = _convert(body, TransferBody, action)
    source = transfer.source
    front.check_project(caller, {"project_id": source.target.project_id})
    await context.control.files.require_target(source.target.project_id, source.target.kind, source.target.name)
    source_root = await trio.to_thread.run_sync(disk.real_root, context.config, source.target)
    if source.path == "" or path == "":
        raise ControlError(f"{action}: the storage root cannot be copied, moved or replaced")
    who = _who(caller)
    if action == "move" and source_root == root:
        if path.startswith(source.path + "/"):
            raise ControlError(f"move: cannot move {source.path!r} into itself ({path!r})")
        if await trio.to_thread.run_sync(move_path, root, source.path, path, transfer.overwrite):
            _announce(context, target, FILE_MOVED, FileMovedEvent(source_path=source.path, destination_path=path, participant_id=who))
        return
    await trio.to_thread.run_sync(disk.copy_tree, source_root, source.path, root, path, transfer.overwrite)
    _announce(context, target, FILE_UPDATED, FileUpdatedEvent(path=path, participant_id=who))
    if action == "move":
        await _delete(source_root, source.path, True)
        _announce(context, source.target, FILE_DELETED, FileDeletedEvent(path=source.path, participant_id=who))


# --- presigned URLs --------------------------------------------------------------------------


def _signature(context: RestContext, method: str, target: FilesTarget, path: str, expires: int) -> str:
    key = hmac.new(context.config.credentials.secret.encode("utf-8"), _KEY_PURPOSE, hashlib.sha256).digest()
    message = msgspec.json.encode([method, target.project_id, target.kind, target.name, path, expires])
    return hmac.new(key, message, hashlib.sha256).hexdigest()


async def presign(context: RestContext, body: PresignBody, caller: Caller) -> PresignedFileUrl:
    target = body.target
    path = _path("presign", body.path)
    if not 1 <= body.expires_in <= MAX_PRESIGN_SECONDS:
        raise ControlError(f"presign: expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds, not {body.expires_in}")
    front.check_project(caller, {"project_id": target.project_id})
    await context.control.files.require_target(target.project_id, target.kind, target.name)
    expires = int(context.config.clock()) + body.expires_in
    query = urlencode({EXPIRES: str(expires), SIGNATURE: _signature(context, body.method, target, path, expires)})
    url = f"{http_base_url(context.config)}{FILES_PREFIX}{object_path(target, path)}?{query}"
    return PresignedFileUrl(url=url, method=body.method, expires_at=datetime.fromtimestamp(expires, tz=timezone.utc))


def _verify_presigned(context: RestContext, method: str, path: str, query: dict[str, str]) -> tuple[FileRequest, Caller]:
    expires_text, signature = query.pop(EXPIRES, ""), query.pop(SIGNATURE, "")
    if query:
        raise ControlError(f"a presigned URL takes no other query parameter than {EXPIRES} and {SIGNATURE}")
    if not expires_text.isdigit():
        raise ControlError(f"a presigned URL needs {EXPIRES} (unix seconds)")
    try:
        found = match(method, path, {})
    except RouteError as error:
        raise ControlError(str(error)) from None
    expires = int(expires_text)
    expected = _signature(context, method, found.target, found.path, expires)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        raise Forbidden(f"the presigned URL's signature is not valid for {method} {found.path!r}")
    if context.config.clock() >= expires:
        raise Forbidden("the presigned URL has expired")
    return found, ANONYMOUS


__all__ = ["EXPIRES", "SIGNATURE", "is_files_path", "presign", "serve_files"]
