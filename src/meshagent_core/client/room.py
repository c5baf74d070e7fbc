"""`RoomClient`: a participant in a room, with its sub-clients (`room.storage`, `room.messaging`,
`room.queues`, `room.developer`, `room.agents`).

Written once for every event loop: it awaits only its connection class's backend. An adapter
binds it (`meshagent_trio.RoomClient`, `meshagent_anyio.RoomClient`). Use it as an async context
manager; inside, a task group owns the connection's reader and writer and the event fan-out, and
nothing outlives the block. Events are async iterators (`async for event in room.events():`),
never callbacks.
"""

from __future__ import annotations

import math
import os
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Mapping

import msgspec

from ..content import Content
from ..errors import ConnectionLost, RoomException
from ..session import events as ev
from .connection import RoomConnection, ToolCallStream

if TYPE_CHECKING:
    from .agents import AgentsClient
    from .developer import DeveloperClient
    from .messaging import MessagingClient
    from .queues import QueuesClient
    from .storage import StorageClient

DEFAULT_API_URL = "https://api.meshagent.com"


def meshagent_base_url(base_url: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The REST base: explicit, else `MESHAGENT_PROFILE_API_URL`, else `MESHAGENT_API_URL`, else
    the cloud; trailing `/` stripped (ROOM_WIRE §1.1)."""
    environ = os.environ if environ is None else environ
    url = base_url or environ.get("MESHAGENT_PROFILE_API_URL") or environ.get("MESHAGENT_API_URL") or DEFAULT_API_URL
    return url.rstrip("/")


def websocket_room_url(
    *, room_name: str, base_url: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The room socket URL as the official client derives it (ROOM_WIRE §1.1): an explicit base
    verbatim; else `MESHAGENT_ROOM_URL`, `MESHAGENT_PROFILE_API_URL` or `MESHAGENT_API_URL` with
    `http(s):` swapped for `ws(s):`; else `wss://api.meshagent.com`."""
    environ = os.environ if environ is None else environ
    if base_url is None:
        base_url = (
            environ.get("MESHAGENT_ROOM_URL")
            or environ.get("MESHAGENT_PROFILE_API_URL")
            or environ.get("MESHAGENT_API_URL")
            or "wss://api.meshagent.com"
        )
        if base_url.startswith("https:"):
            base_url = "wss:" + base_url[len("https:") :]
        elif base_url.startswith("http:"):
            base_url = "ws:" + base_url[len("http:") :]
    return f"{base_url}/rooms/{room_name}"


class WebSocketClientProtocol:
    """Where and as whom to connect: a room URL and a participant token (the official class's
    name and constructor, so `RoomClient(protocol=WebSocketClientProtocol(url=…, token=…))` ports)."""

    def __init__(self, *, url: str, token: str | None) -> None:
        if not token:
            raise RoomException("a participant token is required to join a room")
        self.url = url
        self.token = token


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
    """An async iterator over the room's events of some types (all when none given)."""

    def __init__(self, room: "RoomClient", types: tuple[type, ...], send: Any, receive: Any) -> None:
        self._room = room
        self._types = types
        self._send = send
        self._receive = receive

    def _accepts(self, event: ev.Event) -> bool:
        return not self._types or isinstance(event, self._types)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> ev.Event:
        async for event in self._receive:
            return event
        raise StopAsyncIteration

    def close(self) -> None:
        self._room._subscriptions.discard(self)
        self._send.close()


class RoomClient:
    """A participant's connection to a room and its sub-clients."""

    #: The adapter's `RoomConnection` subclass (it carries the backend).
    connection_class: type[RoomConnection]

    def __init__(
        self,
        *,
        protocol: WebSocketClientProtocol | None = None,
        protocol_factory: Callable[[], WebSocketClientProtocol] | None = None,
        reconnect_timeout: float | None = None,
    ) -> None:
        if reconnect_timeout is not None and reconnect_timeout < 0:
            raise ValueError("reconnect_timeout must be None or a non-negative number")
        if protocol is not None and protocol_factory is not None:
            raise ValueError("pass protocol or protocol_factory, not both")
        if protocol is None and protocol_factory is None:
            room_name, token = os.getenv("MESHAGENT_ROOM"), os.getenv("MESHAGENT_TOKEN")
            if room_name is None or token is None:
                raise RoomException(
                    "a protocol or the MESHAGENT_ROOM and MESHAGENT_TOKEN environment variables are needed to join a room"
                )
            protocol = WebSocketClientProtocol(url=websocket_room_url(room_name=room_name), token=token)
        self._protocol_factory = protocol_factory or (lambda: protocol)  # type: ignore[return-value]
        self.reconnect_timeout = reconnect_timeout
        self.connection: RoomConnection | None = None
        self._local_participant: LocalParticipant | None = None
        self._subscriptions: set[Subscription] = set()
        self._handlers: dict[type, list[Callable[[Any], None]]] = {}
        self._exit_stack: AsyncExitStack | None = None
        self.closed = False

        from .agents import AgentsClient
        from .developer import DeveloperClient
        from .messaging import MessagingClient
        from .queues import QueuesClient
        from .storage import StorageClient

        self.agents: AgentsClient = AgentsClient(self)
        self.storage: StorageClient = StorageClient(self)
        self.messaging: MessagingClient = MessagingClient(self)
        self.developer: DeveloperClient = DeveloperClient(self)
        self.queues: QueuesClient = QueuesClient(self)

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def backend(self) -> Any:
        return self.connection_class.backend

    async def __aenter__(self) -> "RoomClient":
        protocol = self._protocol_factory()
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            self.connection = await stack.enter_async_context(self.connection_class.open(protocol.url, protocol.token))
            ready = self.connection.ready_event
            assert ready is not None
            self._local_participant = LocalParticipant(self, id=ready.participant_id, attributes=ready.attributes)
            task_group = await stack.enter_async_context(self.backend.open_task_group())
            self._task_group = task_group
            stack.callback(task_group.cancel_scope.cancel)
            task_group.start_soon(self._fan_out, self.connection)
        except BaseException:
            await stack.aclose()
            raise
        self._exit_stack = stack
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        self.closed = True
        for subscription in list(self._subscriptions):
            subscription.close()
        stack, self._exit_stack = self._exit_stack, None
        assert stack is not None
        return await stack.__aexit__(*exc_info)

    def start_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Run a task owned by this room (it ends when the room does)."""
        self._task_group.start_soon(function, *args)

    # --- identity -------------------------------------------------------------------------

    @property
    def local_participant(self) -> LocalParticipant:
        if self._local_participant is None:
            raise RoomException("the room client is not connected")
        return self._local_participant

    @property
    def room_name(self) -> str:
        return self._ready().room_name

    @property
    def room_url(self) -> str:
        return self._ready().room_url

    @property
    def session_id(self) -> str:
        return self._ready().session_id

    def _ready(self) -> ev.SessionReady:
        if self.connection is None or self.connection.ready_event is None:
            raise RoomException("the room client is not connected")
        return self.connection.ready_event

    def _connection_or_raise(self) -> RoomConnection:
        if self.connection is None or self.connection.closed:
            reason = self.connection.close_reason if self.connection is not None else "not connected"
            raise ConnectionLost(f"room connection is disconnected: {reason}", code=1006)
        return self.connection

    # --- requests (what the sub-clients use) ----------------------------------------------

    async def send_request(self, type: str, header: Mapping[str, Any] | msgspec.Struct, data: bytes | None = None) -> Content:
        """Any request; `error` answers raise `RoomException`."""
        return await self._connection_or_raise().request(type, header, data or b"")

    async def invoke(
        self,
        toolkit: str,
        tool: str,
        arguments: Content | Mapping[str, Any] | str | None = None,
        *,
        participant_id: str | None = None,
        on_behalf_of_id: str | None = None,
    ) -> Content:
        """A unary `room.invoke_tool`."""
        return await self._connection_or_raise().invoke(
            toolkit, tool, arguments, participant_id=participant_id, on_behalf_of_id=on_behalf_of_id
        )

    @asynccontextmanager
    async def stream_call(
        self,
        toolkit: str,
        tool: str,
        arguments: Content | Mapping[str, Any] | str | None = None,
        *,
        input_stream: bool = True,
        participant_id: str | None = None,
    ) -> AsyncIterator[ToolCallStream]:
        """A `room.invoke_tool` with a streamed input and/or output (see `ToolCallStream`)."""
        async with self._connection_or_raise().stream_call(
            toolkit, tool, arguments, input_stream=input_stream, participant_id=participant_id
        ) as call:
            yield call

    # --- events ---------------------------------------------------------------------------

    def subscribe(self, *types: type, max_buffer: float = math.inf) -> Subscription:
        """A new iterator over the events of `types` from now on (close it when done)."""
        send, receive = self.backend.open_memory_channel(max_buffer)
        subscription = Subscription(self, types, send, receive)
        self._subscriptions.add(subscription)
        return subscription

    async def events(self, *types: type) -> AsyncIterator[ev.Event]:
        """`async for event in room.events(MessageReceived):` — until the room closes."""
        subscription = self.subscribe(*types)
        try:
            async for event in subscription:
                yield event
        finally:
            subscription.close()

    def _on(self, type: type, handler: Callable[[Any], None]) -> None:
        """Sub-clients' synchronous hooks, run for each event before user iterators see it."""
        self._handlers.setdefault(type, []).append(handler)

    async def _fan_out(self, connection: RoomConnection) -> None:
        async for event in connection.events:
            for handler in self._handlers.get(type(event), ()):
                handler(event)
            for subscription in list(self._subscriptions):
                if subscription._accepts(event):
                    try:
                        subscription._send.send_nowait(event)
                    except Exception:  # a full or closed subscription loses the event, not the room
                        pass
        for subscription in list(self._subscriptions):
            subscription._send.close()


class SubClient:
    """Base of `room.storage`, `room.messaging`, …: holds the room it talks through."""

    def __init__(self, room: RoomClient) -> None:
        self.room = room
