"""`RoomClient`: a participant in a room, with its sub-clients (`room.storage`, `room.messaging`,
`room.queues`, `room.developer`, `room.agents`, `room.sync`, `room.mounts`, `room.livekit`,
`room.services`, `room.sqlite`).

Written once for every event loop: it awaits only its connection class's backend. An adapter
binds it (`meshagent_trio.RoomClient`, `meshagent_anyio.RoomClient`). Use it as an async context
manager; inside, a task group owns the connection's reader and writer and the event fan-out, and
nothing outlives the block. Events are async iterators (`async for event in room.events():`),
never callbacks.
"""

from __future__ import annotations

import logging
import math
import os
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping
from urllib.parse import urlsplit

import msgspec

from ..content import Content
from ..errors import ConnectionLost, RoomException
from ..session import events as ev
from .agents import AgentsClient
from .connection import RoomConnection, ToolCallStream
from .datasets import DatasetsClient
from .developer import DeveloperClient
from .exception_groups import unwrap_group
from .livekit import LivekitClient
from .memory import MemoryClient
from .messaging import MessagingClient
from .mounts import MountsClient
from .participants import (
    Disconnected,
    LocalParticipant,
    Participant,
    Reconnected,
    RemoteParticipant,
    RoomClosed,
    SubClient,
    Subscription,
)
from .queues import QueuesClient
from .services import ServicesClient
from .sqlite import SqliteClient
from .storage import StorageClient
from .sync import SyncClient
from .websocket import HandshakeRejected, WebSocketClosed

DEFAULT_API_URL = "https://api.meshagent.com"
#: Seconds the first connection may take, retries included, before `connect()` gives up.
DEFAULT_CONNECT_TIMEOUT = 30.0
#: Seconds between the first connection's retries at most: a server that is starting is found
#: quickly.
FIRST_CONNECT_MAX_DELAY = 2.0
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 30.0
#: Upgrade answers that mean "never": wrong token or room (403), no such room (404), disabled (423).
PERMANENT_HTTP_STATUSES = frozenset({403, 404, 423})
#: Close codes after which the client reconnects: the connection dropped (1006), the server is
#: going away or restarting (1001, 1012), is overloaded (1013), or evicted this connection
#: because it did not keep up with what the room sent it (1008). Whether the participant may
#: still join is then the handshake's answer. Every other close frame is final.
RECONNECT_CLOSE_CODES = frozenset({1001, 1006, 1008, 1012, 1013})
#: Seconds a normal exit from the room block waits for sub-clients to send what they hold.
LEAVE_TIMEOUT = 10.0

log = logging.getLogger("meshagent_core.client")


def retry_delay(attempt: int, *, bounded: bool) -> float:
    """Seconds before retry number `attempt` (0-based): 0.5, 1, 2, … capped at 30; with a
    reconnect timeout (`bounded`) the first retry is immediate (protocol/wire.md §8.3)."""
    if bounded:
        if attempt == 0:
            return 0.0
        attempt -= 1
    return min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2**attempt)


def unreachable_message(url: str, timeout: float | None, reason: str) -> str:
    """Why the first connection failed, with what to do about it for a local server."""
    message = f"could not connect to {url} within {timeout:g}s: {reason}"
    host = urlsplit(url).hostname or ""
    if host in LOCAL_HOSTS:
        message += "; is the local server running? Start it with `meshagent-trio serve`"
    return message


def meshagent_base_url(base_url: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The REST base: explicit, else `MESHAGENT_PROFILE_API_URL`, else `MESHAGENT_API_URL`, else
    the cloud; trailing `/` stripped (protocol/wire.md §2.1)."""
    environ = os.environ if environ is None else environ
    url = base_url or environ.get("MESHAGENT_PROFILE_API_URL") or environ.get("MESHAGENT_API_URL")
    if not url:
        _warn_cloud_default(DEFAULT_API_URL)
        url = DEFAULT_API_URL
    return url.rstrip("/")


def _warn_cloud_default(url: str) -> None:
    log.warning(
        "MESHAGENT_API_URL is not set, so this uses the MeshAgent cloud (%s); "
        "for a local server, run `meshagent-trio serve` and export the MESHAGENT_API_URL it prints",
        url,
    )


def websocket_room_url(
    *, room_name: str, base_url: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The room socket URL as the official client derives it (protocol/wire.md §2.1): an explicit base
    verbatim; else `MESHAGENT_ROOM_URL`, `MESHAGENT_PROFILE_API_URL` or `MESHAGENT_API_URL` with
    `http(s):` swapped for `ws(s):`; else `wss://api.meshagent.com`."""
    environ = os.environ if environ is None else environ
    if base_url is None:
        base_url = (
            environ.get("MESHAGENT_ROOM_URL")
            or environ.get("MESHAGENT_PROFILE_API_URL")
            or environ.get("MESHAGENT_API_URL")
        )
        if not base_url:
            base_url = "wss://api.meshagent.com"
            _warn_cloud_default(base_url)
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


def resolve_protocol(
    room: str,
    token: str | None = None,
    *,
    participant_name: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> WebSocketClientProtocol:
    """Where and as whom to connect, from what the caller gave and the environment.

    `room` is a room URL (`ws://…/rooms/<name>`) or just a room name, whose URL is derived from
    `MESHAGENT_ROOM_URL` / `MESHAGENT_API_URL` as the official client does. Without `token`, one
    is minted with the secret of `MESHAGENT_API_KEY` (or `MESHAGENT_SECRET`): a participant named
    `participant_name` (default: `MESHAGENT_PARTICIPANT_NAME`, else "participant") with the
    room grant, the agent role and the default agent API scope."""
    from ..tokens import ApiScope, ParticipantToken

    environ = os.environ if environ is None else environ
    is_url = "://" in room
    url = room if is_url else websocket_room_url(room_name=room, environ=environ)
    if token is None:
        room_name = url.rstrip("/").rsplit("/rooms/", 1)[-1].split("?", 1)[0]
        name = participant_name or environ.get("MESHAGENT_PARTICIPANT_NAME") or "participant"
        minted = ParticipantToken(name=name)
        minted.add_role_grant("agent")
        minted.add_room_grant(room_name)
        minted.add_api_grant(ApiScope.agent_default())
        if environ.get("MESHAGENT_API_KEY"):
            token = minted.to_jwt(api_key=environ["MESHAGENT_API_KEY"], environ=environ)
        elif environ.get("MESHAGENT_SECRET"):
            token = minted.to_jwt(token=environ["MESHAGENT_SECRET"], environ=environ)
        else:
            raise RoomException("no token given, and neither MESHAGENT_API_KEY nor MESHAGENT_SECRET is set to mint one")
    return WebSocketClientProtocol(url=url, token=token)


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
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        if reconnect_timeout is not None and reconnect_timeout < 0:
            raise ValueError("reconnect_timeout must be None or a non-negative number")
        if connect_timeout is not None and connect_timeout <= 0:
            raise ValueError("connect_timeout must be None or a positive number")
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
        #: Seconds the first connection may take, retries included (None: retry forever).
        self.connect_timeout = connect_timeout
        self.connection: RoomConnection | None = None
        self._local_participant: LocalParticipant | None = None
        self._subscriptions: set[Subscription] = set()
        self._handlers: dict[type, list[Callable[[Any], None]]] = {}
        self._reconnect_hooks: list[Callable[[], Awaitable[None]]] = []
        self._leave_hooks: list[Callable[[], Awaitable[None]]] = []
        self._exit_stack: AsyncExitStack | None = None
        self._terminal: RoomException | None = None
        self.closed = False

        self.agents: AgentsClient = AgentsClient(self)
        self.storage: StorageClient = StorageClient(self)
        self.messaging: MessagingClient = MessagingClient(self)
        self.developer: DeveloperClient = DeveloperClient(self)
        self.queues: QueuesClient = QueuesClient(self)
        self.sync: SyncClient = SyncClient(self)
        self.mounts: MountsClient = MountsClient(self)
        self.livekit: LivekitClient = LivekitClient(self)
        self.services: ServicesClient = ServicesClient(self)
        self.sqlite: SqliteClient = SqliteClient(self)
        self.datasets: DatasetsClient = DatasetsClient(self)
        self.memory: MemoryClient = MemoryClient(self)

    # --- lifecycle ------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        room: str,
        token: str | None = None,
        *,
        participant_name: str | None = None,
        reconnect_timeout: float | None = None,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    ) -> AsyncIterator["RoomClient"]:
        """`async with connect(url_or_room_name, token) as room:` (see `resolve_protocol` for
        what is taken from the environment when the token or the URL is left out). The first
        connection is retried for up to `connect_timeout` seconds, then fails with
        `ConnectionLost` naming the URL."""
        protocol = resolve_protocol(room, token, participant_name=participant_name)
        client = cls(protocol=protocol, reconnect_timeout=reconnect_timeout, connect_timeout=connect_timeout)
        async with client:
            yield client

    @property
    def backend(self) -> Any:
        return self.connection_class.backend

    async def __aenter__(self) -> "RoomClient":
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            task_group = await stack.enter_async_context(self.backend.open_task_group())
            self._task_group = task_group
            stack.callback(task_group.cancel_scope.cancel)
            self._started = self.backend.Event()
            task_group.start_soon(self._supervise)
            await self._started.wait()
            if self.connection is None or self.connection.closed:
                raise self._terminal or ConnectionLost("the room client could not connect")
        except BaseException:
            self.closed = True
            await stack.aclose()
            raise
        self._exit_stack = stack
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        if exc_info[0] is None and self.connection is not None and not self.connection.closed:
            # A block that ends normally leaves cleanly: sub-clients send what they still
            # hold (e.g. document edits) before the connection goes. Bounded, never raised.
            with self.backend.move_on_after(LEAVE_TIMEOUT):
                for hook in self._leave_hooks:
                    try:
                        await hook()
                    except Exception:
                        log.exception("leave hook %r failed", hook)
        self.closed = True
        self._close_subscriptions()
        stack, self._exit_stack = self._exit_stack, None
        assert stack is not None
        body_error = exc_info[1]
        try:
            return await stack.__aexit__(*exc_info)
        except BaseExceptionGroup as group:
            # The task group spans the block: hand back the block's own exception as it was
            # raised, not wrapped, when it is all the group holds.
            if unwrap_group(group, body_error) is body_error:
                raise body_error from None
            raise

    # --- connecting and reconnecting (protocol/wire.md §8) -------------------------------------

    def on_reconnect(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `await hook()` after every reconnection (sub-clients restore their state)."""
        self._reconnect_hooks.append(hook)

    def on_leave(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `await hook()` when the `async with` block ends normally, while the connection
        is still up (sub-clients flush what they hold)."""
        self._leave_hooks.append(hook)

    async def _supervise(self) -> None:
        backend = self.backend
        attempt = 0
        deadline: float | None = None
        if self.connect_timeout is not None:
            deadline = backend.current_time() + self.connect_timeout
        connected_once = False
        while not self.closed:
            protocol = self._protocol_factory()
            # An attempt that neither connects nor fails (a peer that accepts and never
            # answers) is cut off at the deadline, like a failed one.
            attempt_scope = backend.move_on_after(math.inf)
            try:
                with attempt_scope:
                    if deadline is not None:
                        attempt_scope.deadline = deadline
                    async with self.connection_class.open(protocol.url, protocol.token) as connection:
                        attempt_scope.deadline = math.inf
                        attempt, deadline = 0, None
                        self._adopt(connection)
                        if connected_once:
                            await self._restore(connection)
                            self._emit(Reconnected())
                        connected_once = True
                        self._started.set()
                        await self._fan_out(connection)
                    if connection.close_code not in RECONNECT_CLOSE_CODES:
                        # A close frame from the server (or our own protocol error) is final,
                        # unless it says to come back (see RECONNECT_CLOSE_CODES).
                        self._terminate(f"room connection closed: {connection.close_reason}")
                        return
                    reason = connection.close_reason or "connection lost"
                    self._emit(Disconnected(reason))
                if attempt_scope.cancelled_caught:
                    reason = "no answer to the WebSocket handshake"
            except HandshakeRejected as refused:
                if refused.status in PERMANENT_HTTP_STATUSES:
                    message = "This room is currently disabled." if refused.status == 423 else str(refused)
                    self._terminate(message, code=refused.status)
                    return
                reason = str(refused)
            except (ConnectionLost, WebSocketClosed, OSError, *backend.stream_errors) as error:
                reason = str(error) or type(error).__name__
            if self.closed:
                return
            now = backend.current_time()
            if not connected_once:
                if attempt == 0:
                    log.warning("cannot reach %s (%s); retrying for up to %ss", protocol.url, reason, self.connect_timeout)
                delay = min(FIRST_CONNECT_MAX_DELAY, retry_delay(attempt, bounded=True))
                if deadline is not None and now + delay > deadline:
                    self._terminate(unreachable_message(protocol.url, self.connect_timeout, reason))
                    return
                await backend.sleep(delay)
                attempt += 1
                continue
            timeout = self.reconnect_timeout
            if timeout == 0:
                self._terminate(f"room connection lost: {reason}")
                return
            if timeout is not None and deadline is None:
                deadline = now + timeout
            delay = retry_delay(attempt, bounded=timeout is not None)
            if deadline is not None and now + delay > deadline:
                self._terminate(f"room reconnect timed out after {timeout}s ({reason})")
                return
            log.info("reconnecting in %.1fs: %s", delay, reason)
            await backend.sleep(delay)
            attempt += 1

    def _adopt(self, connection: RoomConnection) -> None:
        ready = connection.ready_event
        assert ready is not None
        local = self._local_participant._attributes if self._local_participant is not None else {}
        merged = {**ready.attributes, **local}  # local values win (protocol/wire.md §6.8)
        self._local_participant = LocalParticipant(self, id=ready.participant_id, attributes=merged)
        self.connection = connection
        if local and merged != ready.attributes:
            connection.set_attributes(merged)

    async def _restore(self, connection: RoomConnection) -> None:
        for hook in list(self._reconnect_hooks):
            try:
                await hook()
            except Exception:
                log.exception("restoring state after a reconnect failed")

    def _terminate(self, reason: str, code: int | None = None) -> None:
        self._terminal = ConnectionLost(reason, code=code)
        self._emit(RoomClosed(reason))
        self._close_subscriptions()
        self._started.set()

    def _close_subscriptions(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.close()

    def _dismiss(self) -> None:
        """Close for good, without reconnecting (the room asked this participant to leave)."""
        if self.connection is not None and not self.connection.closed:
            self.connection.close_soon()

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
            if self._terminal is not None:
                raise ConnectionLost(str(self._terminal), code=1006)
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
        on_behalf_of_id: str | None = None,
    ) -> AsyncIterator[ToolCallStream]:
        """A `room.invoke_tool` with a streamed input and/or output (see `ToolCallStream`)."""
        async with self._connection_or_raise().stream_call(
            toolkit,
            tool,
            arguments,
            input_stream=input_stream,
            participant_id=participant_id,
            on_behalf_of_id=on_behalf_of_id,
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
            self._emit(event)

    def _emit(self, event: Any) -> None:
        for subscription in list(self._subscriptions):
            if subscription._accepts(event):
                try:
                    subscription._send.send_nowait(event)
                except Exception:  # a full or closed subscription loses the event, not the room
                    pass


__all__ = [
    "DEFAULT_API_URL",
    "PERMANENT_HTTP_STATUSES",
    "RECONNECT_CLOSE_CODES",
    "Disconnected",
    "LocalParticipant",
    "Participant",
    "Reconnected",
    "RemoteParticipant",
    "RoomClient",
    "RoomClosed",
    "SubClient",
    "Subscription",
    "WebSocketClientProtocol",
    "meshagent_base_url",
    "resolve_protocol",
    "retry_delay",
    "websocket_room_url",
]
