"""The local server's REST API: the routes of `meshagent_core.rest.ROUTES`, served on the room
port (`serve_rest`). Routes without a handler here answer 501, naming the method."""

from .context import RestContext
from .front import serve_rest

__all__ = ["RestContext", "serve_rest"]
