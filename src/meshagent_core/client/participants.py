"""What the room client and its sub-clients share: the client's local events, participants,
event subscriptions and the sub-client base. Kept apart from `room` so the sub-clients, which
`RoomClient` builds, import nothing that imports them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ..session import events as ev

if TYPE_CHECKING:
    from .room import RoomClient


@dataclass(frozen=True)
class Disconnected:
    """Local event: the connection was lost; the client is reconnecting."""

    reason: str


@dataclass(frozen=True)
class Reconnected:
    """Local event: a new connection is up; attributes, messaging and hosted toolkits restored."""


@dataclass(frozen=True)
class RoomClosed:
    """Local event: the room client will not reconnect (server close, permanent refusal,
    reconnect timeout). Requests from now on raise `ConnectionLost`."""

    reason: str


class Participant:
    def __init__(self, *, id: str, attributes: Mapping[str, Any]) -> None:
        self._id = id
        self._attributes = dict(attributes)

    @property
    def id(self) -> str:
        return self._id

    @property
    def attributes(self) -> dict[str, Any]:
        return dict(self._attributes)

    def get_attribute(self, name: str) -> Any:
        return self._attributes.get(name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._id} {self._attributes.get('name', '')!r}>"


class LocalParticipant(Participant):
    """This participant. `set_attribute` updates the local copy and tells the room."""

    def __init__(self, room: "RoomClient", *, id: str, attributes: Mapping[str, Any]) -> None:
        super().__init__(id=id, attributes=attributes)
        self._room = room

    def set_attribute(self, name: str, value: Any) -> None:
        self._attributes[name] = value
        self._room._connection_or_raise().set_attributes({name: value})


class RemoteParticipant(Participant):
    """Another participant, as the messaging presence events describe it."""

    def __init__(self, *, id: str, role: str, attributes: Mapping[str, Any], online: bool = True) -> None:
        super().__init__(id=id, attributes=attributes)
        self._role = role
        self.online = online

    @property
    def role(self) -> str:
        return self._role


class Subscription:
    """An async iterator over the room's events of some types (all when none given).

    `close()` (by its owner, or by the room when it closes) ends it: events already buffered
    are still delivered, then the iteration stops. Both ends of its memory channel are closed
    as soon as no task is waiting on it (what it still buffers moves to a plain queue), so no
    channel is left open (AnyIO warns about those)."""

    def __init__(self, room: "RoomClient", types: tuple[type, ...], send: Any, receive: Any) -> None:
        self._room = room
        self._types = types
        self._send = send
        self._receive = receive
        self._closed = False
        self._waiting = 0  # tasks inside __anext__
        self._leftover: list[ev.Event] | None = None  # the buffered events, once the channel is closed

    def _accepts(self, event: ev.Event) -> bool:
        return not self._types or isinstance(event, self._types)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> ev.Event:
        if self._leftover is not None:
            if self._leftover:
                return self._leftover.pop(0)
            raise StopAsyncIteration
        self._waiting += 1
        try:
            async for event in self._receive:
                return event
        except self._room.backend.stream_errors:  # closed under us: the end as well
            pass
        finally:
            self._waiting -= 1
            if self._closed:
                self._release()
        if self._leftover:
            return self._leftover.pop(0)
        raise StopAsyncIteration

    def close(self) -> None:
        self._room._subscriptions.discard(self)
        if not self._closed:
            self._closed = True
            self._send.close()
            self._release()

    def _release(self) -> None:
        """Close the receiving end unless a task is waiting on it (that task does it when it
        wakes); the events it still buffers move to `_leftover`."""
        if self._waiting or self._leftover is not None:
            return
        receive = self._receive
        self._leftover = [receive.receive_nowait() for _ in range(receive.statistics().current_buffer_used)]
        receive.close()


class SubClient:
    """Base of `room.storage`, `room.messaging`, …: holds the room it talks through."""

    def __init__(self, room: RoomClient) -> None:
        self.room = room


__all__ = ["Disconnected", "LocalParticipant", "Participant", "Reconnected", "RemoteParticipant", "RoomClosed", "SubClient", "Subscription"]
