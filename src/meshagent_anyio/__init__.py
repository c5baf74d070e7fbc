"""meshagent_anyio: the MeshAgent room client on AnyIO (asyncio or Trio).

The same client as `meshagent_trio`: the code is shared (`meshagent_core.client`), only the
backend differs.
"""

from meshagent_core.client.api import *  # noqa: F403
from meshagent_core.client.api import __all__ as _shared

from .client import RoomClient, connect
from .services import ServiceHost, WebhookServer

__all__ = [
    *_shared,
    "RoomClient",
    "ServiceHost",
    "WebhookServer",
    "connect",
]
