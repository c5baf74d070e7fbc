"""`room.services`: the room's service controller (protocol/room-apis.md), as the official
0.56 `ServicesClient`.

`list()` validates the answer as the official client does: anything but a `json` answer of the
right shape, or a `services_json` item that is not a valid ServiceSpec, raises `RoomException`
with code 1100 (UNEXPECTED_RESPONSE_TYPE), "unexpected return type from services.list".
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..content import JsonContent
from ..rest.service_spec import ServiceSpec
from ..toolkits.services import (
    TOOLKIT,
    ListInput,
    RestartInput,
    ServicePortRuntimeState,
    ServiceRuntimeEvent,
    ServiceRuntimeState,
    ServiceRuntimeStatus,
    read_list_output,
)
from .calls import unexpected_response
from .participants import SubClient


class ListServicesResult(msgspec.Struct, kw_only=True):
    """`room.services.list()`: the room's services and, by service id, their runtime states."""

    services: list[ServiceSpec]
    service_states: dict[str, ServiceRuntimeState] = msgspec.field(default_factory=dict)


class ServicesClient(SubClient):
    """`room.services`: list the room's services with their runtime state, restart one."""

    async def list(self) -> ListServicesResult:
        """The services of the room plus what the service controller knows of each."""
        return services_from_list_answer(await self.room.invoke(TOOLKIT, "list", msgspec.to_builtins(ListInput())))

    async def restart(self, *, service_id: str) -> None:
        """Restart a managed room service by its id (the answer is not checked, as officially;
        an `error` answer raises)."""
        await self.room.invoke(TOOLKIT, "restart", msgspec.to_builtins(RestartInput(service_id=service_id)))


def services_from_list_answer(response: Any) -> ListServicesResult:
    """The official client's reading of a `list` answer; code 1100 when it does not fit."""
    if not isinstance(response, JsonContent) or not isinstance(response.json, dict):
        raise unexpected_response(TOOLKIT, "list")
    try:
        services, states = read_list_output(response.json)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise unexpected_response(TOOLKIT, "list") from None
    return ListServicesResult(services=services, service_states={state.service_id: state for state in states})


__all__ = [
    "ListServicesResult",
    "ServicePortRuntimeState",
    "ServiceRuntimeEvent",
    "ServiceRuntimeState",
    "ServiceRuntimeStatus",
    "ServicesClient",
    "services_from_list_answer",
]
