"""Rooms, participants and the per-connection loop of the local server.

Each connection runs in one nursery: a reader task feeds packets to the participant's
`ServerSession` and dispatches its events; a writer task sends everything the session queued in
one socket write; tool handlers and relays run as further tasks of the same nursery, so nothing
outlives the connection.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import msgspec
import trio

from meshagent_core import (
    Content,
    ControlContent,
    ErrorCode,
    ErrorContent,
    FramingError,
    MessageTooLarge,
    RoomException,
    ServerSession,
)
from meshagent_core.session import events as ev
from meshagent_core.tokens import ApiScope, ParticipantToken

from ..websocket import WebSocketClosed, WebSocketConnection
from .toolkit import INPUT_HIGH_WATER, ToolCall

if TYPE_CHECKING:
    from .app import ServerConfig

log = logging.getLogger("meshagent_trio.server")

#: Packets a participant may have queued before senders wait for its socket.
HIGH_WATER_PACKETS = 4096
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
        self.websocket: WebSocketConnection | None = None
        self._holding_kicks = False  # inside a batch of the reader task (see `_send_held`)
        self._kicked = False

    def __repr__(self) -> str:
        return f"<Participant {self.name} {self.id}>"

    def presence(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "attributes": dict(self.attributes)}

    # --- output (all no-ops once the connection is gone) ----------------------------------

    def respond(self, request_id: int, content: Content) -> None:
        if self.connected and self.session.is_open_request(request_id):
            self.session.respond(request_id, content)
            self._kick()

    def send_response_chunk(self, tool_call_id: str, chunk: Content | dict[str, Any]) -> None:
        if self.connected:
            self.session.send_response_chunk(tool_call_id, chunk)
            self._kick()

    def send_event(self, type: str, header: dict[str, Any] | msgspec.Struct, payload: bytes = b"") -> None:
        if self.connected:
            self.session.send_event(type, header, payload)
            self._kick()

    async def writable(self) -> None:
        """Wait while this participant's outgoing queue is over the high-water mark."""
        while self.connected and len(self.session._writer) > HIGH_WATER_PACKETS:
            await self._sent.wait()

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
        if not self._kicked:
            return
        self._kicked = False
        ws = self.websocket
        if ws is not None and ws.can_send_nowait and not self._wakeup.is_set():
            try:
                packets = self.session.packets_to_send()
                if packets:
                    ws.queue_packets(packets)
                if ws.send_queued_nowait():
                    if self._sent.statistics().tasks_waiting:
                        sent, self._sent = self._sent, trio.Event()
                        sent.set()
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

    def send_input(self, chunk: Content) -> None:
        """Forward one of the caller's input chunks to the host."""
        if self.host.connected and not self.done:
            self.host.session.send_tool_call_input(self.toolkit, self.tool_call_id, chunk)
            self.host._kick()

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
        """The caller went away: forget the call on the host side."""
        if not self.done:
            self._end()
            self.host.session.cancel_routed_call(self.call_id)
            self._send.close()

    def _end(self) -> None:
        self.done = True
        self.host.hosted_calls.pop(self.call_id, None)


@dataclass
class HostedToolkit:
    """A toolkit registered by a participant (`room.register_toolkit`)."""

    id: str
    name: str
    host: Participant
    title: str | None
    description: str | None
    tools: dict[str, Any]
    public: bool
    annotations: dict[str, str]

    def describe(self) -> dict[str, Any]:
        return {
            "title": self.title or self.name,
            "description": self.description or "",
            "participant_id": self.host.id,
            "annotations": self.annotations,
            "tools": self.tools,
        }


class Room:
    """A room: its participants, hosted toolkits and per-toolkit state."""

    def __init__(self, name: str, data_dir: Path, config: "ServerConfig") -> None:
        self.name = name
        self.data_dir = data_dir
        self.config = config
        self.participants: dict[str, Participant] = {}
        self.hosted_toolkits: dict[str, HostedToolkit] = {}  # by registration id
        self.state: dict[str, Any] = {}  # per-toolkit state, keyed by toolkit name
        data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def storage_dir(self) -> Path:
        path = self.data_dir / "storage"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def toolkit_state(self, name: str, factory: Callable[["Room"], Any]) -> Any:
        """Per-room state of a toolkit, made on first use."""
        if name not in self.state:
            self.state[name] = factory(self)
        return self.state[name]

    def broadcast(
        self,
        type: str,
        header: dict[str, Any] | msgspec.Struct,
        payload: bytes = b"",
        *,
        exclude: Participant | None = None,
        messaging_only: bool = False,
    ) -> None:
        """Send an event to every participant (or every messaging-enabled one)."""
        for participant in list(self.participants.values()):
            if participant is exclude or (messaging_only and not participant.messaging_enabled):
                continue
            participant.send_event(type, header, payload)

    def find_toolkit(self, name: str, participant_id: str | None = None) -> HostedToolkit | None:
        for toolkit in self.hosted_toolkits.values():
            if toolkit.name == name and (participant_id is None or toolkit.host.id == participant_id):
                return toolkit
        return None


# --- the connection loop ---------------------------------------------------------------------


async def serve_participant(room: Room, token: ParticipantToken, ws: WebSocketConnection, room_url: str) -> None:
    from .dispatch import dispatch, participant_left

    config = room.config
    session = ServerSession(max_message_size=config.max_message_size)
    participant = Participant(room, token, session)
    participant.websocket = ws
    room.participants[participant.id] = participant
    session.send_room_ready(room.name, room_url, str(uuid.uuid4()))
    session.send_connected(participant.id, participant.attributes)
    close_code, close_reason = 1000, ""

    def leave(reason: str) -> None:
        # Synchronous, with no checkpoint since the end was seen: nobody can route a call to a
        # participant that has gone, and everything it had pending fails right away.
        if not participant.connected:
            return
        participant.connected = False
        session.connection_closed(reason)
        for event in session.events_received():
            dispatch(participant, event)
        participant_left(participant)
        room.participants.pop(participant.id, None)

    try:
        async with trio.open_nursery() as nursery:
            participant.nursery = nursery
            nursery.start_soon(_writer, participant, ws)
            nursery.start_soon(participant._starter, nursery)
            participant._kick()
            try:
                while True:
                    packets = await ws.receive_packets()
                    participant._hold_kicks()
                    try:
                        try:
                            session.receive_packets(packets)
                        except FramingError as error:
                            for event in session.events_received():
                                dispatch(participant, event)
                            log.warning("closing %r: %s", participant, error)
                            close_code = 1009 if isinstance(error, MessageTooLarge) else 1002
                            close_reason = str(error)[:120]
                            leave(f"protocol error: {error}")
                            break
                        for event in session.events_received():
                            dispatch(participant, event)
                    finally:
                        participant._send_held()
                    if participant.calls:
                        await _until_inputs_drain(participant)
            except WebSocketClosed as closed:
                leave(str(closed))
            finally:
                leave("participant left")
                nursery.cancel_scope.cancel()
    finally:
        leave("participant left")
        with trio.CancelScope(shield=True):
            await _close(ws, close_code, close_reason)


async def _until_inputs_drain(participant: Participant) -> None:
    """Stop reading while a tool has more streamed input queued than it has read (TCP then
    slows the sender down), instead of buffering without bound or failing the call."""
    for call in list(participant.calls.values()):
        if call.input_backlog >= INPUT_HIGH_WATER:
            await call.wait_input_drained()


async def _writer(participant: Participant, ws: WebSocketConnection) -> None:
    session = participant.session
    while True:
        await participant._wakeup.wait()
        participant._wakeup = trio.Event()
        packets = session.packets_to_send()
        if packets:
            try:
                await ws.send_packets(packets)
            except WebSocketClosed:
                return
        sent, participant._sent = participant._sent, trio.Event()
        sent.set()


async def _close(ws: WebSocketConnection, code: int, reason: str) -> None:
    # Also when the peer closed first: close() then sends the reply to its close frame, which
    # the peer waits for.
    with trio.move_on_after(2):
        try:
            await ws.close(code, reason)
        except (WebSocketClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def error_content(error: RoomException) -> ErrorContent:
    return ErrorContent(text=error.message, code=error.code)


__all__ = ["HostedToolkit", "Participant", "Room", "RoutedCall", "error_content", "serve_participant"]
