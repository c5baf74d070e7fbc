"""Toolkits hosted by participants: register, unregister, list, and route calls to the host.

A call to a toolkit that is not built in goes to the participant that registered it as
`room.tool_call.<toolkit>`; its answers come back on the same call id and are relayed to the
caller as the `__response__` of its `room.invoke_tool` and as `room.tool_call_response_chunk`s
keyed by the caller's `tool_call_id` (the host sees the same `tool_call_id`).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import trio

from meshagent_core import ControlContent, ErrorCode, ErrorContent, JsonContent, RoomException, messages as m
from meshagent_core.session import events as ev
from meshagent_core.tokens import matches_grant_pattern

from .hooks import LEAVE_HOOKS, REQUEST_HANDLERS
from .rooms.participant import Participant, RoutedCall
from .rooms.room import HostedToolkit
from .toolkit import invalid_request, permission_denied


def _agents_grant(participant: Participant) -> Any:
    scope = participant.scope
    grant = scope.agents if scope is not None else None
    if grant is None:
        raise permission_denied("the token does not grant the agents API")
    return grant


def _decode(event: ev.RequestReceived, type: type) -> Any:
    try:
        return msgspec.convert(event.header, type=type)
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid {event.type} request: {error}") from None


async def register_toolkit(participant: Participant, event: ev.RequestReceived) -> JsonContent:
    request: m.RegisterToolkit = _decode(event, m.RegisterToolkit)
    grant = _agents_grant(participant)
    allowed = grant.register_public_toolkit if request.public else grant.register_private_toolkit
    if not allowed:
        kind = "public" if request.public else "private"
        raise permission_denied(f"the token does not allow registering {kind} toolkits")
    room = participant.room
    for existing in list(room.hosted_toolkits.values()):
        if existing.host is participant and existing.name == request.name:
            del room.hosted_toolkits[existing.id]  # re-registration replaces
    registration = HostedToolkit(
        id=str(uuid.uuid4()),
        name=request.name,
        host=participant,
        title=request.title,
        description=request.description,
        tools=request.tools,
        public=request.public,
        annotations=request.annotations,
    )
    room.hosted_toolkits[registration.id] = registration
    _toolkits_changed(room)
    return JsonContent(json={"id": registration.id})


async def unregister_toolkit(participant: Participant, event: ev.RequestReceived) -> JsonContent:
    request: m.UnregisterToolkit = _decode(event, m.UnregisterToolkit)
    room = participant.room
    registration = room.hosted_toolkits.get(request.id)
    if registration is None or registration.host is not participant:
        raise RoomException(f"no toolkit registration {request.id!r} of this participant", code=ErrorCode.NOT_FOUND)
    del room.hosted_toolkits[request.id]
    _toolkits_changed(room)
    return JsonContent(json={})


async def list_toolkits(participant: Participant, event: ev.RequestReceived) -> JsonContent:
    request: m.ListToolkits = _decode(event, m.ListToolkits)
    room = participant.room

    def matching() -> dict[str, Any]:
        found = {}
        for toolkit in room.hosted_toolkits.values():
            if request.participant_id is not None and toolkit.host.id != request.participant_id:
                continue
            if request.participant_name is not None and toolkit.host.name != request.participant_name:
                continue
            if not toolkit.public and toolkit.host is not participant:
                continue
            found[toolkit.name] = toolkit.describe()
        return found

    found = matching()
    if not found and request.timeout and (request.participant_id or request.participant_name):
        # Wait (bounded) for the named participant's toolkits to appear.
        with trio.move_on_after(request.timeout):
            while not found:
                await _changed_event(room).wait()
                found = matching()
    return JsonContent(json={"tools": found})


def _changed_event(room: Any) -> trio.Event:
    return room.toolkit_state("hosting.changed", lambda _: trio.Event())


def _toolkits_changed(room: Any) -> None:
    _changed_event(room).set()
    room.state["hosting.changed"] = trio.Event()


# --- routing ---------------------------------------------------------------------------------


def route_to_host(caller: Participant, event: ev.ToolInvoked) -> None:
    """Send `event` to the participant hosting its toolkit and relay the answers back."""
    try:
        grant = _agents_grant(caller)
        if not grant.use_tools or not matches_grant_pattern(grant.allowed_toolkits, event.toolkit, allow_if_unset=True):
            raise permission_denied(f"the token does not allow calling the {event.toolkit} toolkit")
        toolkit = caller.room.find_toolkit(event.toolkit, event.participant_id)
        if toolkit is None:
            where = f" of participant {event.participant_id}" if event.participant_id else ""
            raise RoomException(f"toolkit {event.toolkit!r}{where} is not available in this room", code=ErrorCode.NOT_FOUND)
        if event.tool_call_id in caller.outgoing_calls or event.tool_call_id in caller.calls:
            raise invalid_request(f"tool call id {event.tool_call_id} is already in use")
        routed = toolkit.host.open_routed_call(
            event.toolkit,
            event.tool,
            event.arguments,
            caller_id=caller.id,
            tool_call_id=event.tool_call_id,
            on_behalf_of_id=event.on_behalf_of_id,
        )
    except RoomException as error:
        caller.respond(event.request_id, ErrorContent(text=error.message, code=error.code))
        return
    caller.outgoing_calls[event.tool_call_id] = routed
    try:
        caller.start_call(_relay, caller, event, routed)
    except RoomException as error:
        del caller.outgoing_calls[event.tool_call_id]
        routed.cancel()
        caller.respond(event.request_id, ErrorContent(text=error.message, code=error.code))


async def _relay(caller: Participant, event: ev.ToolInvoked, routed: RoutedCall) -> None:
    answered = streaming = False
    try:
        async for host_event in routed.events:
            if isinstance(host_event, ev.HostResponse):
                caller.respond(event.request_id, host_event.content)
                answered = True
                streaming = isinstance(host_event.content, ControlContent) and host_event.content.is_open
            elif isinstance(host_event, ev.HostChunk):
                caller.send_response_chunk(event.tool_call_id, host_event.chunk)
                await caller.writable()
            elif isinstance(host_event, ev.HostStreamClosed):
                caller.send_response_chunk(
                    event.tool_call_id,
                    ControlContent(method="close", status_code=host_event.status_code, message=host_event.message),
                )
            elif isinstance(host_event, ev.HostCallFailed):
                failure = ErrorContent(text=host_event.error.message, code=host_event.error.code)
                if not answered:
                    caller.respond(event.request_id, failure)
                elif streaming:
                    caller.send_response_chunk(event.tool_call_id, failure)
                    caller.send_response_chunk(
                        event.tool_call_id, ControlContent(method="close", status_code=1011, message=host_event.error.message)
                    )
    finally:
        if caller.outgoing_calls.get(event.tool_call_id) is routed:
            del caller.outgoing_calls[event.tool_call_id]
        routed.cancel()


def _participant_left(participant: Participant) -> None:
    room = participant.room
    removed = [key for key, toolkit in room.hosted_toolkits.items() if toolkit.host is participant]
    for key in removed:
        del room.hosted_toolkits[key]
    if removed:
        _toolkits_changed(room)
    for routed in list(participant.outgoing_calls.values()):
        routed.cancel()


REQUEST_HANDLERS[m.REGISTER_TOOLKIT] = register_toolkit
REQUEST_HANDLERS[m.UNREGISTER_TOOLKIT] = unregister_toolkit
REQUEST_HANDLERS[m.LIST_TOOLKITS] = list_toolkits
LEAVE_HOOKS.append(_participant_left)
