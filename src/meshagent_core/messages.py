"""Session-level wire messages (protocol/wire.md §6, protocol/room-apis.md §6).

Each message header is defined once here, as a msgspec Struct, and used by both the client
and the server session. Field order is the official client's (it matters only for the
byte-identical `JsonStyle.PYTHON` output). Fields that carry a content header are typed `Any`:
they are written from a content Struct and read back through `content_from_header`, which also
accepts the legacy forms the official host tolerates.
"""

from __future__ import annotations

from typing import Any

import msgspec

# Packet-level message types.
ROOM_READY = "room_ready"
CONNECTED = "connected"
ROOM_STATUS = "room.status"
RESPONSE = "__response__"
SET_ATTRIBUTES = "set_attributes"
INVOKE_TOOL = "room.invoke_tool"
TOOL_CALL_REQUEST_CHUNK = "room.tool_call_request_chunk"
TOOL_CALL_RESPONSE_CHUNK = "room.tool_call_response_chunk"
TOOL_CALL_RESPONSE = "room.tool_call_response"
TOOL_CALL_PREFIX = "room.tool_call."
TOOL_CALL_REQUEST_CHUNK_PREFIX = "room.tool_call_request_chunk."
LIST_TOOLKITS = "room.list_toolkits"
ROOM_CALL = "room.call"
REGISTER_TOOLKIT = "room.register_toolkit"
UNREGISTER_TOOLKIT = "room.unregister_toolkit"
MESSAGING_SEND = "messaging.send"
FILE_UPDATED = "storage.file.updated"
FILE_DELETED = "storage.file.deleted"
FILE_MOVED = "storage.file.moved"
DEVELOPER_LOG = "developer.log"

#: Client -> server message types that expect no `__response__`.
CLIENT_ONE_WAY_TYPES = frozenset(
    {SET_ATTRIBUTES, TOOL_CALL_REQUEST_CHUNK, TOOL_CALL_RESPONSE, TOOL_CALL_RESPONSE_CHUNK}
)


def tool_call_type(toolkit: str) -> str:
    """Type of the message that routes a call to the participant hosting `toolkit`."""
    return TOOL_CALL_PREFIX + toolkit


def tool_call_request_chunk_type(toolkit: str) -> str:
    """Type of the message that forwards an input-stream chunk to the hosting participant."""
    return TOOL_CALL_REQUEST_CHUNK_PREFIX + toolkit


class RoomReady(msgspec.Struct):
    room_name: str
    room_url: str
    session_id: str


class ConnectedInit(msgspec.Struct):
    participant_id: str = msgspec.field(name="participantId")
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    type: str = "init"


class Connected(msgspec.Struct):
    """Any `connected` message; only `type == "init"` means something to the client."""

    type: str
    participant_id: str | None = msgspec.field(default=None, name="participantId")
    attributes: Any = None


class InvokeTool(msgspec.Struct, kw_only=True):
    """`room.invoke_tool`. The Python clients send `participant_id` and `on_behalf_of_id` as
    null; the TypeScript client leaves null keys out, so an absent key means null."""

    toolkit: str
    tool: str
    participant_id: str | None = None
    on_behalf_of_id: str | None = None
    arguments: Any
    tool_call_id: str


class ToolCallChunk(msgspec.Struct, omit_defaults=True):
    """`room.tool_call_request_chunk` / `room.tool_call_response_chunk` (and `.<toolkit>`)."""

    tool_call_id: str
    chunk: Any
    toolkit: str | None = None
    tool: str | None = None


class ToolCall(msgspec.Struct):
    """`room.tool_call.<toolkit>`: a call routed to the participant hosting the toolkit."""

    name: str
    arguments: Any
    caller_id: str
    on_behalf_of_id: str | None = None
    tool_call_id: str | None = None


class ListToolkits(msgspec.Struct, omit_defaults=True):
    participant_id: str | None = None
    participant_name: str | None = None
    timeout: int | None = None


class RoomCall(msgspec.Struct):
    name: str
    url: str
    arguments: dict[str, Any]
    api: dict[str, Any] | None = None


class RegisterToolkit(msgspec.Struct):
    name: str
    title: str | None = None
    description: str | None = None
    tools: dict[str, Any] = msgspec.field(default_factory=dict)
    public: bool = False
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class UnregisterToolkit(msgspec.Struct):
    id: str


class MessagingSend(msgspec.Struct):
    """`messaging.send` event: a message or presence event from another participant."""

    from_participant_id: str
    type: str
    message: Any = None


class FileUpdated(msgspec.Struct):
    path: str
    participant_id: str


class FileDeleted(msgspec.Struct):
    path: str
    participant_id: str


class FileMoved(msgspec.Struct):
    source_path: str
    destination_path: str
    participant_id: str


class DeveloperLog(msgspec.Struct):
    type: Any = "unknown"
    data: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.type, str):
            self.type = "unknown"
