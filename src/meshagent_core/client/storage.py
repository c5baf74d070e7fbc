"""`room.storage`: the room's files (protocol/room-apis.md §2), as the official 0.56 `StorageClient`.

Same method names and keyword arguments as the official client; the wire shapes are the
`meshagent_core.toolkits.storage` contract. Differences, all deliberate:

* File events are an async iterator, not callbacks: `async for event in
  room.storage.file_events():` yields `FileUpdated`, `FileDeleted` and `FileMoved`
  (`room.storage.on("file.updated", fn)` raises `NotImplementedError` saying so).
* `download_stream()` returns a `DownloadStream`: iterate it for the official `BinaryContent`
  chunks (the `start` chunk, then `data` chunks), or use `iter_bytes()` for the file bytes only;
  it is also an async context manager that closes the stream on exit, and after `async with`
  its `name`, `mime_type` and `size` are known.
* `upload_file(path=..., local_path=...)` uploads a local file (the official 0.56 client has no
  such method; the name follows its `upload`/`upload_stream`). The file is read in a worker
  thread (the backend's `run_sync_in_thread`: this code never blocks the event loop), a bounded
  block at a time and only as fast as the server pulls, so any size uploads in bounded memory.
* `download_stream()` keeps a few pulls in flight (`DOWNLOAD_PULLS_AHEAD`), never one past the
  end of the file, so the server sends the next chunks while the caller takes this one.

Answers are validated as strictly as the official client validates them: an answer of the
wrong content type or shape raises `RoomException` with code 1100 (UNEXPECTED_RESPONSE_TYPE).
"""

from __future__ import annotations

import errno
import mimetypes
import os
import posixpath
import stat as stat_module
from typing import Any, AsyncGenerator, AsyncIterable, AsyncIterator, BinaryIO, TypeVar

import msgspec

from ..content import BinaryContent, ControlContent, ControlCloseStatus, FileContent
from ..session.events import FileDeleted, FileMoved, FileUpdated
from ..toolkits.storage import (
    DEFAULT_CHUNK_SIZE,
    TOOLKIT,
    DeleteInput,
    DownloadData,
    DownloadPull,
    DownloadStart,
    DownloadStarted,
    DownloadUrlInput,
    DownloadUrlOutput,
    ExistsOutput,
    ListOutput,
    MoveInput,
    PathInput,
    StatOutput,
    StorageEntry,
    UploadData,
    UploadPull,
    UploadStart,
)
from .calls import READY, CallIterator, binary_chunk, decode_strict, expect_json, expect_stream_open, unexpected_response
from .participants import SubClient, Subscription

T = TypeVar("T")

#: What `file_events()` yields.
FileEvent = FileUpdated | FileDeleted | FileMoved

# A few MIME types the standard table lacks or gets wrong across platforms. The fallback is
# `mimetypes.types_map` as imported (never `mimetypes.guess_type`, whose first call reads the
# host's mime.types files: blocking I/O on the event loop).
_MIME_TYPES = {
    "md": "text/markdown",
    "markdown": "text/markdown",
    "json": "application/json",
    "jsonl": "application/jsonl",
    "ndjson": "application/x-ndjson",
    "txt": "text/plain",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "py": "text/x-python",
    "js": "text/javascript",
    "mjs": "text/javascript",
    "ts": "text/x-typescript",
    "dart": "text/x-dart",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "toml": "application/toml",
    "html": "text/html",
    "htm": "text/html",
    "css": "text/css",
    "xml": "application/xml",
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "mp4": "video/mp4",
    "zip": "application/zip",
    "wasm": "application/wasm",
    "parquet": "application/vnd.apache.parquet",
}

_PULL = BinaryContent(headers=msgspec.to_builtins(DownloadPull()))
#: Download pulls kept in flight: the server reads and sends the next chunks while the caller
#: takes this one, instead of one round trip per chunk (at most this many chunks are buffered).
DOWNLOAD_PULLS_AHEAD = 4
#: Bytes `upload_file` reads per worker-thread call (re-cut to the sizes the server pulls).
FILE_READ_SIZE = 1024 * 1024
_DATA_HEADERS = msgspec.to_builtins(UploadData())


def guess_mime_type(name: str) -> str:
    """The MIME type the client declares for an upload named `name` when the caller gives
    none: from the extension, else `application/octet-stream` (no host files are read)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if "." in base:
        extension = base.rsplit(".", 1)[-1]
        found = _MIME_TYPES.get(extension) or mimetypes.types_map.get("." + extension)
        if found:
            return found
    return "application/octet-stream"


class DownloadStream(CallIterator[BinaryContent]):
    """`room.storage.download_stream(...)`: the chunks of a pull-driven download.

    Iterating yields the official client's `BinaryContent` chunks: first the `start` chunk
    (`headers` `{"kind": "start", "name", "mime_type", "size"}`), then `data` chunks whose
    `data` are the file bytes. Chunks are requested from the server at most
    `DOWNLOAD_PULLS_AHEAD` ahead of the one being taken (and never past the end of the file),
    so at most that many wait in memory. `name`, `mime_type` and `size` are set once the call
    has started (after `async with`, or after the first chunk).
    """

    def __init__(self, storage: "StorageClient", path: str, chunk_size: int) -> None:
        self.name: str | None = None
        self.mime_type: str | None = None
        self.size: int | None = None
        super().__init__(storage._download_body(self, path, chunk_size))

    async def __aenter__(self) -> "DownloadStream":
        await self._start()
        return self

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """The file bytes, data chunk by data chunk."""
        async for chunk in self:
            if chunk.headers.get("kind") == "data":
                yield chunk.data


class FileEvents:
    """`room.storage.file_events()`: the room's `FileUpdated`, `FileDeleted` and `FileMoved`
    events from the moment it was created, until the room closes or `aclose()` (also an async
    context manager)."""

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription

    def __aiter__(self) -> "FileEvents":
        return self

    async def __anext__(self) -> FileEvent:
        return await self._subscription.__anext__()  # type: ignore[return-value]

    async def __aenter__(self) -> "FileEvents":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._subscription.close()


class _Rebuffer:
    """The caller's chunks, re-cut to the sizes the server pulls; the source is read only when
    a pull needs more bytes."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._source = chunks.__aiter__()
        self._pending = memoryview(b"")
        self._exhausted = False

    async def read(self, size: int) -> bytes:
        """Up to `size` bytes; `b""` once the source is exhausted."""
        parts: list[memoryview] = []
        wanted = size
        while wanted > 0:
            if self._pending:
                part = self._pending[:wanted]
                self._pending = self._pending[len(part) :]
                parts.append(part)
                wanted -= len(part)
                continue
            if self._exhausted:
                break
            try:
                chunk = await self._source.__anext__()
            except StopAsyncIteration:
                self._exhausted = True
                break
            self._pending = memoryview(bytes(chunk))
        if len(parts) == 1:
            return bytes(parts[0])
        return b"".join(parts)


# --- the client --------------------------------------------------------------------------------


class StorageClient(SubClient):
    """`room.storage`: list, inspect, upload, download, move and delete the room's files.

    Paths are relative to the room's storage root (`folder/file.txt`). Failures raise
    `RoomException` with the server's code: 3001 not found, 3002 a non-empty folder deleted
    without `recursive`, 3004 invalid path, 3005 already exists, 1001 not permitted.
    """

    async def _invoke(self, operation: str, arguments: msgspec.Struct) -> Any:
        return await self.room.invoke(TOOLKIT, operation, msgspec.to_builtins(arguments))

    # --- unary ----------------------------------------------------------------------------

    async def exists(self, *, path: str) -> bool:
        """Whether a file or folder exists at `path`."""
        response = await self._invoke("exists", PathInput(path=path))
        return expect_json(response, ExistsOutput, toolkit=TOOLKIT, operation="exists").exists

    async def stat(self, *, path: str) -> StorageEntry | None:
        """The entry at `path` (`name`, `is_folder`, `size`, `created_at`, `updated_at`), or
        None when nothing is there."""
        response = await self._invoke("stat", PathInput(path=path))
        stat = expect_json(response, StatOutput, toolkit=TOOLKIT, operation="stat")
        if not stat.exists:
            return None
        if stat.name is None or stat.is_folder is None:
            raise unexpected_response(TOOLKIT, "stat")
        return StorageEntry(
            name=stat.name,
            is_folder=stat.is_folder,
            size=stat.size,
            created_at=stat.created_at,
            updated_at=stat.updated_at,
        )

    async def list(self, *, path: str) -> list[StorageEntry]:
        """The files and folders directly inside the folder `path` (`""` or `"."` is the root)."""
        response = await self._invoke("list", PathInput(path=path))
        return expect_json(response, ListOutput, toolkit=TOOLKIT, operation="list").files

    async def delete(self, path: str, recursive: bool | None = None) -> None:
        """Delete the file or folder at `path`; a folder with contents needs `recursive=True`."""
        await self._invoke("delete", DeleteInput(path=path, recursive=recursive))

    async def move(self, *, source_path: str, destination_path: str, overwrite: bool = False) -> None:
        """Move (rename) a file or folder; `overwrite` lets a file replace an existing file."""
        await self._invoke(
            "move", MoveInput(source_path=source_path, destination_path=destination_path, overwrite=overwrite)
        )

    async def download_url(self, *, path: str) -> str:
        """A URL the file can be fetched from over HTTP (the local server's is signed and good for
        an hour, and serves byte ranges)."""
        response = await self._invoke("download_url", DownloadUrlInput(path=path))
        return expect_json(response, DownloadUrlOutput, toolkit=TOOLKIT, operation="download_url").url

    # --- upload ---------------------------------------------------------------------------

    async def upload(
        self,
        *,
        path: str,
        data: bytes,
        overwrite: bool = False,
        name: str | None = None,
        mime_type: str | None = None,
    ) -> None:
        """Write `data` to the file at `path` (missing folders are created). Without
        `overwrite`, an existing file is an error (3005). `name` defaults to the last path
        segment, `mime_type` to a guess from the name."""

        async def single_chunk() -> AsyncIterator[bytes]:
            yield data

        await self.upload_stream(
            path=path, chunks=single_chunk(), overwrite=overwrite, size=len(data), name=name, mime_type=mime_type
        )

    async def upload_stream(
        self,
        *,
        path: str,
        chunks: AsyncIterable[bytes],
        overwrite: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        size: int | None = None,
        name: str | None = None,
        mime_type: str | None = None,
    ) -> None:
        """Write the bytes of `chunks` to the file at `path`, pull-driven: the server asks for
        each chunk, and `chunks` is read only as far as the server has asked (re-cut to the
        size it asks for; `chunk_size` when it names none). `size`, when given, is the exact
        total the server must receive. The file appears only once every byte arrived: if this
        call fails or is cancelled, or `chunks` raises, the upload is abandoned and nothing is
        written.

        To upload a local file, use `upload_file`.
        """
        resolved_name = name or posixpath.basename(path)
        start = UploadStart(
            path=path,
            overwrite=overwrite,
            name=resolved_name,
            mime_type=mime_type or guess_mime_type(resolved_name),
            size=size,
        )
        source = _Rebuffer(chunks)
        async with self.room.stream_call(TOOLKIT, "upload") as call:
            try:
                call.send(BinaryContent(headers=msgspec.to_builtins(start)))
                await expect_stream_open(call, toolkit=TOOLKIT, operation="upload")
                stream = call.chunks()
                try:
                    async for chunk in stream:
                        if isinstance(chunk, ControlContent):
                            raise unexpected_response(TOOLKIT, "upload")
                        pull = decode_strict(
                            binary_chunk(chunk, toolkit=TOOLKIT, operation="upload").headers,
                            UploadPull,
                            toolkit=TOOLKIT,
                            operation="upload",
                        )
                        wanted = pull.chunk_size if pull.chunk_size is not None and pull.chunk_size > 0 else chunk_size
                        data = await source.read(max(wanted, 1))
                        if data:
                            call.send(BinaryContent(headers=dict(_DATA_HEADERS), data=data))
                        else:
                            call.close_input()  # the source is exhausted: the server commits
                finally:
                    await stream.aclose()  # type: ignore[attr-defined]
            except BaseException as error:
                # Never let a failed or cancelled upload end its input normally: the server
                # would commit a truncated file.
                call.close_input(ControlCloseStatus.INVALID_DATA.value, f"upload abandoned by the client: {type(error).__name__}")
                raise

    async def upload_file(
        self,
        *,
        path: str,
        local_path: str | os.PathLike[str],
        overwrite: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        name: str | None = None,
        mime_type: str | None = None,
    ) -> None:
        """Write the local file `local_path` to the file at `path` in the room's storage (missing
        folders are created; without `overwrite`, an existing file is an error, 3005). `name`
        defaults to the last segment of `path`, `mime_type` to a guess from the name.

        The file is read in a worker thread, `FILE_READ_SIZE` bytes at a time and only as far as
        the server has pulled, so a file of any size uploads in bounded memory. Its size when
        opened is declared to the server: a file that grows or shrinks meanwhile fails the
        upload with `LocalFileChanged`, and nothing is written. Before anything is sent, a
        missing file raises `FileNotFoundError`, a folder `IsADirectoryError`, and anything
        else that is not a regular file (a FIFO, a device) `ValueError`.
        """
        backend = self.room.backend
        shown = os.fspath(local_path)
        handle, size = await backend.run_sync_in_thread(_open_local_file, shown)
        chunks = _read_local_file(backend, handle, size, shown)
        try:
            await self.upload_stream(
                path=path,
                chunks=chunks,
                overwrite=overwrite,
                chunk_size=chunk_size,
                size=size,
                name=name,
                mime_type=mime_type,
            )
        finally:
            await chunks.aclose()
            handle.close()  # a read-only local file: closing does not block

    # --- download -------------------------------------------------------------------------

    def download_stream(self, *, path: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> DownloadStream:
        """The file at `path` as a pull-driven stream of `BinaryContent` chunks (see
        `DownloadStream`); the server sends at most `chunk_size` bytes per chunk. Use
        `async with room.storage.download_stream(path=...) as stream:` so the download is
        closed however the block ends."""
        return DownloadStream(self, path, chunk_size)

    async def _download_body(self, stream: DownloadStream, path: str, chunk_size: int) -> AsyncGenerator[Any, None]:
        async with self.room.stream_call(TOOLKIT, "download") as call:
            call.send(BinaryContent(headers=msgspec.to_builtins(DownloadStart(path=path, chunk_size=chunk_size))))
            await expect_stream_open(call, toolkit=TOOLKIT, operation="download")
            chunks = call.chunks()
            try:
                first = await _next_or_none(chunks)
                started = _download_start(first)
                stream.name, stream.mime_type, stream.size = started.name, started.mime_type, started.size
                yield READY
                yield first
                received = 0
                in_flight = 0  # pulls sent whose data chunk has not arrived
                # Without a chunk size of ours the server picks one: one pull at a time then.
                ahead = DOWNLOAD_PULLS_AHEAD if chunk_size > 0 else 1

                def pull_ahead() -> None:
                    # Each pull brings at most `chunk_size` bytes: while the bytes still due
                    # exceed what the pulls in flight can bring, another pull is surely needed
                    # (so the server is never asked for a chunk past the end).
                    nonlocal in_flight
                    while in_flight < ahead and started.size - received > in_flight * chunk_size:
                        call.send(_PULL)
                        in_flight += 1

                pull_ahead()
                async for chunk in chunks:
                    if isinstance(chunk, ControlContent):
                        raise unexpected_response(TOOLKIT, "download")
                    binary = binary_chunk(chunk, toolkit=TOOLKIT, operation="download")
                    decode_strict(binary.headers, DownloadData, toolkit=TOOLKIT, operation="download")
                    received += len(binary.data)
                    in_flight -= 1
                    if received > started.size or in_flight < 0:
                        raise unexpected_response(TOOLKIT, "download")
                    pull_ahead()
                    yield binary
                if received != started.size:
                    raise unexpected_response(TOOLKIT, "download")
            finally:
                await chunks.aclose()  # type: ignore[attr-defined]

    async def download(self, *, path: str) -> FileContent:
        """The whole file at `path` as `FileContent` (`name`, `mime_type`, `data`)."""
        async with self.download_stream(path=path) as stream:
            parts = [data async for data in stream.iter_bytes()]
            assert stream.name is not None and stream.mime_type is not None
            return FileContent(name=stream.name, mime_type=stream.mime_type, data=b"".join(parts))

    # --- events ---------------------------------------------------------------------------

    def file_events(self) -> FileEvents:
        """The room's file events (`FileUpdated`, `FileDeleted`, `FileMoved`, each with the
        `participant_id` that caused it), from now until the room closes:
        `async with room.storage.file_events() as events: async for event in events: ...`.
        This replaces the official `room.storage.on("file.updated", ...)` callbacks."""
        return FileEvents(self.room.subscribe(FileUpdated, FileDeleted, FileMoved))

    def on(self, event_name: str, func: Any) -> None:
        """Not supported: callbacks are replaced by `file_events()`."""
        raise NotImplementedError(
            f"room.storage.on({event_name!r}, ...) callbacks are not supported: "
            "iterate `room.storage.file_events()` instead"
        )


class LocalFileChanged(OSError):
    """`upload_file`: the local file changed size while it was read; the upload was abandoned
    and nothing was written."""


def _open_local_file(local_path: str) -> tuple[BinaryIO, int]:
    """(open file, size) for `upload_file` (blocking: run in a worker thread)."""
    info = os.stat(local_path)
    if stat_module.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "cannot upload a folder, only a file", local_path)
    if not stat_module.S_ISREG(info.st_mode):
        raise ValueError(f"{local_path!r} is not a regular file (only regular files can be uploaded)")
    handle = open(local_path, "rb", buffering=0)
    try:
        info = os.fstat(handle.fileno())
        if not stat_module.S_ISREG(info.st_mode):  # replaced between the stat and the open
            raise ValueError(f"{local_path!r} is not a regular file (only regular files can be uploaded)")
        return handle, info.st_size
    except BaseException:
        handle.close()
        raise


async def _read_local_file(backend: Any, handle: BinaryIO, size: int, shown: str) -> AsyncGenerator[bytes, None]:
    """The `size` bytes of `handle`, read in a worker thread `FILE_READ_SIZE` at a time; raises
    `LocalFileChanged` when the file ends early or goes on past `size`."""
    remaining = size
    while remaining > 0:
        data = await backend.run_sync_in_thread(handle.read, min(FILE_READ_SIZE, remaining))
        if not data:
            raise LocalFileChanged(f"{shown!r} shrank while it was being uploaded ({size - remaining} of {size} bytes read)")
        remaining -= len(data)
        yield data
    if await backend.run_sync_in_thread(handle.read, 1):
        raise LocalFileChanged(f"{shown!r} grew while it was being uploaded (past its {size} bytes)")


async def _next_or_none(chunks: AsyncIterator[Any]) -> Any:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None


def _download_start(chunk: Any) -> DownloadStarted:
    if chunk is None or isinstance(chunk, ControlContent):
        raise unexpected_response(TOOLKIT, "download")
    binary = binary_chunk(chunk, toolkit=TOOLKIT, operation="download")
    started = decode_strict(binary.headers, DownloadStarted, toolkit=TOOLKIT, operation="download")
    if started.size < 0:
        raise unexpected_response(TOOLKIT, "download")
    return started


__all__ = [
    "CallIterator",
    "DownloadStream",
    "FileDeleted",
    "FileEvent",
    "FileEvents",
    "FileMoved",
    "FileUpdated",
    "LocalFileChanged",
    "StorageClient",
    "StorageEntry",
    "guess_mime_type",
]
