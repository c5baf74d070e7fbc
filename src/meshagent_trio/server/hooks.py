"""Extension points toolkits register with (kept apart from dispatch to avoid import cycles)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

from meshagent_core import Content
from meshagent_core.session import events as ev

if TYPE_CHECKING:
    from .rooms.participant import Participant

RequestHandler = Callable[["Participant", ev.RequestReceived], Awaitable[Content]]

#: Handlers of requests other than `room.invoke_tool`, by message type.
REQUEST_HANDLERS: dict[str, RequestHandler] = {}
#: Called with (participant, changed attributes) after a `set_attributes`.
ATTRIBUTE_HOOKS: list[Callable[["Participant", dict[str, Any]], None]] = []
#: Called with the participant when its connection ends (before it is removed from the room).
LEAVE_HOOKS: list[Callable[["Participant"], None]] = []
