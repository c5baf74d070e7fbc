"""What the local server knows about each room service while a room runs (protocol/webhooks.md
§8): one `ServiceStatus` per service, shown by the `services` toolkit's `list` in the official
`ServiceRuntimeState` shape, and the per-room registry the toolkit finds in `room.state`.

States (free-form on the wire; these are the ones this server uses):

| state | meaning |
|---|---|
| `starting` | a local process was started; its endpoints are not called into the room yet |
| `running` | the process runs (local), or the endpoints accepted their `room.call` (external) |
| `restarting` | the process exited; it starts again at `restart_scheduled_at` |
| `failed` | it cannot run as specified (`last_start_error` says why), or a call was refused |
| `stopped` | the room's session ended (or it never started in this session) |
| `disabled` | the spec has `enabled: false` |
| `idle` | nothing to run: no external URL and no container |

Events are bounded (`MAX_EVENTS`, the oldest dropped); an event equal in type, reason and
message to a recorded one is counted on it (`count`, `last_timestamp`) instead of repeated.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

import msgspec

from meshagent_core.rest.service_spec import ServiceSpec, read_service_spec
from meshagent_core.toolkits.services import ServicePortRuntimeState, ServiceRuntimeEvent, ServiceRuntimeState

from ..control.common import NotFound
from ..control.services import PROJECT_SCOPE

if TYPE_CHECKING:
    from ..control import ControlPlane

#: The key of a room's service registry in `Room.state`.
ROOM_STATE_KEY = "services"
#: Events kept per service.
MAX_EVENTS = 50
#: Characters of an event message or start error kept.
MAX_MESSAGE = 2000

NORMAL = "Normal"
WARNING = "Warning"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class ServiceStatus(ServiceRuntimeState, kw_only=True):
    """The runtime record of one service in one room session: the official
    `ServiceRuntimeState`, kept up to date by the methods below."""

    state: str = "stopped"

    @property
    def ports(self) -> list[ServicePortRuntimeState]:
        return self.status.ports

    @ports.setter
    def ports(self, ports: list[ServicePortRuntimeState]) -> None:
        self.status.ports = ports

    def event(self, type: str, reason: str, message: str) -> None:
        """Record an event (counted on an equal earlier one)."""
        now = time.time()
        message = _clip(message)
        for event in self.events:
            if (event.type, event.reason, event.message) == (type, reason, message):
                event.count += 1
                event.last_timestamp = now
                return
        self.events.append(ServiceRuntimeEvent(type=type, reason=reason, message=message, first_timestamp=now, last_timestamp=now))
        del self.events[:-MAX_EVENTS]

    def start_failed(self, error: str, *, state: str | None = None) -> None:
        """It could not be started (or called into the room) as specified."""
        self.last_start_error = _clip(error)
        self.last_start_error_at = time.time()
        if state is not None:
            self.state = state
        self.event(WARNING, "StartFailed", error)

    def process_started(self, pid: int) -> None:
        self.state = "starting"
        self.container_id = str(pid)
        self.started_at = time.time()
        self.restart_scheduled_at = None
        self.event(NORMAL, "Started", f"started process {pid}")

    def process_exited(self, code: int) -> None:
        self.last_exit_code = code
        self.last_exit_at = time.time()
        self.container_id = None
        for port in self.ports:
            port.liveness_status = "not_ready" if port.liveness else "not_configured"
        self.event(NORMAL if code == 0 else WARNING, "Exited", f"the process exited with status {code}")

    def stopped(self) -> None:
        """The room's session ended: nothing runs any more."""
        self.state = "stopped"
        self.container_id = None
        self.restart_scheduled_at = None

    def wire(self) -> ServiceRuntimeState:
        """A copy of the state as `services.list` sends it."""
        return msgspec.convert(msgspec.to_builtins(self), ServiceRuntimeState)


class RoomServiceRegistry(Protocol):
    """What the `services` toolkit asks of a room's running services (`room.state[ROOM_STATE_KEY]`)."""

    async def ready(self) -> None:
        """Returns once every service of the session has a state (they are read from the store)."""

    def state(self, service_id: str) -> ServiceRuntimeState | None:
        """The runtime state of a service of this session (None: not run in it)."""

    async def restart(self, spec: ServiceSpec) -> None:
        """Restart the service now; `RoomException` 7002 when it cannot be restarted."""


async def stored_specs(control: "ControlPlane", project_id: str, room_name: str) -> list[ServiceSpec]:
    """The services of a room as stored: the project's own, then the room's. A stored spec that
    no longer reads as a ServiceSpec is skipped (it was checked when it was stored)."""
    specs: list[ServiceSpec] = []
    for scope in (PROJECT_SCOPE, room_name):
        try:
            stored = await control.services.list(project_id, scope)
        except NotFound:  # a project this server does not have
            stored = []
        for item in stored:
            try:
                specs.append(read_service_spec(item))
            except (msgspec.ValidationError, ValueError, TypeError):
                continue
    return specs


__all__ = ["MAX_EVENTS", "NORMAL", "ROOM_STATE_KEY", "RoomServiceRegistry", "ServiceStatus", "WARNING", "stored_specs"]
