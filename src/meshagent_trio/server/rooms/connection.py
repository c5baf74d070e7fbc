"""The per-connection loop of the local server.

Each connection runs in one nursery: a reader (this task) feeds packets to the participant's
`ServerSession` and dispatches its events; a writer task sends everything the session queued;
a watchdog evicts the participant when its output stops moving; tool handlers and relays run as
further tasks of the same nursery, so nothing outlives the connection.

Containment: whatever goes wrong while serving one connection (a request that cannot be
decoded, a bug in a handler) ends at most that connection, with an error answer where the
request can be answered, else close 1011; it is logged with the room and the participant.
"""

from __future__ import annotations

import logging
import uuid

import trio

from meshagent_core import FramingError, MessageTooLarge, ServerSession
from meshagent_core.tokens import ParticipantToken

from ...websocket import WebSocketClosed, WebSocketConnection
from ..dispatch import dispatch, participant_left
from ..toolkit import INPUT_HIGH_WATER, is_bug
from .participant import Participant
from .room import Room

log = logging.getLogger("meshagent_trio.server")

#: Packets the writer hands the socket in one write: a bound on what is in flight, and a
#: progress mark for the slow-reader watchdog.
WRITE_SLICE = 256


async def serve_participant(room: Room, token: ParticipantToken, ws: WebSocketConnection, room_url: str) -> None:
    config = room.config
    session = ServerSession(max_message_size=config.max_message_size)
    participant = Participant(room, token, session)
    participant.websocket = ws
    room.participants[participant.id] = participant
    session.send_room_ready(room.name, room_url, str(uuid.uuid4()))
    session.send_connected(participant.id, participant.attributes)
    left = False

    def leave(reason: str) -> None:
        # Synchronous, with no checkpoint since the end was seen: nobody can route a call to a
        # participant that has gone, and everything it had pending fails right away.
        nonlocal left
        if left:
            return
        left = True
        participant.connected = False
        try:
            session.connection_closed(reason)
            for event in session.events_received():
                dispatch(participant, event)
            participant_left(participant)
        finally:
            room.participants.pop(participant.id, None)  # even after a bug above: no ghost

    try:
        async with trio.open_nursery() as nursery:
            participant.nursery = nursery
            nursery.start_soon(_writer, participant, ws)
            nursery.start_soon(_watch_output, participant)
            nursery.start_soon(participant._starter, nursery)
            participant._kick()
            try:
                await _read(participant, ws)
            except WebSocketClosed as closed:
                leave(str(closed))
            finally:
                leave(participant.close[1] if participant.close else "participant left")
                nursery.cancel_scope.cancel()
    except BaseException as error:  # a bug: this connection ends, nothing else does
        if not is_bug(error):
            raise
        log.exception("closing %r of room %s after an internal error", participant, room.name)
        participant.close = participant.close or (1011, f"internal error: {type(error).__name__}")
    finally:
        leave("participant left")
        code, reason = participant.close or (1000, "")
        with trio.CancelScope(shield=True):
            await _close(ws, code, reason)


async def _read(participant: Participant, ws: WebSocketConnection) -> None:
    session = participant.session
    high_water = participant.room.config.output_high_water
    while True:
        packets = await ws.receive_packets()
        participant._hold_kicks()
        try:
            try:
                session.receive_packets(packets)
            except FramingError as error:
                for event in session.events_received():
                    dispatch(participant, event)
                log.warning("closing %r of room %s: %s", participant, participant.room.name, error)
                participant.close = (1009 if isinstance(error, MessageTooLarge) else 1002, str(error)[:120])
                return
            for event in session.events_received():
                dispatch(participant, event)
        finally:
            participant._send_held()
        if participant.calls:
            await _until_inputs_drain(participant)
        if participant.outgoing_calls:
            await _until_hosts_drain(participant, high_water)
        if participant.backlog > high_water:
            # Its answers are not being read: stop reading its requests until they are.
            await participant.writable()


async def _until_inputs_drain(participant: Participant) -> None:
    """Stop reading while a tool has more streamed input queued than it has read (TCP then
    slows the sender down), instead of buffering without bound or failing the call."""
    for call in list(participant.calls.values()):
        if call.input_backlog >= INPUT_HIGH_WATER:
            await call.wait_input_drained()


async def _until_hosts_drain(participant: Participant, high_water: int) -> None:
    """Stop reading while a participant that hosts one of its calls has more than the
    high-water mark queued (its input chunks were forwarded faster than the host reads): the
    caller is slowed down, and a host that stops reading is evicted by its own watchdog."""
    for routed in list(participant.outgoing_calls.values()):
        if routed.host.backlog > high_water:
            await routed.host.writable()


async def _writer(participant: Participant, ws: WebSocketConnection) -> None:
    session = participant.session
    while True:
        await participant._wakeup.wait()
        participant._wakeup = trio.Event()
        packets = session.packets_to_send()
        participant.in_flight = len(packets)
        participant.writer_busy = True
        try:
            # Also with no packets: what `_send_held` queued on the socket may still be there.
            for start in range(0, max(len(packets), 1), WRITE_SLICE):
                await ws.send_packets(packets[start : start + WRITE_SLICE])
                participant.in_flight = max(0, len(packets) - start - WRITE_SLICE)
                participant.note_sent()
        except WebSocketClosed:
            return
        finally:
            participant.in_flight = 0
            participant.writer_busy = False


async def _watch_output(participant: Participant) -> None:
    """Evict the participant when its output stays over the high-water mark with no write
    completing for `slow_reader_timeout` seconds: it stopped reading (or reads too slowly for
    what the room sends it), and holding more for it would hold memory without bound."""
    config = participant.room.config
    while True:
        await participant.output_stalled.wait()
        participant.output_stalled = trio.Event()
        while participant.backlog > config.output_high_water:
            with trio.move_on_after(config.slow_reader_timeout) as waited:
                await participant.sent()
            if waited.cancelled_caught and participant.backlog > config.output_high_water:
                participant.evict(
                    1008,
                    f"could not keep up: nothing it was sent could be written for {config.slow_reader_timeout:g}s",
                )
                return


async def _close(ws: WebSocketConnection, code: int, reason: str) -> None:
    # Also when the peer closed first: close() then sends the reply to its close frame, which
    # the peer waits for.
    with trio.move_on_after(2):
        try:
            await ws.close(code, reason)
        except (WebSocketClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    if not ws.closed:
        try:
            await ws.abort()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


__all__ = ["serve_participant"]
