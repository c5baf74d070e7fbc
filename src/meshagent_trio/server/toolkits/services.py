"""The `services` toolkit: the room's service controller (protocol/room-apis.md; what runs
is in protocol/webhooks.md §8).

* `list` (grant `services` with `list`): every service of the room as stored, the project's own
  (room name "") first, then the room's, each as ServiceSpec JSON text, with one runtime state
  per service. A service the current session does not run (stored after it started, or the
  room has no session) shows state `stopped`; a disabled one `disabled`.
* `restart` `{service_id}` (grant `services`): stops a local service's process and starts it
  at once (one stored after the session started is started now). 7001 SERVICE_NOT_FOUND for an
  id that is not one of the room's services; 7002 SERVICE_RESTART_NOT_ALLOWED for one the
  local server does not run (external, a container image, disabled). Answer: `empty`.
"""

from __future__ import annotations

import msgspec
import trio

from meshagent_core import EmptyContent, ErrorCode, JsonContent, RoomException
from meshagent_core.rest.service_spec import ServiceSpec
from meshagent_core.toolkits.services import ListInput, RestartInput, ServiceRuntimeState, list_output

from ..services.service_state import ROOM_STATE_KEY, RoomServiceRegistry, stored_specs
from ..toolkit import Toolkit, ToolCall, permission_denied

toolkit = Toolkit("services")

#: Seconds `list` waits for a session that just started to have read its services.
LOAD_WAIT = 5.0


def _check_grant(call: ToolCall, *, listing: bool) -> None:
    grant = call.scope.services if call.scope is not None else None
    if grant is None:
        raise permission_denied("the token does not grant the services API")
    if listing and not grant.list:
        raise permission_denied("the token does not allow listing services (services.list)")


async def _specs(call: ToolCall) -> list[ServiceSpec]:
    control = call.room.control
    return [] if control is None else await stored_specs(control, call.room.project_id, call.room.name)


def _registry(call: ToolCall) -> RoomServiceRegistry | None:
    return call.room.state.get(ROOM_STATE_KEY)


def _not_running(spec: ServiceSpec) -> ServiceRuntimeState:
    return ServiceRuntimeState(service_id=spec.id or "", state="stopped" if spec.enabled else "disabled")


@toolkit.tool("list")
async def list_services(call: ToolCall) -> JsonContent:
    _check_grant(call, listing=True)
    if not isinstance(call.arguments, EmptyContent):  # the official client sends `{}`
        call.json_arguments(ListInput)
    registry = _registry(call)
    if registry is not None:
        with trio.move_on_after(LOAD_WAIT):
            await registry.ready()
    specs = await _specs(call)
    states = [(registry.state(spec.id or "") if registry is not None else None) or _not_running(spec) for spec in specs]
    return JsonContent(json=msgspec.to_builtins(list_output(specs, states)))


@toolkit.tool("restart")
async def restart(call: ToolCall) -> None:
    _check_grant(call, listing=False)
    wanted = call.json_arguments(RestartInput)
    spec = next((spec for spec in await _specs(call) if spec.id == wanted.service_id), None)
    if spec is None:
        raise RoomException(f"service {wanted.service_id!r} is not a service of room {call.room.name!r}", code=ErrorCode.SERVICE_NOT_FOUND)
    registry = _registry(call)
    if registry is None:
        raise RoomException(f"the services of room {call.room.name!r} are not running", code=ErrorCode.INVALID_STATE)
    await registry.restart(spec)
