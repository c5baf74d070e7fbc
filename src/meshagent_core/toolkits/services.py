"""`services` toolkit contract (protocol/room-apis.md): the room's service controller.

| tool | input | answer |
|---|---|---|
| `list` | `ListInput` (`{}`) | `json` `ListOutput` — `{"services_json": [str], "service_states": [ServiceRuntimeState]}` |
| `restart` | `RestartInput` (`{"service_id"}`) | not checked by the official client (`empty`) |

Each `services_json` item is a ServiceSpec rendered as a JSON **string**
(`service_json_string`); the official client reads each strictly (`meshagent_core.rest.
service_spec`) and fails with 1100 on an invalid one. Both lists default to `[]`; unknown keys
of the answer and of a state are ignored, as officially. Timestamps are epoch seconds (floats).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..jsondepth import decode_bounded
from ..rest.service_spec import ServiceSpec, read_service_spec, service_json

TOOLKIT = "services"

PositiveInt = Annotated[int, Meta(gt=0)]
LivenessStatus = Literal["not_configured", "not_ready", "ready"]


class ListInput(msgspec.Struct):
    """`list`: no fields."""


class RestartInput(msgspec.Struct, kw_only=True):
    """`restart`: the id of the service to restart."""

    service_id: str


class ServiceRuntimeEvent(msgspec.Struct, kw_only=True):
    """Something that happened to a service (repeats of the same event are counted)."""

    type: str
    reason: str
    message: str
    count: int = 1
    first_timestamp: float
    last_timestamp: float


class ServicePortRuntimeState(msgspec.Struct, kw_only=True):
    """A port of a running service and its liveness check (`num` `"*"`: every port)."""

    num: Literal["*"] | PositiveInt
    liveness: str | None = None
    liveness_status: LivenessStatus = "not_configured"
    last_checked_at: float | None = None
    last_error: str | None = None


class ServiceRuntimeStatus(msgspec.Struct, kw_only=True):
    ports: list[ServicePortRuntimeState] = msgspec.field(default_factory=list)


class ServiceRuntimeState(msgspec.Struct, kw_only=True):
    """What the service controller knows about one service (the official `ServiceRuntimeState`)."""

    service_id: str
    #: e.g. "running", "starting", "restarting", "stopped", "failed" (free-form on the wire)
    state: str
    container_id: str | None = None
    restart_scheduled_at: float | None = None
    started_at: float | None = None
    restart_count: int = 0
    last_exit_code: int | None = None
    last_exit_at: float | None = None
    last_start_error: str | None = None
    last_start_error_at: float | None = None
    status: ServiceRuntimeStatus = msgspec.field(default_factory=ServiceRuntimeStatus)
    events: list[ServiceRuntimeEvent] = msgspec.field(default_factory=list)


class ListOutput(msgspec.Struct, kw_only=True):
    """The `list` answer."""

    services_json: list[str] = msgspec.field(default_factory=list)
    service_states: list[ServiceRuntimeState] = msgspec.field(default_factory=list)


def service_json_string(spec: ServiceSpec) -> str:
    """A `services_json` item: the spec as JSON text, every key written (nulls included), as the
    official `model_dump_json` writes it."""
    return msgspec.json.encode(service_json(spec)).decode()


def list_output(services: list[ServiceSpec], states: list[ServiceRuntimeState]) -> ListOutput:
    """The `list` answer for these services and states."""
    return ListOutput(services_json=[service_json_string(spec) for spec in services], service_states=list(states))


def read_list_output(value: Any) -> tuple[list[ServiceSpec], list[ServiceRuntimeState]]:
    """A `list` answer's JSON read as the official client reads it: the specs (each JSON string
    decoded and validated strictly) and the states; `msgspec.ValidationError` (or
    `msgspec.DecodeError` for a string that is not JSON) when anything does not fit."""
    output = msgspec.convert(value, ListOutput, strict=False)
    services = [read_service_spec(decode_bounded(text)) for text in output.services_json]
    return services, output.service_states


__all__ = [
    "TOOLKIT",
    "ListInput",
    "ListOutput",
    "LivenessStatus",
    "RestartInput",
    "ServicePortRuntimeState",
    "ServiceRuntimeEvent",
    "ServiceRuntimeState",
    "ServiceRuntimeStatus",
    "list_output",
    "read_list_output",
    "service_json_string",
]
