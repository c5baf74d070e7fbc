"""What the runners of room services share (protocol/webhooks.md §8): the session they run in,
the hand-off `room.call` of an endpoint, and their lines in the room's developer log.

Every token minted for a service (the `room.call` of its endpoints, the `MESHAGENT_TOKEN` and
`token` variables of a local one) carries the claim `SERVICE_CLAIM` = the service's id: that is
how the server tells the participants a service brought in from the ones who came on their own
(a session where only the former are left ends; see `room_services`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshagent_core.rest.service_spec import EndpointSpec, PortSpec, ServiceSpec
from meshagent_core.tokens import ApiScope

from ..toolkits.developer import DeveloperLogs
from .delivery import DeliveryFailed
from .room_call import call_into_room
from .service_state import NORMAL, ServiceStatus

if TYPE_CHECKING:
    from ..rooms.room import Room

log = logging.getLogger("meshagent_trio.server.services")

#: The JWT claim naming the service a token was minted for.
SERVICE_CLAIM = "meshagent_room_service"


@dataclass
class ServiceSession:
    """A room's session, as its services see it."""

    room: "Room"
    #: the project's webhook secret (signs the hand-off calls; `MESHAGENT_WEBHOOK_SECRET`)
    secret: str | None
    #: the session's id (`MESHAGENT_SESSION_ID`), when the control plane knows it
    session_id: str | None = None


def service_claims(spec: ServiceSpec) -> dict[str, Any]:
    return {SERVICE_CLAIM: spec.id or spec.metadata.name}


def meshagent_endpoints(ports: list[PortSpec] | None) -> list[tuple[PortSpec, EndpointSpec]]:
    """The endpoints of `ports` that take a MeshAgent hand-off (`meshagent` set), in order."""
    return [(port, endpoint) for port in ports or () for endpoint in port.endpoints if endpoint.meshagent is not None]


def join_url(base: str, path: str) -> str:
    """`base` with `path` appended (a base path is kept: `http://h/a` + `/b` is `http://h/a/b`)."""
    if not path:
        return base
    return base.rstrip("/") + "/" + path.lstrip("/")


def describe(spec: ServiceSpec) -> str:
    return f"service {spec.metadata.name!r} ({spec.id})"


def developer_log(room: "Room", level: str, spec: ServiceSpec, message: str, **extra: Any) -> None:
    """A line in the room's developer log (`developer.logs` streams) about a service."""
    data = {"message": message, "extra": {"service_id": spec.id, "service": spec.metadata.name, **extra}}
    room.toolkit_state("developer", DeveloperLogs).publish(level, data)


def lifecycle(session: ServiceSession, spec: ServiceSpec, level: str, message: str) -> None:
    """A lifecycle line: the developer log and the Python logger."""
    developer_log(session.room, level, spec, message)
    log.log(logging.WARNING if level in ("warning", "error") else logging.INFO, "room %s: %s: %s", session.room.name, describe(spec), message)


async def call_endpoint(session: ServiceSession, spec: ServiceSpec, status: ServiceStatus, *, identity: str, url: str, api: dict[str, Any] | None) -> bool:
    """Call `identity` into the room through the endpoint at `url` (a signed `room.call` with a
    fresh token); records the outcome on `status`. True when the endpoint accepted the call."""
    try:
        scope = ApiScope.from_json(api) if api is not None else None
        await call_into_room(session.room, name=identity, url=url, arguments={}, api=scope, claims=service_claims(spec))
    except (DeliveryFailed, ValueError) as failure:
        status.start_failed(f"room.call of {identity!r} to {url} failed: {failure}")
        lifecycle(session, spec, "warning", f"could not call {identity!r} into the room at {url}: {failure}")
        return False
    status.event(NORMAL, "Called", f"called {identity!r} into the room at {url}")
    lifecycle(session, spec, "info", f"called {identity!r} into the room at {url}")
    return True


__all__ = [
    "SERVICE_CLAIM",
    "ServiceSession",
    "call_endpoint",
    "describe",
    "developer_log",
    "join_url",
    "lifecycle",
    "meshagent_endpoints",
    "service_claims",
]
