"""`room.sync`: collaborative documents (protocol/documents.md §4), as the official 0.56 `SyncClient`.

Same method names and keyword arguments as the official client; the wire shapes are the
`meshagent_core.toolkits.sync` contract and the documents are `meshagent_core.sync.MeshDocument`.

    doc = await room.sync.open(path="notes/plan.doc")   # synchronised when it returns
    doc.root.append_child("item", {"title": "ship it"})  # goes out at once
    async with room.sync.changes(path="notes/plan.doc") as changes:
        async for change in changes:                      # local and remote `DocumentChange`s
            ...
    await room.sync.close(path="notes/plan.doc")         # flushes, then closes

How a document is kept in step (one `sync.open` stream per open path):

* Every local transaction's update is queued; a sender task owned by the room sends what is
  queued as one `sync` chunk (several queued updates are merged into one), so a burst of edits
  costs one chunk. Remote `sync` chunks are applied and never echoed back.
* `close()` at the last reference sends what is still queued, closes the input and waits for
  the server's `close` (no sleep), then closes the document.
* When the room reconnects, every open document opens its stream again with its state vector
  (the server answers with only what the document lacks), then sends its full state: see
  `_serve_stream` for why the full state. Edits made while disconnected stay in the document
  and reach the server this way.
* A malformed server chunk (wrong headers, a path that is not the document's, bytes that are
  not a Yjs update, an update that breaks the schema) ends the stream with `RoomException`
  code 1100; an `error` chunk ends it with the server's code; the server ending the stream on
  its own ends it with code 4001. The document then stays readable but is no longer
  synchronised: `changes()` iterators raise that error, and so do `sync()`, `close()` and a
  re-`open()` of the path (close it to release it, then open it again).

Differences from the official client, all deliberate:

* `changes(path=...)` replaces the official document callbacks (`doc.on("inserted", ...)`
  still works on the document itself).
* `sync(path=, data=)` checks `data` (base64 of a Yjs update that keeps the document valid)
  before sending, and applies it to the local document too, since the server does not send a
  participant's own updates back. `data` may be `str` or `bytes`.
* Closing (or syncing) a document while the room is reconnecting: `sync()` applies the update
  locally (it reaches the server after the reconnect); `close()` releases the document and
  raises `ConnectionLost`, because what was not yet sent cannot be flushed.
* Leaving the room ends every document stream; `await room.sync.stop()` before leaving closes
  every document as `close()` does, flushing edits first.

Written once for every event loop: only `self.room` and `self.room.backend` are awaited.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Mapping

import msgspec
from pycrdt import merge_updates

from ..content import BinaryContent, ControlContent, JsonContent
from ..errors import ConnectionLost, ErrorCode, RoomException
from ..sync import DocumentChange, InvalidUpdate, MeshDocument, MeshSchema, MeshSchemaException, decode_update, encode_update
from ..toolkits.sync import (
    SYNC_NOT_CONNECTED,
    TOOLKIT,
    CreateInput,
    DescribeInput,
    RelayHeaders,
    StartHeaders,
    StateHeaders,
    SyncHeaders,
    headers_to_builtins,
    normalize_path,
)
from .connection import ToolCallStream
from .feeds import Feed
from .participants import RoomClosed, SubClient

if TYPE_CHECKING:
    from .room import RoomClient
from .calls import binary_chunk, decode_strict, expect_stream_open, unexpected_response

log = logging.getLogger("meshagent_core.client.sync")

_SYNC_HEADERS = headers_to_builtins(SyncHeaders())


def _sync_chunk(update: bytes) -> BinaryContent:
    return BinaryContent(headers=dict(_SYNC_HEADERS), data=encode_update(update))


def _not_open(path: str) -> RoomException:
    return RoomException(f"the document {path!r} is not open", code=SYNC_NOT_CONNECTED)


def _again(error: BaseException) -> BaseException:
    """A fresh exception like `error`, to raise in another task than the one it was stored by
    (re-raising one object from several tasks chains their tracebacks together)."""
    if isinstance(error, RoomException):
        return type(error)(error.message, code=error.code, status_code=error.status_code)
    return error


def _schema_json(schema: MeshSchema | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    if isinstance(schema, MeshSchema):
        return schema.to_json()
    if isinstance(schema, Mapping):
        return MeshSchema.from_json(schema).to_json()  # checked here rather than by the server
    raise TypeError(f"schema must be a MeshSchema (or its JSON form), not {type(schema).__name__}")


def _check_path(path: Any) -> str:
    if not isinstance(path, str):
        raise TypeError(f"path must be a string, not {type(path).__name__}")
    return normalize_path(path)


# --- the changes iterator -----------------------------------------------------------------------


class DocumentChanges(Feed[DocumentChange]):
    """`room.sync.changes(path=...)`: the `DocumentChange`s of an open document, one by one,
    from the moment it was created.

    Both kinds are yielded: edits made through this client (`change.local` true) and updates
    from other participants (`change.local` false). Each change names its `kind` (`inserted`,
    `deleted`, `updated`, `text`), the `node`, its `parent`, and for `updated` the attribute
    `name` and new `value`. The iteration ends when the document is closed (its last
    reference) or the room closes, and raises the error that ended the document's stream if it
    failed (after the changes received before). Also an async context manager that stops it."""

    def __init__(self, document: "_SyncedDocument") -> None:
        super().__init__(document.backend, document.feeds, ended=document.ended, failure=document.failure)

    def _raise(self, error: BaseException) -> BaseException:
        return _again(error)


# --- one open document and its streams ----------------------------------------------------------


class _Stream:
    """One `sync.open` call of a document: the first open, or a re-open after a reconnect."""

    def __init__(self, backend: Any) -> None:
        self.settled = backend.Event()  # the state was applied (ready), or the stream ended first
        self.finished = backend.Event()  # the task serving the stream has ended
        self.wake = backend.Event()  # local updates are queued
        self.ready = False
        self.call: ToolCallStream | None = None  # while updates can be sent on it
        self.closing = False
        self.error: BaseException | None = None
        self.scope: Any = None

    def cancel(self) -> None:
        if self.scope is not None:
            self.scope.cancel()

    def close_input(self) -> None:
        call, self.call = self.call, None
        if call is not None:
            call.close_input()


class _SyncedDocument:
    """What the client keeps for one open path."""

    def __init__(
        self,
        *,
        backend: Any,
        path: str,
        create: bool,
        schema: dict[str, Any] | None,
        initial_json: dict[str, Any] | None,
    ) -> None:
        self.backend = backend
        self.path = path
        self.create = create
        self.schema = schema
        self.initial_json = initial_json
        self.doc: MeshDocument | None = None
        self.count = 0
        self.stream: _Stream | None = None
        self.pending: list[bytes] = []
        self.failure: BaseException | None = None
        self.ended = False
        self.feeds: set[DocumentChanges] = set()

    def adopt(self, doc: MeshDocument) -> None:
        self.doc = doc
        doc.observe_updates(self._on_local_update)
        doc.observe(self._on_changes)

    def _on_local_update(self, update: bytes) -> None:
        stream = self.stream
        if stream is None or stream.call is None or self.failure is not None:
            # Not sendable now. While (re)connecting, the full state sent once the stream is
            # up carries this update; a failed or closing document is not synchronised.
            return
        self.pending.append(update)
        stream.wake.set()

    def _on_changes(self, changes: list[DocumentChange]) -> None:
        for feed in list(self.feeds):
            for change in changes:
                feed._push(change)

    def flush(self) -> None:
        """Send what is queued as one `sync` chunk (merged when there is more than one update)."""
        stream = self.stream
        if not self.pending or stream is None or stream.call is None:
            return
        updates, self.pending = self.pending, []
        update = updates[0] if len(updates) == 1 else merge_updates(*updates)
        try:
            stream.call.send(_sync_chunk(update))
        except Exception:
            # The connection is gone: the full state is sent again after the reconnect.
            log.debug("sync %s: update not sent, the connection is closed", self.path, exc_info=True)

    def apply_remote(self, update: bytes, *, operation: str = "open") -> None:
        """Apply an update from the server; one that does not decode or breaks the schema is a
        malformed answer (code 1100)."""
        assert self.doc is not None
        try:
            violations = self.doc.apply_update(update)
        except InvalidUpdate as error:
            raise RoomException(
                f"unexpected return type from sync.{operation}: the update for {self.path!r} is not a Yjs update ({error})",
                code=ErrorCode.UNEXPECTED_RESPONSE_TYPE,
            ) from None
        if violations:
            raise RoomException(
                f"unexpected return type from sync.{operation}: the update for {self.path!r} breaks the schema: "
                + "; ".join(violations[:5]),
                code=ErrorCode.UNEXPECTED_RESPONSE_TYPE,
            )

    def fail(self, error: BaseException) -> None:
        """The document is no longer synchronised: iterators raise `error`, and so do the next
        operations on the path."""
        if self.failure is not None:
            return
        self.failure = error
        self.pending.clear()
        for feed in list(self.feeds):
            feed._end(error)

    def end(self) -> None:
        """Released (or the room is gone): iterators end, the document is closed."""
        if self.ended:
            return
        self.ended = True
        self.pending.clear()
        stream = self.stream
        if stream is not None:
            stream.cancel()
        for feed in list(self.feeds):
            feed._end()
        if self.doc is not None:
            self.doc.close()


# --- the client ---------------------------------------------------------------------------------


class SyncClient(SubClient):
    """`room.sync`: open, edit together, describe and create collaborative documents.

    Paths are normalised as the official client does (leading `./` and `/` removed). Failures
    raise `RoomException` with the server's code (1003 a missing document opened with
    `create=False`, 1001 not permitted, 1002 an invalid request), 4001 for a path that is not
    open here, 1100 for a malformed answer; `ConnectionLost` while the room is disconnected.
    """

    def __init__(self, room: RoomClient) -> None:
        super().__init__(room)
        self._documents: dict[str, _SyncedDocument] = {}
        self._opening: dict[str, _Stream] = {}
        self._closing: dict[str, _Stream] = {}
        self._watched: Any = None
        room.on_reconnect(self._on_reconnect)
        room.on_leave(self.stop)

    # --- unary ----------------------------------------------------------------------------

    async def create(
        self,
        *,
        path: str,
        json: Mapping[str, Any] | None = None,
        schema: MeshSchema | Mapping[str, Any] | None = None,
    ) -> None:
        """Create the document at `path` from `json` (its JSON form, protocol/documents.md §2.1), with `schema` or
        the one its extension names in room storage (`.schemas/<ext>.json`). Does not open it."""
        normalized = _check_path(path)
        if json is not None and not isinstance(json, Mapping):
            raise TypeError(f"json must be a JSON object (a mapping), not {type(json).__name__}")
        arguments = CreateInput(path=normalized, json=None if json is None else dict(json), schema=_schema_json(schema))
        await self.room.invoke(TOOLKIT, "create", msgspec.to_builtins(arguments))

    async def describe(self, *, path: str) -> dict[str, Any]:
        """The JSON form of the document at `path` (a non-object answer raises code 1100)."""
        response = await self.room.invoke(TOOLKIT, "describe", msgspec.to_builtins(DescribeInput(path=_check_path(path))))
        if not isinstance(response, JsonContent) or not isinstance(response.json, dict):
            raise unexpected_response(TOOLKIT, "describe")
        return response.json

    # --- open / close -----------------------------------------------------------------------

    async def open(
        self,
        *,
        path: str,
        create: bool = True,
        initial_json: Mapping[str, Any] | None = None,
        schema: MeshSchema | Mapping[str, Any] | None = None,
    ) -> MeshDocument:
        """Open the document at `path` and return it once the server's state has been applied.

        With `create` (the default) a missing document is created, from `initial_json` when
        given, with `schema` (else the schema its extension names in room storage). The
        document is built from the schema the server answers with. Opening a path that is
        already open returns the same document and counts one more reference (`close()` once
        per `open()`); concurrent opens of one path wait for the first (and fail if it fails).
        """
        normalized = _check_path(path)
        if not isinstance(create, bool):
            raise TypeError(f"create must be a bool, not {type(create).__name__}")
        if initial_json is not None and not isinstance(initial_json, Mapping):
            raise TypeError(f"initial_json must be a JSON object (a mapping), not {type(initial_json).__name__}")
        schema_json = _schema_json(schema)
        self._attach()
        while True:
            opening = self._opening.get(normalized)
            if opening is not None:
                await opening.settled.wait()
                if opening.error is not None:
                    raise _again(opening.error)
                continue
            closing = self._closing.get(normalized)
            if closing is not None:
                await closing.finished.wait()
                continue
            document = self._documents.get(normalized)
            if document is not None:
                if document.failure is not None:
                    raise _again(document.failure)
                assert document.doc is not None
                document.count += 1
                return document.doc
            break
        document = _SyncedDocument(
            backend=self.room.backend,
            path=normalized,
            create=create,
            schema=schema_json,
            initial_json=None if initial_json is None else dict(initial_json),
        )
        stream = self._start_stream(document)
        self._opening[normalized] = stream
        try:
            await stream.settled.wait()
        except BaseException:
            if stream.ready:  # opened, but the caller is gone: release its reference
                document.count -= 1
                if document.count == 0 and self._documents.get(normalized) is document:
                    del self._documents[normalized]
                    document.end()
            else:
                stream.cancel()
            raise
        if stream.error is not None:
            raise _again(stream.error)
        assert document.doc is not None
        return document.doc

    async def close(self, *, path: str) -> None:
        """Release one reference to the open document at `path`. At the last one, what is
        still queued is sent, the stream is closed and the server's close awaited, then the
        document is closed. Raises 4001 when the path is not open; raises the error that ended
        the document's stream if it failed (the document is released all the same), and
        `ConnectionLost` if the room was disconnected (edits not yet sent could not be)."""
        normalized = _check_path(path)
        document = self._documents.get(normalized)
        if document is None:
            raise _not_open(normalized)
        document.count -= 1
        if document.count > 0:
            if document.failure is not None:
                raise _again(document.failure)
            return
        del self._documents[normalized]
        stream = document.stream
        error = document.failure
        if error is None and stream is not None:
            self._closing[normalized] = stream
            try:
                if not stream.ready and not stream.finished.is_set():
                    await stream.settled.wait()  # a reconnect is opening it again: close it once up
                if document.failure is None and stream.call is not None:
                    stream.closing = True
                    document.flush()
                    stream.close_input()
                    await stream.finished.wait()
                    if isinstance(stream.error, ConnectionLost):
                        error = stream.error  # lost before the server confirmed the close
                elif document.failure is None:
                    error = ConnectionLost(
                        f"the document {normalized!r} was closed while the room was disconnected: "
                        "edits not yet sent did not reach the server",
                        code=1006,
                    )
            finally:
                if self._closing.get(normalized) is stream:
                    del self._closing[normalized]
                document.end()
            error = document.failure or error
        else:
            document.end()
        if error is not None:
            raise _again(error)

    async def stop(self) -> None:
        """Close every open document as `close()` does at its last reference (flushing queued
        edits first); failures are logged, not raised. Call it before leaving the room to be
        sure the last edits were sent."""
        for path, document in list(self._documents.items()):
            document.count = 1
            try:
                await self.close(path=path)
            except RoomException as error:
                log.debug("sync %s: close failed: %s", path, error)

    # --- updates ----------------------------------------------------------------------------

    async def sync(self, *, path: str, data: str | bytes) -> None:
        """Push an update to the open document at `path`: `data` is the standard base64 text of
        a Yjs v1 update (agents send `base64(doc.get_state())` before closing). It must decode
        and keep the document valid (code 1002 otherwise: nothing is sent or changed); it is
        applied to the local document, then sent after what is already queued. While the room
        is reconnecting it is only applied locally and reaches the server after the reconnect.
        Raises 4001 when the path is not open."""
        normalized = _check_path(path)
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"data must be the base64 text of an update (str or bytes), not {type(data).__name__}")
        document = self._documents.get(normalized)
        if document is None:
            raise _not_open(normalized)
        if document.failure is not None:
            raise _again(document.failure)
        doc = document.doc
        assert doc is not None
        try:
            update = decode_update(data)
            # A CRDT cannot undo an update: check it on a copy before it touches the document.
            scratch = MeshDocument(schema=doc.schema, update=doc.get_state())
            try:
                violations = scratch.apply_update(update)
            finally:
                scratch.close()
        except InvalidUpdate as error:
            raise RoomException(f"sync.sync: data is not base64 of a Yjs update ({error})", code=ErrorCode.INVALID_REQUEST) from None
        if violations:
            raise RoomException(
                f"sync.sync: the update breaks the schema of {normalized!r}: " + "; ".join(violations[:5]),
                code=ErrorCode.INVALID_REQUEST,
            )
        doc.apply_update(update)
        stream = document.stream
        if stream is not None and stream.call is not None:
            document.flush()
            try:
                stream.call.send(_sync_chunk(update))
            except Exception:
                log.debug("sync %s: update not sent, the connection is closed", normalized, exc_info=True)

    def get_open_documents(self) -> dict[str, MeshDocument]:
        """The open documents by normalised path."""
        return {path: document.doc for path, document in self._documents.items() if document.doc is not None}

    def changes(self, *, path: str) -> DocumentChanges:
        """The changes of the open document at `path` from now on, as `DocumentChange`s (see
        `DocumentChanges`): `async with room.sync.changes(path=p) as changes: async for change
        in changes: ...`. Raises 4001 when the path is not open."""
        normalized = _check_path(path)
        document = self._documents.get(normalized)
        if document is None:
            raise _not_open(normalized)
        return DocumentChanges(document)

    def on(self, event_name: str, func: Any) -> None:
        """Not supported: callbacks are replaced by `changes()`."""
        raise NotImplementedError(
            f"room.sync.on({event_name!r}, ...) callbacks are not supported: iterate "
            "`room.sync.changes(path=...)`, or register on the document (`doc.on('inserted')`)"
        )

    # --- streams ----------------------------------------------------------------------------

    def _start_stream(self, document: _SyncedDocument) -> _Stream:
        stream = _Stream(self.room.backend)
        document.stream = stream
        self.room.start_soon(self._run_stream, document, stream)
        return stream

    async def _run_stream(self, document: _SyncedDocument, stream: _Stream) -> None:
        """Serve one `sync.open` call of `document` (a task owned by the room)."""
        try:
            with self.room.backend.move_on_after(math.inf) as scope:
                stream.scope = scope
                await self._serve_stream(document, stream)
        except ConnectionLost as error:
            stream.error = error
        except RoomException as error:
            stream.error = error
        except Exception as error:
            log.exception("sync %s: the document stream failed", document.path)
            stream.error = RoomException(f"sync.open stream for {document.path!r} failed: {error!r}")
        finally:
            stream.call = None
            if not stream.ready and self._opening.get(document.path) is stream:
                # A first open that did not complete: its waiters get the error.
                del self._opening[document.path]
                if stream.error is None:
                    stream.error = RoomException(f"opening {document.path!r} was cancelled", code=ErrorCode.OPERATION_FAILED)
                document.end()
            elif document.stream is stream and stream.error is not None and not isinstance(stream.error, ConnectionLost):
                document.fail(stream.error)
            # A lost connection leaves the document waiting for the reconnect (`_on_reconnect`).
            stream.settled.set()
            stream.finished.set()

    async def _serve_stream(self, document: _SyncedDocument, stream: _Stream) -> None:
        path = document.path
        reopening = document.doc is not None
        start = StartHeaders(
            path=path,
            create=document.create,
            vector=encode_update(document.doc.get_state_vector()).decode("ascii") if document.doc is not None else None,
            schema=document.schema,
            initial_json=None if reopening else document.initial_json,
        )
        async with self.room.stream_call(TOOLKIT, "open") as call:
            call.send(BinaryContent(headers=headers_to_builtins(start)))
            await expect_stream_open(call, toolkit=TOOLKIT, operation="open")
            chunks = call.chunks()
            try:
                try:
                    first = await chunks.__anext__()
                except StopAsyncIteration:
                    raise RoomException(
                        "sync.open stream closed before the initial document state was returned",
                        code=ErrorCode.UNEXPECTED_RESPONSE_TYPE,
                    ) from None
                state, update = self._state_chunk(first, path)
                if document.doc is None:
                    try:
                        schema = MeshSchema.from_json(state.schema)
                    except MeshSchemaException as error:
                        raise RoomException(
                            f"unexpected return type from sync.open: the schema of {path!r} is invalid ({error})",
                            code=ErrorCode.UNEXPECTED_RESPONSE_TYPE,
                        ) from None
                    document.adopt(MeshDocument(schema=schema))
                    if update:
                        document.apply_remote(update)
                    stream.call = call
                    document.count = 1
                    self._documents[path] = document
                    self._opening.pop(path, None)
                else:
                    # There is no acknowledgement in the protocol, so which of our updates the
                    # server holds is unknown: those sent just before the connection dropped
                    # may never have arrived, and a restarted server may have reloaded an older
                    # copy. So the whole state is sent (the server keeps what it lacks and
                    # ignores the rest); it costs about one full open. It is taken before the
                    # server's diff is applied, which the server has already.
                    local_state = document.doc.get_state()
                    document.pending.clear()
                    if update:
                        document.apply_remote(update)
                    call.send(_sync_chunk(local_state))
                    stream.call = call
                stream.ready = True
                stream.settled.set()
                await self._exchange(document, stream, chunks)
            finally:
                stream.call = None
                await chunks.aclose()  # type: ignore[attr-defined]

    async def _exchange(self, document: _SyncedDocument, stream: _Stream, chunks: Any) -> None:
        """Apply what the server relays while a sender task sends the local updates."""
        failure: BaseException | None = None
        async with self.room.backend.open_task_group() as group:
            group.start_soon(self._send_queued, document, stream)
            try:
                async for chunk in chunks:
                    update = self._relay_chunk(chunk, document.path)
                    if update:
                        document.apply_remote(update)
            except Exception as error:  # raised below, outside the task group (no group wrapping)
                failure = error
            group.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if not stream.closing:
            raise RoomException(
                f"the server closed the stream of {document.path!r}: the document is no longer synchronised",
                code=SYNC_NOT_CONNECTED,
            )

    async def _send_queued(self, document: _SyncedDocument, stream: _Stream) -> None:
        while stream.call is not None:
            await stream.wake.wait()
            stream.wake = self.room.backend.Event()
            document.flush()

    @staticmethod
    def _state_chunk(chunk: Any, path: str) -> tuple[StateHeaders, bytes]:
        return SyncClient._response_chunk(chunk, "state", StateHeaders, path)

    @staticmethod
    def _relay_chunk(chunk: Any, path: str) -> bytes:
        return SyncClient._response_chunk(chunk, "sync", RelayHeaders, path)[1]

    @staticmethod
    def _response_chunk(chunk: Any, kind: str, headers_type: Any, path: str) -> tuple[Any, bytes]:
        """A response chunk of `kind` for `path`: its headers and decoded payload (1100 when it
        is anything else)."""
        if isinstance(chunk, ControlContent):
            raise unexpected_response(TOOLKIT, "open")
        binary = binary_chunk(chunk, toolkit=TOOLKIT, operation="open")
        if binary.headers.get("kind") != kind:
            raise unexpected_response(TOOLKIT, "open")
        headers = decode_strict(binary.headers, headers_type, toolkit=TOOLKIT, operation="open")
        return headers, SyncClient._payload(binary, headers.path, path)

    @staticmethod
    def _payload(binary: BinaryContent, chunk_path: str, path: str) -> bytes:
        if normalize_path(chunk_path) != path:
            raise RoomException("sync.open stream returned a mismatched path", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE)
        if not binary.data:
            return b""
        try:
            return decode_update(binary.data)
        except InvalidUpdate as error:
            raise RoomException(
                f"unexpected return type from sync.open: the payload for {path!r} is not base64 ({error})",
                code=ErrorCode.UNEXPECTED_RESPONSE_TYPE,
            ) from None

    # --- the room's lifetime ------------------------------------------------------------------

    async def _on_reconnect(self) -> None:
        """After a reconnect (before the new connection's events): open every document's
        stream again and wait until each has its state (or failed)."""
        streams = []
        for document in list(self._documents.values()):
            if document.failure is None and not document.ended:
                streams.append(self._start_stream(document))
        for stream in streams:
            await stream.settled.wait()

    def _attach(self) -> None:
        """Follow the room's lifetime with a task it owns: when the room closes for good, every
        document ends. Raises `ConnectionLost` if the room is not entered."""
        group = getattr(self.room, "_task_group", None)
        if group is None or self.room.closed:
            raise ConnectionLost("the room client is not connected", code=1006)
        if self._watched is group:
            return
        self._watched = group
        self.room.start_soon(self._watch, self.room.subscribe(RoomClosed))

    async def _watch(self, subscription: Any) -> None:
        try:
            async for _ in subscription:
                break  # RoomClosed: no reconnect will follow
        finally:
            subscription.close()
            self._room_ended()

    def _room_ended(self) -> None:
        gone = ConnectionLost("the room client closed: the document is no longer synchronised", code=1006)
        for stream in list(self._opening.values()):
            stream.cancel()
        for document in list(self._documents.values()):
            if document.failure is None:
                document.failure = gone
            document.end()


__all__ = ["DocumentChanges", "SyncClient"]
