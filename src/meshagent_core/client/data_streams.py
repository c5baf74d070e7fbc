"""The client side of the pull-driven Arrow streams of the data toolkits (`sqlite`, `dataset`;
protocol/room-apis.md §13.3), written once for every event loop.

* `send_arrow_stream`: a write stream (`create_table`, `insert`, …). The start chunk goes out at
  once (pipelined, with an Arrow schema blob or nothing); then each pull of the server is answered
  with one data chunk — the next piece of the caller's tables and record batches (an async or
  plain iterable of them, or a single one), a table larger than `ArrowStreamRules.chunk_bytes`
  being cut into row slices of about that size — and, once the source is exhausted, the input is
  closed and the server commits. If the source raises or the call is cancelled, the input is
  closed abnormally so the server keeps nothing.
* `read_arrow_stream`: a read stream (`search`, `read_sql_query`, …), an async iterator of
  `pyarrow.Table`, one per data chunk. It keeps `pulls_ahead` pulls in flight, so the server
  prepares the next chunk while the caller takes this one.

Answers are checked as the official client checks them (`ArrowStreamRules.is_pull` /
`is_data`): anything else raises `RoomException` 1100, an `error` chunk is raised with its code.
`pyarrow` is imported on first use; the encoding and decoding of Arrow data larger than
`INLINE_BYTES` runs in a worker thread (the backend's `run_sync_in_thread`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Iterable, Mapping

from ..content import BinaryContent, ControlCloseStatus, ControlContent
from ..toolkits.arrow_ipc import ARROW_STREAM, ArrowDataError, read_stream, require_pyarrow, schema_blob, stream_bytes
from .calls import READY, CallIterator, binary_chunk, expect_stream_open, unexpected_response

if TYPE_CHECKING:
    import pyarrow

#: Bytes of Arrow data `send_arrow_stream` puts in one data chunk at most (about: tables are cut
#: by rows).
CHUNK_BYTES = 8 * 1024 * 1024
#: Pulls `read_arrow_stream` keeps in flight.
PULLS_AHEAD = 2
#: Arrow data up to this size is encoded or decoded on the event loop (a worker thread costs
#: more than the work); larger data in a worker thread.
INLINE_BYTES = 256 * 1024

_PULL = BinaryContent(headers={"kind": "pull"})
_DATA_HEADERS = {"kind": "data", "content_type": ARROW_STREAM}


def _only_kind(kind: str) -> Callable[[Any], bool]:
    def check(chunk: Any) -> bool:
        return isinstance(chunk, BinaryContent) and chunk.headers == {"kind": kind}

    return check


@dataclass(frozen=True)
class ArrowStreamRules:
    """How one toolkit's streams are checked.

    `is_pull(chunk)`: whether a server chunk of a write stream is a pull (sqlite: `binary` with
    headers exactly `{"kind": "pull"}`). `is_data(chunk)`: whether a server chunk of a read stream
    is a data chunk (sqlite: `binary` with headers exactly `{"kind": "data"}`).
    """

    toolkit: str
    is_pull: Callable[[Any], bool] = _only_kind("pull")
    is_data: Callable[[Any], bool] = _only_kind("data")
    chunk_bytes: int = CHUNK_BYTES
    #: The toolkit as the official error texts name it ("unexpected return type from
    #: datasets.search" for the `dataset` toolkit); None: `toolkit`.
    error_name: str | None = None

    @property
    def errors(self) -> str:
        return self.error_name or self.toolkit


async def _pieces(source: Any, chunk_bytes: int) -> AsyncIterator[Any]:
    """The tables and record batches of `source`, tables cut into slices of about
    `chunk_bytes` bytes; pieces without rows are skipped."""
    pa = require_pyarrow()
    if source is None:
        return
    if isinstance(source, (pa.Table, pa.RecordBatch)):
        items: Any = [source]
    else:
        items = source
    if isinstance(items, AsyncIterable):
        async for item in items:
            for piece in _cut(pa, item, chunk_bytes):
                yield piece
    else:
        for item in items:
            for piece in _cut(pa, item, chunk_bytes):
                yield piece


def _cut(pa: Any, item: Any, chunk_bytes: int) -> Iterable[Any]:
    if not isinstance(item, (pa.Table, pa.RecordBatch)):
        raise TypeError(f"Arrow streams take pyarrow.Table or pyarrow.RecordBatch items, not {type(item).__name__}")
    rows = item.num_rows
    if rows == 0:
        return []
    size = item.nbytes
    if size <= chunk_bytes:
        return [item]
    per_piece = max(1, rows * chunk_bytes // size)
    return [item.slice(offset, per_piece) for offset in range(0, rows, per_piece)]


async def send_arrow_stream(
    room: Any,
    rules: ArrowStreamRules,
    tool: str,
    start: Mapping[str, Any],
    *,
    schema: "pyarrow.Schema | None" = None,
    chunks: Any = None,
) -> None:
    """Run a write stream: the start chunk (`start` headers; `schema` as a schema blob when
    given), then one data chunk per pull from `chunks`, then the end of the input. Returns when
    the server has ended the stream (the data is committed)."""
    run_in_thread = room.backend.run_sync_in_thread
    data = schema_blob(schema) if schema is not None else b""
    async with room.stream_call(rules.toolkit, tool) as call:
        try:
            call.send(BinaryContent(headers=dict(start), data=data))
            await expect_stream_open(call, toolkit=rules.errors, operation=tool)
            source = _pieces(chunks, rules.chunk_bytes).__aiter__()
            stream = call.chunks()
            try:
                async for chunk in stream:
                    if isinstance(chunk, ControlContent) or not rules.is_pull(binary_chunk(chunk, toolkit=rules.errors, operation=tool)):
                        raise unexpected_response(rules.errors, tool)
                    try:
                        piece = await source.__anext__()
                    except StopAsyncIteration:
                        call.close_input()  # the source is exhausted: the server commits
                        continue
                    data = stream_bytes(piece) if piece.nbytes <= INLINE_BYTES else await run_in_thread(stream_bytes, piece)
                    call.send(BinaryContent(headers=dict(_DATA_HEADERS), data=data))
            finally:
                await stream.aclose()  # type: ignore[attr-defined]
        except BaseException as error:
            # Never end the input normally after a failure: the server would commit a part.
            call.close_input(ControlCloseStatus.INVALID_DATA.value, f"{tool} abandoned by the client: {type(error).__name__}")
            raise


def read_arrow_stream(
    room: Any, rules: ArrowStreamRules, tool: str, start: Mapping[str, Any], *, pulls_ahead: int = PULLS_AHEAD
) -> CallIterator["pyarrow.Table"]:
    """Run a read stream: the start chunk, then pulls; yields one `pyarrow.Table` per data chunk
    until the server ends the stream. Use `async with` (or exhaust it) so the call is closed."""
    return CallIterator(_read_body(room, rules, tool, dict(start), max(1, pulls_ahead)))


async def _read_body(room: Any, rules: ArrowStreamRules, tool: str, start: dict[str, Any], pulls_ahead: int) -> AsyncGenerator[Any, None]:
    run_in_thread = room.backend.run_sync_in_thread
    async with room.stream_call(rules.toolkit, tool) as call:
        call.send(BinaryContent(headers=start))
        await expect_stream_open(call, toolkit=rules.errors, operation=tool)
        yield READY
        for _ in range(pulls_ahead):
            call.send(_PULL)
        stream = call.chunks()
        try:
            async for chunk in stream:
                if isinstance(chunk, ControlContent):
                    raise unexpected_response(rules.errors, tool)
                binary = binary_chunk(chunk, toolkit=rules.errors, operation=tool)
                if not rules.is_data(binary):
                    raise unexpected_response(rules.errors, tool)
                try:
                    data = binary.data
                    table = read_stream(data) if len(data) <= INLINE_BYTES else await run_in_thread(read_stream, data)
                except ArrowDataError:
                    raise unexpected_response(rules.errors, tool) from None
                call.send(_PULL)
                yield table
        finally:
            await stream.aclose()  # type: ignore[attr-defined]


__all__ = ["CHUNK_BYTES", "PULLS_AHEAD", "ArrowStreamRules", "read_arrow_stream", "send_arrow_stream"]
