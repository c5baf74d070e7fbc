"""The `queues` toolkit: named, persistent FIFO queues of JSON objects (protocol/room-apis.md §4).

Messages and each queue's open/closed state live in the room's SQLite database
(`sqlite_store`, tables `queues` and `queue_messages`) and are mirrored in memory. Guarantees:

* **Durable sends.** `send` is answered only after the message is committed (WAL,
  `synchronous=FULL`), so a restart, a SIGKILL or a power loss loses no acknowledged message.
* **FIFO.** Messages of a queue are handed out in the order their sends were committed.
* **Removed only when handed out.** A message leaves the queue at the moment a `receive` is
  answered with it on a live connection (the answer is queued on that connection); each message
  goes to exactly one receiver, so concurrent receivers get distinct messages. A receiver that
  disconnects or is cancelled before that moment takes nothing. The removal is then deleted from
  the database; if the server dies between the answer and that commit, the message is handed out
  again after the restart (at-least-once across crashes, exactly-once otherwise). An answer
  queued on a connection whose socket dies before the bytes are written is lost with it, as
  with any request without an application-level acknowledgement.

Decisions on what the official client leaves open (protocol/room-apis.md §4.2):

* `receive` with `wait: true` is a long poll answered as soon as a message is available, or
  with `empty` after `Queues.receive_timeout` seconds (`RECEIVE_TIMEOUT`, 30 s by default;
  the official clients treat `empty` as "nothing yet, try again").
* Among several waiting receivers, a new message wakes the **newest** first. A unary request the
  caller gives up on without disconnecting cannot be seen by the server (the protocol has no
  cancel message for unary calls), so such a stale poll still holds a place until its timeout;
  preferring the newest poll means a caller that abandons a poll and polls again gets the next
  message, not the abandoned poll.
* `open` creates a missing queue, reopens a closed one, and answers `empty` on a queue that is
  already open (never 5002: several ecosystem templates call `open` unguarded).
* `send` / `receive` with `create: false` on a missing queue fail with 5001 QUEUE_NOT_FOUND; so do
  `drain` and `close` of a missing queue.
* A closed queue keeps its messages (they are back when it is reopened) but refuses `send` and
  `receive` with 1006 INVALID_STATE "queue <name> is closed", also when `create` is true. Closing
  a queue answers every receiver waiting on it with that same error at once. `drain` works on a
  closed queue; `close` of a closed queue answers `empty`. `list` shows closed queues too.
* Grants (`queues`): `send` needs the queue in the `send` list, `receive` in the `receive` list,
  `list` the `list` flag; `open`, `drain` and `close` need the queue in either list. No `queues`
  grant at all ⇒ 1001 for every tool.
* Limits: a message is a JSON object of at most `Queues.max_message_bytes` (1 MiB) once encoded
  as compact JSON, and a queue holds at most `Queues.max_queue_bytes` (256 MiB) of messages;
  beyond either, `send` fails (1002 for the message size, 1008 for a full queue) and nothing is
  stored. Queue names are 1 to `MAX_NAME_LENGTH` characters.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from meshagent_core import EmptyContent, ErrorCode, JsonContent, RoomException
from meshagent_core.tokens.grants import QueuesGrant
from meshagent_core.jsondepth import BoundedDecoder
from meshagent_core.toolkits.queues import (
    CloseInput,
    DrainInput,
    ListInput,
    ListOutput,
    OpenInput,
    QueueInfo,
    ReceiveInput,
    SendInput,
)

from ..sqlite_store import SqliteStore, room_store
from ..toolkit import Toolkit, ToolCall, invalid_request, permission_denied

if TYPE_CHECKING:
    import sqlite3

    from ..rooms.room import Room

log = logging.getLogger("meshagent_trio.server")

toolkit = Toolkit("queues")

#: Seconds a waiting `receive` is held before it is answered `empty`.
RECEIVE_TIMEOUT = 30.0
#: Largest message, in bytes of compact JSON.
MAX_MESSAGE_BYTES = 1024 * 1024
#: Most bytes of messages one queue may hold.
MAX_QUEUE_BYTES = 256 * 1024 * 1024
MAX_NAME_LENGTH = 256

_encode = msgspec.json.Encoder().encode
_decode = BoundedDecoder().decode

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, closed INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS queue_messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, body BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS queue_messages_by_queue ON queue_messages (queue, seq)",
)


# --- state -----------------------------------------------------------------------------------


@dataclass(eq=False)
class _Waiter:
    """A `receive` waiting for a message; `event` is set to make it look again."""

    event: trio.Event = field(default_factory=trio.Event)


@dataclass(eq=False)
class _Queue:
    name: str
    closed: bool = False
    messages: deque[tuple[int, bytes]] = field(default_factory=deque)  # (seq, JSON body), oldest first
    size_bytes: int = 0
    waiters: list[_Waiter] = field(default_factory=list)  # oldest first
    woken: set[_Waiter] = field(default_factory=set)  # woken for a message, not yet looking

    def append(self, seq: int, body: bytes) -> None:
        self.messages.append((seq, body))
        self.size_bytes += len(body)
        self.wake()

    def wake(self) -> None:
        """Wake one waiting receiver per message nobody was woken for yet, newest first."""
        while self.waiters and len(self.woken) < len(self.messages):
            waiter = self.waiters.pop()
            self.woken.add(waiter)
            waiter.event.set()

    def clear(self) -> None:
        self.messages.clear()
        self.size_bytes = 0


class Queues:
    """The queues of one room. Tests may change the limits and the timeout of a room's
    instance (`queues_state(room)`)."""

    def __init__(self, room: "Room") -> None:
        self.store: SqliteStore = room_store(room)
        self.receive_timeout: float = RECEIVE_TIMEOUT
        self.max_message_bytes: int = MAX_MESSAGE_BYTES
        self.max_queue_bytes: int = MAX_QUEUE_BYTES
        self.queues: dict[str, _Queue] = {}
        #: Held by every change that is written to the database and then applied in memory, so
        #: both happen in the same order (the removal of handed-out messages needs no order).
        self.lock = trio.Lock()
        self._loaded = False
        self._load_lock = trio.Lock()

    async def ready(self) -> "Queues":
        """Load the room's queues from its database, once."""
        if not self._loaded:
            async with self._load_lock:
                if not self._loaded:
                    with trio.CancelScope(shield=True):
                        queues, messages = await self.store.run(_load)
                    for name, closed in queues:
                        self.queues[name] = _Queue(name, closed=bool(closed))
                    for seq, name, body in messages:
                        queue = self.queues.setdefault(name, _Queue(name))
                        queue.messages.append((seq, bytes(body)))
                        queue.size_bytes += len(body)
                    self._loaded = True
        return self

    async def create(self, name: str) -> _Queue:
        """The queue, created (open, persisted) if it does not exist."""
        async with self.lock:
            queue = self.queues.get(name)
            if queue is None:
                with trio.CancelScope(shield=True):
                    await self.store.run(lambda db: _set_closed(db, name, False, create_only=True))
                    queue = self.queues[name] = _Queue(name)
            return queue

    async def forget(self, seq: int) -> None:
        """Delete a handed-out message from the database (cannot be cancelled)."""
        with trio.CancelScope(shield=True):
            try:
                await self.store.run(lambda db: db.execute("DELETE FROM queue_messages WHERE seq = ?", (seq,)))
            except Exception:
                log.exception("could not delete queue message %s (it will be delivered again after a restart)", seq)


def queues_state(room: "Room") -> Queues:
    """The room's `Queues` (made on first use; loaded by `await ….ready()`)."""
    return room.toolkit_state("queues", Queues)


# --- database work (worker thread) ------------------------------------------------------------


def _load(db: "sqlite3.Connection") -> tuple[list[Any], list[Any]]:
    for statement in _SCHEMA:
        db.execute(statement)
    queues = db.execute("SELECT name, closed FROM queues").fetchall()
    messages = db.execute("SELECT seq, queue, body FROM queue_messages ORDER BY seq").fetchall()
    return queues, messages


def _set_closed(db: "sqlite3.Connection", name: str, closed: bool, *, create_only: bool = False) -> None:
    if create_only:
        db.execute("INSERT OR IGNORE INTO queues (name, closed) VALUES (?, 0)", (name,))
    else:
        db.execute(
            "INSERT INTO queues (name, closed) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET closed = excluded.closed",
            (name, int(closed)),
        )


def _insert(db: "sqlite3.Connection", name: str, body: bytes, new_queue: bool) -> int:
    if new_queue:
        _set_closed(db, name, False, create_only=True)
    seq = db.execute("INSERT INTO queue_messages (queue, body) VALUES (?, ?)", (name, body)).lastrowid
    assert seq is not None
    return seq


# --- checks ------------------------------------------------------------------------------------


def _grant(call: ToolCall) -> QueuesGrant:
    grant = call.scope.queues if call.scope is not None else None
    if grant is None:
        raise permission_denied("the token does not grant the queues API")
    return grant


def _check_name(name: str) -> str:
    if not name or len(name) > MAX_NAME_LENGTH:
        raise invalid_request(f"a queue name is 1 to {MAX_NAME_LENGTH} characters")
    return name


def _may_manage(call: ToolCall, name: str) -> None:
    grant = _grant(call)
    if not (grant.can_send(name) or grant.can_receive(name)):
        raise permission_denied(f"the token does not allow sending to or receiving from queue {name!r}")


def _not_found(name: str) -> RoomException:
    return RoomException(f"queue {name} does not exist", code=ErrorCode.QUEUE_NOT_FOUND)


def _closed(name: str) -> RoomException:
    return RoomException(f"queue {name} is closed", code=ErrorCode.INVALID_STATE)


def _answerable(call: ToolCall) -> bool:
    """Whether answering `call` now reaches a caller that is still waiting for it."""
    caller = call.caller
    return (
        not call.finished
        and caller.connected
        and call.request_id in caller.session.open_requests
        and trio.current_effective_deadline() != -math.inf  # this task is not being cancelled
    )


async def _state(call: ToolCall) -> Queues:
    return await queues_state(call.room).ready()


# --- tools ---------------------------------------------------------------------------------------


@toolkit.tool("list")
async def list_queues(call: ToolCall) -> JsonContent:
    if not _grant(call).list:
        raise permission_denied("the token does not allow listing queues")
    if not isinstance(call.arguments, EmptyContent):  # the official client sends `{}`
        call.json_arguments(ListInput)
    state = await _state(call)
    output = ListOutput(queues=[QueueInfo(name=q.name, size=len(q.messages)) for q in sorted(state.queues.values(), key=lambda q: q.name)])
    return JsonContent(json=msgspec.to_builtins(output))


@toolkit.tool("open")
async def open_queue(call: ToolCall) -> None:
    _grant(call)
    name = _check_name(call.json_arguments(OpenInput).name)
    _may_manage(call, name)
    state = await _state(call)
    async with state.lock:
        queue = state.queues.get(name)
        if queue is not None and not queue.closed:
            return
        with trio.CancelScope(shield=True):
            await state.store.run(lambda db: _set_closed(db, name, False))
            if queue is None:
                queue = state.queues[name] = _Queue(name)
            queue.closed = False
            queue.wake()


class QueueRefused(Exception):
    """Why `enqueue` did not queue a message; `kind` is `too_large`, `missing`, `closed` or `full`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


async def enqueue(room: "Room", name: str, body: bytes, *, create: bool = True) -> int:
    """Queue the JSON message `body` in the room's queue `name` (made when missing if `create`),
    as participants' `send` does: receivers waiting are woken, and once this returns the message
    is committed. Its sequence number; `QueueRefused` saying why not."""
    state = await queues_state(room).ready()
    if len(body) > state.max_message_bytes:
        raise QueueRefused("too_large", f"the message is {len(body)} bytes of JSON, more than the limit of {state.max_message_bytes}")
    async with state.lock:
        queue = state.queues.get(name)
        if queue is None and not create:
            raise QueueRefused("missing", f"queue {name} does not exist")
        if queue is not None:
            if queue.closed:
                raise QueueRefused("closed", f"queue {name} is closed")
            if queue.size_bytes + len(body) > state.max_queue_bytes:
                raise QueueRefused("full", f"queue {name} is full ({queue.size_bytes} bytes of messages, limit {state.max_queue_bytes})")
        new_queue = queue is None
        with trio.CancelScope(shield=True):  # committed ⇒ published, even if the sender leaves
            seq = await state.store.run(lambda db: _insert(db, name, body, new_queue))
            if queue is None:
                queue = state.queues[name] = _Queue(name)
            queue.append(seq, body)
        return seq


@toolkit.tool("send")
async def send(call: ToolCall) -> None:
    _grant(call)
    args = call.json_arguments(SendInput)
    name = _check_name(args.name)
    if not _grant(call).can_send(name):
        raise permission_denied(f"the token does not allow sending to queue {name!r}")
    try:
        await enqueue(call.room, name, _encode(args.message), create=args.create)
    except QueueRefused as refused:
        if refused.kind == "too_large":
            raise invalid_request(str(refused)) from None
        if refused.kind == "missing":
            raise _not_found(name) from None
        if refused.kind == "closed":
            raise _closed(name) from None
        raise RoomException(str(refused), code=ErrorCode.OPERATION_FAILED) from None


@toolkit.tool("receive")
async def receive(call: ToolCall) -> None:
    _grant(call)
    args = call.json_arguments(ReceiveInput)
    name = _check_name(args.name)
    if not _grant(call).can_receive(name):
        raise permission_denied(f"the token does not allow receiving from queue {name!r}")
    state = await _state(call)
    queue = state.queues.get(name)
    if queue is None:
        if not args.create:
            raise _not_found(name)
        queue = await state.create(name)
    deadline = trio.current_time() + state.receive_timeout
    while True:
        if queue.closed:
            raise _closed(name)
        if queue.messages:
            if not _answerable(call):
                queue.wake()  # let another receiver have it
                await trio.lowlevel.checkpoint()  # a cancelled task stops here
                return
            seq, body = queue.messages.popleft()
            queue.size_bytes -= len(body)
            call._finish(JsonContent(json=_decode(body)))  # handed out: answered right now
            await state.forget(seq)
            return
        if not args.wait:
            return
        waiter = _Waiter()
        queue.waiters.append(waiter)
        try:
            with trio.move_on_at(deadline):
                await waiter.event.wait()
        except BaseException:
            _unwait(queue, waiter)
            queue.wake()  # a message it was woken for goes to another receiver
            raise
        _unwait(queue, waiter)
        if not waiter.event.is_set():
            return  # timed out: `empty`


def _unwait(queue: _Queue, waiter: _Waiter) -> None:
    if waiter in queue.waiters:
        queue.waiters.remove(waiter)
    queue.woken.discard(waiter)


@toolkit.tool("drain")
async def drain(call: ToolCall) -> None:
    _grant(call)
    name = _check_name(call.json_arguments(DrainInput).name)
    _may_manage(call, name)
    state = await _state(call)
    async with state.lock:
        queue = state.queues.get(name)
        if queue is None:
            raise _not_found(name)
        with trio.CancelScope(shield=True):
            await state.store.run(lambda db: db.execute("DELETE FROM queue_messages WHERE queue = ?", (name,)))
            queue.clear()


@toolkit.tool("close")
async def close(call: ToolCall) -> None:
    _grant(call)
    name = _check_name(call.json_arguments(CloseInput).name)
    _may_manage(call, name)
    state = await _state(call)
    async with state.lock:
        queue = state.queues.get(name)
        if queue is None:
            raise _not_found(name)
        if queue.closed:
            return
        with trio.CancelScope(shield=True):
            await state.store.run(lambda db: _set_closed(db, name, True))
            queue.closed = True
            for waiter in queue.waiters:  # they look again, see the queue closed and fail
                waiter.event.set()
            queue.waiters.clear()
            queue.woken.clear()


__all__ = ["MAX_MESSAGE_BYTES", "MAX_NAME_LENGTH", "MAX_QUEUE_BYTES", "QueueRefused", "Queues", "RECEIVE_TIMEOUT", "enqueue", "queues_state", "toolkit"]
