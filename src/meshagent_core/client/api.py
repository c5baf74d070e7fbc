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
from ..sync import ChildProperty, DocumentChange, Element, ElementType, MeshDocument, MeshSchema, TextNode, ValueProperty
from .hosting import Toolkit, ToolContext, tool
from .messaging import (
    IncomingMessagingStreamRequest,
    MessagingStream,
    MessagingStreamClientDisconnected,
    MessagingStreamClosed,
    PresenceEvent,
    RoomMessage,
)
from .participants import Disconnected, LocalParticipant, Participant, Reconnected, RemoteParticipant, RoomClosed
from .room import WebSocketClientProtocol, meshagent_base_url, resolve_protocol, websocket_room_url
from .storage import LocalFileChanged
from .sync import DocumentChanges

__all__ = [
    "BinaryContent",
    "ChildProperty",
    "ConnectionLost",
    "Disconnected",
    "DocumentChange",
    "DocumentChanges",
    "Element",
    "ElementType",
    "EmptyContent",
    "ErrorCode",
    "ErrorContent",
    "FileContent",
    "IncomingMessagingStreamRequest",
    "JsonContent",
    "LinkContent",
    "LocalFileChanged",
    "LocalParticipant",
    "MeshDocument",
    "MeshSchema",
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
    "TextNode",
    "ToolContext",
    "Toolkit",
    "ValueProperty",
    "WebSocketClientProtocol",
    "meshagent_base_url",
    "resolve_protocol",
    "tool",
    "websocket_room_url",
]
