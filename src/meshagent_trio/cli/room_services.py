"""`meshagent-trio room service` (alias `room services`): the services of a room with their
runtime state (`list`, `describe`), and `restart` of one, through the room's `services` toolkit.

`-o json` prints what the room answers: `list` `{"services": [ServiceSpec…], "service_states":
{id: state}}`, `describe` `{"service": ServiceSpec, "state": state or null}`."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated, Any, Optional

import typer

from .common import CommandFailed, OutputFormat, OutputOption, ProjectIdOption, RoomOption, example, group, in_room, room_session, run
from .output import print_data, print_table

app = group("Manage services in a room.")

IdOption = Annotated[Optional[str], typer.Option("--id", help="The service's id.")]
NameOption = Annotated[Optional[str], typer.Option("--name", help="The service's name.")]

LIST_COLUMNS = (
    "id",
    "name",
    "image",
    "state",
    "ports",
    "container_id",
    "started_at",
    "restart_scheduled_at",
    "restart_count",
    "last_exit_code",
    "last_start_error",
    "events",
)
DESCRIBE_COLUMNS = (
    "id",
    "name",
    "state",
    "container_id",
    "started_at",
    "restart_scheduled_at",
    "restart_count",
    "last_exit_code",
    "last_exit_at",
    "last_start_error",
    "last_start_error_at",
)


def _time(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value).isoformat(timespec="seconds")


def _ports(state: Any) -> str | None:
    if state is None:
        return None
    words = {"not_configured": "no liveness", "ready": "ready"}
    return ", ".join(f"{port.num}: {words.get(port.liveness_status, 'not ready')}" for port in state.status.ports)


def _row(service: Any, state: Any) -> dict[str, Any]:
    """What the tables show of a service (times as local ISO times)."""
    known = state is not None
    return {
        "id": service.id,
        "name": service.metadata.name,
        "image": service.container.image if service.container is not None else None,
        "state": state.state if known else None,
        "ports": _ports(state),
        "container_id": state.container_id if known else None,
        "started_at": _time(state.started_at) if known else None,
        "restart_scheduled_at": _time(state.restart_scheduled_at) if known else None,
        "restart_count": state.restart_count if known else None,
        "last_exit_code": state.last_exit_code if known else None,
        "last_exit_at": _time(state.last_exit_at) if known else None,
        "last_start_error": state.last_start_error if known else None,
        "last_start_error_at": _time(state.last_start_error_at) if known else None,
        "events": len(state.events) if known else None,
    }


def _one_of(service_id: str | None, name: str | None) -> None:
    if (service_id is None) == (name is None):
        raise typer.BadParameter("pass exactly one of --id and --name", param_hint="--id")


async def _find(client: Any, service_id: str | None, name: str | None) -> tuple[Any, Any]:
    """The service with that id or name and its state (None when the room has none)."""
    listed = await client.services.list()
    for service in listed.services:
        if (service_id is not None and service.id == service_id) or (name is not None and service.metadata.name == name):
            return service, listed.service_states.get(service.id or "")
    raise CommandFailed(f"no service {service_id or name!r} in this room")


@app.command("list", epilog=example("meshagent-trio room service list --room lobby", "meshagent-trio room service list --room lobby -o json"))
def list_services(project_id: ProjectIdOption = None, room: RoomOption = None, output: OutputOption = OutputFormat.table) -> None:
    """List the services of a room with their runtime state."""

    listed = in_room(room, lambda client: client.services.list())
    if output is OutputFormat.json:
        print_data(listed, output)
        return
    rows = [_row(service, listed.service_states.get(service.id or "")) for service in listed.services]
    print_data(rows, output, columns=LIST_COLUMNS, empty="no services in this room")


@app.command(
    "describe",
    epilog=example("meshagent-trio room service describe --room lobby --name my-agent", "meshagent-trio room service describe --room lobby --id SERVICE_ID -o json"),
)
def describe_service(
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    service_id: IdOption = None,
    name: NameOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a service's runtime state and lifecycle events, for troubleshooting."""
    _one_of(service_id, name)

    service, state = in_room(room, lambda client: _find(client, service_id, name))
    if output is OutputFormat.json:
        print_data({"service": service, "state": state}, output)
        return
    row = _row(service, state)
    print_data({column: row[column] for column in DESCRIBE_COLUMNS}, output)
    events = [
        {
            "type": event.type,
            "reason": event.reason,
            "message": event.message,
            "count": event.count,
            "first_timestamp": _time(event.first_timestamp),
            "last_timestamp": _time(event.last_timestamp),
        }
        for event in (state.events if state is not None else [])
    ]
    if events:
        print_table(events, title="events")
    else:
        print("no lifecycle events recorded", file=sys.stderr)


@app.command(
    "restart",
    epilog=example("meshagent-trio room service restart --room lobby --name my-agent", "meshagent-trio room service restart --room lobby --id SERVICE_ID"),
)
def restart_service(project_id: ProjectIdOption = None, room: RoomOption = None, service_id: IdOption = None, name: NameOption = None) -> None:
    """Restart a room service (its process is stopped and started again)."""
    _one_of(service_id, name)

    async def body() -> Any:
        async with room_session(room) as client:
            service, _state = await _find(client, service_id, name)
            if service.id is None:
                raise CommandFailed(f"the service {service.metadata.name!r} has no id and cannot be restarted")
            await client.services.restart(service_id=service.id)
            return service

    service = run(body)
    print(f"restart requested: {service.metadata.name} ({service.id})", file=sys.stderr)
