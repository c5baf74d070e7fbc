"""A participant: one connection to a room, its output queue and the calls routed to it."""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import msgspec
import trio

from meshagent_core import Content, ControlContent, ErrorCode, RoomException, ServerSession
from meshagent_core.client.websocket import WebSocketClosed, WebSocketConnection
from meshagent_core.session import events as ev
from meshagent_core.tokens import ApiScope, ParticipantToken

if TYPE_CHECKING:
    from ..toolkit import ToolCall
    from .room import Room

log = logging.getLogger("meshagent_trio.server")

#: Events a routed call may have queued for its caller before it is failed.
ROUTED_EVENT_BUFFER = 1024

HostEvent = ev.HostResponse | ev.HostChunk | ev.HostStreamClosed | ev.HostCallFailed


class Participant:
    """One connection to a room."""

    def __init__(self, room: "Room", token: ParticipantToken, session: ServerSession) -> None:
        self.room = room
        self.id = str(uuid.uuid4())
        self.token = token
        self.name = token.name
        self.role = token.role
        self.scope: ApiScope | None = token.get_api_grant()
        self.attributes: dict[str, Any] = {"name": token.name}
        self.session = session
        self.messaging_enabled = False
        self.nursery: trio.Nursery | None = None
        self.connected = True
        self.calls: dict[str, ToolCall] = {}  # built-in calls with an input stream, by tool_call_id
        self.active_calls = 0
        self.queued_calls = 0
        self._call_finished = trio.Event()
        self._starts_send, self._starts = trio.open_memory_channel[tuple[Callable[..., Awaitable[None]], tuple[Any, ...]]](math.inf)
        self.hosted_calls: dict[int, RoutedCall] = {}  # calls routed to this participant, by call id
        self.outgoing_calls: dict[str, RoutedCall] = {}  # this participant's calls into hosts
        self._wakeup = trio.Event()
        self._sent = trio.Event()
        self.in_flight = 0  # packets the writer task is writing
        #: The writer task holds packets it has not handed to the socket yet: whatever is
        #: queued after them must wait for it (never sent between its slices).
        self.writer_busy = False
        #: Set when the backlog goes over the high-water mark (the watchdog's cue).
        self.output_stalled = trio.Event()
        #: (code, reason) of a close the server decided (an eviction, a failure), else None.
        self.close: tuple[int, str] | None = None
        self.websocket: WebSocketConnection | None = None
        self._holding_kicks = False  # inside a batch of the reader task (see `_send_held`)
        self._kicked = False

    def __repr__(self) -> str:
        return f"<Participant {self.name} {self.id}>"

    def presence(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "attributes": dict(self.attributes)}

    # --- output (all no-ops once the connection is gone) ----------------------------------
    #
    # Everything queued for this participant waits in its session until the writer task takes
    # it. `backlog` counts those packets plus the ones the writer is sending. The participant's
    # own answers and streams are paced by `writable()` (its reader also stops reading past
    # the high-water mark); what other participants cause (`send_event`: messages, presence,
    # file events, logs) is queued without waiting, and a participant that lets that pile up
    # is evicted: at once past the hard limit, or when its writer makes no progress for
    # `slow_reader_timeout` while over the high-water mark (see `connection.watch_output`).

    @property
    def backlog(self) -> int:
        """Outgoing packets queued or being written."""
        return self.session.queued_packets + self.in_flight

    def respond(self, request_id: int, content: Content) -> None:
        if self.connected and self.session.is_open_request(request_id):
            backed_up = self.backlog > self.room.config.output_high_water
            self.session.respond(request_id, content)
            self._kick()
            if backed_up:
                # Answers piling up behind unread ones (a client that pipelines and does not
                # read). One large answer into a short queue is fine.
                self._check_fan_out(self.room.config.answer_hard_limit)

    def send_response_chunk(self, tool_call_id: str, chunk: Content | dict[str, Any]) -> None:
        if self.connected:
            self.session.send_response_chunk(tool_call_id, chunk)
            self._kick()

    def send_event(self, type: str, header: dict[str, Any] | msgspec.Struct, payload: bytes = b"") -> None:
        """Fan-out to this participant: never waits; evicts a participant that cannot keep up."""
        if not self.connected:
            return
        self.session.send_event(type, header, payload)
        self._kick()
        self._check_fan_out()

    def send_fan_out_chunk(self, tool_call_id: str, chunk: Content | dict[str, Any]) -> None:
        """A chunk of one of this participant's streams that another participant caused (a
        developer log entry): never waits, like `send_event`."""
        if not self.connected:
            return
        self.session.send_response_chunk(tool_call_id, chunk)
        self._kick()
        self._check_fan_out()

    def _check_fan_out(self, hard_limit: int | None = None) -> None:
        backlog = self.backlog
        config = self.room.config
        if backlog > config.output_high_water:
            limit = config.output_hard_limit if hard_limit is None else hard_limit
            if backlog > limit:
                self.evict(1008, f"could not keep up: more than {limit} packets were waiting to be sent to this participant")
            else:
                self.output_stalled.set()

    async def writable(self) -> None:
        """Wait while this participant's outgoing queue is over the high-water mark."""
        high_water = self.room.config.output_high_water
        while self.connected and self.backlog > high_water:
            self.output_stalled.set()
            await self._sent.wait()

    async def sent(self) -> None:
        """Wait for the writer's next completed write (or the end of the connection)."""
        await self._sent.wait()

    def note_sent(self) -> None:
        """The writer finished a write: wake whoever waits for room in the queue."""
        sent, self._sent = self._sent, trio.Event()
        sent.set()

    def evict(self, code: int, reason: str) -> None:
        """Disconnect this participant now (it keeps nothing queued): the connection loop
        leaves the room and closes the socket with `code` and `reason`."""
        if self.close is not None or not self.connected:
            return
        log.warning("evicting %r from room %s: %s", self, self.room.name, reason)
        self.close = (code, reason)
        self.connected = False
        self.session.discard_queued()
        self.note_sent()
        if self.nursery is not None:
            self.nursery.cancel_scope.cancel()

    def _kick(self) -> None:
        if self._holding_kicks:
            self._kicked = True
        else:
            self._wakeup.set()

    def _hold_kicks(self) -> None:
        """The reader task starts on a batch of this participant's packets: what it queues for
        this participant waits for `_send_held` (kicks from other tasks wake the writer as
        usual)."""
        self._holding_kicks = True

    def _send_held(self) -> None:
        """End of the reader's batch: what it queued goes out from the reader itself when the
        socket takes it at once (for a small call, the answer then leaves without a switch to
        the writer task); otherwise the writer sends it. While the writer has work pending,
        everything is left to it, in order."""
        self._holding_kicks = False
        if not self._kicked and not self.session.has_packets_to_send:
            # Nothing queued by a handler; answers the session queued by itself (errors for
            # undecodable requests, input-chunk acknowledgements) still leave at once.
            return
        self._kicked = False
        ws = self.websocket
        if ws is not None and ws.can_send_nowait and not self._wakeup.is_set() and not self.writer_busy:
            try:
                packets = self.session.packets_to_send()
                if packets:
                    ws.queue_packets(packets)
                if ws.send_queued_nowait():
                    if self._sent.statistics().tasks_waiting:
                        self.note_sent()
                    return
            except WebSocketClosed:
                pass  # the writer meets the same end and stops
        self._wakeup.set()

    # --- calls ----------------------------------------------------------------------------

    def start_call(self, function: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run `function(*args)` as a task of this connection. Calls start in arrival order: each
        runs up to its first checkpoint before the next starts, so pipelined calls take effect
        in the order they were sent. At most `max_pending_calls` run at once; later ones wait."""
        if self.queued_calls >= self.room.config.max_queued_calls:
            raise RoomException(
                f"too many calls in progress on this connection (limit {self.room.config.max_queued_calls})",
                code=ErrorCode.OPERATION_FAILED,
            )
        self.queued_calls += 1
        self._starts_send.send_nowait((function, args))

    async def _starter(self, nursery: trio.Nursery) -> None:
        limit = self.room.config.max_pending_calls
        async for function, args in self._starts:
            while self.active_calls >= limit:
                await self._call_finished.wait()
            self.queued_calls -= 1
            self.active_calls += 1
            await nursery.start(self._run_started, function, args)

    async def _run_started(
        self, function: Callable[..., Awaitable[None]], args: tuple[Any, ...], task_status: trio.TaskStatus[None]
    ) -> None:
        task_status.started()
        try:
            await function(*args)
        finally:
            self.active_calls -= 1
            finished, self._call_finished = self._call_finished, trio.Event()
            finished.set()

    # --- routed calls into this participant's toolkits ------------------------------------

    def open_routed_call(
        self,
        toolkit: str,
        name: str,
        arguments: Content,
        *,
        caller_id: str,
        tool_call_id: str,
        on_behalf_of_id: str | None = None,
    ) -> "RoutedCall":
        if not self.connected:
            raise RoomException(f"participant {self.id} has left the room", code=ErrorCode.NOT_FOUND)
        call_id = self.session.send_tool_call(
            toolkit, name, arguments, caller_id=caller_id, tool_call_id=tool_call_id, on_behalf_of_id=on_behalf_of_id
        )
        # Unbounded, so a failure can always be queued; deliver() caps it at ROUTED_EVENT_BUFFER.
        send, receive = trio.open_memory_channel[HostEvent](math.inf)
        routed = RoutedCall(self, toolkit, call_id, tool_call_id, send, receive)
        routed.input_open = isinstance(arguments, ControlContent) and arguments.is_open
        self.hosted_calls[call_id] = routed
        self._kick()
        return routed


@dataclass(eq=False)
class RoutedCall:
    """A call the server routed to a hosting participant; its answers arrive on `events`."""

    host: Participant
    toolkit: str
    call_id: int
    tool_call_id: str
    _send: trio.MemorySendChannel[HostEvent] = field(repr=False)
    events: trio.MemoryReceiveChannel[HostEvent] = field(repr=False)
    done: bool = False
    #: The caller streams its input and has not closed it yet.
    input_open: bool = False

    def send_input(self, chunk: Content) -> None:
        """Forward one of the caller's input chunks to the host (the caller's connection stops
        reading while the host's output is over the high-water mark; see `rooms.connection`)."""
        if isinstance(chunk, ControlContent) and chunk.is_close:
            self.input_open = False
        if self.host.connected and not self.done:
            self.host.session.send_tool_call_input(self.toolkit, self.tool_call_id, chunk)
            self.host._kick()
            self.host._check_fan_out()

    def deliver(self, event: HostEvent) -> None:
        if self.done:
            return
        if self._send.statistics().current_buffer_used >= ROUTED_EVENT_BUFFER:
            self.host.session.cancel_routed_call(self.call_id)
            event = ev.HostCallFailed(
                self.call_id,
                self.tool_call_id,
                RoomException("the toolkit host sent output faster than the caller read it", code=ErrorCode.OPERATION_FAILED),
            )
        if isinstance(event, (ev.HostStreamClosed, ev.HostCallFailed)) or (
            isinstance(event, ev.HostResponse) and not (isinstance(event.content, ControlContent) and event.content.is_open)
        ):
            self._end()
        self._send.send_nowait(event)
        if self.done:
            self._send.close()

    def cancel(self) -> None:
        """The caller went away: forget the call on the host side. An input stream the caller
        left open is closed for the host (status 1001), so a tool reading it does not wait for
        input that cannot come."""
        if not self.done:
            if self.input_open and self.host.connected:
                self.send_input(ControlContent(method="close", status_code=1001, message="the caller left"))
            self._end()
            self.host.session.cancel_routed_call(self.call_id)
            self._send.close()

    def _end(self) -> None:
        self.done = True
        self.host.hosted_calls.pop(self.call_id, None)


__all__ = ["HostEvent", "Participant", "RoutedCall"]
