"""meshagent_anyio: the MeshAgent room client on AnyIO (asyncio or Trio).

The same client as `meshagent_trio`: the code is shared (`meshagent_core.client`), only the
backend differs.
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
