"""The read streams and the SQL tools of the `dataset` toolkit (protocol/room-apis.md §14.4, §14.5).

* `search`: one Arrow batch (at most `dataset_ops.BATCH_ROWS` rows, never an empty one) per
  pull; an empty result closes the stream at once. The first batch is read
  before the stream opens, so a bad filter or column is the call's answer.
* `watch_table`: the table as it is (`data` chunks, phase `initial`, with `_rowid`), then
  `ready` (phase `initial`); then, each time a new version appears (checked every
  `poll_interval_seconds`, 0.05–60), what changed: `data` chunks of phase `delta` with
  `change_type` `inserted` / `updated` (the rows, with `_rowid`) / `deleted` (their `_rowid`
  only) and `begin_version`/`end_version`, then `ready` (phase `delta`, the new version). A
  change Lance cannot describe as a delta (a restore, an overwrite) is sent as a new `initial`
  snapshot. The watch ends when the caller closes its input, or with an error when the table
  is dropped.
* `execute_sql`, `open_sql_query`, `execute_sql_statement` (`dataset_sql`), and
  `read_sql_query`, `close_sql_query`, `cancel_sql_query` (the open queries shared with the
  sqlite toolkit, `open_queries`).
"""

from __future__ import annotations

import math
from typing import Any, AsyncIterator

import msgspec
import trio

from meshagent_core import BinaryContent, Content, JsonContent
from meshagent_core.toolkits.arrow_ipc import ARROW_STREAM, schema_blob, stream_bytes
from meshagent_core.toolkits.dataset import (
    RowsAffectedOutput,
    SearchStart,
    SqlHeaders,
    SqlQueryHeaders,
    SqlStatementOutput,
    WatchData,
    WatchReady,
    WatchStart,
)

from ..toolkit import ToolCall, invalid_request
from . import dataset_ops as ops
from .data_streams import arrow_chunk, next_chunk, serve_items, start_chunk
from .dataset_access import RULES, allows, grant_of, json_answer, require, run, store_of, toolkit
from .dataset_sql import SqlRequest, parse
from .dataset_store import branch_key, check_name, check_namespace
from .open_queries import cancel_sql_query as cancel_query
from .open_queries import close_sql_query as close_query
from .open_queries import queries_of
from .open_queries import read_sql_query as read_query

MIN_POLL_INTERVAL = 0.05
MAX_POLL_INTERVAL = 60.0


def _start(chunk: BinaryContent, type: type[Any], tool: str) -> Any:
    try:
        return msgspec.convert(chunk.headers, type=type)
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid start chunk for dataset.{tool}: {error}") from None


# --- search -------------------------------------------------------------------------------------


def _open_search(store: Any, namespace: tuple[str, ...], table: str, start: SearchStart) -> tuple[Any, Any]:
    """(the result's reader, its first batch or None), in one worker-thread call."""
    dataset = store.open(namespace, table, branch_key(start.branch), start.version)
    reader = ops.search_reader(dataset, start)
    try:
        return reader, ops.next_batch(reader)
    except BaseException:
        reader.close()
        raise


def _next_or_close(reader: Any) -> Any:
    batch = ops.next_batch(reader)
    if batch is None:
        reader.close()
    return batch


@toolkit.tool("search")
async def search(call: ToolCall) -> None:
    start: SearchStart = _start(await start_chunk(call, RULES), SearchStart, "search")
    grant = grant_of(call)
    namespace, table = check_namespace(start.namespace), check_name(start.table)
    require(grant, "read", namespace, table)
    store = await store_of(call)
    reader, pending = await run(_open_search, store, namespace, table, start)
    try:
        await call.open_stream()

        async def produce(chunk_size: int | None) -> Content | None:
            nonlocal pending
            batch, pending = pending, None
            if batch is None:
                batch = await run(_next_or_close, reader)
            return None if batch is None else arrow_chunk(batch, RULES)

        if pending is not None:
            await serve_items(call, RULES, produce)
    finally:
        with trio.CancelScope(shield=True):
            await run(reader.close)


# --- watch_table --------------------------------------------------------------------------------


def _data(batch: Any, **headers: Any) -> BinaryContent:
    header = WatchData(content_type=ARROW_STREAM, **headers)
    return BinaryContent(headers=msgspec.to_builtins(header), data=stream_bytes(ops.public_columns(batch)))


async def _batches(reader: Any) -> AsyncIterator[Any]:
    try:
        while True:
            batch = await run(ops.next_batch, reader)
            if batch is None:
                return
            yield batch
    finally:
        with trio.CancelScope(shield=True):
            await run(reader.close)


class _Watch:
    """The items of one `watch_table`, made as they are pulled."""

    def __init__(self, call: ToolCall, start: WatchStart, namespace: tuple[str, ...], table: str, interval: float) -> None:
        self.call = call
        self.namespace = namespace
        self.table = table
        self.branch = branch_key(start.branch)
        self.interval = interval

    async def _open(self) -> Any:
        store = await store_of(self.call)
        return await run(store.open, self.namespace, self.table, self.branch)

    async def _snapshot(self, dataset: Any) -> AsyncIterator[Content]:
        version = int(dataset.version)
        async for batch in _batches(await run(ops.snapshot_reader, dataset)):
            yield _data(batch, phase="initial", version=version)
        yield JsonContent(json=msgspec.to_builtins(WatchReady(phase="initial", version=version)))

    async def items(self) -> AsyncIterator[Content]:
        dataset = await self._open()
        version = int(dataset.version)
        async for item in self._snapshot(dataset):
            yield item
        while True:
            await trio.sleep(self.interval)
            latest = await self._open()
            new = int(latest.version)
            if new == version:
                continue
            try:
                changes = await run(ops.delta_readers, latest, version, new)
            except (OSError, ValueError, RuntimeError):
                changes = None
            if changes is None:
                async for item in self._snapshot(latest):
                    yield item
            else:
                for change_type, reader in changes:
                    async for batch in _batches(reader):
                        yield _data(batch, phase="delta", change_type=change_type, begin_version=version, end_version=new, version=new)
                yield JsonContent(json=msgspec.to_builtins(WatchReady(phase="delta", version=new)))
            version = new


async def _next_or_input_end(call: ToolCall, items: AsyncIterator[Content]) -> tuple[Content | None, int, bool]:
    """(the next item or None, pulls that arrived meanwhile, whether the caller closed its
    input meanwhile): a watch waits for changes indefinitely, and must notice the caller
    leaving while it does."""
    outcome: dict[str, Any] = {}
    pulls = 0
    closed = False
    async with trio.open_nursery() as nursery:

        async def make() -> None:
            try:
                outcome["item"] = await items.__anext__()
            except StopAsyncIteration:
                outcome["item"] = None
            except Exception as error:
                outcome["error"] = error
            nursery.cancel_scope.cancel()

        async def watch_input() -> None:
            nonlocal pulls, closed
            try:
                while True:
                    chunk = await call.next_input()
                    if chunk is None:
                        closed = True
                        break
                    RULES.read_pull(chunk)
                    pulls += 1
            except Exception as error:
                outcome["error"] = error
            nursery.cancel_scope.cancel()

        nursery.start_soon(make)
        nursery.start_soon(watch_input)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("item"), pulls, closed


@toolkit.tool("watch_table")
async def watch_table(call: ToolCall) -> None:
    start: WatchStart = _start(await start_chunk(call, RULES), WatchStart, "watch_table")
    grant = grant_of(call)
    namespace, table = check_namespace(start.namespace), check_name(start.table)
    require(grant, "read", namespace, table)
    interval = start.poll_interval_seconds
    if not isinstance(interval, (int, float)) or not math.isfinite(interval) or interval <= 0:
        raise invalid_request("poll_interval_seconds must be a positive number")
    interval = min(max(float(interval), MIN_POLL_INTERVAL), MAX_POLL_INTERVAL)
    watch = _Watch(call, start, namespace, table, interval)
    await watch._open()  # 1003 before the stream opens
    await call.open_stream()
    items = watch.items()
    pulls = 0
    try:
        while True:
            if pulls == 0:
                pull = await next_chunk(call, RULES)
                if pull is None:
                    return
                RULES.read_pull(pull)
                pulls = 1
            item, more, closed = await _next_or_input_end(call, items)
            if item is None or closed:
                return
            await call.send(item)
            pulls += more - 1
    finally:
        with trio.CancelScope(shield=True):
            await items.aclose()  # type: ignore[attr-defined]


# --- SQL ---------------------------------------------------------------------------------------


def _sql_arguments(call: ToolCall) -> tuple[SqlHeaders, bytes]:
    if not isinstance(call.arguments, BinaryContent):
        raise invalid_request(f"dataset.{call.tool} expects a binary argument: headers {{query, tables, namespace, branch}} and Arrow parameters")
    try:
        return msgspec.convert(call.arguments.headers, type=SqlHeaders), call.arguments.data
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid arguments for dataset.{call.tool}: {error}") from None


async def _execute(call: ToolCall, accept: set[str]) -> tuple[str, Any]:
    headers, data = _sql_arguments(call)
    if not headers.query.strip():
        raise invalid_request("the query is empty")
    grant = grant_of(call)
    parsed = await run(parse, headers.query)
    if parsed.kind == "query" and "query" not in accept:
        raise invalid_request("a SELECT returns rows: run it with execute_sql or open_sql_query")
    if parsed.kind != "query" and "statement" not in accept:
        raise invalid_request(f"{parsed.kind.upper()} returns no rows: run it with execute_sql or execute_sql_statement")
    store = await store_of(call)
    request = SqlRequest(
        store,
        headers.namespace,
        headers.branch,
        headers.tables,
        lambda namespace, table: allows(grant, "read", namespace, table),
        lambda namespace, table: allows(grant, "write", namespace, table),
    )
    return await run(request.open, headers.query, data)


async def _query_answer(call: ToolCall, cursor: Any) -> Content:
    query = queries_of(call.room, "dataset").add(call.caller, cursor)
    blob = await run(schema_blob, cursor.schema)
    header = SqlQueryHeaders(query_id=query.id, content_type=ARROW_STREAM)
    return BinaryContent(headers=msgspec.to_builtins(header), data=blob)


@toolkit.tool("execute_sql")
async def execute_sql(call: ToolCall) -> Content:
    kind, value = await _execute(call, {"query", "statement"})
    if kind == "query":
        return await _query_answer(call, value)
    return json_answer(SqlStatementOutput(rows_affected=value))


@toolkit.tool("open_sql_query")
async def open_sql_query(call: ToolCall) -> Content:
    _, cursor = await _execute(call, {"query"})
    return await _query_answer(call, cursor)


@toolkit.tool("execute_sql_statement")
async def execute_sql_statement(call: ToolCall) -> Content:
    _, rows = await _execute(call, {"statement"})
    return json_answer(RowsAffectedOutput(rows_affected=rows))


@toolkit.tool("read_sql_query")
async def read_sql_query(call: ToolCall) -> None:
    await read_query(call, RULES)


@toolkit.tool("close_sql_query")
async def close_sql_query(call: ToolCall) -> None:
    await close_query(call, "dataset")


@toolkit.tool("cancel_sql_query")
async def cancel_sql_query(call: ToolCall) -> Content:
    return await cancel_query(call, "dataset")


__all__ = ["cancel_sql_query", "close_sql_query", "execute_sql", "execute_sql_statement", "open_sql_query", "read_sql_query", "search", "watch_table"]
