"""`room.messaging`: presence, direct and broadcast messages, and messaging streams
(protocol/room-apis.md §3, attributes protocol/wire.md §6.8), as the official 0.56 `MessagingClient`.

Same method names and keyword arguments as the official client; the wire shapes are the
`meshagent_core.toolkits.messaging` contract. Differences, all deliberate:

* `enable()` and `disable()` are awaited: they send the official `enable` / `disable` calls,
  wait for the answer (an error — e.g. no `messaging` grant — is raised, not only logged), and
  `enable()` also waits until the server's `messaging.enabled` participant list has arrived, so
  `remote_participants` is populated and `online` is true when it returns.
* Callbacks are replaced by async iterators, each seeing what happens from the moment it is
  created until the room closes or it is closed (`aclose()`, or `async with`):
  `messages()` for the official `"message"` event, `presence_events()` for
  `"participant_added"`, `"participant_removed"`, `"participant_attributes_updated"`,
  `"messaging_enabled"`, `"online"` and `"offline"`, and `stream_requests()` for
  `"stream_requested"`. `on(...)` raises `NotImplementedError` saying so.
* A stream request that arrives while no `stream_requests()` iterator is open is rejected at
  once ("the participant is not accepting messaging streams") instead of being left pending,
  which would block the initiator forever.
* `send_message(to=...)` also takes a participant id (a string). `send_message_nowait` is not
  offered: await `send_message` (concurrent sends still go out in call order).
* A `messaging.enabled` list that arrives after `disable()` is ignored (`disable()` has
  already told the server); the official client sends a second `disable` instead.
* A `dismiss` message is surfaced by `messages()` and then closes the room client for good
  (no reconnect), as the official client does.
* After a reconnect, messaging is enabled again if it was (a room reconnect hook); the lost
  connection's presence is cleared at once (`participant_removed` for each, then `offline`) and
  its streams end with `MessagingStreamClientDisconnected`. The iterators go on across
  reconnects and end only when the room closes for good. Calls made while the room is
  reconnecting raise `ConnectionLost`, as every room request does.

Written once for every event loop: only `self.room` and `self.room.backend` are awaited.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from ..content import CONTROL_OPEN, ControlContent, ErrorContent, JsonContent
from ..errors import ConnectionLost, ErrorCode, RoomException
from ..session import events as ev
from ..toolkits.messaging import (
    DISMISS,
    MESSAGING_ENABLED,
    NOT_FOUND_MESSAGE,
    PARTICIPANT_ATTRIBUTES,
    PARTICIPANT_DISABLED,
    PARTICIPANT_ENABLED,
    TOOLKIT,
    BroadcastInput,
    EnableInput,
    MessagingEnabled,
    MessagingFormatError,
    ParticipantAttributes,
    ParticipantDisabled,
    PresenceParticipant,
    SendInput,
    StreamAccepted,
    StreamInput,
    StreamOutput,
    StreamRequest,
    StreamStart,
    decode_attachment,
    decode_message,
    encode_attachment,
    encode_message,
)
from .feeds import Feed
from .messaging_streams import (
    ACCEPTED,
    AWAITING_INITIAL,
    IncomingCall,
    IncomingMessagingStreamRequest,
    MESSAGING_ENABLED_EVENT,
    MessagingStream,
    MessagingStreamClientDisconnected,
    MessagingStreamClosed,
    MessagingStreamEvent,
    OFFLINE,
    ONLINE,
    PARTICIPANT_ADDED,
    PARTICIPANT_ATTRIBUTES_UPDATED,
    PARTICIPANT_REMOVED,
    PENDING,
    PresenceEvent,
    RoomMessage,
    TERMINAL,
)
from .participants import Disconnected, Participant, RemoteParticipant, RoomClosed, SubClient

if TYPE_CHECKING:
    from .connection import RoomConnection
    from .room import RoomClient

log = logging.getLogger("meshagent_core.client.messaging")

T = TypeVar("T")

# --- iterators --------------------------------------------------------------------------------


class _Feed(Feed[T]):
    """A feed of the messaging client, from its creation until the room closes or `aclose()`."""

    def __init__(self, client: "MessagingClient", feeds: set["_Feed[T]"], kinds: frozenset[str] = frozenset()) -> None:
        super().__init__(client.room.backend, feeds, ended=client._ended)
        self._kinds = kinds


class MessageFeed(_Feed[RoomMessage]):
    """`room.messaging.messages()`: the messages sent to this participant (directly or by
    broadcast), presence messages excluded."""


class PresenceFeed(_Feed[PresenceEvent]):
    """`room.messaging.presence_events()`: presence changes as `PresenceEvent`s."""


class StreamRequestFeed(_Feed["IncomingMessagingStreamRequest"]):
    """`room.messaging.stream_requests()`: messaging streams other participants open to this
    one, as `IncomingMessagingStreamRequest`s to `accept()` or `reject()`."""


# --- the client -----------------------------------------------------------------------------------


class MessagingClient(SubClient):
    """`room.messaging`: who else is here (once enabled), messages to one participant or to all,
    and two-way messaging streams.

    Failures raise `RoomException` with the server's code: 1001 not permitted (the token's
    `messaging` grant and its `send` / `broadcast` flags), 1002 invalid input, 1003 the
    recipient is not here or has not enabled messaging.
    """

    def __init__(self, room: RoomClient) -> None:
        super().__init__(room)
        self._participants: dict[str, RemoteParticipant] = {}
        self._desired_enabled = False
        self._online = False
        self._tracked: RoomConnection | None = None  # the connection the state above belongs to
        self._watched: Any = None  # the room task group whose lifetime the watcher follows
        self._ended = False
        self._changed: Any = None  # an Event replaced at every state change (lazily created)
        self._message_feeds: set[_Feed[RoomMessage]] = set()
        self._presence_feeds: set[_Feed[PresenceEvent]] = set()
        self._request_feeds: set[_Feed[IncomingMessagingStreamRequest]] = set()
        self._incoming_calls: dict[str, IncomingCall] = {}
        self._streams: set[MessagingStream] = set()
        room._on(ev.MessageReceived, self._guarded(self._on_message))
        room._on(ev.ToolCallReceived, self._guarded(self._on_tool_call))
        room._on(ev.ToolCallInputChunk, self._guarded(self._on_input_chunk))
        room._on(ev.ToolCallInputClosed, self._guarded(self._on_input_closed))
        room._on(ev.ToolCallCancelled, self._guarded(self._on_call_cancelled))
        room.on_reconnect(self._on_reconnect)

    # --- state ----------------------------------------------------------------------------

    @property
    def remote_participants(self) -> list[RemoteParticipant]:
        """The other participants with messaging enabled (known once `enable()` returned)."""
        return list(self._participants.values())

    @property
    def is_enabled(self) -> bool:
        """Whether this participant wants messaging enabled (`enable()` was called last)."""
        return self._desired_enabled

    @property
    def online(self) -> bool:
        """Whether messaging is enabled on the server and the participant list has arrived."""
        return self._online

    def get_participants(self) -> list[RemoteParticipant]:
        return list(self._participants.values())

    def get_participant(self, id: str) -> RemoteParticipant | None:
        return self._participants.get(id)

    def get_participant_by_name(self, name: str) -> RemoteParticipant | None:
        for participant in self._participants.values():
            if participant.get_attribute("name") == name:
                return participant
        return None

    # --- enable / disable ---------------------------------------------------------------

    async def enable(self) -> None:
        """Enable messaging: this participant becomes visible to the others, receives
        messages, and learns who else is here. Returns once the server's participant list has
        arrived (`online` is then true and `remote_participants` populated). Raises
        `RoomException` if the server refuses (1001 without the `messaging` grant)."""
        self._attach()
        was_enabled, self._desired_enabled = self._desired_enabled, True
        if self._online:
            return
        try:
            await self.room.invoke(TOOLKIT, "enable", msgspec.to_builtins(EnableInput()))
        except BaseException:
            self._desired_enabled = was_enabled
            raise
        await self._wait_until_online(enabling=True)

    async def disable(self) -> None:
        """Disable messaging: the others are told this participant left; the participant list
        is cleared and `online` becomes false."""
        self._desired_enabled = False
        self._clear_presence()
        connection = self.room.connection
        if connection is not None and not connection.closed:
            await self.room.invoke(TOOLKIT, "disable", msgspec.to_builtins(EnableInput()))

    # --- messages ---------------------------------------------------------------------------

    async def send_message(
        self,
        *,
        to: Participant | str,
        type: str,
        message: dict[str, Any],
        attachment: bytes | None = None,
    ) -> None:
        """Send `message` (a JSON object) of `type`, with optional `attachment` bytes, to one
        participant: a `RemoteParticipant` from this client, or a participant id.

        A `RemoteParticipant` that is no longer online fails locally with 1003 (NOT_FOUND)
        without sending. If the server answers 1003 (not here, or messaging not enabled), the
        participant is marked offline and removed from `remote_participants`. While messaging is
        being enabled, the send waits until this participant is online."""
        self._attach()
        if self._desired_enabled and not self._online:
            await self._wait_until_online(enabling=False)
        target_id = self._resolve_recipient(to)
        request = SendInput(
            to_participant_id=target_id,
            type=type,
            message_json=encode_message(message),
            attachment_base64=encode_attachment(attachment),
        )
        try:
            await self.room.invoke(TOOLKIT, "send", msgspec.to_builtins(request))
        except RoomException as error:
            if error.code == ErrorCode.NOT_FOUND and not isinstance(error, ConnectionLost):
                self._mark_offline(to)
            raise

    async def broadcast_message(self, *, type: str, message: dict[str, Any], attachment: bytes | None = None) -> None:
        """Send `message` to every other participant with messaging enabled (not to this one).
        While messaging is being enabled, waits until this participant is online."""
        self._attach()
        if self._desired_enabled and not self._online:
            await self._wait_until_online(enabling=False)
        request = BroadcastInput(type=type, message_json=encode_message(message), attachment_base64=encode_attachment(attachment))
        await self.room.invoke(TOOLKIT, "broadcast", msgspec.to_builtins(request))

    # --- iterators --------------------------------------------------------------------------

    def messages(self) -> MessageFeed:
        """The messages other participants send to this one (`RoomMessage`: sender id, `type`,
        `message`, `attachment` bytes), from now until the room closes:
        `async with room.messaging.messages() as messages: async for message in messages:`.
        Presence messages are not included (see `presence_events()`); `dismiss` is. This
        replaces the official `room.messaging.on("message", ...)`."""
        self._attach()
        return MessageFeed(self, self._message_feeds)

    def presence_events(self, *types: str) -> PresenceFeed:
        """Presence changes (`PresenceEvent`) from now until the room closes, optionally only
        those of `types` (`"participant_added"`, `"participant_removed"`,
        `"participant_attributes_updated"`, `"messaging_enabled"`, `"online"`, `"offline"`).
        This replaces the official `room.messaging.on("participant_added", ...)` etc."""
        self._attach()
        return PresenceFeed(self, self._presence_feeds, frozenset(types))

    def stream_requests(self) -> StreamRequestFeed:
        """Messaging streams other participants open to this one, from now until the room
        closes; `accept()` or `reject()` each. While none of these iterators is open, incoming
        streams are rejected. This replaces the official `on("stream_requested", ...)`."""
        self._attach()
        return StreamRequestFeed(self, self._request_feeds)

    def on(self, event_name: str, func: Any) -> None:
        """Not supported: callbacks are replaced by async iterators."""
        raise NotImplementedError(
            f"room.messaging.on({event_name!r}, ...) callbacks are not supported: iterate "
            "`room.messaging.messages()`, `presence_events()` or `stream_requests()` instead"
        )

    # --- streams ----------------------------------------------------------------------------

    async def stream(
        self,
        *,
        to: Participant | str,
        type: str,
        message: dict[str, Any],
        attachment: bytes | None = None,
    ) -> MessagingStream:
        """Open a messaging stream to `to` whose first message is `message`; returns once the
        other participant accepted. Raises `RoomException` when it rejects (with its message),
        1003 when it is not here or has not enabled messaging, 1100 for a malformed answer.
        Close the stream when done (`async with await room.messaging.stream(...) as s:`)."""
        self._attach()
        to_id = to.id if isinstance(to, Participant) else to
        start = StreamStart(
            to_participant_id=to_id,
            type=type,
            message_json=encode_message(message),
            attachment_base64=encode_attachment(attachment),
        )
        context = self.room.stream_call(TOOLKIT, "stream", input_stream=True)
        call = await context.__aenter__()
        try:
            call.send(JsonContent(json=msgspec.to_builtins(start)))
            response = await call.response()
            if not (isinstance(response, ControlContent) and response.is_open):
                raise RoomException("unexpected return type from messaging.stream", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE)
            first = await call.next_chunk()
            accepted = _accepted(first)
        except BaseException:
            await context.__aexit__(None, None, None)
            raise
        stream = MessagingStream(
            client=self,
            stream_id=accepted.stream_id,
            remote_participant_id=to_id,
            call=call,
            call_exit=context.__aexit__,
        )
        self._streams.add(stream)
        self.room.start_soon(stream._read_output)
        return stream

    def _accept_stream_request(self, request: IncomingMessagingStreamRequest) -> MessagingStream:
        call = request._call
        if request.closed:
            raise RoomException(request.close_message or "the messaging stream is closed", code=ErrorCode.INVALID_STATE)
        if call.state is not PENDING or self._incoming_calls.get(request.stream_id) is not call:
            raise RoomException("the messaging stream request is no longer pending", code=ErrorCode.INVALID_STATE)
        connection = self.room._connection_or_raise()
        stream = MessagingStream(
            client=self, stream_id=request.stream_id, remote_participant_id=request.from_participant_id, incoming=call
        )
        connection.respond_to_tool_call(call.call_id, CONTROL_OPEN)
        call.state = ACCEPTED
        call.stream = stream
        self._streams.add(stream)
        request._accepted = True
        return stream

    def _reject_stream_request(self, request: IncomingMessagingStreamRequest, *, message: str | None) -> None:
        call = request._call
        if call.state is not PENDING or self._incoming_calls.get(request.stream_id) is not call:
            raise RoomException("the messaging stream request is no longer pending", code=ErrorCode.INVALID_STATE)
        self.room._connection_or_raise()
        self._fail_call(call, message or "messaging stream rejected")
        request._mark_closed(reason="rejected", message=message)

    # --- bookkeeping ----------------------------------------------------------------------

    def _attach(self) -> None:
        """Make sure a task owned by the room follows its lifetime: a lost connection ends what
        belonged to it (presence, incoming streams); the room closing for good also ends the
        iterators. Raises `ConnectionLost` if the room is not entered."""
        group = getattr(self.room, "_task_group", None)
        if group is None or self.room.closed:
            raise ConnectionLost("the room client is not connected", code=1006)
        if self._watched is group:
            self._track()
            return
        self._watched = group
        self._changed = self.room.backend.Event()
        if getattr(self.room, "_terminal", None) is not None:
            self._ended = True  # the room has already closed for good
            return
        self._ended = False
        self.room.start_soon(self._watch, group, self.room.subscribe(Disconnected, RoomClosed))
        self._track()

    async def _watch(self, group: Any, subscription: Any) -> None:
        try:
            async for event in subscription:
                if isinstance(event, RoomClosed):
                    break
                self._track()  # Disconnected: forget the old connection's state (if not done yet)
        finally:
            subscription.close()
            if self._watched is group:
                self._room_ended()

    def _track(self) -> None:
        """Forget what belonged to a connection that has ended, and follow the current one.
        Called before anything reads or changes the state (event handlers run in order, and the
        room runs reconnect hooks before the new connection's events)."""
        current = self.room.connection
        tracked = self._tracked
        if tracked is not None and (tracked is not current or tracked.closed):
            self._tracked = None
            self._connection_lost()
        if self._tracked is None and current is not None and not current.closed:
            self._tracked = current

    def _connection_lost(self) -> None:
        self._clear_presence()
        for call in list(self._incoming_calls.values()):
            self._end_incoming_call(call, "room connection closed")
        for stream in list(self._streams):
            stream._push(MessagingStreamClientDisconnected(stream_id=stream.stream_id, participant_id=stream.remote_participant_id))
            stream._finish()
        self._notify()

    def _room_ended(self) -> None:
        self._ended = True
        self._tracked = None
        self._connection_lost()
        for feeds in (self._message_feeds, self._presence_feeds, self._request_feeds):
            for feed in list(feeds):
                feed._end()  # type: ignore[attr-defined]

    async def _on_reconnect(self) -> None:
        """After a reconnect (before the new connection's events): enable messaging again if it
        was wanted; the new participant list then arrives as on the first enable."""
        self._track()
        if self._desired_enabled:
            await self.room.invoke(TOOLKIT, "enable", msgspec.to_builtins(EnableInput()))

    def _notify(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = self.room.backend.Event()
            changed.set()

    async def _wait_until_online(self, *, enabling: bool) -> None:
        while not self._online:
            self._track()
            if self._ended or self.room.connection is None or self.room.connection.closed:
                raise ConnectionLost("the room connection closed before messaging was enabled", code=1006)
            if not self._desired_enabled:
                if enabling:
                    raise RoomException("messaging was disabled while it was being enabled", code=ErrorCode.INVALID_STATE)
                return
            assert self._changed is not None
            await self._changed.wait()

    def _set_online(self, online: bool) -> None:
        if self._online != online:
            self._online = online
            self._emit(PresenceEvent(ONLINE if online else OFFLINE))
            self._notify()

    def _clear_presence(self) -> None:
        for participant_id in list(self._participants):
            self._remove_participant(participant_id)
        self._set_online(False)

    def _emit(self, event: PresenceEvent) -> None:
        for feed in list(self._presence_feeds):
            if not feed._kinds or event.type in feed._kinds:
                feed._push(event)

    def _remove_participant(self, participant_id: str) -> None:
        participant = self._participants.pop(participant_id, None)
        if participant is not None:
            participant.online = False
            self._emit(PresenceEvent(PARTICIPANT_REMOVED, participant))

    def _resolve_recipient(self, to: Participant | str) -> str:
        if isinstance(to, RemoteParticipant):
            if to.online is False or to.id not in self._participants:
                raise RoomException(NOT_FOUND_MESSAGE, code=ErrorCode.NOT_FOUND)
            return to.id
        if isinstance(to, Participant):
            return to.id
        if isinstance(to, str):
            return to
        raise TypeError(f"send_message(to=...) takes a Participant or a participant id, not {to!r}")

    def _mark_offline(self, to: Participant | str) -> None:
        participant_id = to.id if isinstance(to, Participant) else to
        if isinstance(to, RemoteParticipant):
            to.online = False
        self._remove_participant(participant_id)

    def _guarded(self, handler: Any) -> Any:
        def run(event: Any) -> None:
            try:
                self._track()
                handler(event)
            except Exception:  # bookkeeping never takes the room's event fan-out down
                log.exception("room.messaging could not handle %r", event)

        return run

    # --- presence and messages (the `messaging.send` event) -----------------------------------

    def _on_message(self, event: ev.MessageReceived) -> None:
        type = event.type
        if type in (MESSAGING_ENABLED, PARTICIPANT_ENABLED, PARTICIPANT_DISABLED, PARTICIPANT_ATTRIBUTES):
            if self._tracked is None:
                return  # a late presence event of a connection that has ended: it is stale
        if type == MESSAGING_ENABLED:
            self._on_messaging_enabled(event)
        elif type == PARTICIPANT_ENABLED:
            if self._online:
                data = msgspec.convert(event.message, type=PresenceParticipant)
                participant = _remote(data)
                self._participants[data.id] = participant
                self._emit(PresenceEvent(PARTICIPANT_ADDED, participant))
        elif type == PARTICIPANT_DISABLED:
            if self._online:
                self._remove_participant(msgspec.convert(event.message, type=ParticipantDisabled).id)
        elif type == PARTICIPANT_ATTRIBUTES:
            if self._online:
                changed = msgspec.convert(event.message, type=ParticipantAttributes).attributes
                known = self._participants.get(event.from_participant_id)
                if known is not None:
                    known._attributes.update(changed)
                    self._emit(PresenceEvent(PARTICIPANT_ATTRIBUTES_UPDATED, known))
        else:
            message = RoomMessage(
                from_participant_id=event.from_participant_id,
                type=type,
                message=event.message,
                attachment=event.attachment,
            )
            for feed in list(self._message_feeds):
                feed._push(message)
            if type == DISMISS:
                self._dismiss()

    def _on_messaging_enabled(self, event: ev.MessageReceived) -> None:
        if not self._desired_enabled:
            return  # disable() has told the server already (or messaging was enabled without us)
        enabled = msgspec.convert(event.message, type=MessagingEnabled)
        local_id = self.room.local_participant.id
        # The list replaces the old one (as the official client, without per-participant events).
        self._participants = {data.id: _remote(data) for data in enabled.participants if data.id != local_id}
        self._set_online(True)
        self._emit(PresenceEvent(MESSAGING_ENABLED_EVENT))
        self._notify()

    def _dismiss(self) -> None:
        self.room._dismiss()

    # --- the recipient's side of messaging streams --------------------------------------------

    def _respond(self, call_id: int, content: Any) -> None:
        connection = self.room.connection
        if connection is not None and not connection.closed:
            connection.respond_to_tool_call(call_id, content)

    def _on_tool_call(self, event: ev.ToolCallReceived) -> None:
        if event.toolkit != TOOLKIT:
            return  # another toolkit's call: not ours to answer
        if event.name != "stream":
            self._respond(event.call_id, ErrorContent(text=f"messaging has no tool named {event.name!r}", code=ErrorCode.NOT_FOUND))
            return
        if not (isinstance(event.arguments, ControlContent) and event.arguments.is_open):
            self._respond(event.call_id, ErrorContent(text="messaging.stream request must start with an open control chunk"))
            return
        existing = self._incoming_calls.get(event.tool_call_id)
        if existing is not None and existing.state is not TERMINAL:
            self._respond(event.call_id, ErrorContent(text="messaging stream tool_call_id is already active"))
            return
        self._incoming_calls[event.tool_call_id] = IncomingCall(event.call_id, event.tool_call_id, event.caller_id)

    def _on_input_chunk(self, event: ev.ToolCallInputChunk) -> None:
        if event.toolkit != TOOLKIT:
            return
        call = self._incoming_calls.get(event.tool_call_id)
        if call is None or call.state is TERMINAL:
            return
        chunk = event.chunk
        if not isinstance(chunk, JsonContent) or not isinstance(chunk.json, dict):
            self._fail_call(call, "messaging.stream requires JSON object chunks")
            return
        if call.state is AWAITING_INITIAL:
            try:
                first = msgspec.convert(chunk.json, type=StreamRequest)
                message = decode_message(first.message_json)
                attachment = decode_attachment(first.attachment_base64) if first.attachment_base64 else None
            except (msgspec.ValidationError, MessagingFormatError) as error:
                self._fail_call(call, f"invalid initial messaging stream chunk: {error}")
                return
            if not self._request_feeds:
                self._fail_call(call, "the participant is not accepting messaging streams")
                return
            request = IncomingMessagingStreamRequest(
                client=self,
                call=call,
                stream_id=call.tool_call_id,
                from_participant_id=first.from_participant_id,
                type=first.type,
                message=message,
                attachment=attachment,
            )
            call.state = PENDING
            call.request = request
            for feed in list(self._request_feeds):
                feed._push(request)
            return
        if call.state is PENDING:
            self._fail_call(call, "messaging stream received a message before acceptance")
            return
        try:
            data = msgspec.convert(chunk.json, type=StreamInput)
            message = decode_message(data.message_json)
            attachment = decode_attachment(data.attachment_base64) if data.attachment_base64 else None
        except (msgspec.ValidationError, MessagingFormatError) as error:
            self._fail_call(call, f"invalid messaging stream chunk: {error}")
            return
        assert call.stream is not None
        call.stream._push(RoomMessage(from_participant_id=call.caller_id, type=data.type, message=message, attachment=attachment))

    def _on_input_closed(self, event: ev.ToolCallInputClosed) -> None:
        if event.toolkit != TOOLKIT:
            return
        call = self._incoming_calls.get(event.tool_call_id)
        if call is None or call.state is TERMINAL:
            return
        if call.state is ACCEPTED:
            # As the official recipient: the stream ends here, no close is sent back.
            self._end_incoming_call(call, "the initiating client closed the messaging stream")
        else:
            self._fail_call(call, "messaging stream closed before acceptance", reason="client_disconnected")

    def _on_call_cancelled(self, event: ev.ToolCallCancelled) -> None:
        call = self._incoming_calls.get(event.tool_call_id)
        if call is not None and call.call_id == event.call_id:
            self._end_incoming_call(call, "room connection closed")

    def _end_incoming_call(self, call: IncomingCall, message: str) -> None:
        """The call is over without anything more to send: tell its request or stream."""
        prior, call.state = call.state, TERMINAL
        self._incoming_calls.pop(call.tool_call_id, None)
        if call.request is not None and prior is not ACCEPTED:
            call.request._mark_closed(reason="client_disconnected", message=message)
        if call.stream is not None:
            call.stream._push(MessagingStreamClientDisconnected(stream_id=call.tool_call_id, participant_id=call.caller_id))
            call.stream._finish()

    def _fail_call(self, call: IncomingCall, message: str, *, reason: str = "protocol_error") -> None:
        """End a call on a protocol error (or a rejection): an `error` answer before
        acceptance; after it, an `error` chunk and a `control/close` 1007."""
        prior, call.state = call.state, TERMINAL
        self._incoming_calls.pop(call.tool_call_id, None)
        if call.request is not None and prior is not ACCEPTED:
            call.request._mark_closed(reason=reason, message=message)
        connection = self.room.connection
        if connection is None or connection.closed:
            return
        if prior is ACCEPTED:
            if call.stream is not None:
                call.stream._push(MessagingStreamClosed(stream_id=call.tool_call_id, reason=reason, message=message))
                call.stream._finish()
            connection.send_tool_call_chunk(call.call_id, ErrorContent(text=message))
            connection.send_tool_call_chunk(call.call_id, ControlContent(method="close", status_code=1007, message=message))
        else:
            connection.respond_to_tool_call(call.call_id, ErrorContent(text=message))


def _remote(data: PresenceParticipant) -> RemoteParticipant:
    return RemoteParticipant(id=data.id, role=data.role, attributes=data.attributes, online=True)


def _accepted(chunk: Any) -> StreamAccepted:
    """The first chunk of an accepted `messaging.stream` (code 1100 otherwise)."""
    if isinstance(chunk, JsonContent) and isinstance(chunk.json, dict):
        try:
            output = msgspec.convert(chunk.json, type=StreamOutput)
        except msgspec.ValidationError:
            output = None
        if isinstance(output, StreamAccepted):
            return output
    raise RoomException("messaging.stream did not acknowledge acceptance", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE)


__all__ = [
    "IncomingMessagingStreamRequest",
    "MessageFeed",
    "MessagingClient",
    "MessagingStream",
    "MessagingStreamClientDisconnected",
    "MessagingStreamClosed",
    "MessagingStreamEvent",
    "PresenceEvent",
    "PresenceFeed",
    "RoomMessage",
    "StreamRequestFeed",
]
