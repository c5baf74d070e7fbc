"""What every command shares: the options named as the official `meshagent` CLI names them,
where the room and the REST API are found (the SDK's environment variables, and a `.env` file
in the working directory), and how a command runs and fails.

A command is a plain function that hands its async body to `run()`:

    @app.command("ls", epilog=example("meshagent-trio room storage ls --room lobby room://docs"))
    def ls(room: RoomOption = None, path: str = "") -> None:
        async def body() -> None:
            async with room_session(room) as client:
                ...
        run(body)

An operation that fails ends the command with one line on stderr and status 1: raise
`CommandFailed` for failures the command detects itself; any other exception (a room's or the
server's answer) is described the same way. Ctrl-C ends it with status 130, usage errors
(`typer.BadParameter`, the parser's own) with 2. `main()` does all of that.
"""

from __future__ import annotations

import enum
import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, AsyncIterator, Awaitable, Callable, Optional, TypeVar

import typer

if TYPE_CHECKING:
    from meshagent_core.tokens import ApiScope

T = TypeVar("T")

#: Seconds a command waits for its first connection to a room before it gives up.
CONNECT_TIMEOUT = 15.0
#: The participant name the command line joins rooms with (`MESHAGENT_PARTICIPANT_NAME` wins).
PARTICIPANT_NAME = "cli"


class CommandFailed(Exception):
    """The operation could not be done; the message is the one line the user sees."""


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"


OutputOption = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="table (aligned, for people) or json (stable, for programs)", case_sensitive=False),
]
ProjectIdOption = Annotated[
    Optional[str],
    typer.Option(
        "--project-id",
        envvar="MESHAGENT_PROJECT_ID",
        help="The project (default: $MESHAGENT_PROJECT_ID, else the project of $MESHAGENT_API_KEY).",
        show_envvar=False,
    ),
]
RoomOption = Annotated[
    Optional[str],
    typer.Option("--room", envvar="MESHAGENT_ROOM", help="Room name (default: $MESHAGENT_ROOM).", show_envvar=False),
]


def example(*commands: str) -> str:
    """A command's `--help` epilog: its examples, one per line."""
    lines = "\n".join(f"  {command}" for command in commands)
    return f"\b\nExample{'s' if len(commands) > 1 else ''}:\n{lines}"


def group(help: str, **settings: Any) -> typer.Typer:
    """A command group: `--help` when called alone, no completion options of its own."""
    return typer.Typer(help=help, no_args_is_help=True, add_completion=False, rich_markup_mode=None, **settings)


def require_room(room: str | None) -> str:
    if not room:
        raise typer.BadParameter("a room is needed: pass --room NAME or set MESHAGENT_ROOM", param_hint="--room")
    return room


def parse_json_option(text: str, option: str) -> Any:
    """The value of a `--json`-like option; bad JSON is a usage error naming the option."""
    import json

    try:
        return json.loads(text)
    except ValueError as error:
        raise typer.BadParameter(f"not valid JSON: {error}", param_hint=option) from None


def parse_object_option(text: str | None, option: str, *, strings: bool = False) -> dict[str, Any] | None:
    """The JSON object an option like `--metadata` holds (None when not given); anything else
    is a usage error naming the option. `strings`: every value must be a string (annotations)."""
    if text is None:
        return None
    value = parse_json_option(text, option)
    if not isinstance(value, dict):
        raise typer.BadParameter("expected a JSON object", param_hint=option)
    if strings and not all(isinstance(item, str) for item in value.values()):
        raise typer.BadParameter("every value must be a string", param_hint=option)
    return value


def run(body: Callable[[], Awaitable[T]]) -> T:
    """Run one command's async body under Trio. What it raises reaches `main()`, which makes
    it the command's one-line error and exit status (see the module docstring)."""
    import trio

    return trio.run(body)


def describe(error: BaseException) -> str:
    """One line for what went wrong: the first leaf of an exception group, with the error's
    own text (a room error's message, an HTTP error's answer)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    http_status = getattr(error, "http_status", None)
    if isinstance(http_status, int):  # a REST answer: its status and the server's own words
        return f"HTTP {http_status}: {rest_message(error)}"
    text = " ".join(str(error).split())
    if isinstance(error, (CommandFailed, OSError)) or type(error).__module__.startswith("meshagent"):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def rest_message(error: BaseException) -> str:
    """The message inside a REST error's JSON answer (`{"error": {"message": …}}` or
    `{"error": "…"}`), else the error's text."""
    import json

    try:
        answer = json.loads(getattr(error, "body", None) or "")["error"]
        return " ".join(str(answer["message"] if isinstance(answer, dict) else answer).split())
    except (ValueError, KeyError, TypeError):
        return " ".join(str(error).split())


# --- where things are ------------------------------------------------------------------------


def participant_name() -> str:
    return os.environ.get("MESHAGENT_PARTICIPANT_NAME") or PARTICIPANT_NAME


def room_token(room: str) -> str | None:
    """The token to join `room` with: `MESHAGENT_TOKEN` when it is for this room
    (`MESHAGENT_ROOM`, as the official CLI checks), else one minted with the API key for a
    user with every API but secrets (None when there is nothing to mint with)."""
    token = os.environ.get("MESHAGENT_TOKEN")
    if token and os.environ.get("MESHAGENT_ROOM") in (None, "", room):
        return token
    if not (os.environ.get("MESHAGENT_API_KEY") or os.environ.get("MESHAGENT_SECRET")):
        return None
    from meshagent_core.tokens import ApiScope

    return mint_token(name=participant_name(), room=room, api=ApiScope.full())


def mint_token(
    *,
    name: str,
    room: str | None = None,
    role: str | None = None,
    api: "ApiScope | None" = None,
    key: str | None = None,
    project_id: str | None = None,
) -> str:
    """A participant JWT signed here, as the official CLI signs one: with `key` (an API key),
    else `MESHAGENT_API_KEY`, else `MESHAGENT_SECRET`. Grants in the official order: role
    (left out for `user`), api, room."""
    from meshagent_core.tokens import ParticipantToken

    token = ParticipantToken(name=name, project_id=project_id)
    if role is not None and role != "user":
        token.add_role_grant(role)
    if api is not None:
        token.add_api_grant(api)
    if room is not None:
        token.add_room_grant(room)
    key = key or os.environ.get("MESHAGENT_API_KEY")
    if key:
        try:
            return token.to_jwt(api_key=key)
        except ValueError as error:
            raise CommandFailed(f"not an API key: {error}") from None
    secret = os.environ.get("MESHAGENT_SECRET")
    if secret:
        return token.to_jwt(token=secret)
    raise CommandFailed("nothing to sign the token with: pass --key, or set MESHAGENT_API_KEY (or MESHAGENT_SECRET)")


@asynccontextmanager
async def room_session(room: str | None) -> AsyncIterator[Any]:
    """A `RoomClient` joined to `room` for the length of the block."""
    from ..client import RoomClient

    name = require_room(room)
    token = room_token(name)
    if token is None:
        raise CommandFailed("nothing to join the room with: set MESHAGENT_API_KEY (or MESHAGENT_TOKEN for this room)")
    async with RoomClient.connect(name, token, connect_timeout=CONNECT_TIMEOUT) as client:
        yield client


def in_room(room: str | None, operation: Callable[[Any], Awaitable[T]]) -> T:
    """Join `room`, do one operation with its client, leave; the operation's result:
    `in_room(room, lambda client: client.queues.list())`."""

    async def body() -> T:
        async with room_session(room) as client:
            return await operation(client)

    return run(body)


@asynccontextmanager
async def rest_session() -> AsyncIterator[Any]:
    """The REST client (`Meshagent`) for `MESHAGENT_API_URL` with `MESHAGENT_API_KEY`."""
    from .. import Meshagent

    if not (os.environ.get("MESHAGENT_API_KEY") or os.environ.get("MESHAGENT_TOKEN")):
        raise CommandFailed("no credentials: set MESHAGENT_API_KEY (meshagent-trio serve prints it)")
    async with Meshagent(token=os.environ.get("MESHAGENT_API_KEY") or os.environ.get("MESHAGENT_TOKEN")) as api:
        yield api


def with_api(operation: Callable[[Any], Awaitable[T]], *, missing: str | None = None) -> T:
    """One REST operation with the `Meshagent` client; its result:
    `with_api(lambda api: api.list_webhooks(project_id=project))`. `missing` is the one line
    to fail with when the server answers 404 (what was not found)."""

    async def body() -> T:
        async with rest_session() as api:
            try:
                return await operation(api)
            except Exception as error:
                if missing is not None and getattr(error, "http_status", None) == 404:
                    raise CommandFailed(missing) from None
                raise

    return run(body)


def resolve_project_id(project_id: str | None) -> str:
    """The project a REST command acts in: `--project-id`, else `MESHAGENT_PROJECT_ID` (both
    arrive here as `project_id`), else the project the API key belongs to."""
    if project_id:
        return project_id
    key = os.environ.get("MESHAGENT_API_KEY")
    if key:
        from meshagent_core.tokens import parse_api_key

        try:
            return parse_api_key(key).project_id
        except ValueError as error:
            raise CommandFailed(f"MESHAGENT_API_KEY is not an API key: {error}") from None
    raise CommandFailed("no project: pass --project-id, or set MESHAGENT_PROJECT_ID or MESHAGENT_API_KEY")


def load_dotenv_file() -> None:
    """Variables from `./.env` that the environment does not already set (the environment wins)."""
    from pathlib import Path

    path = Path.cwd() / ".env"
    if path.is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)
