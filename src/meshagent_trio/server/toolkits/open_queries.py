"""Open SQL queries of the data toolkits (`sqlite`, `dataset`; protocol/room-apis.md §13.4).

`execute_sql` / `open_sql_query` (and `execute_sql_batch`) leave a query open: a cursor whose
rows the caller reads with `read_sql_query` (a read stream, one Arrow batch per pull) and ends
with `close_sql_query`. This module keeps them, by id, per room and toolkit (`queries_of`):

* A query belongs to the participant that opened it: another participant asking for its id is
  told it does not exist. One participant holds at most `OpenQueries.limit` queries
  (`MAX_OPEN_QUERIES`); opening one more is refused with 1008 until it closes some.
* A participant's queries are closed when its connection ends (a `LEAVE_HOOKS` hook), and a
  toolkit may close all queries matching a predicate (`close_where`, e.g. when a database is
  dropped).
* `close_sql_query` closes a query; closing an unknown or closed id answers `empty` too, so a
  close after a cancel (or a second close) is harmless. `read_sql_query` of an unknown id is
  1003. A query whose rows are exhausted stays open (further reads end at once) until closed.
* `cancel_sql_query` answers `cancelled` (an idle query: closed now), `cancelling` (a read is
  running the cursor in a worker thread: the cursor is interrupted, that read fails with 1008
  "… was cancelled", and the query closes as it stops), or `not_cancellable` (an unknown, closed
  or exhausted query).

What a query reads from is the toolkit's business: a `QueryCursor`, whose blocking methods run in
worker threads (`fetch`, `close`) and whose `interrupt` may be called from any thread. At most
one read of a query runs at a time (a second concurrent `read_sql_query` is 1006).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, TypeVar

import msgspec
import trio

from meshagent_core import ErrorCode, JsonContent, RoomException
from meshagent_core.toolkits.sql_queries import CancelOutput, CancelStatus, QueryIdInput, ReadQueryStart

from ..hooks import LEAVE_HOOKS
from ..toolkit import ToolCall, invalid_request
from .data_streams import StreamRules, arrow_chunk, serve_items, start_chunk

if TYPE_CHECKING:
    import pyarrow

    from ..rooms.participant import Participant
    from ..rooms.room import Room

log = logging.getLogger("meshagent_trio.server")

T = TypeVar("T")

#: Queries one participant may hold open in one toolkit of a room.
MAX_OPEN_QUERIES = 32
#: Seconds one blocking step (opening a query, one fetch, one statement) may run before it is
#: interrupted and answered 1009.
STEP_TIMEOUT = 300.0
#: Seconds between interrupts of a step that does not stop yet (an interrupt that arrives just
#: before the engine starts a statement may be lost).
_INTERRUPT_INTERVAL = 0.05


async def run_interruptible(function: Callable[..., T], *args: Any, interrupt: Callable[[], None], timeout: float | None = None) -> T:
    """`function(*args)` in a worker thread. When the caller is cancelled (its participant left)
    or the step runs longer than `timeout` (default `STEP_TIMEOUT`), `interrupt()` is called —
    from this thread, repeatedly, until the function returns (it should then raise). A step cut
    short by the timeout is answered 1009; the function's own errors are raised as they are."""
    done = False

    async def watch() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                while not done:
                    interrupt()
                    await trio.sleep(_INTERRUPT_INTERVAL)

    limit = STEP_TIMEOUT if timeout is None else timeout
    with trio.move_on_after(limit) as timer:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                try:
                    return await trio.to_thread.run_sync(function, *args)
                finally:
                    done = True
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            inner = [error for error in group.exceptions if not isinstance(error, trio.Cancelled)]
            if len(inner) == 1 and not timer.cancel_called:
                raise inner[0] from None
            if not timer.cancel_called:
                raise
        except RoomException:
            if not timer.cancel_called:
                raise
    raise RoomException(f"the statement ran for more than {limit:g} seconds and was interrupted", code=ErrorCode.TIMEOUT)


class QueryCursor(Protocol):
    """What an open query reads from (implemented by each toolkit)."""

    #: The columns every batch has (what `execute_sql` answered).
    schema: "pyarrow.Schema"

    def fetch(self, max_rows: int | None) -> "pyarrow.RecordBatch | None":
        """The next batch (blocking: run in a worker thread), at most `max_rows` rows when given,
        or None once exhausted. Raises `RoomException` for a failure to tell the caller."""

    def interrupt(self) -> None:
        """Stop a `fetch` running in another thread as soon as possible (any thread)."""

    def close(self) -> None:
        """Release the cursor (blocking: run in a worker thread)."""


@dataclass(eq=False)
class OpenQuery:
    id: str
    owner: "Participant"
    cursor: QueryCursor
    #: Toolkit data to find the query by (e.g. the database it reads), for `close_where`.
    tag: Any = None
    exhausted: bool = False
    closed: bool = False
    #: A `fetch` runs in a worker thread now.
    busy: bool = False
    #: Closed while busy: the cursor is closed as soon as that fetch returns.
    close_requested: bool = False
    cancelled: bool = False
    #: A `read_sql_query` stream is serving this query.
    reading: bool = field(default=False)


def _close_in_thread(cursor: QueryCursor) -> None:
    """Close `cursor` in a worker thread, from any Trio context (a system task: it must not be
    lost when the task that asked is cancelled, e.g. by its participant leaving)."""

    async def close() -> None:
        try:
            await trio.to_thread.run_sync(cursor.close)
        except Exception:  # a system task must not raise
            log.exception("closing an open query failed")

    trio.lowlevel.spawn_system_task(close)


class OpenQueries:
    """The open queries of one toolkit in one room."""

    def __init__(self, toolkit: str, limit: int = MAX_OPEN_QUERIES) -> None:
        self.toolkit = toolkit
        self.limit = limit
        self._queries: dict[str, OpenQuery] = {}

    def __len__(self) -> int:
        return len(self._queries)

    def owned_by(self, owner: "Participant") -> list[OpenQuery]:
        return [query for query in self._queries.values() if query.owner is owner]

    def add(self, owner: "Participant", cursor: QueryCursor, *, tag: Any = None) -> OpenQuery:
        """Keep `cursor` as a new query of `owner`. Over the limit, the cursor is closed and
        1008 raised."""
        if len(self.owned_by(owner)) >= self.limit:
            _close_in_thread(cursor)
            raise RoomException(
                f"too many open sql queries (limit {self.limit}): close some with close_sql_query",
                code=ErrorCode.OPERATION_FAILED,
            )
        query = OpenQuery(id=uuid.uuid4().hex, owner=owner, cursor=cursor, tag=tag)
        self._queries[query.id] = query
        return query

    def find(self, owner: "Participant", query_id: str) -> OpenQuery | None:
        query = self._queries.get(query_id)
        return query if query is not None and query.owner is owner else None

    def get(self, owner: "Participant", query_id: str) -> OpenQuery:
        """The open query `query_id` of `owner`; 1003 otherwise."""
        query = self.find(owner, query_id)
        if query is None:
            raise RoomException(f"sql query {query_id!r} was not found (it is closed, or was never opened)", code=ErrorCode.NOT_FOUND)
        return query

    def close_soon(self, query: OpenQuery) -> None:
        """Forget `query` and close its cursor: now (in a worker thread) when idle, else as soon
        as the running fetch returns (which is interrupted)."""
        if query.closed:
            return
        query.closed = True
        self._queries.pop(query.id, None)
        if query.busy:
            query.close_requested = True
            query.cursor.interrupt()
        else:
            _close_in_thread(query.cursor)

    def close_where(self, predicate: Callable[[OpenQuery], bool]) -> None:
        for query in [q for q in self._queries.values() if predicate(q)]:
            self.close_soon(query)

    def owner_left(self, owner: "Participant") -> None:
        self.close_where(lambda query: query.owner is owner)

    async def close(self, owner: "Participant", query_id: str) -> None:
        """`close_sql_query`: idempotent."""
        query = self.find(owner, query_id)
        if query is None:
            return
        if query.busy:
            self.close_soon(query)
            return
        query.closed = True
        self._queries.pop(query.id, None)
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(query.cursor.close)

    async def cancel(self, owner: "Participant", query_id: str) -> CancelStatus:
        query = self.find(owner, query_id)
        if query is None or query.exhausted:
            return "not_cancellable"
        query.cancelled = True
        if query.busy:
            self.close_soon(query)
            return "cancelling"
        await self.close(owner, query_id)
        return "cancelled"

    async def fetch(self, query: OpenQuery, max_rows: int | None) -> "pyarrow.RecordBatch | None":
        """The next batch of `query` (None: exhausted), read in a worker thread."""
        if query.closed:
            raise self._stopped(query)
        if query.exhausted:
            return None
        query.busy = True
        try:
            batch = await run_interruptible(query.cursor.fetch, max_rows, interrupt=query.cursor.interrupt)
        except RoomException:
            if query.close_requested:
                raise self._stopped(query) from None
            raise
        finally:
            query.busy = False
            if query.close_requested:
                query.close_requested = False
                _close_in_thread(query.cursor)
        if query.closed:
            raise self._stopped(query)
        if batch is None:
            query.exhausted = True
        return batch

    def _stopped(self, query: OpenQuery) -> RoomException:
        what = "cancelled" if query.cancelled else "closed"
        return RoomException(f"sql query {query.id!r} was {what}", code=ErrorCode.OPERATION_FAILED)


# --- per room ----------------------------------------------------------------------------------

_TOOLKITS: set[str] = set()


def _state_key(toolkit: str) -> str:
    return f"{toolkit}.open_queries"


def queries_of(room: "Room", toolkit: str) -> OpenQueries:
    """The open queries of `toolkit` in `room` (made on first use)."""
    _TOOLKITS.add(toolkit)
    return room.toolkit_state(_state_key(toolkit), lambda room: OpenQueries(toolkit))


def _participant_left(participant: "Participant") -> None:
    for toolkit in _TOOLKITS:
        queries = participant.room.state.get(_state_key(toolkit))
        if queries is not None:
            queries.owner_left(participant)


LEAVE_HOOKS.append(_participant_left)


# --- the tools, the same in both toolkits --------------------------------------------------------


async def read_sql_query(call: ToolCall, rules: StreamRules, *, max_rows: Callable[[int | None], int | None] = lambda size: size) -> None:
    """`read_sql_query`: a read stream of the query named by the start chunk (1003 for an
    unknown one, before the stream opens). `max_rows(chunk_size)` turns a pull's `chunk_size`
    into the most rows of one batch (None: the cursor's own bound)."""
    start = await start_chunk(call, rules)
    try:
        query_id = msgspec.convert(start.headers, type=ReadQueryStart).query_id
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid start chunk for {rules.toolkit}.read_sql_query: {error}") from None
    queries = queries_of(call.room, rules.toolkit)
    query = queries.get(call.caller, query_id)
    if query.reading:
        raise RoomException(f"sql query {query_id!r} is already being read by another call", code=ErrorCode.INVALID_STATE)
    query.reading = True
    try:
        await call.open_stream()

        async def produce(chunk_size: int | None) -> Any:
            batch = await queries.fetch(query, max_rows(chunk_size))
            return None if batch is None else arrow_chunk(batch, rules)

        await serve_items(call, rules, produce)
    finally:
        query.reading = False


async def close_sql_query(call: ToolCall, toolkit: str) -> None:
    """`close_sql_query`: `empty`, also for an unknown or closed id."""
    arguments = call.json_arguments(QueryIdInput)
    await queries_of(call.room, toolkit).close(call.caller, arguments.query_id)


async def cancel_sql_query(call: ToolCall, toolkit: str) -> JsonContent:
    """`cancel_sql_query`: `{"status": …}` (see the module docstring)."""
    arguments = call.json_arguments(QueryIdInput)
    status = await queries_of(call.room, toolkit).cancel(call.caller, arguments.query_id)
    return JsonContent(json={"status": CancelOutput(status=status).status})


__all__ = [
    "MAX_OPEN_QUERIES",
    "OpenQueries",
    "OpenQuery",
    "QueryCursor",
    "STEP_TIMEOUT",
    "cancel_sql_query",
    "close_sql_query",
    "queries_of",
    "read_sql_query",
    "run_interruptible",
]
