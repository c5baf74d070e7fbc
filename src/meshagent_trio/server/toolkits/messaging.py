"""The `messaging` toolkit: presence, direct and broadcast messages, streams (protocol/room-apis.md §3).

Every delivery is a `messaging.send` event `{from_participant_id, type, message}` whose payload
is the raw attachment (requests carry it as base64; deliveries carry the decoded bytes).

Behaviour the protocol leaves open (the official client only assumes it; protocol/room-apis.md §3 records each choice), as chosen here:

* Grant: every tool needs the `messaging` grant (1001 otherwise); `send` and `stream` need its
  `send` flag, `broadcast` its `broadcast` flag.
* `enable` answers `empty` first, then sends the enabler `messaging.enabled` with
  `from_participant_id` = the enabler's own id and the other enabled participants
  `[{id, role, attributes}]`, then tells every other enabled participant `participant.enabled`.
  Enabling again while enabled only re-sends the list.
* The `list` flag governs *seeing* presence: a participant without it gets
  `messaging.enabled` with an empty list (it still needs the event to go online) and gets no
  `participant.enabled` / `.disabled` / `.attributes` events. It is still listed to others and
  can still receive messages.
* `disable`, and the end of an enabled participant's connection, tell the other enabled
  participants `participant.disabled {id}`. `set_attributes` of an enabled participant sends them
  `participant.attributes` with the changed keys only.
* Presence events go only to messaging-enabled participants.
* `send` delivers only to a present, messaging-enabled participant (1003 "the participant was not
  found" otherwise); sending to oneself is allowed. The sender need not be enabled itself. A
  `dismiss` reaches any present participant, enabled or not: it is how an agent called into the
  room is sent away (protocol/webhooks.md §4), and a hosted agent need not enable messaging.
* `broadcast` reaches every *other* enabled participant: the sender does not get its own, as with
  every presence event.
* `send` / `broadcast` may not use the presence types (`messaging.enabled`, `participant.*`): the
  official client would take them as presence updates, so they are refused with 1002. `dismiss`
  is allowed. (Stream messages may use any type: they never become `messaging.send` events.)
* `message_json` that is not JSON or not an object, and `attachment_base64` that is not valid
  base64, are refused with 1002 and nothing is delivered.
* A sender waits while a recipient's outgoing queue is over the high-water mark (flow control).

`stream` (protocol/room-apis.md §3.5): the initiator's call is routed to the recipient as a call of a hosted toolkit
named `messaging` (tool `stream`, same `tool_call_id`), the first forwarded chunk carrying
`from_participant_id`. The recipient's `control/open` answer makes the server open the
initiator's stream with `{"kind":"accepted","stream_id": <tool_call_id>}`; then the recipient's
chunks are relayed unchanged, and the initiator's input chunks forwarded unchanged. Endings:

* recipient rejects (an `error` answer): the initiator's call fails with that error (its code,
  possibly none); recipient leaves before answering: 1003;
* recipient closes (`control/close` 1000): the initiator's stream closes;
* recipient sends an `error` chunk or closes abnormally: the initiator gets
  `{"kind":"closed","reason":"error","message":…}`, then the close;
* recipient leaves after accepting: `{"kind":"closed","reason":"client_disconnected",
  "message":…}`, then the close (the terminal `closed` kind, rather than the non-terminal
  `client_disconnected`, so the official client ends the stream after one event);
* initiator closes its input: the close is forwarded to the recipient and, once accepted, the
  initiator's stream closes too (the official initiator's `close()` ends both directions; the
  official recipient does not answer a close); before acceptance the server keeps waiting for
  the recipient's answer (the official one answers an error);
* initiator leaves: a close is forwarded to the recipient.
The recipient must be present and messaging-enabled (1003); streaming to oneself is refused with
1002 (the official client keys both ends of a stream by the same id).
"""

from __future__ import annotations

from typing import Any

import msgspec
import trio

from meshagent_core import (
    CONTROL_OPEN,
    ConnectionLost,
    ControlContent,
    ErrorCode,
    ErrorContent,
    JsonContent,
    RoomException,
)
from meshagent_core.jsondepth import MAX_RELAYED_DEPTH
from meshagent_core import messages as m
from meshagent_core.session import events as ev
from meshagent_core.toolkits import messaging as contract
from meshagent_core.toolkits.messaging import (
    BroadcastInput,
    MessagingEnabled,
    MessagingFormatError,
    ParticipantAttributes,
    ParticipantDisabled,
    PresenceParticipant,
    SendInput,
    StreamAccepted,
    StreamClosed,
    StreamRequest,
    StreamStart,
)
from meshagent_core.tokens.grants import MessagingGrant

from ..hooks import ATTRIBUTE_HOOKS, LEAVE_HOOKS
from ..rooms.participant import Participant, RoutedCall
from ..rooms.room import Room
from ..toolkit import Toolkit, ToolCall, invalid_request, permission_denied

toolkit = Toolkit(contract.TOOLKIT)

_to_builtins = msgspec.to_builtins


# --- helpers ---------------------------------------------------------------------------------


def _grant(call: ToolCall) -> MessagingGrant:
    grant = call.scope.messaging if call.scope is not None else None
    if grant is None:
        raise permission_denied("the token does not grant the messaging API")
    return grant


def _sees_presence(participant: Participant) -> bool:
    scope = participant.scope
    return scope is not None and scope.messaging is not None and bool(scope.messaging.list)


def _presence(participant: Participant) -> PresenceParticipant:
    return PresenceParticipant(id=participant.id, role=participant.role, attributes=dict(participant.attributes))


def _deliver(target: Participant, sender_id: str, type: str, message: Any, attachment: bytes = b"") -> None:
    header = m.MessagingSend(from_participant_id=sender_id, type=type, message=message)
    target.send_event(m.MESSAGING_SEND, header, attachment)


def _tell_watchers(room: Room, about: Participant, type: str, message: Any) -> None:
    """A presence event to every other enabled participant allowed to see presence."""
    for participant in list(room.participants.values()):
        if participant is about or not participant.messaging_enabled or not participant.connected:
            continue
        if _sees_presence(participant):
            _deliver(participant, about.id, type, message)


def _find_enabled(room: Room, participant_id: str, *, dismiss: bool = False) -> Participant:
    target = room.participants.get(participant_id)
    if target is None or not target.connected or not (target.messaging_enabled or dismiss):
        raise RoomException(contract.NOT_FOUND_MESSAGE, code=ErrorCode.NOT_FOUND)
    return target


def _decode_payload(
    type: str, message_json: str, attachment_base64: str | None, *, event: bool = True
) -> tuple[dict[str, Any], bytes]:
    """The message object and attachment bytes (1002 if either is malformed). For an `event`
    (delivered as `messaging.send`) the presence types are refused as well."""
    if event and type in contract.PRESENCE_TYPES:
        raise invalid_request(f"the message type {type!r} is reserved for presence events")
    try:
        return contract.decode_message(message_json, MAX_RELAYED_DEPTH), contract.decode_attachment(attachment_base64)
    except MessagingFormatError as error:
        raise invalid_request(str(error)) from None


# --- presence --------------------------------------------------------------------------------


@toolkit.tool("enable")
async def enable(call: ToolCall) -> None:
    _grant(call)
    caller, room = call.caller, call.room
    # protocol/room-apis.md §3.3: the answer comes before `messaging.enabled`, so answer now (run_tool_call
    # then finds the call answered and sends nothing more).
    call.answer()
    others: list[PresenceParticipant] = []
    if _sees_presence(caller):
        others = [
            _presence(participant)
            for participant in room.participants.values()
            if participant is not caller and participant.messaging_enabled and participant.connected
        ]
    _deliver(caller, caller.id, contract.MESSAGING_ENABLED, _to_builtins(MessagingEnabled(participants=others)))
    if not caller.messaging_enabled:
        caller.messaging_enabled = True
        _tell_watchers(room, caller, contract.PARTICIPANT_ENABLED, _to_builtins(_presence(caller)))


def _disable(participant: Participant) -> None:
    if participant.messaging_enabled:
        participant.messaging_enabled = False
        _tell_watchers(participant.room, participant, contract.PARTICIPANT_DISABLED, _to_builtins(ParticipantDisabled(id=participant.id)))


@toolkit.tool("disable")
async def disable(call: ToolCall) -> None:
    _grant(call)
    _disable(call.caller)


def _attributes_changed(participant: Participant, changed: dict[str, Any]) -> None:
    if participant.messaging_enabled and changed:
        _tell_watchers(
            participant.room, participant, contract.PARTICIPANT_ATTRIBUTES, _to_builtins(ParticipantAttributes(attributes=changed))
        )


ATTRIBUTE_HOOKS.append(_attributes_changed)
LEAVE_HOOKS.append(_disable)


# --- messages --------------------------------------------------------------------------------


@toolkit.tool("send")
async def send(call: ToolCall) -> None:
    if not _grant(call).send:
        raise permission_denied("the token does not allow sending messages")
    request = call.json_arguments(SendInput)
    message, attachment = _decode_payload(request.type, request.message_json, request.attachment_base64)
    target = _find_enabled(call.room, request.to_participant_id, dismiss=request.type == contract.DISMISS)
    _deliver(target, call.caller.id, request.type, message, attachment)  # never waits on the target


@toolkit.tool("broadcast")
async def broadcast(call: ToolCall) -> None:
    if not _grant(call).broadcast:
        raise permission_denied("the token does not allow broadcasting messages")
    request = call.json_arguments(BroadcastInput)
    message, attachment = _decode_payload(request.type, request.message_json, request.attachment_base64)
    caller = call.caller
    targets = [
        participant
        for participant in call.room.participants.values()
        if participant is not caller and participant.messaging_enabled and participant.connected
    ]
    for target in targets:  # never waits on a recipient (see Participant.send_event)
        _deliver(target, caller.id, request.type, message, attachment)


# --- streams ---------------------------------------------------------------------------------


class _StreamState:
    def __init__(self) -> None:
        self.accepted = False
        self.input_closed = False
        self.close_forwarded = False
        self.host_finished = False


@toolkit.tool("stream")
async def stream(call: ToolCall) -> None:
    if not _grant(call).send:
        raise permission_denied("the token does not allow sending messages")
    first = await call.next_input()
    if first is None:
        raise invalid_request("messaging.stream needs a first chunk naming the recipient")
    if not isinstance(first, JsonContent):
        raise invalid_request("the first messaging.stream chunk must be json")
    try:
        start = msgspec.convert(first.json, type=StreamStart)
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid first messaging.stream chunk: {error}") from None
    _decode_payload(start.type, start.message_json, start.attachment_base64, event=False)
    caller = call.caller
    if start.to_participant_id == caller.id:
        raise invalid_request("a participant cannot open a messaging stream to itself")
    target = _find_enabled(call.room, start.to_participant_id)
    routed = target.open_routed_call(
        contract.TOOLKIT,
        "stream",
        CONTROL_OPEN,
        caller_id=caller.id,
        tool_call_id=call.tool_call_id,
        on_behalf_of_id=call.on_behalf_of_id,
    )
    state = _StreamState()
    try:
        request = StreamRequest(
            from_participant_id=caller.id,
            to_participant_id=start.to_participant_id,
            type=start.type,
            message_json=start.message_json,
            attachment_base64=start.attachment_base64,
        )
        routed.send_input(JsonContent(json=_to_builtins(request)))
        failure: RoomException | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_forward_input, call, routed, state, nursery.cancel_scope)
            try:
                await _relay_output(call, routed, state)
            except RoomException as error:
                failure = error  # raised outside the nursery, so the caller gets it unwrapped
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure
    finally:
        if not routed.done:
            if not state.close_forwarded and not state.host_finished:
                # The initiator left (or the relay failed): the recipient's stream is over.
                routed.send_input(ControlContent(method="close", status_code=1000))
            routed.cancel()


async def _forward_input(call: ToolCall, routed: RoutedCall, state: _StreamState, scope: trio.CancelScope) -> None:
    """The initiator's input chunks to the recipient, then its close."""
    close = ControlContent(method="close", status_code=1000)
    try:
        async for chunk in call.input():
            routed.send_input(chunk)
            await routed.host.writable()
    except RoomException as error:
        status = error.status_code if error.status_code >= 1000 else 1011
        close = ControlContent(method="close", status_code=status, message=error.message)
    state.input_closed = True
    if not routed.done:
        routed.send_input(close)
    state.close_forwarded = True
    if state.accepted:
        scope.cancel()


async def _relay_output(call: ToolCall, routed: RoutedCall, state: _StreamState) -> None:
    """The recipient's answer and chunks to the initiator; returns when the stream is over."""
    async for event in routed.events:
        if isinstance(event, ev.HostResponse):
            content = event.content
            if isinstance(content, ControlContent) and content.is_open:
                await call.open_stream()
                state.accepted = True
                await call.send(JsonContent(json=_to_builtins(StreamAccepted(stream_id=call.tool_call_id))))
                if state.input_closed:
                    return
            elif isinstance(content, ErrorContent):
                raise RoomException(content.text, code=content.code)
            else:
                raise RoomException(
                    "the recipient answered the messaging stream with neither an acceptance nor an error",
                    code=ErrorCode.OPERATION_FAILED,
                )
        elif isinstance(event, ev.HostChunk):
            if not state.accepted:
                continue  # not possible with a well-behaved recipient: nothing to relay it on
            chunk = event.chunk
            if isinstance(chunk, ErrorContent):
                state.host_finished = True
                await _send_closed(call, "error", chunk.text)
                return
            await call.send(chunk)
        elif isinstance(event, ev.HostStreamClosed):
            if event.status_code != 1000:
                await _send_closed(call, "error", event.message or "the recipient closed the messaging stream abnormally")
            return
        elif isinstance(event, ev.HostCallFailed):
            left = isinstance(event.error, ConnectionLost)
            if not state.accepted:
                if left:
                    raise RoomException(contract.NOT_FOUND_MESSAGE, code=ErrorCode.NOT_FOUND)
                raise RoomException(event.error.message, code=event.error.code)
            if left:
                await _send_closed(call, "client_disconnected", f"participant {routed.host.id} left the room")
            else:
                await _send_closed(call, "error", event.error.message)
            return
    if not state.accepted:
        raise RoomException("the messaging stream ended before the recipient answered", code=ErrorCode.OPERATION_FAILED)


async def _send_closed(call: ToolCall, reason: str, message: str | None) -> None:
    await call.send(JsonContent(json=_to_builtins(StreamClosed(reason=reason, message=message))))
