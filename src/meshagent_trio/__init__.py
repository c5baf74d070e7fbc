"""meshagent_trio: the MeshAgent SDK on Trio, and the local MeshAgent server.

`async with meshagent_trio.connect(url, token) as room:` joins a room; `room.storage`,
`room.messaging`, `room.queues`, `room.developer` and `room.agents` are its APIs. The local server
is `meshagent_trio.server` (`meshagent-trio serve`).
"""

from meshagent_core.client.room import (
    LocalParticipant,
    Participant,
    RemoteParticipant,
    WebSocketClientProtocol,
    meshagent_base_url,
    websocket_room_url,
)
from meshagent_core.client.hosting import Toolkit, tool
from meshagent_core.client.messaging import (
    IncomingMessagingStreamRequest,
    MessagingStream,
    MessagingStreamClientDisconnected,
    MessagingStreamClosed,
    PresenceEvent,
    RoomMessage,
)
from meshagent_core.errors import ConnectionLost, ErrorCode, RoomException

from .client import RoomClient, connect

__version__ = "0.1.0"

__all__ = [
    "IncomingMessagingStreamRequest",
    "MessagingStream",
    "MessagingStreamClientDisconnected",
    "MessagingStreamClosed",
    "PresenceEvent",
    "RoomMessage",
    "ConnectionLost",
    "ErrorCode",
    "LocalParticipant",
    "Participant",
    "RemoteParticipant",
    "RoomClient",
    "RoomException",
    "Toolkit",
    "WebSocketClientProtocol",
    "connect",
    "meshagent_base_url",
    "tool",
    "websocket_room_url",
]
