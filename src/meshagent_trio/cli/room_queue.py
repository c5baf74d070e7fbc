"""`meshagent-trio room queue`: the room's named queues of JSON messages."""

from __future__ import annotations

import sys
from pathlib import Path
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
    in_room,
    parse_json_option,
    room_session,
    run,
)
from .output import dump_json, print_data

EXTENSIONS = (
    "room queue drain",
    "room queue close",
    "room queue open",
    "room queue size --output",
    "room queue size -o",
)

app = group("Use queues in a room.")

QueueOption = Annotated[str, typer.Option("--queue", help="Queue name.")]


@app.command("list", epilog=example("meshagent-trio room queue list --room lobby", "meshagent-trio room queue list --room lobby -o json"))
def list_queues(project_id: ProjectIdOption = None, room: RoomOption = None, output: OutputOption = OutputFormat.table) -> None:
    """List the room's queues and how many messages each holds."""

    async def body() -> list[dict[str, Any]]:
        async with room_session(room) as client:
            return [{"name": queue.name, "size": queue.size} for queue in await client.queues.list()]

    rows = run(body)
    if output is OutputFormat.json:
        print_data({"queues": rows}, output)  # the official CLI's shape
    else:
        print_data(rows, output, columns=["name", "size"], empty="There are no queues currently in the room")


@app.command(
    "send",
    epilog=example(
        "meshagent-trio room queue send --room lobby --queue jobs --json '{\"task\": \"resize\", \"id\": 7}'",
        "meshagent-trio room queue send --room lobby --queue jobs -f job.json",
    ),
)
def send(
    queue: QueueOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    json: Annotated[Optional[str], typer.Option("--json", help="The message: a JSON object.")] = None,
    file: Annotated[Optional[str], typer.Option("--file", "-f", help="A file holding the message as a JSON object (- reads stdin).")] = None,
) -> None:
    """Send a JSON message to a room queue (the queue is made if missing)."""
    message = _message(json, file)

    in_room(room, lambda client: client.queues.send(name=queue, message=message))
    print(f"sent a message to queue {queue}", file=sys.stderr)


def _message(text: str | None, file: str | None) -> dict[str, Any]:
    if (text is None) == (file is None):
        raise typer.BadParameter("give the message with exactly one of --json and --file", param_hint="--json")
    if file is not None:
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except OSError as error:
            raise typer.BadParameter(f"cannot read {file}: {error.strerror}", param_hint="--file") from None
        hint = "--file"
    else:
        hint = "--json"
    message = parse_json_option(text or "", hint)
    if not isinstance(message, dict):
        raise typer.BadParameter("a queue message is a JSON object ({...})", param_hint=hint)
    return message


@app.command("send-mail", epilog=example("meshagent-trio room queue send-mail --room lobby --queue mail --from me@example.com --subject Hi --body 'Hello' --attachment report.pdf"))
def send_mail(
    queue: QueueOption,
    subject: Annotated[str, typer.Option("--subject", help="Email subject.")],
    from_address: Annotated[str, typer.Option("--from", help="Sender email address.")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    body: Annotated[str, typer.Option("--body", help="Email body (plain text).")] = "",
    attachment: Annotated[Optional[list[str]], typer.Option("--attachment", help="A file to attach (repeatable).")] = None,
) -> None:
    """Build an email message and send it to a room queue (as {"base64": RFC 822 bytes})."""
    import base64
    import email.utils
    import mimetypes
    import uuid
    from email.message import EmailMessage

    _name, address = email.utils.parseaddr(from_address)
    domain = address.split("@")[-1].lower() if "@" in address else "local"
    mail = EmailMessage()
    mail["Message-ID"] = f"<{uuid.uuid4()}@{domain}>"
    mail["Subject"] = subject
    mail["From"] = from_address
    mail["To"] = queue
    mail["Date"] = email.utils.formatdate(localtime=True)
    mail.set_content(body)
    for item in attachment or []:
        path = Path(item)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise typer.BadParameter(f"cannot read {item}: {error.strerror}", param_hint="--attachment") from None
        maintype, subtype = (mimetypes.guess_type(path.name)[0] or "application/octet-stream").split("/", 1)
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)
    message = {"base64": base64.b64encode(mail.as_bytes()).decode("ascii")}

    async def run_body() -> None:
        async with room_session(room) as client:
            await client.queues.send(name=queue, message=message)

    run(run_body)
    print(f"queued an email message in {queue}", file=sys.stderr)


@app.command("receive", epilog=example("meshagent-trio room queue receive --room lobby --queue jobs"))
def receive(queue: QueueOption, project_id: ProjectIdOption = None, room: RoomOption = None) -> None:
    """Take the oldest message of a room queue and print it as JSON (exit 1 when it is empty)."""

    message = in_room(room, lambda client: client.queues.receive(name=queue, create=False, wait=False))
    if message is None:
        raise CommandFailed(f"queue {queue} did not contain any messages")
    sys.stdout.write(dump_json(message) + "\n")


@app.command("size", epilog=example("meshagent-trio room queue size --room lobby --queue jobs"))
def size(queue: QueueOption, project_id: ProjectIdOption = None, room: RoomOption = None, output: OutputOption = OutputFormat.table) -> None:
    """Print how many messages a room queue holds."""

    async def body() -> int | None:
        async with room_session(room) as client:
            return next((item.size for item in await client.queues.list() if item.name == queue), None)

    count = run(body)
    if count is None:
        raise CommandFailed(f"queue not found: {queue}")
    if output is OutputFormat.json:
        print_data({"name": queue, "size": count}, output)
    else:
        print(count)


@app.command("drain", epilog=example("meshagent-trio room queue drain --room lobby --queue jobs"))
def drain(queue: QueueOption, project_id: ProjectIdOption = None, room: RoomOption = None) -> None:
    """Remove every message of a room queue."""

    in_room(room, lambda client: client.queues.drain(name=queue))
    print(f"drained queue {queue}", file=sys.stderr)


@app.command("close", epilog=example("meshagent-trio room queue close --room lobby --queue jobs"))
def close(queue: QueueOption, project_id: ProjectIdOption = None, room: RoomOption = None) -> None:
    """Close a room queue: sends and receives are refused until it is opened again."""

    in_room(room, lambda client: client.queues.close(name=queue))
    print(f"closed queue {queue}", file=sys.stderr)


@app.command("open", epilog=example("meshagent-trio room queue open --room lobby --queue jobs"))
def open_queue(queue: QueueOption, project_id: ProjectIdOption = None, room: RoomOption = None) -> None:
    """Make a room queue, or open a closed one again."""

    in_room(room, lambda client: client.queues.open(name=queue))
    print(f"opened queue {queue}", file=sys.stderr)
