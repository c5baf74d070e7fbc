"""`meshagent-trio room messaging`: who has messaging enabled in a room, direct and broadcast
messages, and `listen` (each message to this participant as one JSON line, until Ctrl-C)."""

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
    room_session,
    run,
)
from .output import print_data

EXTENSIONS = (
    "room messaging listen",
    "room messaging list --output",
    "room messaging list -o",
    "room messaging broadcast --type",
)

app = group("Send and receive messages in a room.")

DataOption = Annotated[str, typer.Option("--data", help="The message: a JSON object.")]


def _object(text: str, option: str) -> dict[str, Any]:
    value = parse_json_option(text, option)
    if not isinstance(value, dict):
        raise typer.BadParameter("a message is a JSON object ({...})", param_hint=option)
    return value


@app.command("list", epilog=example("meshagent-trio room messaging list --room lobby", "meshagent-trio room messaging list --room lobby -o json"))
def list_participants(project_id: ProjectIdOption = None, room: RoomOption = None, output: OutputOption = OutputFormat.table) -> None:
    """List the participants with messaging enabled (other than this one)."""

    async def body() -> list[dict[str, Any]]:
        async with room_session(room) as client:
            await client.messaging.enable()
            found = [{"id": p.id, "role": p.role, "attributes": dict(p.attributes)} for p in client.messaging.get_participants()]
            await client.messaging.disable()
            return found

    rows = run(body)
    table = rows if output is OutputFormat.json else [{**row, "name": row["attributes"].get("name")} for row in rows]
    print_data(table, output, columns=["id", "name", "role", "attributes"], empty="no other participant has messaging enabled")


@app.command(
    "send",
    epilog=example("meshagent-trio room messaging send --room lobby --to-participant-id 5f0c… --type chat --data '{\"text\": \"hi\"}'"),
)
def send(
    to_participant_id: Annotated[str, typer.Option("--to-participant-id", help="The id of the participant to send to (see: room messaging list).")],
    type: Annotated[str, typer.Option("--type", help="The message type.")],
    data: DataOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
) -> None:
    """Send a message to one participant with messaging enabled."""
    message = _object(data, "--data")

    async def body() -> None:
        async with room_session(room) as client:
            await client.messaging.enable()
            if client.messaging.get_participant(to_participant_id) is None:
                raise CommandFailed(f"participant {to_participant_id} is not in the room or has not enabled messaging")
            await client.messaging.send_message(to=to_participant_id, type=type, message=message)
            await client.messaging.disable()

    run(body)
    print(f"sent a {type} message to {to_participant_id}", file=sys.stderr)


@app.command("broadcast", epilog=example("meshagent-trio room messaging broadcast --room lobby --data '{\"text\": \"hello all\"}'"))
def broadcast(
    data: DataOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    type: Annotated[str, typer.Option("--type", help="The message type.")] = "chat.broadcast",
) -> None:
    """Send a message to every other participant with messaging enabled."""
    message = _object(data, "--data")

    async def body() -> None:
        async with room_session(room) as client:
            await client.messaging.enable()
            await client.messaging.broadcast_message(type=type, message=message)
            await client.messaging.disable()

    run(body)
    print(f"broadcast a {type} message", file=sys.stderr)


def message_record(message: Any) -> dict[str, Any]:
    """One received message as `listen` prints it (attachment bytes as base64, when any)."""
    import base64

    record: dict[str, Any] = {"from_participant_id": message.from_participant_id, "type": message.type, "message": message.message}
    if message.attachment:
        record["attachment"] = base64.b64encode(message.attachment).decode("ascii")
    return record


@app.command(
    "listen",
    epilog=example("meshagent-trio room messaging listen --room lobby", "meshagent-trio room messaging listen --room lobby --count 1 > message.json"),
)
def listen(
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    count: Annotated[Optional[int], typer.Option("--count", min=1, help="Stop after this many messages (default: until Ctrl-C).")] = None,
) -> None:
    """Print each message sent to this participant as one JSON line, until Ctrl-C."""
    import json

    async def body() -> None:
        received = 0
        async with room_session(room) as client:
            async with client.messaging.messages() as messages:
                await client.messaging.enable()
                print(f"listening as participant {client.local_participant.id}; Ctrl-C to stop", file=sys.stderr, flush=True)
                async for message in messages:
                    sys.stdout.write(json.dumps(message_record(message), ensure_ascii=False) + "\n")
                    sys.stdout.flush()
                    received += 1
                    if count is not None and received >= count:
                        break

    run(body)
