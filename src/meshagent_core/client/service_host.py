"""`ServiceHost`: serves agents that rooms call in (protocol/webhooks.md §4), as the official
0.56 class of that name, on every event loop (an adapter binds its `RoomClient`:
`meshagent_trio.ServiceHost`, `meshagent_anyio.ServiceHost`).

Register a class per path (`@host.path("/agent")` or `host.add_path(...)`); a `room.call`
webhook to that path is answered `200 {"ok": true}` at once, and in the background the host
joins `data.room_url` with `data.token`, makes `cls()` and awaits `start(room=room)`. The call
lasts until a `dismiss` message arrives (from any participant: the room client then closes), the
room closes, or the host stops; then `stop()` is awaited and the participant leaves. A class
that is a `Toolkit` (or a `Toolkit` instance) is hosted in the room instead
(`room.agents.host(toolkit)`) for as long. A failed call is logged; the host goes on.

HTTP surface: `GET /` → `{"ok": true}`; `GET /.well-known/meshagent-service.json` → the
`ServiceSpec` describing the host, every field written (nulls included) as the official host
writes it; `POST <path>` (or `GET <path>` with the envelope in the `Meshagent-Webhook` header)
→ the call; a `GET <path>` WebSocket upgrade → the reverse form (the room dialled us; see
`meshagent_core.client.answering`). Signatures are checked only when `webhook_secret` is given.

Differences from the official host, all deliberate: without a port (and no `MESHAGENT_PORT`)
the host listens on a port the OS chooses (`bound_port`; the official host falls back to
8080), still advertised as `"*"`; the host enables messaging for each call's participant, so that
others see it present and can send it a `dismiss`; `get_service_spec(environment=)`
takes a `{name: value}` mapping (the official one fails on it) or a list of
`EnvironmentVariable`; a path is refused when it is taken or malformed.
"""

from __future__ import annotations

import logging
import os
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, TypeVar

import msgspec

from ..errors import RoomException
from ..rest.service_spec import (
    AgentSpec,
    ContainerSpec,
    EndpointSpec,
    EnvironmentVariable,
    MeshagentEndpointSpec,
    PortSpec,
    ServiceMetadata,
    ServiceSpec,
)
from ..tokens import ApiScope
from ..webhooks import CallEvent
from .answering import STOP_TIMEOUT, CallServer, CallTracker, answer_reverse, dialled_room_client, until_released
from .http_server import HttpLimits, HttpRequest, HttpResponse, Upgrade, error_response, json_response
from .tools import Toolkit
from .webhook_server import (
    MAX_WEBHOOK_BODY,
    WebhookRefused,
    check_path,
    check_port,
    envelope_event,
    webhook_envelope,
)

if TYPE_CHECKING:
    from .backend import ByteStream
    from .room import RoomClient

log = logging.getLogger("meshagent_core.client.service_host")

WELL_KNOWN_SERVICE_PATH = "/.well-known/meshagent-service.json"
#: The official host's name when none is given.
DEFAULT_SERVICE_NAME = "<YOUR_SERVICE_NAME>"
DEFAULT_IDENTITY = "agent"

T = TypeVar("T")


class Portable(Protocol):
    """What a registered class makes: `await start(room=room)` when a call joins a room,
    `await stop()` when it ends."""

    async def start(self, *, room: "RoomClient") -> None: ...

    async def stop(self) -> None: ...


class ServicePath:
    """One registered path: what answers its calls, and the identity and permissions the
    spec asks the platform to mint its tokens with."""

    def __init__(
        self, *, path: str, cls: Any, identity: str | None = None, permissions: ApiScope | None = None
    ) -> None:
        self.path = path
        self.cls = cls
        self.identity = identity
        self.permissions = permissions

    @property
    def is_toolkit(self) -> bool:
        cls = self.cls
        return isinstance(cls, Toolkit) or (isinstance(cls, type) and issubclass(cls, Toolkit))

    def toolkit(self) -> Toolkit:
        return self.cls if isinstance(self.cls, Toolkit) else self.cls()


class ServiceHost(CallServer):
    """Serves registered agents to the rooms that call them (see the module docstring). Serve it
    with `async with host:` (`start()`/`stop()` are the same two halves, for the same task), or
    `await host.run()` until SIGTERM, SIGABRT or SIGINT."""

    kind = "service host"

    def __init__(
        self,
        *,
        host: str | None = None,
        webhook_secret: str | None = None,
        port: int | None = None,
        name: str | None = None,
        limits: HttpLimits | None = None,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.host = os.getenv("MESHAGENT_HOST", "0.0.0.0") if host is None else host
        self.webhook_secret = webhook_secret
        if port is None:
            configured = os.getenv("MESHAGENT_PORT")
            if configured is not None:
                try:
                    port = int(configured)
                except ValueError:
                    raise ValueError(f"MESHAGENT_PORT must be a port number, not {configured!r}") from None
        self._auto_port = port is None
        self.port = None if port is None else check_port(port)
        self.name = name
        self.paths: list[ServicePath] = []
        #: Agents the service advertises in its spec.
        self.agents: list[AgentSpec] = []
        if not stop_timeout > 0:
            raise ValueError("stop_timeout must be positive")
        self.stop_timeout = stop_timeout
        self.limits = limits or HttpLimits(max_body=MAX_WEBHOOK_BODY)
        self._task_group: Any = None
        self._init_running()

    # --- registering -------------------------------------------------------------------------

    def path(
        self, path: str, *, identity: str | None = None, permissions: ApiScope | None = None
    ) -> Callable[[T], T]:
        """A class decorator: `@host.path("/agent")` registers the class for `path`."""

        def decorate(cls: T) -> T:
            self.add_path(path, cls=cls, identity=identity, permissions=permissions)
            return cls

        return decorate

    def add_path(
        self, path: str, *, cls: Any, identity: str | None = None, permissions: ApiScope | None = None
    ) -> None:
        """Register `cls` (a class whose instances have `start(room=)` and `stop()`, a `Toolkit`
        subclass, or a `Toolkit`) for calls to `path`."""
        check_path(path)
        if path in ("/", WELL_KNOWN_SERVICE_PATH):
            raise ValueError(f"{path!r} is the host's own path")
        if self.has_path(path):
            raise ValueError(f"the path {path!r} is registered already")
        if not (isinstance(cls, Toolkit) or isinstance(cls, type)):
            raise TypeError(f"cls must be a class or a Toolkit, not {type(cls).__name__}")
        if permissions is not None and not isinstance(permissions, ApiScope):
            raise TypeError(f"permissions must be an ApiScope, not {type(permissions).__name__}")
        self.paths.append(ServicePath(path=path, cls=cls, identity=identity, permissions=permissions))

    def has_path(self, path: str) -> bool:
        return any(entry.path == path for entry in self.paths)

    def _entry(self, path: str) -> ServicePath | None:
        for entry in self.paths:
            if entry.path == path:
                return entry
        return None

    # --- the spec ----------------------------------------------------------------------------

    def get_service_spec(
        self,
        *,
        image: str,
        command: str | None = None,
        environment: Mapping[str, str] | list[EnvironmentVariable] | None = None,
    ) -> ServiceSpec:
        """The `ServiceSpec` of this host: one HTTP port (the configured one, or `"*"` without)
        whose endpoints are the registered paths, with `self.agents`."""
        if isinstance(environment, Mapping):
            environment = [EnvironmentVariable(name=name, value=value) for name, value in environment.items()]
        if self._auto_port or self.port == 0:
            num: Any = self.bound_port if self.port == 0 and self.bound_port is not None else "*"
        else:
            num = self.port
        endpoints = [
            EndpointSpec(
                path=entry.path,
                meshagent=MeshagentEndpointSpec(
                    identity=entry.identity if entry.identity is not None else DEFAULT_IDENTITY,
                    api=None if entry.permissions is None else entry.permissions.model_dump(mode="json"),
                ),
            )
            for entry in self.paths
        ]
        return ServiceSpec(
            version="v1",
            kind="Service",
            metadata=ServiceMetadata(name=self.name if self.name is not None else DEFAULT_SERVICE_NAME),
            container=ContainerSpec(image=image, command=command, environment=environment),
            agents=list(self.agents),
            ports=[PortSpec(num=num, type="http", endpoints=endpoints)],
        )

    # --- requests ----------------------------------------------------------------------------

    async def _handle(self, request: HttpRequest) -> HttpResponse | Upgrade:
        if request.method in ("GET", "HEAD") and request.path == "/":
            return json_response({"ok": True})
        if request.method in ("GET", "HEAD") and request.path == WELL_KNOWN_SERVICE_PATH:
            return json_response(msgspec.to_builtins(self.get_service_spec(image="")))
        entry = self._entry(request.path)
        if entry is None:
            return error_response(404, "Not Found")
        if request.method not in ("GET", "POST"):
            return HttpResponse(405, b"405: Method Not Allowed", headers=[("allow", "GET, POST")])
        try:
            envelope = webhook_envelope(request, secret=self.webhook_secret, validate=self.webhook_secret is not None)
            if request.wants_upgrade and envelope.get("event") != CallEvent.name:
                raise WebhookRefused(400, "only a room.call webhook may open a WebSocket")
            event = envelope_event(envelope)
        except WebhookRefused as refused:
            return refused.response()
        if not isinstance(event, CallEvent):
            return json_response({"ok": True})  # other events are accepted and ignored
        calls = self._calls
        if calls is None or calls.stopping.is_set():
            return error_response(503, "the service host is stopping")
        if request.wants_upgrade:

            async def takeover(stream: "ByteStream", request_bytes: bytes) -> None:
                await self._answer_reverse(entry, stream, request_bytes, event)

            return Upgrade(takeover)
        calls.enter()  # counted from now, so a stop that follows at once waits for it
        self._task_group.start_soon(self._answer, entry, event)
        return json_response({"ok": True})

    async def _answer(self, entry: ServicePath, event: CallEvent) -> None:
        calls = self._calls
        assert calls is not None
        try:
            async with dialled_room_client(self.room_client_class, event) as room:
                await self._serve(entry, room, calls)
        except Exception:
            log.exception("the call to %s from room %s failed", entry.path, event.room_name)
        finally:
            calls.leave()

    async def _answer_reverse(self, entry: ServicePath, stream: "ByteStream", request_bytes: bytes, event: CallEvent) -> None:
        calls = self._calls
        assert calls is not None

        async def serve(room: "RoomClient") -> None:
            await self._serve(entry, room, calls)

        await answer_reverse(self.backend, self.room_client_class, stream, request_bytes, event, calls, serve, f"to {entry.path}")

    async def _serve(self, entry: ServicePath, room: "RoomClient", calls: CallTracker) -> None:
        """The call in `room`: until it is dismissed, the room closes, or the host stops."""
        try:
            # Presence is how others find the agent (to dismiss it, say): enabled for every
            # call, as the ecosystem's agents do themselves.
            await room.messaging.enable()
        except RoomException as error:
            log.warning("messaging could not be enabled for the call to %s: %s", entry.path, error)
        if entry.is_toolkit:
            toolkit = entry.toolkit()
            async with room.agents.host(toolkit):
                outcome = await until_released(room, calls.stopping)
            log.info("toolkit %s left room %s (%s)", toolkit.name, room.room_name, outcome)
            return
        agent = entry.cls()
        await agent.start(room=room)
        try:
            outcome = await until_released(room, calls.stopping)
            log.info("%s leaves room %s (%s)", type(agent).__name__, room.room_name, outcome)
        finally:
            with self.backend.shielded(self.stop_timeout):
                await agent.stop()

    # --- running -----------------------------------------------------------------------------

    def _listen_address(self) -> tuple[str, int]:
        return self.host, 0 if self.port is None else self.port

    async def _open(self, stack: AsyncExitStack) -> None:
        self._task_group = await stack.enter_async_context(self.backend.open_task_group())
        stack.callback(self._task_group.cancel_scope.cancel)

    def _announce(self) -> None:
        for entry in self.paths:
            log.info("service host on http://%s:%s%s -> %s", self.host, self.bound_port, entry.path, getattr(entry.cls, "__name__", entry.cls))


__all__ = [
    "DEFAULT_SERVICE_NAME",
    "WELL_KNOWN_SERVICE_PATH",
    "Portable",
    "ServiceHost",
    "ServicePath",
]
