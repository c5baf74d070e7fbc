"""Where each session event of a participant goes: built-in toolkits, hosted toolkits, hooks."""

from __future__ import annotations

import logging
from typing import Any, Callable

from meshagent_core import ControlContent, ErrorCode, ErrorContent, RoomException
from meshagent_core.session import events as ev

from . import hosting
from .services import room_call  # noqa: F401  (registers the `room.call` request)
from .hooks import ATTRIBUTE_HOOKS, LEAVE_HOOKS, REQUEST_HANDLERS, RequestHandler
from .rooms.participant import Participant
from .toolkit import ToolCall, error_content, is_bug, run_tool_call, unexpected_failure
from .toolkits import BUILTIN_TOOLKITS, UNAVAILABLE_TOOLKITS

log = logging.getLogger("meshagent_trio.server")


def dispatch(participant: Participant, event: ev.Event) -> None:
    handler = _EVENT_HANDLERS.get(type(event))
    if handler is not None:
        handler(participant, event)
    elif isinstance(event, ev.MalformedMessage):
        log.info("%r sent a malformed %s: %s", participant, event.type, event.error)


def participant_left(participant: Participant) -> None:
    for hook in LEAVE_HOOKS:
        try:
            hook(participant)
        except Exception:
            log.exception("leave hook failed for %r", participant)


# --- invocations -----------------------------------------------------------------------------


def _on_invoke(participant: Participant, event: ev.ToolInvoked) -> None:
    room = participant.room
    toolkit = BUILTIN_TOOLKITS.get(event.toolkit)
    if toolkit is None:
        if event.toolkit in UNAVAILABLE_TOOLKITS:
            participant.respond(
                event.request_id,
                ErrorContent(
                    text=f"the {event.toolkit} toolkit is not available on this server",
                    code=ErrorCode.DEPENDENCY_MISSING,
                ),
            )
        else:
            hosting.route_to_host(participant, event)
        return
    handler = toolkit.tools.get(event.tool)
    if handler is None:
        participant.respond(
            event.request_id,
            ErrorContent(text=f"the {event.toolkit} toolkit has no tool named {event.tool!r}", code=ErrorCode.NOT_FOUND),
        )
        return
    # Positional (in field order): less than half the cost of keywords, once per call.
    call = ToolCall(
        room,
        participant,  # caller
        event.request_id,
        event.toolkit,
        event.tool,
        event.arguments,
        event.tool_call_id,
        event.on_behalf_of_id,
    )
    answer_now = getattr(handler, "answer_now", None)
    if answer_now is not None and not call.has_input_stream and participant.queued_calls == 0:
        if _answer_inline(answer_now, call):
            return
    if call.has_input_stream:
        if event.tool_call_id in participant.calls:
            participant.respond(
                event.request_id,
                ErrorContent(text=f"tool call id {event.tool_call_id} is already in use", code=ErrorCode.INVALID_REQUEST),
            )
            return
        call._open_input()
        participant.calls[event.tool_call_id] = call
    try:
        participant.start_call(_run_call, participant, handler, call)
    except RoomException as error:
        participant.calls.pop(event.tool_call_id, None)
        participant.respond(event.request_id, error_content(error))


def _answer_inline(answer_now: Callable[[ToolCall], Any], call: ToolCall) -> bool:
    """Answer a call with its handler's synchronous `answer_now(call)` (small read-only tools:
    no task, no worker thread); False when that cannot answer it now (`NotImplemented`) and the
    handler must run as usual. Only used when no earlier call is still waiting to start, so an
    inline answer never jumps the queue."""
    try:
        result = answer_now(call)
    except RoomException as error:
        call._fail(error)
        return True
    except BaseException as error:  # a bug in a handler must not take the room down
        if not is_bug(error):
            raise
        call._fail(unexpected_failure(f"{call.toolkit}.{call.tool}", error, call.caller))
        return True
    if result is NotImplemented:
        return False
    call._finish(result)
    return True


async def _run_call(participant: Participant, handler: Any, call: ToolCall) -> None:
    try:
        await run_tool_call(handler, call)
    finally:
        if participant.calls.get(call.tool_call_id) is call:
            del participant.calls[call.tool_call_id]


def _on_request_chunk(participant: Participant, event: ev.RequestChunk) -> None:
    call = participant.calls.get(event.tool_call_id)
    if call is not None:
        call._feed_input(event.chunk)
        return
    routed = participant.outgoing_calls.get(event.tool_call_id)
    if routed is not None:
        routed.send_input(event.chunk)


def _on_request_stream_closed(participant: Participant, event: ev.RequestStreamClosed) -> None:
    call = participant.calls.get(event.tool_call_id)
    if call is not None:
        if event.status_code == 1000:
            call._feed_input(None)
        else:
            call._feed_input(
                RoomException(event.message or "the input stream was closed abnormally", code=ErrorCode.INVALID_REQUEST, status_code=event.status_code)
            )
            call._feed_input(None)
        return
    routed = participant.outgoing_calls.get(event.tool_call_id)
    if routed is not None:
        routed.send_input(ControlContent(method="close", status_code=event.status_code, message=event.message))


# --- other requests and events ---------------------------------------------------------------


def _on_request(participant: Participant, event: ev.RequestReceived) -> None:
    handler = REQUEST_HANDLERS.get(event.type)
    if handler is None:
        participant.respond(
            event.request_id,
            ErrorContent(text=f"unknown request type {event.type!r}", code=ErrorCode.INVALID_REQUEST),
        )
        return
    try:
        participant.start_call(_run_request, participant, handler, event)
    except RoomException as error:
        participant.respond(event.request_id, error_content(error))


async def _run_request(participant: Participant, handler: RequestHandler, event: ev.RequestReceived) -> None:
    try:
        content = await handler(participant, event)
    except RoomException as error:
        content = error_content(error)
    except BaseException as error:
        if not is_bug(error):
            raise
        content = error_content(unexpected_failure(event.type, error, participant))
    participant.respond(event.request_id, content)


def _on_attributes(participant: Participant, event: ev.AttributesSet) -> None:
    changed = dict(event.attributes)
    participant.attributes.update(changed)
    for hook in ATTRIBUTE_HOOKS:
        hook(participant, changed)


def _on_host_event(participant: Participant, event: ev.HostResponse | ev.HostChunk | ev.HostStreamClosed | ev.HostCallFailed) -> None:
    routed = participant.hosted_calls.get(event.call_id)
    if routed is not None:
        routed.deliver(event)


_EVENT_HANDLERS: dict[type, Callable[[Participant, Any], None]] = {
    ev.ToolInvoked: _on_invoke,
    ev.RequestChunk: _on_request_chunk,
    ev.RequestStreamClosed: _on_request_stream_closed,
    ev.RequestReceived: _on_request,
    ev.AttributesSet: _on_attributes,
    ev.HostResponse: _on_host_event,
    ev.HostChunk: _on_host_event,
    ev.HostStreamClosed: _on_host_event,
    ev.HostCallFailed: _on_host_event,
}
