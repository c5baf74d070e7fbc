"""Running room services (protocol/webhooks.md §8): when a room's session starts, the enabled
services of its project (stored with room name "") and of the room itself are brought in; when
the session ends they are stopped.

* **external** (`external.url`): each `meshagent` endpoint of its ports is called into the room
  (a signed `room.call` to the URL joined with the endpoint's path, a token for the endpoint's
  identity and scope); a spec without ports is called at the URL itself, for an identity named
  after the service. One attempt per session; a refusal is recorded (`last_start_error`).
* **local** (a container with a `command` and an empty `image`): run as a child process and
  supervised (`local_service`).
* **a container image**: not run; its state says so (`failed`, `last_start_error`).

Nothing a service does (a refused call, a command that will not start, a spec the server
cannot honour) stops the room or the server: it is recorded in the service's state, logged, and
written to the room's developer log.

A session where only participants that services brought in are left (their tokens carry
`SERVICE_CLAIM`) for `service_only_grace` seconds is ended: they are disconnected, so that a
service in a room does not keep it (and itself) running forever after the last person left.
Server shutdown stops every child process (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

import trio

from meshagent_core import ErrorCode, RoomException
from meshagent_core.rest.service_spec import ServiceSpec
from meshagent_core.toolkits.services import ServiceRuntimeState

from ..config import ServerConfig
from ..control import ControlPlane
from ..control.sessions import TERMINATED_CLOSE
from .local_service import LocalService, is_local
from .service_calls import SERVICE_CLAIM, ServiceSession, call_endpoint, describe, join_url, lifecycle, meshagent_endpoints
from .service_state import NORMAL, ROOM_STATE_KEY, ServiceStatus, stored_specs

if TYPE_CHECKING:
    from ..rooms.room import Room

log = logging.getLogger("meshagent_trio.server.services")

#: Seconds a session may have only service participants left before it is ended.
SERVICE_ONLY_GRACE = 10.0
#: Seconds between looks at who is left in a room.
WATCH_INTERVAL = 0.5
#: Seconds a new session waits for the services of the previous one to be stopped.
PREVIOUS_STOP_WAIT = 15.0
#: The reason given to service participants when their session is ended.
SERVICE_ONLY_REASON = "only room services were left in the room"

IMAGE_NOT_RUN = "container images are not run by the local server yet (a container with a command and an empty image runs as a local process)"


class RoomServiceSet:
    """The services of one room session (`room.state["services"]` while it runs)."""

    def __init__(self, room: "Room", previous: "RoomServiceSet | None") -> None:
        self.room = room
        self.previous = previous
        self.cancel_scope = trio.CancelScope()
        self.stopped = trio.Event()
        #: set once the services are read from the store (each has a status from then on)
        self.loaded = trio.Event()
        self.statuses: dict[str, ServiceStatus] = {}
        self.local: dict[str, LocalService] = {}
        self.session: ServiceSession | None = None
        self._nursery: trio.Nursery | None = None

    # --- what the `services` toolkit asks (service_state.RoomServiceRegistry) --------------

    async def ready(self) -> None:
        await self.loaded.wait()

    def state(self, service_id: str) -> ServiceRuntimeState | None:
        status = self.statuses.get(service_id)
        return status.wire() if status is not None else None

    async def restart(self, spec: ServiceSpec) -> None:
        if not is_local(spec.container):
            raise RoomException(f"{describe(spec)} is not run by the local server and cannot be restarted", code=ErrorCode.SERVICE_RESTART_NOT_ALLOWED)
        if not spec.enabled:
            raise RoomException(f"{describe(spec)} is disabled", code=ErrorCode.SERVICE_RESTART_NOT_ALLOWED)
        if self._nursery is None or self.session is None or self.cancel_scope.cancel_called:
            raise RoomException(f"the services of room {self.room.name!r} are not running", code=ErrorCode.INVALID_STATE)
        runner = self.local.get(spec.id or "")
        if runner is not None:
            await runner.restart()
        else:  # stored after the session started: start it now
            self._start_local(spec, self.statuses.setdefault(spec.id or "", ServiceStatus(service_id=spec.id or "")))

    # --- running -----------------------------------------------------------------------

    async def run(self, control: ControlPlane, grace: float) -> None:
        """Bring the services in, supervise them, until the set is cancelled."""
        try:
            with self.cancel_scope:
                room = self.room
                specs = await stored_specs(control, room.project_id, room.name)
                for spec in specs:
                    self.statuses[spec.id or ""] = ServiceStatus(service_id=spec.id or "", state="starting" if spec.enabled else "disabled")
                self.loaded.set()
                self.session = ServiceSession(room, await control.webhooks.project_secret(room.project_id), await _session_id(control, room))
                if self.previous is not None:
                    with trio.move_on_after(PREVIOUS_STOP_WAIT):
                        await self.previous.stopped.wait()
                    self.previous = None
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._watch, grace)
                    for spec in specs:
                        self._start(spec)
        except Exception:
            log.exception("the services of room %s failed", self.room.name)
        finally:
            self.loaded.set()
            for status in self.statuses.values():
                if status.state != "disabled":
                    status.stopped()
            self.stopped.set()

    def _start(self, spec: ServiceSpec) -> None:
        assert self.session is not None and self._nursery is not None
        status = self.statuses[spec.id or ""]
        if not spec.enabled:
            status.state = "disabled"
        elif spec.external is not None and spec.external.url:
            status.state = "starting"
            self._nursery.start_soon(self._call_external, spec, status)
        elif spec.container is not None and spec.container.image:
            status.start_failed(IMAGE_NOT_RUN, state="failed")
            lifecycle(self.session, spec, "warning", IMAGE_NOT_RUN)
        elif spec.container is not None and not spec.container.command:
            message = "a container without an image runs as a local process, which needs container.command"
            status.start_failed(message, state="failed")
            lifecycle(self.session, spec, "warning", message)
        elif spec.container is not None:
            self._start_local(spec, status)
        else:
            status.state = "idle"
            status.event(NORMAL, "NothingToRun", "the service has neither an external URL nor a container")

    def _start_local(self, spec: ServiceSpec, status: ServiceStatus) -> None:
        assert self.session is not None and self._nursery is not None
        runner = self.local[spec.id or ""] = LocalService(self.session, spec, status)
        self._nursery.start_soon(runner.run)

    async def _call_external(self, spec: ServiceSpec, status: ServiceStatus) -> None:
        assert self.session is not None and spec.external is not None and spec.external.url
        base = spec.external.url
        calls = [(endpoint.meshagent.identity, join_url(base, endpoint.path), endpoint.meshagent.api) for _, endpoint in meshagent_endpoints(spec.ports) if endpoint.meshagent]
        if not spec.ports:
            calls = [(spec.metadata.name, base, None)]
        accepted = True
        try:
            for identity, url, api in calls:
                accepted &= await call_endpoint(self.session, spec, status, identity=identity, url=url, api=api)
        except Exception as error:  # recorded; the room's other services go on
            log.exception("room %s: calling %s failed", self.room.name, describe(spec))
            status.start_failed(f"calling the service failed: {type(error).__name__}: {error}")
            accepted = False
        status.state = "running" if accepted else "failed"

    async def _watch(self, grace: float) -> None:
        """End the session once only service participants have been left for `grace` seconds."""
        since: float | None = None
        while True:
            await trio.sleep(WATCH_INTERVAL)
            participants = list(self.room.participants.values())
            if participants and all(SERVICE_CLAIM in (participant.token.extra_payload or {}) for participant in participants):
                now = trio.current_time()
                since = now if since is None else since
                if now - since >= grace:
                    log.info("room %s: %s; ending its session", self.room.name, SERVICE_ONLY_REASON)
                    for participant in participants:
                        participant.evict(TERMINATED_CLOSE[0], SERVICE_ONLY_REASON)
                    since = None
            else:
                since = None


async def _session_id(control: ControlPlane, room: "Room") -> str | None:
    try:
        sessions = await control.sessions.active_sessions(room.project_id)
    except Exception:
        log.exception("could not read the sessions of room %s", room.name)
        return None
    return next((session.id for session in sessions if session.room_name == room.name), None)


class RoomServices:
    """The services of every room: `run` in the server's nursery; `room_started` and
    `room_ended` are called by the server as sessions start and end."""

    def __init__(self, config: ServerConfig, control: ControlPlane, room: Callable[[str, str], "Room"]) -> None:
        self.config = config
        self.control = control
        self.room = room  # (project_id, room name) -> Room
        #: seconds a session with only service participants left lasts (see the module docstring)
        self.service_only_grace = SERVICE_ONLY_GRACE
        self._nursery: trio.Nursery | None = None
        self._running: dict[tuple[str, str], RoomServiceSet] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None

    def room_started(self, room: "Room") -> None:
        """A session of `room` started (its first participant joined)."""
        if self._nursery is None or room.control is None:
            return
        key = (room.project_id, room.name)
        previous = self._running.pop(key, None)
        if previous is not None:  # its end was not reported; it ends now
            previous.cancel_scope.cancel()
        services = self._running[key] = RoomServiceSet(room, previous)
        room.state[ROOM_STATE_KEY] = services
        self._nursery.start_soon(self._serve, key, services)

    def room_ended(self, room: "Room") -> None:
        """The session of `room` ended (its last participant left, or it was terminated)."""
        services = self._running.pop((room.project_id, room.name), None)
        if services is not None:
            services.cancel_scope.cancel()

    async def _serve(self, key: tuple[str, str], services: RoomServiceSet) -> None:
        try:
            await services.run(self.control, self.service_only_grace)
        finally:
            if self._running.get(key) is services:
                del self._running[key]


__all__ = ["IMAGE_NOT_RUN", "RoomServiceSet", "RoomServices", "SERVICE_ONLY_GRACE"]
