"""`meshagent-trio mailbox …`: e-mail addresses whose mail goes to a room's queue, and the
deliveries of that mail (REST)."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from .common import (
    CommandFailed,
    OutputFormat,
    OutputOption,
    ProjectIdOption,
    RoomOption,
    example,
    group,
    parse_json_option,
    require_room,
    resolve_project_id,
    rest_session,
    run,
    with_api,
)
from .output import print_data

EXTENSIONS = (
    "mailboxes",
    "mailbox get --output",
    "mailbox get -o",
    "mailbox delivery --output",
    "mailbox delivery -o",
    "mailbox update --private",
)

app = group("Manage mailboxes for your project.")

AddressArgument = Annotated[str, typer.Argument(help="the mailbox's e-mail address")]
DeliveryArgument = Annotated[str, typer.Argument(help="the delivery's id")]
QueueOption = Annotated[Optional[str], typer.Option("--queue", "-q", help="the room queue that receives the mail")]
AnnotationsOption = Annotated[Optional[str], typer.Option("--annotations", "-n", help='annotations as a JSON object, {"name": "value"}')]
CountOption = Annotated[int, typer.Option("--count", min=1, help="at most this many")]
OffsetOption = Annotated[int, typer.Option("--offset", min=0, help="skip this many first")]

MAILBOX_COLUMNS = ("address", "room", "queue", "public")
DELIVERY_COLUMNS = ("submitted_at", "recipient", "status", "message_id", "id")
EVENT_COLUMNS = ("occurred_at", "event_type", "status", "smtp_code", "description", "attempt_no")


def _annotations(text: Optional[str]) -> Optional[dict[str, str]]:
    if text is None:
        return None
    if not text.strip():
        return {}
    value = parse_json_option(text, "--annotations")
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise typer.BadParameter("must be a JSON object of strings", param_hint="--annotations")
    return value


@app.command("create", epilog=example("meshagent-trio mailbox create --address help@example.com --room lobby --queue mail"))
def create(
    address: Annotated[str, typer.Option("--address", "-a", help="the e-mail address (unique in the project)")],
    queue: Annotated[str, typer.Option("--queue", "-q", help="the room queue that receives the mail")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    public: Annotated[bool, typer.Option("--public", help="take mail from anyone (default: only with the project's key)")] = False,
    annotations: AnnotationsOption = None,
) -> None:
    """Create a mailbox whose mail goes to a room's queue."""
    name = require_room(room)
    values = _annotations(annotations) or {}

    async def body() -> None:
        from meshagent_core.rest.answers import ConflictError

        async with rest_session() as api:
            try:
                await api.create_mailbox(project_id=resolve_project_id(project_id), address=address, room=name, queue=queue, public=public, annotations=values)
            except ConflictError:
                raise CommandFailed(f"mailbox address already in use: {address}") from None

    run(body)
    print(f"created mailbox {address}", file=sys.stderr)


@app.command("update", epilog=example("meshagent-trio mailbox update help@example.com --queue support", "meshagent-trio mailbox update help@example.com --private"))
def update(
    address: AddressArgument,
    project_id: ProjectIdOption = None,
    room: Annotated[Optional[str], typer.Option("--room", "-r", help="route the mail into this room")] = None,
    queue: QueueOption = None,
    public: Annotated[Optional[bool], typer.Option("--public/--private", help="take mail from anyone, or only with the project's key")] = None,
    annotations: AnnotationsOption = None,
) -> None:
    """Change where a mailbox's mail goes (what is not given stays as it is)."""
    values = _annotations(annotations)

    async def change(api: Any) -> None:
        project = resolve_project_id(project_id)
        current = await api.get_mailbox(project_id=project, address=address)
        await api.update_mailbox(
            project_id=project,
            address=address,
            room=room or current.room,
            queue=queue or current.queue,
            public=current.public if public is None else public,
            annotations=current.annotations if values is None else values,
        )

    with_api(change, missing=f"no mailbox {address!r}")
    print(f"updated mailbox {address}", file=sys.stderr)


@app.command("get", epilog=example("meshagent-trio mailbox get help@example.com", "meshagent-trio mailbox get help@example.com -o json"))
def get(address: AddressArgument, project_id: ProjectIdOption = None, output: OutputOption = OutputFormat.table) -> None:
    """Show a mailbox."""

    print_data(with_api(lambda api: api.get_mailbox(project_id=resolve_project_id(project_id), address=address), missing=f"no mailbox {address!r}"), output)


@app.command("list", epilog=example("meshagent-trio mailbox list", "meshagent-trio mailbox list --room lobby -o json"))
def list_mailboxes(
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    filter: Annotated[Optional[str], typer.Option("--filter", help="only mailboxes whose text contains this (lower case)")] = None,
    count: CountOption = 100,
    offset: OffsetOption = 0,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the project's mailboxes (a room's with --room)."""

    async def body() -> list[Any]:
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            if room:
                return await api.list_room_mailboxes(project_id=project, room_name=room, count=count, offset=offset, filter=filter)
            found: list[Any] = []
            token = None
            while len(found) < offset + count:
                page = await api.list_mailboxes_page(project_id=project, page_size=min(offset + count - len(found), 100), continuation_token=token, filter=filter)
                found.extend(page.mailboxes)
                token = page.continuation_token
                if token is None or not page.mailboxes:
                    break
            return found[offset : offset + count]

    print_data(run(body), output, columns=None if output is OutputFormat.json else MAILBOX_COLUMNS, empty="no mailboxes")


@app.command("delete", epilog=example("meshagent-trio mailbox delete help@example.com"))
def delete(address: AddressArgument, project_id: ProjectIdOption = None) -> None:
    """Delete a mailbox."""

    with_api(lambda api: api.delete_mailbox(project_id=resolve_project_id(project_id), address=address), missing=f"no mailbox {address!r}")
    print(f"deleted mailbox {address}", file=sys.stderr)


@app.command(
    "deliveries",
    epilog=example("meshagent-trio mailbox deliveries help@example.com", "meshagent-trio mailbox deliveries help@example.com --status failed -o json"),
)
def deliveries(
    address: AddressArgument,
    project_id: ProjectIdOption = None,
    status: Annotated[Optional[str], typer.Option("--status", help="only deliveries in this state: accepted, deferred, delivered or failed")] = None,
    recipient: Annotated[Optional[str], typer.Option("--recipient", help="only recipients containing this")] = None,
    message_id: Annotated[Optional[str], typer.Option("--message-id", help="only this Message-ID")] = None,
    count: CountOption = 100,
    offset: OffsetOption = 0,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List a mailbox's deliveries, newest first."""
    if status is not None and status not in ("accepted", "deferred", "delivered", "failed"):
        raise typer.BadParameter(f"{status!r} is not one of accepted, deferred, delivered, failed", param_hint="--status")

    query = {"status": status, "recipient": recipient, "message_id": message_id}
    page = with_api(
        lambda api: api.list_mailbox_deliveries(project_id=resolve_project_id(project_id), address=address, count=count, offset=offset, **query),
        missing=f"no mailbox {address!r}",
    )
    print_data(page.deliveries, output, columns=None if output is OutputFormat.json else DELIVERY_COLUMNS, empty="no deliveries")


@app.command("delivery", epilog=example("meshagent-trio mailbox delivery help@example.com 7d1e…", "meshagent-trio mailbox delivery help@example.com 7d1e… -o json"))
def delivery(address: AddressArgument, delivery_id: DeliveryArgument, project_id: ProjectIdOption = None, output: OutputOption = OutputFormat.table) -> None:
    """Show a delivery's status and SMTP details."""

    print_data(with_api(lambda api: api.get_mailbox_delivery(project_id=resolve_project_id(project_id), address=address, delivery_id=delivery_id), missing=f"not found: delivery {delivery_id!r} of mailbox {address!r}"), output)


@app.command("delivery-events", epilog=example("meshagent-trio mailbox delivery-events help@example.com 7d1e… -o json"))
def delivery_events(
    address: AddressArgument,
    delivery_id: DeliveryArgument,
    project_id: ProjectIdOption = None,
    count: CountOption = 100,
    offset: OffsetOption = 0,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List a delivery's events, oldest first."""

    page = with_api(
        lambda api: api.list_mailbox_delivery_events(
            project_id=resolve_project_id(project_id), address=address, delivery_id=delivery_id, count=count, offset=offset
        ),
        missing=f"not found: delivery {delivery_id!r} of mailbox {address!r}",
    )
    print_data(page.events, output, columns=None if output is OutputFormat.json else EVENT_COLUMNS, empty="no events")
