"""The write streams of the `dataset` toolkit: `create_table`, `insert`, `merge`
(protocol/room-apis.md §14.3).

The caller's chunks go straight into one Lance write: the write runs in a worker thread and
reads a `pyarrow.RecordBatchReader` whose every next batch is pulled from the caller on demand
(`pump_to_thread`): the server sends a pull only when Lance wants more rows, so memory holds one
chunk at a time whatever the table's size. Lance commits once, after the last chunk: a stream
that fails, is abandoned (the caller leaves, or closes its input abnormally) or is killed with
the server leaves the table as it was (the data files Lance wrote for it are referenced by no
version; `optimize` with `cleanup_old_versions` and `delete_unverified` removes them).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

import msgspec
import trio

from meshagent_core import BinaryContent, ErrorCode, JsonContent, RoomException
from meshagent_core.toolkits.arrow_ipc import ArrowDataError, read_schema_blob, require_pyarrow
from meshagent_core.toolkits.dataset import CreateTableStart, InsertStart, MergeStart, RowsChunk
from meshagent_core.toolkits.records import decode_record_value

from ..toolkit import ToolCall, invalid_request
from .data_streams import StreamRules, next_chunk, receive_tables, start_chunk
from .dataset_rows import conform, rows_to_table
from .dataset_store import DatasetStore, check_name, check_namespace, branch_key, lance_error, lance_module, show_table

T = TypeVar("T")

#: Rows one `json` rows chunk may carry (the official client sends 128).
MAX_JSON_ROWS_PER_CHUNK = 10_000


class StreamAborted(Exception):
    """Raised inside the writer thread when the stream feeding it failed or was abandoned."""


async def pump_to_thread(work: Callable[[Callable[[], Any]], T], produce: Callable[[], Awaitable[Any]]) -> T:
    """Run `work(fetch)` in a worker thread; each `fetch()` there returns `await produce()` run
    on the Trio side (None: no more input). If the caller's task is cancelled, the `fetch` in
    progress (or the next) raises `StreamAborted`, so `work` unwinds and the cancellation goes
    on once it has; an error of `produce` is raised here as it was (the thread sees
    `StreamAborted`)."""
    token = trio.lowlevel.current_trio_token()
    stopped = trio.Event()
    failures: list[BaseException] = []
    missing = object()

    async def fetch_async() -> Any:
        if stopped.is_set():
            raise StreamAborted("the stream was abandoned")
        result: Any = missing
        error: BaseException | None = None
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                nonlocal result, error
                try:
                    result = await produce()
                except Exception as caught:
                    error = caught
                finally:
                    nursery.cancel_scope.cancel()

            async def watch() -> None:
                await stopped.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(run)
            nursery.start_soon(watch)
        if error is not None:
            raise error
        if result is missing:
            raise StreamAborted("the stream was abandoned")
        return result

    def fetch() -> Any:
        try:
            return trio.from_thread.run(fetch_async, trio_token=token)
        except StreamAborted:
            raise
        except BaseException as error:
            failures.append(error)
            raise StreamAborted(str(error)) from None

    outcome: dict[str, Any] = {}

    async def sentinel() -> None:
        try:
            await trio.sleep_forever()
        finally:
            stopped.set()

    async with trio.open_nursery() as nursery:

        async def run_thread() -> None:
            try:
                outcome["value"] = await trio.to_thread.run_sync(work, fetch)
            except Exception as error:
                outcome["error"] = error
            finally:
                nursery.cancel_scope.cancel()

        nursery.start_soon(sentinel)
        nursery.start_soon(run_thread)
    if failures:
        raise failures[0]
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def batch_reader(schema: Any, first: Any, fetch: Callable[[], Any]) -> Any:
    """A reader of `first` (a table) and then every table `fetch()` returns, as `schema`."""
    pa = require_pyarrow()

    def batches() -> Any:
        table = first
        while table is not None:
            yield from table.to_batches()
            table = fetch()

    return pa.RecordBatchReader.from_batches(schema, batches())


def _with_metadata(schema: Any, start: CreateTableStart) -> Any:
    if not start.metadata:
        return schema
    merged = dict(schema.metadata or {})
    merged.update({entry.key.encode(): entry.value.encode() for entry in start.metadata})
    return schema.with_metadata(merged)


def _lance_write(reader: Any, target: Any, mode: str) -> Any:
    return lance_module().write_dataset(reader, target, mode=mode, enable_stable_row_ids=True)


def _decode_start(chunk: Any, type: type[T], tool: str) -> T:
    headers = chunk.headers if isinstance(chunk, BinaryContent) else chunk.json
    try:
        return msgspec.convert(headers, type=type)
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid start chunk for dataset.{tool}: {error}") from None


class TableStream:
    """The tables a write stream delivers, each conformed to `schema` in a worker thread."""

    def __init__(self, call: ToolCall, rules: StreamRules, *, json_rows: bool) -> None:
        self.call = call
        self.rules = rules
        self.json_rows = json_rows
        self.schema: Any = None
        self._arrow = None if json_rows else receive_tables(call, rules)

    async def raw(self) -> Any:
        """The next table as sent (None: the caller ended its input)."""
        if self._arrow is not None:
            try:
                return await self._arrow.__anext__()
            except StopAsyncIteration:
                return None
        await self.call.send(self.rules.pull)
        chunk = await next_chunk(self.call, self.rules)
        if chunk is None:
            return None
        if not isinstance(chunk, JsonContent) or not isinstance(chunk.json, dict) or chunk.json.get("kind") != "rows":
            raise invalid_request("dataset.create_table: after a json start chunk, data chunks are json {kind: rows, rows: [...]}")
        try:
            rows = msgspec.convert(chunk.json, type=RowsChunk).rows
        except msgspec.ValidationError as error:
            raise invalid_request(f"invalid rows chunk: {error}") from None
        if len(rows) > MAX_JSON_ROWS_PER_CHUNK:
            raise invalid_request(f"a rows chunk carries at most {MAX_JSON_ROWS_PER_CHUNK} rows, got {len(rows)}")
        try:
            decoded = [{column.name: decode_record_value(column.value) for column in row.columns} for row in rows]
        except (ValueError, TypeError) as error:
            raise invalid_request(f"invalid value in a rows chunk: {error}") from None
        return await trio.to_thread.run_sync(rows_to_table, decoded, self.schema)

    async def next(self) -> Any:
        """The next non-empty table, conformed to `schema` (None: no more)."""
        while True:
            table = await self.raw()
            if table is None:
                return None
            if table.num_rows:
                return await trio.to_thread.run_sync(conform, table, self.schema)


async def _pump_write(stream: TableStream, first: Any, write: Callable[[Any], Any]) -> Any:
    """Pump the stream's tables (starting with `first`, None: nothing yet) into `write(reader)`,
    run in a worker thread."""

    def work(fetch: Callable[[], Any]) -> Any:
        return write(batch_reader(stream.schema, first, fetch))

    try:
        return await pump_to_thread(work, stream.next)
    except (StreamAborted, RoomException):
        raise
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        raise lance_error(f"dataset.{stream.call.tool} failed", error) from None


async def create_table(call: ToolCall, store: DatasetStore, rules: StreamRules, authorize: Callable[[tuple[str, ...], str], None]) -> None:
    """`create_table`: an Arrow stream (a schema blob and/or data chunks) or JSON rows."""
    if not call.has_input_stream:
        raise invalid_request("dataset.create_table expects a streamed input whose first chunk is a start chunk")
    first_chunk = await next_chunk(call, rules)
    json_rows = isinstance(first_chunk, JsonContent)
    if json_rows:
        if not isinstance(first_chunk.json, dict) or first_chunk.json.get("kind") != "start":
            raise invalid_request("expected a start chunk for dataset.create_table")
    elif not isinstance(first_chunk, BinaryContent) or first_chunk.headers.get("kind") != "start":
        raise invalid_request("expected a binary start chunk for dataset.create_table (data before the start)")
    start = _decode_start(first_chunk, CreateTableStart, "create_table")
    namespace = check_namespace(start.namespace)
    name = check_name(start.name)
    branch = branch_key(start.branch)
    authorize(namespace, name)
    schema = None
    if isinstance(first_chunk, BinaryContent) and first_chunk.data:
        try:
            schema = _with_metadata(await trio.to_thread.run_sync(read_schema_blob, first_chunk.data), start)
        except ArrowDataError as error:
            raise invalid_request(f"the start chunk's data is not an Arrow schema: {error}") from None
    await trio.to_thread.run_sync(store.require_branch, namespace, branch)
    exists = await trio.to_thread.run_sync(store.exists, namespace, name, branch)
    if exists and start.mode == "create":
        raise RoomException(f"table {show_table(namespace, name)!r} already exists", code=ErrorCode.ALREADY_EXISTS)
    await call.open_stream()
    if exists and start.mode == "create_if_not_exists":
        return
    stream = TableStream(call, rules, json_rows=json_rows)
    first = None
    if schema is None:
        first = await stream.raw()
        if first is None:
            raise invalid_request("dataset.create_table needs a schema or at least one row")
        schema = _with_metadata(first.schema, start)
        first = first if first.num_rows else None
    stream.schema = schema
    if first is not None:
        first = await trio.to_thread.run_sync(conform, first, schema)
    empty = schema.empty_table()

    def write(reader: Any) -> Any:
        return store.create(namespace, name, branch, start.mode, lambda target, mode: _lance_write(reader, target, mode), empty.schema)

    await _pump_write(stream, first if first is not None else empty, write)


async def insert(call: ToolCall, store: DatasetStore, rules: StreamRules, authorize: Callable[[tuple[str, ...], str], None]) -> None:
    """`insert`: append the streamed rows in one commit."""
    start = _decode_start(await start_chunk(call, rules), InsertStart, "insert")
    namespace, table, branch = check_namespace(start.namespace), check_name(start.table), branch_key(start.branch)
    authorize(namespace, table)
    dataset = await trio.to_thread.run_sync(store.open, namespace, table, branch)
    await call.open_stream()
    stream = TableStream(call, rules, json_rows=False)
    stream.schema = dataset.schema
    first = await stream.next()
    if first is None:
        return
    await _pump_write(stream, first, lambda reader: _lance_write(reader, dataset, "append"))


async def merge(call: ToolCall, store: DatasetStore, rules: StreamRules, authorize: Callable[[tuple[str, ...], str], None]) -> None:
    """`merge`: rows whose `on` column matches replace those rows, the others are inserted
    (one commit)."""
    start = _decode_start(await start_chunk(call, rules), MergeStart, "merge")
    namespace, table, branch = check_namespace(start.namespace), check_name(start.table), branch_key(start.branch)
    authorize(namespace, table)
    dataset = await trio.to_thread.run_sync(store.open, namespace, table, branch)
    if dataset.schema.get_field_index(start.on) < 0:
        raise invalid_request(f"unknown column {start.on!r} to merge on: the table has {', '.join(dataset.schema.names)}")
    await call.open_stream()
    stream = TableStream(call, rules, json_rows=False)
    stream.schema = dataset.schema
    first = await stream.next()
    if first is None:
        return

    def write(reader: Any) -> Any:
        return dataset.merge_insert(start.on).when_matched_update_all().when_not_matched_insert_all().execute(reader)

    await _pump_write(stream, first, write)


__all__ = ["StreamAborted", "create_table", "insert", "merge", "pump_to_thread"]
