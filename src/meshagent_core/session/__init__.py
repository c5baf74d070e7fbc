"""Client and server session state machines (sans-IO)."""

from .base import Session, SessionState
from .client import ClientSession, ToolInvocation
from .events import *  # noqa: F403
from .events import Event
from .server import ServerSession

__all__ = ["ClientSession", "Event", "ServerSession", "Session", "SessionState", "ToolInvocation"]
