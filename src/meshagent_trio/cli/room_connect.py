"""`meshagent-trio room connect`: run a local command with the environment that joins a room,
as the official `meshagent room connect -- COMMAND…` does; its exit status is the command's.

The token is the one `connect_room` (REST) gives the caller, or, with `--identity` (and
`--role`, `--meshagent-token`), one minted here for that participant. With the default template
`agent` the command gets MESHAGENT_API_URL, MESHAGENT_PROJECT_ID, MESHAGENT_ROOM,
MESHAGENT_ROOM_URL (the socket base the SDKs add `/rooms/<room>` to), MESHAGENT_TOKEN, and the
official LLM variables (OPENAI_/ANTHROPIC_/GROK_/XAI_ API keys set to the token, base URLs on
the API URL); with `none` only MESHAGENT_TOKEN, and only with `--meshagent-token`. `--env`
variables come last and win."""

from __future__ import annotations

import os
from typing import Annotated, Any, Optional

import typer

from .common import ProjectIdOption, RoomOption, example, require_room, resolve_project_id, rest_session, run

TOKEN_VARIABLES = ("MESHAGENT_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROK_API_KEY", "XAI_API_KEY")
TEMPLATES = ("agent", "none")
#: Seconds the command has to end after Ctrl-C before it is killed.
INTERRUPT_GRACE = 5.0


def register(parent: typer.Typer, *, path: str = "room connect", hidden: bool = False) -> None:
    parent.command(
        "connect",
        hidden=hidden,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        epilog=example(
            f"meshagent-trio {path} --room lobby -- python agent.py",
            f"meshagent-trio {path} --room lobby --identity helper --role agent -e DEBUG=1 -- python agent.py",
        ),
    )(connect)


def connect(
    ctx: typer.Context,
    command: Annotated[Optional[list[str]], typer.Argument(help="The local command and its arguments (after --).")] = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    env: Annotated[Optional[list[str]], typer.Option("--env", "-e", help="Set a variable for the command: KEY=VALUE (repeatable).")] = None,
    identity: Annotated[
        Optional[str], typer.Option("--identity", help="Mint the token here for this participant name (needed with --role, --meshagent-token).")
    ] = None,
    role: Annotated[Optional[str], typer.Option("--role", help="The role of a token minted here (default agent).")] = None,
    meshagent_token: Annotated[
        Optional[str],
        typer.Option("--meshagent-token", help="The API scope of a token minted here: userDefault, agentDefault, full, or JSON."),
    ] = None,
    template: Annotated[str, typer.Option("--template", help="agent (the room's variables) or none.")] = "agent",
) -> None:
    """Connect to a room and run a local command with the variables that join it (use -- before the command)."""
    from .common import mint_token
    from .token_commands import ROLES, parse_api_scope

    argv = [*(command or []), *ctx.args]
    if not argv:
        raise typer.BadParameter("pass the local command after --, e.g. meshagent-trio room connect --room lobby -- python agent.py", param_hint="COMMAND")
    variables = _parse_env(env or [])
    if template not in TEMPLATES:
        raise typer.BadParameter(f"one of {', '.join(TEMPLATES)}", param_hint="--template")
    if role is not None and role not in ROLES:
        raise typer.BadParameter(f"one of {', '.join(ROLES)}", param_hint="--role")
    scope = parse_api_scope(meshagent_token, "--meshagent-token") if meshagent_token is not None else None
    name = require_room(room)
    mint_here = identity is not None or role is not None or scope is not None
    if mint_here and not identity:
        raise typer.BadParameter("--identity is needed with --role and --meshagent-token", param_hint="--identity")

    from meshagent_core.client.room import meshagent_base_url, websocket_room_url

    api_url = meshagent_base_url()
    if mint_here:
        from meshagent_core.tokens import ApiScope

        project = _project(project_id)
        token = mint_token(name=identity, room=name, role=role or "agent", api=scope or ApiScope.agent_default(), project_id=project)  # type: ignore[arg-type]
        room_url = websocket_room_url(room_name=name)
    else:

        async def body() -> Any:
            async with rest_session() as api:
                project = _project(project_id)
                if project is None:
                    resolve_project_id(project_id)  # raises: says what is missing
                return await api.connect_room(project_id=project, room=name)

        info = run(body)
        token, room_url, project = info.jwt, info.room_url, info.project_id

    child = dict(os.environ)
    if template == "agent":
        child.update(
            MESHAGENT_API_URL=api_url,
            MESHAGENT_ROOM=name,
            MESHAGENT_ROOM_URL=room_url.removesuffix(f"/rooms/{name}"),
            OPENAI_BASE_URL=f"{api_url}/openai/v1",
            ANTHROPIC_BASE_URL=f"{api_url}/anthropic",
            GROK_BASE_URL=f"{api_url}/grok/v1",
            XAI_BASE_URL=f"{api_url}/grok/v1",
        )
        if project:
            child["MESHAGENT_PROJECT_ID"] = project
        child.update({variable: token for variable in TOKEN_VARIABLES})
    elif scope is not None:
        child["MESHAGENT_TOKEN"] = token
    child.update(variables)
    raise typer.Exit(_run_command(argv, child))


def _parse_env(values: list[str]) -> dict[str, str]:
    parsed = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not key.strip():
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--env")
        parsed[key.strip()] = text
    return parsed


def _project(project_id: str | None) -> str | None:
    """`--project-id`, `MESHAGENT_PROJECT_ID`, the API key's project, else the project of the
    participant token in `MESHAGENT_TOKEN` (None without any of them)."""
    from .common import CommandFailed

    try:
        return resolve_project_id(project_id)
    except CommandFailed:
        token = os.environ.get("MESHAGENT_TOKEN")
        if not token:
            return None
    from meshagent_core.tokens import ParticipantToken

    try:
        return ParticipantToken.from_jwt(token, validate=False).project_id
    except Exception:  # not a participant token: the server will say so
        return None


def _run_command(argv: list[str], environment: dict[str, str]) -> int:
    """Run the command in the foreground and return its exit status (128 + N for a signal, as
    a shell reports it). Ctrl-C reaches the command too (same process group): its status is
    what counts, unless it has not ended `INTERRUPT_GRACE` seconds later (then it is killed and
    Ctrl-C ends this command)."""
    import subprocess

    from .common import CommandFailed

    try:
        process = subprocess.Popen(argv, env=environment)
    except OSError as error:
        raise CommandFailed(f"cannot run {argv[0]}: {error.strerror or error}") from None
    try:
        status = process.wait()
    except KeyboardInterrupt:
        try:
            status = process.wait(INTERRUPT_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise KeyboardInterrupt from None
    return 128 - status if status < 0 else status
