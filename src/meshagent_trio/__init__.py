"""meshagent_trio: the MeshAgent SDK on Trio, and the local MeshAgent server.

`async with meshagent_trio.connect(url, token) as room:` joins a room; `room.storage`,
`room.messaging`, `room.queues`, `room.developer`, `room.agents` and `room.sync` are its APIs. The local server
is `meshagent_trio.server` (`meshagent-trio serve`).
"""

from meshagent_core.client.api import *  # noqa: F403
from meshagent_core.client.api import __all__ as _shared

from .client import RoomClient, connect
from .services import ServiceHost, WebhookServer

__version__ = "0.1.0"
__all__ = [
    *_shared,
    "RoomClient",
    "ServiceHost",
    "WebhookServer",
    "connect",
]
