"""The names every client adapter exports besides its own `RoomClient` and `connect`
(`from meshagent_core.client.api import *` in `meshagent_trio` and `meshagent_anyio`)."""

from ..content import (
    BinaryContent,
    EmptyContent,
    ErrorContent,
    FileContent,
    JsonContent,
    LinkContent,
    TextContent,
)
from ..errors import ConnectionLost, ErrorCode, RoomException
from .hosting import Toolkit, ToolContext, tool
from .messaging import (
    IncomingMessagingStreamRequest,
    MessagingStream,
    MessagingStreamClientDisconnected,
    MessagingStreamClosed,
    PresenceEvent,
    RoomMessage,
)
from .room import (
    Disconnected,
    LocalParticipant,
    Participant,
    Reconnected,
    RemoteParticipant,
    RoomClosed,
    WebSocketClientProtocol,
    meshagent_base_url,
    resolve_protocol,
    websocket_room_url,
)

__all__ = [
    "BinaryContent",
    "ConnectionLost",
    "Disconnected",
    "EmptyContent",
    "ErrorCode",
    "ErrorContent",
    "FileContent",
    "IncomingMessagingStreamRequest",
    "JsonContent",
    "LinkContent",
    "LocalParticipant",
    "MessagingStream",
    "MessagingStreamClientDisconnected",
    "MessagingStreamClosed",
    "Participant",
    "PresenceEvent",
    "Reconnected",
    "RemoteParticipant",
    "RoomClosed",
    "RoomException",
    "RoomMessage",
    "TextContent",
    "ToolContext",
    "Toolkit",
    "WebSocketClientProtocol",
    "meshagent_base_url",
    "resolve_protocol",
    "tool",
    "websocket_room_url",
]
