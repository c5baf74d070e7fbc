"""`meshagent-trio rooms`: create, list, show, update and delete the rooms of a project, and
show a room's allocation status and lifecycle events (REST). `rooms connect` of the issue is
the official `room connect`, in room_connect.py."""

from __future__ import annotations

import os
from typing import Annotated, Any, Optional

import typer

from . import room_connect
from .common import CommandFailed, OutputFormat, OutputOption, ProjectIdOption, example, group, parse_object_option, resolve_project_id, rest_session, run, with_api
from .output import note, print_data, print_listing

EXTENSIONS = ("rooms create --output", "rooms create -o", "rooms get --output", "rooms get -o", "rooms connect")

app = group("Create, list, and manage rooms in a project.")
# `room connect` under the name the REST group suggests (the official CLI has it under `room`).
room_connect.register(app, path="rooms connect", hidden=True)

ROOM_COLUMNS = ("id", "name", "enabled")
#: Rooms asked for per page while listing.
PAGE_SIZE = 100

MetadataOption = Annotated[Optional[str], typer.Option("--metadata", help="JSON object: the room's metadata")]
AnnotationsOption = Annotated[
    Optional[str], typer.Option("--annotations", help='JSON object of strings, e.g. {"meshagent.storage.class":"ephemeral"}')
]
RoomIdOption = Annotated[Optional[str], typer.Option("--id", help="Room id (preferred)")]
RoomNameOption = Annotated[Optional[str], typer.Option("--name", help="Room name (looked up to find its id)")]
HiddenNameOption = Annotated[Optional[str], typer.Option("--name", help="Room name", hidden=True)]


def room_record(room: Any) -> dict[str, Any]:
    """A room as the official CLI prints it."""
    return {"id": room.id, "name": room.name, "metadata": room.metadata, "annotations": room.annotations, "enabled": room.enabled}


def _room_name(argument: str | None, option: str | None) -> str:
    name = argument or option or os.environ.get("MESHAGENT_ROOM")
    if not name or not name.strip():
        raise typer.BadParameter("a room name is needed (ROOM, or MESHAGENT_ROOM)", param_hint="ROOM")
    return name


async def _find_room(api: Any, project_id: str, room_id: str | None, name: str | None) -> Any:
    """The room with this id (looked for in the listing: the server finds rooms by name only),
    else the room with this name."""
    if room_id is None:
        return await api.get_room(project_id=project_id, name=name)
    token = None
    while True:
        page = await api.list_rooms_page(project_id=project_id, page_size=PAGE_SIZE, continuation_token=token)
        for room in page.rooms:
            if room.id == room_id:
                return room
        token = page.continuation_token
        if not token:
            raise CommandFailed(f"no room with id {room_id!r} in project {project_id}")


def _id_or_name(room_id: str | None, name: str | None) -> None:
    if room_id is None and name is None:
        raise typer.BadParameter("give the room's --id or --name", param_hint="--id / --name")


@app.command(
    "create",
    epilog=example(
        "meshagent-trio rooms create planning",
        'meshagent-trio rooms create scratch --if-not-exists --annotations \'{"meshagent.storage.class":"ephemeral"}\'',
    ),
)
def create(
    name: Annotated[Optional[str], typer.Argument(help="Room name")] = None,
    project_id: ProjectIdOption = None,
    name_option: HiddenNameOption = None,
    owner: Annotated[
        Optional[bool],
        typer.Option("--owner/--no-owner", help="Grant the calling user full access to the room (default: when the key is a user's)."),
    ] = None,
    if_not_exists: Annotated[bool, typer.Option("--if-not-exists/--no-if-not-exists", help="Answer the existing room instead of failing")] = False,
    metadata: MetadataOption = None,
    annotations: AnnotationsOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Create a room in the project."""
    room_name = name if name is not None else name_option
    if room_name is None or not room_name.strip():
        raise typer.BadParameter("a room name is needed", param_hint="NAME")
    metadata_value = parse_object_option(metadata, "--metadata")
    annotations_value = parse_object_option(annotations, "--annotations", strings=True)

    async def body() -> Any:
        from meshagent_core.tokens import ApiScope

        async with rest_session() as api:
            project = resolve_project_id(project_id)
            permissions = None
            if owner is not False:
                me = await api.whoami()
                if me.type == "user":
                    permissions = {me.id: ApiScope.full().to_json()}
                elif owner:
                    raise CommandFailed("--owner grants a user, and this API key is a service account's: pass --no-owner")
            return await api.create_room(
                project_id=project,
                name=room_name,
                if_not_exists=if_not_exists,
                metadata=metadata_value,
                annotations=annotations_value,
                permissions=permissions,
            )

    print_data(room_record(run(body)), output)


@app.command("list", epilog=example("meshagent-trio rooms list", "meshagent-trio rooms list --filter plan --count 10 -o json"))
def list_rooms(
    project_id: ProjectIdOption = None,
    output: OutputOption = OutputFormat.table,
    count: Annotated[int, typer.Option("--count", help="Max rooms to return", min=1, max=500)] = 100,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Max rooms to return", min=1, max=500, hidden=True)] = None,
    offset: Annotated[int, typer.Option("--offset", help="Rooms to skip", min=0)] = 0,
    order_by: Annotated[str, typer.Option("--order-by", help='Order of the rooms; only "room_name"')] = "room_name",
    filter: Annotated[Optional[str], typer.Option("--filter", help="Only rooms whose name contains this (any case)")] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Every room of the project (the local server lists every room to any key of the project)")
    ] = False,
) -> None:
    """List rooms in the project, by name."""
    if order_by != "room_name":
        raise typer.BadParameter('only "room_name" is supported', param_hint="--order-by")
    wanted = limit if limit is not None else count
    needle = filter.lower() if filter else None

    async def body() -> list[Any]:
        rooms: list[Any] = []
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            token = None
            while len(rooms) < offset + wanted:
                # the server's own filter is not implemented locally: filter here
                page = await api.list_rooms_page(project_id=project, page_size=PAGE_SIZE, continuation_token=token)
                rooms.extend(room for room in page.rooms if needle is None or needle in room.name.lower())
                token = page.continuation_token
                if not token:
                    break
        return rooms[offset : offset + wanted]

    print_listing(None, [room_record(room) for room in run(body)], output, columns=ROOM_COLUMNS, empty="No rooms found.")


@app.command("get", epilog=example("meshagent-trio rooms get planning", "meshagent-trio rooms get planning -o json"))
def get(
    room: Annotated[Optional[str], typer.Argument(help="Room name")] = None,
    project_id: ProjectIdOption = None,
    name: HiddenNameOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show one room."""
    room_name = _room_name(room, name)

    print_data(room_record(with_api(lambda api: api.get_room(project_id=resolve_project_id(project_id), name=room_name))), output)


@app.command("delete", epilog=example("meshagent-trio rooms delete --name scratch", "meshagent-trio rooms delete --id 0c6f…"))
def delete(project_id: ProjectIdOption = None, id: RoomIdOption = None, name: RoomNameOption = None) -> None:
    """Delete a room by id (or by name)."""
    _id_or_name(id, name)

    async def body() -> str:
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            room_id = id or (await _find_room(api, project, None, name)).id
            await api.delete_room(project_id=project, room_id=room_id)
            return room_id

    note(f"Room {run(body)} deleted.")


@app.command(
    "update",
    epilog=example("meshagent-trio rooms update --name planning --new-name roadmap", "meshagent-trio rooms update --id 0c6f… --disabled"),
)
def update(
    project_id: ProjectIdOption = None,
    id: RoomIdOption = None,
    name: RoomNameOption = None,
    new_name: Annotated[Optional[str], typer.Option("--new-name", help="New room name")] = None,
    enabled: Annotated[Optional[bool], typer.Option("--enabled/--disabled", help="Enable or disable the room")] = None,
    annotations: AnnotationsOption = None,
) -> None:
    """Rename a room, enable or disable it, or replace its annotations."""
    _id_or_name(id, name)
    annotations_value = parse_object_option(annotations, "--annotations", strings=True)
    if new_name is None and enabled is None and annotations_value is None:
        raise typer.BadParameter("give at least one of --new-name, --annotations, --enabled or --disabled", param_hint="--new-name")

    async def body() -> str:
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            room = await _find_room(api, project, id, name)
            await api.update_room(
                project_id=project, room_id=room.id, name=new_name or room.name, annotations=annotations_value, enabled=enabled
            )
            return room.id

    note(f"Room {run(body)} updated.")


@app.command("status", epilog=example("meshagent-trio rooms status planning", "meshagent-trio rooms status planning -o json"))
def status(room: Annotated[str, typer.Argument(help="Room name")], project_id: ProjectIdOption = None, output: OutputOption = OutputFormat.table) -> None:
    """Show whether the room has a running session (Allocated), since when, and for how long."""

    print_data(with_api(lambda api: api.get_room_status(project_id=resolve_project_id(project_id), name=room)), output)


@app.command("events", epilog=example("meshagent-trio rooms events planning", "meshagent-trio rooms events planning --count 20 -o json"))
def events(
    room: Annotated[str, typer.Argument(help="Room name")],
    project_id: ProjectIdOption = None,
    output: OutputOption = OutputFormat.table,
    count: Annotated[int, typer.Option("--count", "--limit", help="Max events to return", min=1, max=500)] = 100,
) -> None:
    """List the room's lifecycle events across its sessions, newest first."""

    async def body() -> list[Any]:
        async with rest_session() as api:
            return await api.list_room_events(project_id=resolve_project_id(project_id), name=room, limit=count)

    print_listing(
        None, run(body), output, columns=("created_at", "type", "session_id", "severity", "message"), empty="No room lifecycle events found."
    )
