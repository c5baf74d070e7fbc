"""The server side of the pull-driven Arrow streams of the data toolkits (`sqlite`, `dataset`;
protocol/room-apis.md §13.3).

Every stream starts with a `binary` chunk of kind `start` from the caller (`start_chunk`), and the
handler answers `control/open` (`await call.open_stream()`). Then one of two shapes:

* **Write streams** (`create_table`, `insert`, …: the caller sends rows). `receive_tables` keeps
  `StreamRules.window` pulls in flight and receives exactly one data chunk per pull (`binary
  {"kind": "data", "content_type"?}` carrying one Arrow IPC stream), decodes it and yields it as
  a `pyarrow.Table`; a new pull goes out only when the consumer asks for the next table, so a
  slow consumer slows the caller. The stream ends when the caller closes its input
  (`control/close`, status 1000). Refused with 1002 (nothing the handler did is kept if it undoes
  its work on error): a chunk that is not a data chunk, a data chunk that was not pulled (more
  waiting than pulls in flight when the next pull would go out), a chunk larger than
  `StreamRules.max_chunk_bytes`, bytes that are not an Arrow IPC stream, and an abnormal input
  close. A caller silent for `StreamRules.idle_timeout` seconds is answered 1009.
* **Read streams** (`search`, `read_sql_query`, …: the caller pulls rows). `serve_items` waits for
  a pull, asks the producer for one item and sends it; when the producer is exhausted the pull is
  answered by the end of the stream (`control/close`, which the handler's return sends). A caller
  that closes its input stops the stream early. A pull of the wrong shape is 1002.

`StreamRules` holds what differs between the toolkits: the pull the server sends, which pulls it
accepts, the headers of the data chunks it sends, and the bounds. `pyarrow` is imported on first
use (`arrow_ipc.require_pyarrow`), so importing this module is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Mapping

import trio

from meshagent_core import BinaryContent, Content, ErrorCode, JsonContent, RoomException
from meshagent_core.toolkits.arrow_ipc import ARROW_STREAM, ArrowDataError, read_stream, stream_bytes

from ..toolkit import ToolCall, invalid_request

if TYPE_CHECKING:
    import pyarrow

#: Largest data chunk a caller may send in a write stream (the official client sends a whole
#: table as one chunk, so this is the size of a message the server accepts at all).
MAX_CHUNK_BYTES = 64 * 1024 * 1024
#: Seconds a stream waits for the caller's next chunk (a pull or data) before it gives up.
IDLE_TIMEOUT = 300.0


def _strict_pull(chunk: Content) -> int | None:
    """Accept exactly `binary {"kind": "pull"}` (the sqlite toolkit's read streams)."""
    if isinstance(chunk, BinaryContent) and chunk.headers == {"kind": "pull"}:
        return None
    raise _unexpected(chunk, "a binary chunk with headers exactly {'kind': 'pull'}")


@dataclass(frozen=True)
class StreamRules:
    """What differs between the data toolkits' streams.

    * `toolkit`: named in error texts.
    * `pull`: the chunk the server sends to ask for the next data chunk of a write stream
      (the sqlite toolkit: `binary` with headers exactly `{"kind": "pull"}`).
    * `read_pull`: checks a caller's pull in a read stream and returns the `chunk_size` it asks
      for (None: the server's choice); raises `RoomException` (1002) for anything else.
    * `data_headers`: headers of the data chunks the server sends in a read stream
      (sqlite: exactly `{"kind": "data"}`).
    * `strict_data`: write-stream data chunks must carry no header but `kind` and an optional
      `content_type` (which must then be the Arrow stream type).
    * `max_chunk_bytes`, `idle_timeout`: the bounds described in the module docstring.
    * `window`: pulls a write stream keeps in flight (the caller sends the next chunk while the
      server stores this one); 1: one at a time. Above 1 only for callers that queue pulls: the
      0.56 TypeScript client loses one when two arrive while it is sending a chunk.
    """

    toolkit: str
    pull: Content = field(default_factory=lambda: BinaryContent(headers={"kind": "pull"}))
    read_pull: Callable[[Content], int | None] = _strict_pull
    data_headers: Mapping[str, Any] = field(default_factory=lambda: {"kind": "data"})
    strict_data: bool = True
    max_chunk_bytes: int = MAX_CHUNK_BYTES
    idle_timeout: float = IDLE_TIMEOUT
    window: int = 1


def _describe(chunk: Content | None) -> str:
    if chunk is None:
        return "the end of the input"
    if isinstance(chunk, BinaryContent):
        return f"a binary chunk with headers {chunk.headers!r}"
    if isinstance(chunk, JsonContent):
        return f"a json chunk {chunk.json!r}"[:200]
    return f"a {getattr(chunk, 'type', type(chunk).__name__)} chunk"


def _unexpected(chunk: Content | None, wanted: str) -> RoomException:
    return invalid_request(f"expected {wanted}, got {_describe(chunk)}")


async def next_chunk(call: ToolCall, rules: StreamRules) -> Content | None:
    """The caller's next input chunk (None: it closed its input normally), waiting at most
    `rules.idle_timeout` seconds (then 1009)."""
    with trio.move_on_after(rules.idle_timeout):
        return await call.next_input()
    raise RoomException(
        f"{rules.toolkit}.{call.tool}: nothing was received from the caller for {rules.idle_timeout:g} seconds",
        code=ErrorCode.TIMEOUT,
    )


async def start_chunk(call: ToolCall, rules: StreamRules) -> BinaryContent:
    """The first input chunk of a stream: `binary` whose headers say `kind: start` (its data is
    the toolkit's: a schema blob, or nothing). 1002 for a call without a streamed input or a
    first chunk of any other kind (data before the start)."""
    if not call.has_input_stream:
        raise invalid_request(f"{rules.toolkit}.{call.tool} expects a streamed input whose first chunk is binary {{kind: start}}")
    chunk = await next_chunk(call, rules)
    if not isinstance(chunk, BinaryContent) or chunk.headers.get("kind") != "start":
        raise _unexpected(chunk, f"a binary start chunk for {rules.toolkit}.{call.tool}")
    return chunk


def _check_data_chunk(chunk: Content | None, rules: StreamRules) -> bytes:
    if not isinstance(chunk, BinaryContent) or chunk.headers.get("kind") != "data":
        raise _unexpected(chunk, "a binary data chunk (one was pulled)")
    if rules.strict_data:
        extra = set(chunk.headers) - {"kind", "content_type"}
        content_type = chunk.headers.get("content_type", ARROW_STREAM)
        if extra or content_type != ARROW_STREAM:
            raise invalid_request(f"a data chunk has headers {{kind: data, content_type: {ARROW_STREAM}}}, got {chunk.headers!r}")
    if len(chunk.data) > rules.max_chunk_bytes:
        raise invalid_request(f"a data chunk of {len(chunk.data)} bytes exceeds the limit of {rules.max_chunk_bytes} bytes")
    return chunk.data


async def refuse_unpulled(call: ToolCall, rules: StreamRules, pulled: int = 0) -> None:
    """Before a pull goes out, at most `pulled` chunks (answers to the pulls still in flight)
    may be waiting: a chunk beyond them was sent without a pull and is refused (an abnormal
    close waiting first is raised as such)."""
    if call.input_backlog > pulled:
        chunk = await call.next_input()
        if chunk is not None:
            raise invalid_request(f"{rules.toolkit}.{call.tool}: {_describe(chunk)} was sent without a pull")


async def decode_arrow(data: bytes) -> "pyarrow.Table":
    """One Arrow IPC stream as a table, decoded in a worker thread; 1002 for other bytes."""
    try:
        return await trio.to_thread.run_sync(read_stream, data)
    except ArrowDataError as error:
        raise invalid_request(f"a data chunk is not an Arrow IPC stream: {error}") from None


async def receive_tables(call: ToolCall, rules: StreamRules) -> AsyncIterator["pyarrow.Table"]:
    """The write-stream body, after `call.open_stream()`: keep `rules.window` pulls in flight,
    receive one data chunk per pull, yield its table; until the caller closes its input (see the
    module docstring)."""
    in_flight = 0
    while True:
        while in_flight < max(1, rules.window):
            await refuse_unpulled(call, rules, in_flight)
            await call.send(rules.pull)
            in_flight += 1
        chunk = await next_chunk(call, rules)
        if chunk is None:
            return
        in_flight -= 1
        yield await decode_arrow(_check_data_chunk(chunk, rules))


def arrow_chunk(data: "pyarrow.Table | pyarrow.RecordBatch", rules: StreamRules) -> BinaryContent:
    """A read-stream data chunk holding `data` as one Arrow IPC stream."""
    return BinaryContent(headers=dict(rules.data_headers), data=stream_bytes(data))


async def serve_items(call: ToolCall, rules: StreamRules, produce: Callable[[int | None], Awaitable[Content | None]]) -> None:
    """The read-stream body, after `call.open_stream()`: answer each pull with
    `await produce(chunk_size)` (a chunk to send; None: exhausted, the stream ends). Returns when
    the producer is exhausted or the caller closed its input."""
    while True:
        pull = await next_chunk(call, rules)
        if pull is None:
            return
        item = await produce(rules.read_pull(pull))
        if item is None:
            return
        await call.send(item)


__all__ = [
    "IDLE_TIMEOUT",
    "MAX_CHUNK_BYTES",
    "StreamRules",
    "arrow_chunk",
    "decode_arrow",
    "next_chunk",
    "receive_tables",
    "refuse_unpulled",
    "serve_items",
    "start_chunk",
]
