"""`room.sqlite.backup()` and `room.sqlite.restore()`: whole database files in verified chunks
(protocol/room-apis.md §13.5), as the official client's `sqlite_transfer` module, with its error
texts. One difference: `restore` cuts source chunks larger than 256 KiB to that size instead of
refusing them."""

from __future__ import annotations

import hashlib
from typing import Any, AsyncGenerator, AsyncIterable

import msgspec

from ..content import BinaryContent, ControlCloseStatus, ControlContent, ErrorContent
from ..errors import RoomException
from ..toolkits.sqlite import TOOLKIT, TRANSFER_CHUNK_SIZE, TransferComplete, TransferStart
from .calls import READY, CallIterator, expect_stream_open

_PULL = BinaryContent(headers={"kind": "pull"})


def _binary(chunk: Any) -> BinaryContent:
    if isinstance(chunk, ErrorContent):
        raise chunk.to_exception()
    if not isinstance(chunk, BinaryContent):
        raise RoomException("SQLite transfer ended without verified completion")
    return chunk


def _complete(chunk: BinaryContent) -> TransferComplete:
    if set(chunk.headers) != {"kind", "size", "sha256"}:
        raise RoomException("Invalid SQLite transfer completion")
    try:
        result = msgspec.convert(chunk.headers, type=TransferComplete)
    except msgspec.ValidationError:
        raise RoomException("Invalid SQLite transfer completion") from None
    if chunk.data:
        raise RoomException("Invalid SQLite transfer completion payload")
    return result


def backup(room: Any, database: str, namespace: list[str] | None) -> CallIterator[bytes]:
    """The database file's bytes; the last step checks their size and SHA-256 against the
    server's `complete` (consume it to the end before trusting the bytes)."""
    return CallIterator(_backup_body(room, database, namespace))


async def _backup_body(room: Any, database: str, namespace: list[str] | None) -> AsyncGenerator[Any, None]:
    start = msgspec.to_builtins(TransferStart(database=database, namespace=namespace))
    async with room.stream_call(TOOLKIT, "backup") as call:
        call.send(BinaryContent(headers=start))
        await expect_stream_open(call, toolkit=TOOLKIT, operation="backup")
        yield READY
        call.send(_PULL)
        digest = hashlib.sha256()
        size = 0
        chunks = call.chunks()
        try:
            async for chunk in chunks:
                binary = _binary(chunk)
                kind = binary.headers.get("kind")
                if kind == "complete":
                    result = _complete(binary)
                    if result.size != size or result.sha256 != digest.hexdigest():
                        raise RoomException("SQLite backup size or SHA-256 mismatch")
                    return
                if kind != "data" or not 0 < len(binary.data) <= TRANSFER_CHUNK_SIZE:
                    raise RoomException("Invalid SQLite backup data frame")
                digest.update(binary.data)
                size += len(binary.data)
                call.send(_PULL)
                yield binary.data
            raise RoomException("SQLite backup interrupted before completion")
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]


async def _pieces(source: AsyncIterable[bytes]) -> AsyncGenerator[bytes, None]:
    async for data in source:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"SQLite restore sources yield bytes, not {type(data).__name__}")
        view = memoryview(bytes(data))
        for offset in range(0, len(view), TRANSFER_CHUNK_SIZE):
            yield bytes(view[offset : offset + TRANSFER_CHUNK_SIZE])


async def restore(room: Any, database: str, namespace: list[str] | None, source: AsyncIterable[bytes]) -> None:
    """Upload `source` as the new database `database`; returns once the server has stored it
    durably and acknowledged exactly what was sent. A failing source sends `abort` (nothing is
    stored) and its error is raised."""
    start = msgspec.to_builtins(TransferStart(database=database, namespace=namespace))
    pieces = _pieces(source)
    digest = hashlib.sha256()
    size = 0
    complete: TransferComplete | None = None
    async with room.stream_call(TOOLKIT, "restore") as call:
        try:
            call.send(BinaryContent(headers=start))
            await expect_stream_open(call, toolkit=TOOLKIT, operation="restore")
            chunks = call.chunks()
            try:
                async for chunk in chunks:
                    if isinstance(chunk, ControlContent):
                        raise RoomException("Invalid SQLite restore response")
                    binary = _binary(chunk)
                    kind = binary.headers.get("kind")
                    if kind == "complete":
                        if complete is None or _complete(binary) != complete:
                            raise RoomException("SQLite restore acknowledgement does not match upload")
                        return
                    if kind != "pull" or binary.data:
                        raise RoomException("Invalid SQLite restore response")
                    if complete is not None:
                        raise RoomException("Unexpected pull after SQLite upload completed")
                    try:
                        data = await pieces.__anext__()
                    except StopAsyncIteration:
                        complete = TransferComplete(size=size, sha256=digest.hexdigest())
                        call.send(BinaryContent(headers=msgspec.to_builtins(complete)))
                        continue
                    except Exception:
                        call.send(BinaryContent(headers={"kind": "abort"}))
                        raise
                    digest.update(data)
                    size += len(data)
                    call.send(BinaryContent(headers={"kind": "data"}, data=data))
                raise RoomException("SQLite restore ended without durable completion")
            finally:
                await chunks.aclose()  # type: ignore[attr-defined]
        except BaseException as error:
            call.close_input(ControlCloseStatus.INVALID_DATA.value, f"restore abandoned by the client: {type(error).__name__}")
            raise
        finally:
            await pieces.aclose()


__all__ = ["backup", "restore"]
