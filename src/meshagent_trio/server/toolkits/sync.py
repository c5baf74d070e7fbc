"""The `sync` toolkit: collaborative documents (protocol/documents.md §4, §5).

One shared document per path per room, loaded while someone uses it:

* `open` streams: the first response chunk is the `state` (schema + the update the client
  lacks for the state vector it sent), then every update another participant makes, as it is
  accepted. Updates are never echoed to their sender.
* Every incoming update is validated before it is accepted: it is integrated into a *scratch
  replica* (a `MeshDocument`, whose structural mirror checks the schema as it integrates). A
  valid update is then applied to the *committed* `pycrdt.Doc` and relayed; an invalid one
  (not base64, not a Yjs update, breaking the schema, or changing a read-only path) is answered
  with an `error` chunk that ends the sender's stream, and the scratch replica is rebuilt from
  the committed state, so the document stays intact. Updates that change nothing (the official
  client echoes every update it applies) are accepted silently and not relayed.
* A subscriber that falls behind never blocks the room and never loses updates: its queued
  updates are merged into one when it reads, and past `MAX_QUEUED_UPDATES` the queue is
  replaced by "everything since state vector V", computed from the committed document when the
  subscriber catches up.

Persistence (protocol/documents.md §5.5): a document is a file in room storage at its own path, written
atomically (temp file, fsync, rename) `PERSIST_DELAY` seconds after a change, when its last
user leaves, and when the server stops. The file is UTF-8 JSON:

    {"format": "meshagent-document", "version": 1,
     "schema": <MeshSchema JSON>, "state": "<standard base64 of the Yjs v1 full-state update>"}

so `storage.exists`/`list`/`delete`/`download` see documents as the official clients expect.
A crash (SIGKILL) loses at most the last `PERSIST_DELAY` seconds of edits.

Schemas (protocol/documents.md §5.4): an existing document keeps the schema stored with it (a schema passed by a
later `open` is ignored; the `state` chunk tells the client which one is used). A new document
uses the schema passed to `create`/`open`, else the schema file at `schema_path` in room storage,
else `.schemas/<extension>.json`, else the call fails with 1002.

Errors: no `sync` grant or path not granted → 1001; path not readable/writable → 1001; missing
document with `create: false`, or `describe` of a missing document → 1003; `create` of an
existing document → 1004; bad paths → 3004; bad schemas, bad initial JSON, bad chunks → 1002.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import msgspec
import trio
from pycrdt import Doc, merge_updates
from pycrdt import get_update as diff_update

from meshagent_core import BinaryContent, Content, ErrorCode, JsonContent, RoomException
from meshagent_core.jsondepth import decode_bounded, loads_bounded
from meshagent_core.sync import (
    DocumentError,
    InvalidUpdate,
    MeshDocument,
    MeshSchema,
    MeshSchemaException,
    decode_state_vector,
    decode_update,
    encode_update,
    new_client_id,
)
from meshagent_core.tokens.grants import SyncGrant
from meshagent_core.toolkits.sync import (
    CreateInput,
    DescribeInput,
    RelayHeaders,
    StartHeaders,
    StateHeaders,
    SyncHeaders,
    headers_to_builtins,
    normalize_path,
    request_headers,
)

from ..toolkit import Toolkit, ToolCall, invalid_request, permission_denied
from .storage import AtomicUpload, StorageState, canonical_path, locate

log = logging.getLogger("meshagent_trio.server")

toolkit = Toolkit("sync")

FILE_FORMAT = "meshagent-document"
FILE_VERSION = 1
SCHEMAS_FOLDER = ".schemas"
#: Seconds between a change and the write that persists it.
PERSIST_DELAY = 0.25
#: Updates queued for one subscriber before they are replaced by a state-vector diff.
MAX_QUEUED_UPDATES = 256
#: Released documents kept loaded per room, so reopening one does not read and parse it again.
IDLE_DOCUMENTS = 16
#: How long a final write may take when the server stops or the last user leaves.
FINAL_WRITE_TIMEOUT = 10.0

_encode_json = msgspec.json.Encoder().encode


class _Subscriber:
    """One open stream: what it still has to receive."""

    def __init__(self) -> None:
        self.queue: list[bytes] = []
        self.since: bytes | None = None  # state vector: send everything after it instead
        self.queue_base: bytes | None = None  # committed state vector before the first queued update
        self.wakeup = trio.Event()


class SharedDocument:
    """A document as the room shares it: the committed CRDT, its validating replica, the open
    streams and the persistence state."""

    def __init__(self, path: str, schema: MeshSchema, state: bytes | None) -> None:
        self.path = path
        self.schema = schema
        self.schema_json = schema.to_json()
        self.committed = Doc(client_id=new_client_id())
        if state:
            self.committed.apply_update(state)
        self._replica: MeshDocument | None = None
        self.subscribers: set[_Subscriber] = set()
        self.users = 0
        self.file_signature: tuple[int, int, int, int] | None = None  # of the file as last read or written
        self.dirty = False
        self.changed = trio.Event()
        self.write_lock = trio.Lock()

    @property
    def replica(self) -> MeshDocument:
        """The validating replica, built when first needed: documents that are only read
        (opened, described) never pay for it."""
        if self._replica is None:
            self._replica = MeshDocument(schema=self.schema, update=self.committed.get_update())
        return self._replica

    def _drop_replica(self) -> None:
        if self._replica is not None:
            self._replica.close()
            self._replica = None

    def state(self, vector: bytes | None = None) -> bytes:
        return self.committed.get_update(vector) if vector else self.committed.get_update()

    def to_json(self) -> dict[str, Any]:
        return self.replica.to_json()

    def load_json(self, document_json: dict[str, Any]) -> None:
        """Fill a new, empty document from its JSON form (one transaction, ids made here)."""
        try:
            self.replica.load_json(document_json)
        except DocumentError as error:
            self._drop_replica()
            raise invalid_request(f"the initial JSON does not fit the schema: {error}") from None
        self.committed.apply_update(self.replica.get_state())
        self.dirty = True

    def accept(self, update: bytes, sender: _Subscriber | None, writable: bool) -> None:
        """Validate `update`, then commit and relay it; `RoomException` when it is refused
        (the document is then unchanged)."""
        before = self.replica.get_state_vector()
        changes = 0

        def count(batch: list[Any]) -> None:
            nonlocal changes
            changes += len(batch)

        unsubscribe = self.replica.observe(count)
        try:
            violations = self.replica.apply_update(update)
        except InvalidUpdate as error:
            raise invalid_request(f"the update is not a Yjs v1 update: {error}") from None
        finally:
            unsubscribe()
        brings_new_structs = _has_structs_beyond(update, before)
        if not changes and not brings_new_structs and not violations:
            return  # already known (an echo): nothing to commit or relay
        if self.replica.incomplete:
            # Items that come before their client's earlier ones: clients send their own items
            # in order, so the missing ones are not on their way, and the plain pycrdt document
            # would integrate these with a gap (y-crdt#632).
            violations = violations + ["the update depends on changes this document does not have"]
        if violations or not writable:
            self._drop_replica()  # it integrated the refused update: rebuilt from the committed state
            if violations:
                raise invalid_request(f"the update was refused, it breaks the document schema: {'; '.join(violations[:3])}")
            raise permission_denied(f"{self.path!r} is read-only for you: the update was refused")
        self.committed.apply_update(update)
        self.dirty = True
        self.changed.set()
        for subscriber in self.subscribers:
            if subscriber is not sender:
                self._enqueue(subscriber, update, before)

    def _enqueue(self, subscriber: _Subscriber, update: bytes, before: bytes) -> None:
        if subscriber.since is None:
            if not subscriber.queue:
                subscriber.queue_base = before
            if len(subscriber.queue) < MAX_QUEUED_UPDATES:
                subscriber.queue.append(update)
            else:
                subscriber.since = subscriber.queue_base
                subscriber.queue = []
        subscriber.wakeup.set()

    def take(self, subscriber: _Subscriber) -> bytes | None:
        """Everything queued for `subscriber`, as one update (None: nothing)."""
        subscriber.wakeup = trio.Event()
        if subscriber.since is not None:
            since, subscriber.since = subscriber.since, None
            return self.committed.get_update(since)
        queue, subscriber.queue = subscriber.queue, []
        if not queue:
            return None
        return queue[0] if len(queue) == 1 else merge_updates(*queue)

    def snapshot(self) -> bytes:
        body = {"format": FILE_FORMAT, "version": FILE_VERSION, "schema": self.schema_json, "state": encode_update(self.state()).decode("ascii")}
        return _encode_json(body)


def _has_structs_beyond(update: bytes, vector: bytes) -> bool:
    """Whether `update` carries items the holder of state vector `vector` lacks (the diff
    against `vector` starts with a non-zero count of clients with structs)."""
    return diff_update(update, vector)[:1] != b"\x00"


class SyncState:
    """The room's documents in use, by path, and the `IDLE_DOCUMENTS` most recently released
    ones (kept loaded so reopening is cheap; one whose file changed meanwhile, e.g. deleted to
    replace the document, is reloaded)."""

    def __init__(self, room: Any) -> None:
        self.room = room
        self.documents: dict[str, SharedDocument] = {}
        self._idle: dict[str, None] = {}  # insertion-ordered: oldest first
        self._locks: dict[str, trio.Lock] = {}

    async def storage_root(self) -> Path:
        state: StorageState = self.room.toolkit_state("storage", StorageState)
        return await state.get_root()

    async def acquire(
        self,
        path: str,
        *,
        create: bool,
        schema_json: dict[str, Any] | None,
        initial_json: dict[str, Any] | None,
        schema_path: str | None = None,
        may_create: bool = True,
        must_be_new: bool = False,
    ) -> SharedDocument:
        """The shared document at `path`, loaded or created (`create`, if `may_create`), with
        one more user."""
        lock = self._locks.setdefault(path, trio.Lock())
        try:
            async with lock:
                document = self.documents.get(path)
                if document is not None and path in self._idle:
                    del self._idle[path]
                    root = await self.storage_root()
                    if await trio.to_thread.run_sync(_file_signature, root, path) != document.file_signature:
                        del self.documents[path]
                        document = None
                if document is None:
                    document = await self._load(path)
                if document is not None and must_be_new:
                    if not document.users:
                        self.documents.pop(path, None)
                    raise RoomException(f"the document {path!r} already exists", code=ErrorCode.ALREADY_EXISTS)
                if document is None:
                    if not create:
                        raise RoomException(f"the document {path!r} does not exist", code=ErrorCode.NOT_FOUND)
                    if not may_create:
                        raise permission_denied(f"the document {path!r} does not exist and you may not create it")
                    document = await self._create(path, schema_json, schema_path, initial_json)
                self.documents[path] = document
                document.users += 1
                return document
        finally:
            self._forget_lock(path)  # when this call left nothing loaded (e.g. not found)

    async def release(self, document: SharedDocument) -> None:
        document.users -= 1
        if document.users > 0:
            return
        failure: RoomException | None = None
        with trio.CancelScope(shield=True), trio.move_on_after(FINAL_WRITE_TIMEOUT):
            try:
                await self.persist(document)
            except RoomException as error:
                failure = error
        if document.dirty:
            log.error(
                "the last edits of the document %r could not be saved: %s",
                document.path,
                failure.message if failure is not None else f"the write took longer than {FINAL_WRITE_TIMEOUT:.0f} s",
            )
        if document.users == 0 and self.documents.get(document.path) is document:
            if document.dirty:  # do not keep a copy that disagrees with the file
                self._unload(document.path)
            else:
                self._idle[document.path] = None
                while len(self._idle) > IDLE_DOCUMENTS:
                    self._unload(next(iter(self._idle)))
        if failure is not None:
            raise failure

    def _unload(self, path: str) -> None:
        self._idle.pop(path, None)
        self.documents.pop(path, None)
        self._forget_lock(path)

    def _forget_lock(self, path: str) -> None:
        """Drop the per-path lock of a document that is not loaded, unless someone uses it."""
        lock = self._locks.get(path)
        if lock is not None and path not in self.documents and not lock.locked() and not lock.statistics().tasks_waiting:
            del self._locks[path]

    async def persist(self, document: SharedDocument) -> None:
        async with document.write_lock:
            if not document.dirty:
                return
            document.dirty = False
            snapshot = document.snapshot()
            root = await self.storage_root()
            try:
                document.file_signature = await trio.to_thread.run_sync(_write_atomically, root, document.path, snapshot)
            except BaseException:
                document.dirty = True
                raise

    async def persist_while_open(self, document: SharedDocument) -> None:
        """Write the document `PERSIST_DELAY` after each change (runs beside each stream)."""
        while True:
            await document.changed.wait()
            await trio.sleep(PERSIST_DELAY)
            document.changed = trio.Event()
            try:
                await self.persist(document)
            except RoomException as error:
                log.error("could not save the document %r: %s", document.path, error.message)

    async def _load(self, path: str) -> SharedDocument | None:
        root = await self.storage_root()
        raw, signature = await trio.to_thread.run_sync(_read_document_file, root, path)
        if raw is None:
            return None
        try:
            body = decode_bounded(raw)
            if not isinstance(body, dict) or body.get("format") != FILE_FORMAT:
                raise ValueError("not a document file")
            if body.get("version") != FILE_VERSION:
                raise ValueError(f"unsupported document file version {body.get('version')!r}")
            schema = MeshSchema.from_json(body["schema"])
            state = decode_update(body["state"])
            document = SharedDocument(path, schema, state)
            document.file_signature = signature
            return document
        except (ValueError, KeyError, TypeError, MeshSchemaException, msgspec.DecodeError) as error:
            raise invalid_request(f"{path!r} is a file in room storage but not a MeshAgent document ({error})") from None

    async def _create(
        self, path: str, schema_json: dict[str, Any] | None, schema_path: str | None, initial_json: dict[str, Any] | None
    ) -> SharedDocument:
        schema = await self._resolve_schema(path, schema_json, schema_path)
        document = SharedDocument(path, schema, None)
        if initial_json is not None:
            document.load_json(initial_json)
        document.dirty = True
        await self.persist(document)
        return document

    async def _resolve_schema(self, path: str, schema_json: dict[str, Any] | None, schema_path: str | None) -> MeshSchema:
        """The schema given, else the one in room storage at `schema_path`, else
        `.schemas/<extension of path>.json`."""
        if schema_json is None:
            if schema_path is not None:
                source = canonical_path(normalize_path(schema_path))
            else:
                name = path.rsplit("/", 1)[-1]
                extension = name.rsplit(".", 1)[-1] if "." in name.lstrip(".") else None
                if not extension:
                    raise invalid_request(f"no schema for {path!r}: pass a schema, or name the document <name>.<ext> and deploy {SCHEMAS_FOLDER}/<ext>.json")
                source = f"{SCHEMAS_FOLDER}/{extension}.json"
            root = await self.storage_root()
            raw = await trio.to_thread.run_sync(_read_file, root, source)
            if raw is None:
                raise invalid_request(f"no schema for {path!r}: pass a schema or deploy {source}")
            try:
                schema_json = loads_bounded(raw)
            except ValueError as error:
                raise invalid_request(f"{source} is not JSON: {error}") from None
        try:
            return MeshSchema.from_json(schema_json)  # type: ignore[arg-type]
        except MeshSchemaException as error:
            raise invalid_request(f"invalid schema for {path!r}: {error}") from None


def _read_file(root: Path, path: str) -> bytes | None:
    location = locate(root, path)
    try:
        with open(location, "rb") as file:
            return file.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        raise invalid_request(f"{path!r} is a folder, not a document") from None


FileSignature = tuple[int, int, int, int]


def _file_signature(root: Path, path: str) -> FileSignature | None:
    try:
        info = os.stat(locate(root, path))
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _read_document_file(root: Path, path: str) -> tuple[bytes | None, FileSignature | None]:
    signature = _file_signature(root, path)
    data = _read_file(root, path)
    # a write between the two reads makes the signature stale, which only costs a reload later
    return data, signature


def _write_atomically(root: Path, path: str, data: bytes) -> FileSignature | None:
    upload = AtomicUpload(root, path, overwrite=True)
    upload.begin()
    try:
        upload.write(data)
        upload.commit("application/vnd.meshagent.document+json")
    except BaseException:
        upload.abort()
        raise
    return _file_signature(root, path)


# --- access ---------------------------------------------------------------------------------


def _grant(call: ToolCall) -> SyncGrant:
    grant = call.scope.sync if call.scope is not None else None
    if grant is None:
        raise permission_denied("the token does not grant the sync API")
    return grant


def _document_path(raw: str) -> str:
    normalized = normalize_path(raw)
    path = canonical_path(normalized)
    if not path:
        raise invalid_request("a document path may not be empty")
    if path != normalized:
        # The official client checks that the path in the server's chunks is the one it sent
        # (minus leading `./` and `/`): answering for `a/b` what was opened as `a//b/` would
        # fail its open, so only the canonical spelling is accepted.
        raise invalid_request(f"document path {raw!r} is not in canonical form: use {path!r}")
    if path == SCHEMAS_FOLDER or path.startswith(SCHEMAS_FOLDER + "/"):
        raise invalid_request(f"{path!r} is in {SCHEMAS_FOLDER}/, which holds schemas, not documents")
    return path


def _require_read(grant: SyncGrant, path: str) -> None:
    if not grant.can_read(path):
        raise permission_denied(f"you do not have permission to open {path!r}")


def _require_write(grant: SyncGrant, path: str) -> None:
    if not grant.can_write(path):
        raise permission_denied(f"you do not have permission to change {path!r}")


def _documents(call: ToolCall) -> SyncState:
    return call.room.toolkit_state("sync", SyncState)


# --- tools ----------------------------------------------------------------------------------


@toolkit.tool("create")
async def create(call: ToolCall) -> None:
    grant = _grant(call)
    request = call.json_arguments(CreateInput)
    path = _document_path(request.path)
    _require_write(grant, path)
    documents = _documents(call)
    document = await documents.acquire(path, create=True, schema_json=request.schema, schema_path=request.schema_path, initial_json=request.json, must_be_new=True)
    await documents.release(document)


@toolkit.tool("describe")
async def describe(call: ToolCall) -> Content:
    grant = _grant(call)
    request = call.json_arguments(DescribeInput)
    path = _document_path(request.path)
    _require_read(grant, path)
    documents = _documents(call)
    document = await documents.acquire(path, create=False, schema_json=None, initial_json=None)
    try:
        return JsonContent(json=document.to_json())
    finally:
        await documents.release(document)


@toolkit.tool("open")
async def open_(call: ToolCall) -> None:
    grant = _grant(call)
    start = await _start_chunk(call)
    path = _document_path(start.path)
    _require_read(grant, path)
    vector = _decode_vector(start.vector)
    documents = _documents(call)
    document = await documents.acquire(
        path,
        create=start.create,
        schema_json=start.schema,
        schema_path=start.schema_path,
        initial_json=start.initial_json,
        may_create=grant.can_write(path),
    )
    subscriber = _Subscriber()
    try:
        # No await between the state and the registration: no update can fall in between.
        state = document.state(vector)
        document.subscribers.add(subscriber)
        await call.open_stream()
        await call.send(BinaryContent(headers=headers_to_builtins(StateHeaders(path=path, schema=document.schema_json)), data=encode_update(state)))
        refused: RoomException | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_relay_to, call, document, subscriber, path)
            nursery.start_soon(documents.persist_while_open, document)
            try:
                await _receive_updates(call, document, subscriber, grant, path)
            except RoomException as error:
                refused = error  # raised outside the nursery, so it is not wrapped in a group
            nursery.cancel_scope.cancel()
        if refused is not None:
            raise refused
    finally:
        document.subscribers.discard(subscriber)
        await documents.release(document)


async def _start_chunk(call: ToolCall) -> StartHeaders:
    if not call.has_input_stream:
        raise invalid_request("sync.open expects a streamed input starting with a 'start' chunk")
    chunk = await call.next_input()
    if not isinstance(chunk, BinaryContent):
        raise invalid_request("the first chunk of sync.open must be binary content with 'start' headers")
    try:
        headers = request_headers(chunk.headers)
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid start chunk for sync.open: {error}") from None
    if not isinstance(headers, StartHeaders):
        raise invalid_request("the first chunk of sync.open must be a 'start' chunk")
    return headers


def _decode_vector(vector: str | None) -> bytes | None:
    if vector is None:
        return None
    try:
        raw = decode_update(vector)
        decode_state_vector(raw)
        return raw
    except InvalidUpdate:
        raise invalid_request("'vector' is not a base64 Yjs state vector") from None


async def _receive_updates(call: ToolCall, document: SharedDocument, subscriber: _Subscriber, grant: SyncGrant, path: str) -> None:
    while True:
        chunk = await call.next_input()
        if chunk is None:
            return  # the client closed its side: the handler's return answers with a close
        if not isinstance(chunk, BinaryContent):
            raise invalid_request(f"sync.open expects binary 'sync' chunks, not {type(chunk).__name__}")
        try:
            headers = request_headers(chunk.headers)
        except msgspec.ValidationError as error:
            raise invalid_request(f"invalid chunk for sync.open: {error}") from None
        if not isinstance(headers, SyncHeaders):
            raise invalid_request("sync.open was already started; later chunks must be 'sync' chunks")
        if not chunk.data:
            continue
        try:
            update = decode_update(chunk.data)
        except InvalidUpdate as error:
            raise invalid_request(str(error)) from None
        document.accept(update, subscriber, writable=grant.can_write(path))


async def _relay_to(call: ToolCall, document: SharedDocument, subscriber: _Subscriber, path: str) -> None:
    headers = headers_to_builtins(RelayHeaders(path=path))
    while True:
        await subscriber.wakeup.wait()
        update = document.take(subscriber)
        if update is not None:
            await call.send(BinaryContent(headers=headers, data=encode_update(update)))


__all__ = ["SharedDocument", "SyncState", "toolkit"]
