"""`meshagent-trio room agents` (alias `room agent`): the toolkits participants host in a room,
calling their tools, and `call` (a `room.call` to a URL, as the top-level `call`)."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from .call_commands import build_call_app
from .common import (
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
    "room agents invoke",
    "room agent invoke",
    "room agents list-toolkits --output",
    "room agents list-toolkits -o",
    "room agent list-toolkits --output",
    "room agent list-toolkits -o",
)

#: Seconds between two looks for a toolkit that has not joined yet.
POLL_INTERVAL = 0.25

app = group("Interact with agents and toolkits in a room.")
app.add_typer(build_call_app("room agents call"), name="call")


def toolkit_json(toolkit: Any) -> dict[str, Any]:
    """A toolkit as the official `list-toolkits` prints it, with the hosting participant."""
    return {
        "name": toolkit.name,
        "title": toolkit.title,
        "description": toolkit.description,
        "annotations": dict(toolkit.annotations),
        "participant_id": toolkit.participant_id,
        "tools": [
            {"name": tool.name, "title": tool.title, "description": tool.description, "input_schema": tool.input_schema, "defs": tool.defs}
            for tool in toolkit.tools
        ],
    }


@app.command(
    "list-toolkits",
    epilog=example("meshagent-trio room agents list-toolkits --room lobby", "meshagent-trio room agents list-toolkits --room lobby -o json"),
)
def list_toolkits(
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    role: Annotated[str, typer.Option(help="Accepted as the official CLI accepts it; the listing does not depend on it.")] = "user",
    participant_id: Annotated[Optional[str], typer.Option(help="Only the toolkits this participant hosts.")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List toolkits (and tools) available in the room."""

    toolkits = [toolkit_json(toolkit) for toolkit in in_room(room, lambda client: client.agents.list_toolkits(participant_id=participant_id))]
    if output is OutputFormat.json:
        print_data(toolkits, output)
        return
    rows = [{**toolkit, "tools": ", ".join(tool["name"] for tool in toolkit["tools"])} for toolkit in toolkits]
    print_data(rows, output, columns=["name", "title", "tools", "participant_id", "description"], empty="no toolkits in this room")


def invoke_tool(
    toolkit: Annotated[str, typer.Option(help="Toolkit name.")],
    tool: Annotated[str, typer.Option(help="Tool name.")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    arguments: Annotated[str, typer.Option(help="JSON arguments for the tool (an object; a string is sent as text).")] = "{}",
    participant_id: Annotated[Optional[str], typer.Option(help="The participant hosting the toolkit, when several do.")] = None,
    on_behalf_of_id: Annotated[Optional[str], typer.Option(help="The participant the call is made for.")] = None,
    timeout: Annotated[int, typer.Option(min=0, help="Seconds to wait for the toolkit to join the room (0: do not look).")] = 30,
) -> None:
    """Invoke a tool of a toolkit and print its answer (JSON as JSON, text as text, streams chunk by chunk)."""
    value = parse_json_option(arguments, "--arguments")

    async def body() -> None:
        async with room_session(room) as client:
            await _wait_for_toolkit(client, toolkit, participant_id, timeout)
            answer = await client.agents.invoke_tool(
                toolkit=toolkit, tool=tool, input=value, participant_id=participant_id, on_behalf_of_id=on_behalf_of_id
            )
            if hasattr(answer, "__aiter__"):
                async for chunk in answer:
                    _print_content(chunk, streamed=True)
            else:
                _print_content(answer, streamed=False)

    run(body)


app.command(
    "invoke-tool",
    epilog=example(
        "meshagent-trio room agents invoke-tool --room lobby --toolkit math --tool add --arguments '{\"a\": 1, \"b\": 2}'",
        "meshagent-trio room agents invoke-tool --room lobby --toolkit storage --tool list --arguments '{\"path\": \"\"}' --timeout 0",
    ),
)(invoke_tool)
app.command(
    "invoke",
    hidden=True,
    epilog=example("meshagent-trio room agents invoke --room lobby --toolkit math --tool add --arguments '{\"a\": 1}'"),
)(invoke_tool)


async def _wait_for_toolkit(client: Any, toolkit: str, participant_id: str | None, timeout: int) -> None:
    """Until a participant hosts `toolkit`, for up to `timeout` seconds (saying so on stderr
    when it is a terminal). A toolkit the listing does not show (the room's built-in ones) is
    called all the same once the time is up: the room's answer then says whether it exists."""
    import trio

    from .progress import wanted

    if timeout == 0:
        return
    with trio.move_on_after(timeout):
        waiting = False
        while True:
            if any(listed.name == toolkit for listed in await client.agents.list_toolkits(participant_id=participant_id)):
                return
            if not waiting and wanted():
                print(f"waiting for the toolkit {toolkit!r} to join the room…", file=sys.stderr)
            waiting = True
            await trio.sleep(POLL_INTERVAL)


def _print_content(content: Any, *, streamed: bool) -> None:
    """One answer (or stream chunk): JSON content as JSON (one line per chunk in a stream),
    text as it is, a file as its name, type and size, anything else as its JSON form."""
    from meshagent_core.content import EmptyContent, FileContent, JsonContent, TextContent

    if isinstance(content, EmptyContent):
        return
    if isinstance(content, TextContent):
        sys.stdout.write(content.text + "\n")
        return
    if isinstance(content, JsonContent):
        value = content.json
    elif isinstance(content, FileContent):
        value = {"type": "file", "name": content.name, "mime_type": content.mime_type, "size_bytes": len(content.data)}
    else:
        import msgspec

        value = msgspec.to_builtins(content)
    if streamed:
        import json

        sys.stdout.write(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str) + "\n")
    else:
        sys.stdout.write(dump_json(value) + "\n")
    sys.stdout.flush()


__all__ = ["app", "toolkit_json"]
