"""Events a session hands to its adapter: small immutable records, as h11's events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..content import Content
from ..errors import RoomException


class Event:
    """Base class of session events."""

    __slots__ = ()


# --- either side -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MalformedMessage(Event):
    """A message whose envelope could not be decoded. It was dropped; if it was a request the
    session already answered it with an `error` content."""

    message_id: int
    type: str
    error: Exception


@dataclass(frozen=True, slots=True)
class UnhandledMessage(Event):
    """A well-framed message of a type this side does not handle."""

    message_id: int
    type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SessionClosed(Event):
    """The connection ended; every pending item got its failure event before this one."""

    reason: str
    code: int | None = None


# --- client side -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionReady(Event):
    """Both `room_ready` and `connected/init` arrived: the participant is in the room."""

    room_name: str
    room_url: str
    session_id: str
    participant_id: str
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RoomStatus(Event):
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResponseReceived(Event):
    """The answer to a request. `content` may be `ErrorContent` (a failed operation) or
    `ControlContent(open)` (the result is a stream of `ResponseChunk`s)."""

    request_id: int
    content: Content


@dataclass(frozen=True, slots=True)
class RequestFailed(Event):
    """A request that will get no answer: connection lost, or an undecodable answer."""

    request_id: int
    error: RoomException


@dataclass(frozen=True, slots=True)
class ResponseChunk(Event):
    """A chunk of a tool's streamed output (or a progress event, as a plain dict)."""

    tool_call_id: str
    chunk: Content | dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResponseStreamClosed(Event):
    """The tool's output stream ended with a `control/close` chunk."""

    tool_call_id: str
    status_code: int
    message: str | None = None

    @property
    def normal(self) -> bool:
        return self.status_code == 1000


@dataclass(frozen=True, slots=True)
class ResponseStreamFailed(Event):
    """An open output stream that will not be closed by the peer (connection lost, bad chunk)."""

    tool_call_id: str
    error: RoomException


@dataclass(frozen=True, slots=True)
class MessageReceived(Event):
    """`messaging.send`: a message, or a presence event, from another participant."""

    from_participant_id: str
    type: str
    message: Any
    attachment: bytes = b""


@dataclass(frozen=True, slots=True)
class FileUpdated(Event):
    path: str
    participant_id: str


@dataclass(frozen=True, slots=True)
class FileDeleted(Event):
    path: str
    participant_id: str


@dataclass(frozen=True, slots=True)
class FileMoved(Event):
    source_path: str
    destination_path: str
    participant_id: str


@dataclass(frozen=True, slots=True)
class DeveloperLogReceived(Event):
    type: str
    data: Any


@dataclass(frozen=True, slots=True)
class ToolCallReceived(Event):
    """A call into a toolkit this participant hosts. Answer with
    `ClientSession.respond_to_tool_call(call_id, content)`."""

    call_id: int
    toolkit: str
    name: str
    arguments: Content
    caller_id: str
    on_behalf_of_id: str | None
    tool_call_id: str


@dataclass(frozen=True, slots=True)
class ToolCallInputChunk(Event):
    """A chunk of a hosted call's input stream (delivered after its `ToolCallReceived`)."""

    toolkit: str
    tool_call_id: str
    chunk: Content


@dataclass(frozen=True, slots=True)
class ToolCallInputClosed(Event):
    toolkit: str
    tool_call_id: str
    status_code: int
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallCancelled(Event):
    """A hosted call that can no longer be answered (the connection ended)."""

    call_id: int
    tool_call_id: str


# --- server side -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolInvoked(Event):
    """`room.invoke_tool` from the client. Answer with `ServerSession.respond(request_id, …)`.
    With `input_stream` the arguments come as `RequestChunk`s keyed by `tool_call_id`."""

    request_id: int
    toolkit: str
    tool: str
    arguments: Content
    tool_call_id: str
    participant_id: str | None = None
    on_behalf_of_id: str | None = None

    @property
    def input_stream(self) -> bool:
        return getattr(self.arguments, "method", None) == "open"


@dataclass(frozen=True, slots=True)
class RequestReceived(Event):
    """Any other client request (`room.list_toolkits`, `room.register_toolkit`, …).
    `header` is the decoded header without `__meshagent__`."""

    request_id: int
    type: str
    header: dict[str, Any]
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class RequestChunk(Event):
    tool_call_id: str
    chunk: Content


@dataclass(frozen=True, slots=True)
class RequestStreamClosed(Event):
    tool_call_id: str
    status_code: int
    message: str | None = None


@dataclass(frozen=True, slots=True)
class AttributesSet(Event):
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HostResponse(Event):
    """The hosting participant's answer to a call the server routed to it."""

    call_id: int
    content: Content


@dataclass(frozen=True, slots=True)
class HostChunk(Event):
    """A chunk of a hosted tool's output (or a progress event, as a plain dict)."""

    call_id: int
    tool_call_id: str
    chunk: Content | dict[str, Any]


@dataclass(frozen=True, slots=True)
class HostStreamClosed(Event):
    call_id: int
    tool_call_id: str
    status_code: int
    message: str | None = None


@dataclass(frozen=True, slots=True)
class HostCallFailed(Event):
    """A routed call the host will never finish: it disconnected or answered garbage."""

    call_id: int
    tool_call_id: str
    error: RoomException
