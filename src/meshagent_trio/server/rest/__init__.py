"""The local server's REST API: the routes of `meshagent_core.rest.ROUTES`, served on the room
port (`serve_rest`). Routes without a handler here answer 501, naming the method."""

from .front import serve_rest
from .handlers import RestContext

__all__ = ["RestContext", "serve_rest"]
