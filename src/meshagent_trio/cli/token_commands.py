"""`meshagent-trio token`: mint participant tokens (JWTs), from a spec file as the official
`meshagent token` does, or straight from options (`--room --name --role --api`, ours).

The official command is its group's only command, which the official CLI collapses into the
group: `meshagent token -i spec.yaml`. Here `token generate …` is the command, and `token …`
with the same options runs it too, so both spellings work.

Also here, for `call` and `room connect`: reading a token spec file (`read_token_spec`), an API
scope given as a name or JSON (`parse_api_scope`); signing is `common.mint_token`."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .common import CommandFailed, ProjectIdOption, example, group, mint_token, parse_json_option

if TYPE_CHECKING:
    from meshagent_core.tokens import ApiScope

EXTENSIONS = ("token generate --room", "token generate --name", "token generate --role", "token generate --api")

#: What `--api` and `room connect --meshagent-token` accept besides JSON.
SCOPE_NAMES = ("userDefault", "agentDefault", "full")
ROLES = ("user", "agent", "tool")


@dataclass
class TokenSpec:
    """The official `ParticipantTokenSpec` (`version: v1`, `kind: ParticipantToken`)."""

    identity: str
    api: "ApiScope"
    room: str | None = None
    role: str | None = None


def read_token_spec(path: str, option: str) -> TokenSpec:
    """The spec in the YAML file at `path`, checked as the official model checks it; a file
    that cannot be read or does not fit is a usage error naming `option`."""
    import yaml
    from pathlib import Path

    from meshagent_core.tokens import ApiScope

    def bad(message: str) -> typer.BadParameter:
        return typer.BadParameter(f"{path}: {message}", param_hint=option)

    try:
        data = yaml.safe_load(Path(path).expanduser().read_bytes())
    except OSError as error:
        raise bad(error.strerror or str(error)) from None
    except yaml.YAMLError as error:
        raise bad("not YAML: " + " ".join(str(error).split())) from None
    if not isinstance(data, dict):
        raise bad("a token spec is a mapping (version, kind, identity, room, role, api)")
    if data.get("version") != "v1" or data.get("kind") != "ParticipantToken":
        raise bad("a token spec has 'version: v1' and 'kind: ParticipantToken'")
    identity, room, role = data.get("identity"), data.get("room"), data.get("role")
    if not isinstance(identity, str) or not identity.strip():
        raise bad("'identity' must be a non-empty string")
    if room is not None and not isinstance(room, str):
        raise bad("'room' must be a string")
    if role is not None and role not in ROLES:
        raise bad(f"'role' must be one of {', '.join(ROLES)}")
    if not isinstance(data.get("api"), dict):
        raise bad("'api' (the API scope) is required")
    try:
        api = ApiScope.from_json(data["api"])
    except ValueError as error:
        raise bad(f"'api' is not an API scope: {error}") from None
    if api.llm is None:  # as the official spec requires
        raise bad("the api scope must include an llm grant")
    return TokenSpec(identity=identity, api=api, room=room, role=role)


def parse_api_scope(text: str, option: str) -> "ApiScope":
    """`userDefault`, `agentDefault`, `full`, or an API scope as JSON."""
    from meshagent_core.tokens import ApiScope

    cleaned = text.strip()
    if cleaned in SCOPE_NAMES:
        return {"userDefault": ApiScope.user_default, "agentDefault": ApiScope.agent_default, "full": ApiScope.full}[cleaned]()
    value = parse_json_option(cleaned, option)
    if not isinstance(value, dict):
        raise typer.BadParameter(f"one of {', '.join(SCOPE_NAMES)}, or a JSON object", param_hint=option)
    try:
        return ApiScope.from_json(value)
    except ValueError as error:
        raise typer.BadParameter(f"not an API scope: {error}", param_hint=option) from None


# --- the command ---------------------------------------------------------------------------------

OutputFile = Annotated[Optional[str], typer.Option("--output", "-o", help="Write the token to this file instead of stdout.")]
InputFile = Annotated[
    Optional[str], typer.Option("--input", "-i", help="A token spec (YAML: version, kind, identity, room, role, api).")
]
KeyOption = Annotated[Optional[str], typer.Option("--key", help="An API key to sign the token with (default: $MESHAGENT_API_KEY).")]
RoomName = Annotated[Optional[str], typer.Option("--room", help="The room the token may join (over the spec's).")]
Name = Annotated[Optional[str], typer.Option("--name", help="The participant's name (over the spec's identity).")]
Role = Annotated[Optional[str], typer.Option("--role", help="user, agent or tool (over the spec's; default user).")]
Api = Annotated[
    Optional[str],
    typer.Option("--api", help="The API scope: userDefault, agentDefault, full, or JSON (over the spec's; default by role)."),
]

EXAMPLES = (
    "meshagent-trio token generate --input spec.yaml",
    "meshagent-trio token generate --room lobby --name bob",
    "meshagent-trio token generate --room lobby --name helper --role agent --api agentDefault -o helper.jwt",
)

app = group("Generate participant tokens (JWTs).", invoke_without_command=True)


def _generate(project_id: str | None, output: str | None, input: str | None, key: str | None, room: str | None, name: str | None, role: str | None, api: str | None) -> None:
    from meshagent_core.tokens import ApiScope

    spec = read_token_spec(input, "--input") if input is not None else None
    identity = name or (spec.identity if spec else None)
    if not identity:
        raise typer.BadParameter("pass --input SPEC.yaml, or --name (and --room) to mint without a spec", param_hint="--name")
    if role is not None and role not in ROLES:
        raise typer.BadParameter(f"one of {', '.join(ROLES)}", param_hint="--role")
    role = role or (spec.role if spec else None)
    if api is not None:
        scope = parse_api_scope(api, "--api")
    elif spec is not None:
        scope = spec.api
    else:
        scope = ApiScope.user_default() if role in (None, "user") else ApiScope.agent_default()
    jwt = mint_token(name=identity, room=room or (spec.room if spec else None), role=role, api=scope, key=key, project_id=project_id)
    if output is None:
        sys.stdout.write(jwt + "\n")
    else:
        from pathlib import Path

        try:
            Path(output).expanduser().write_text(jwt)
        except OSError as error:
            raise CommandFailed(f"cannot write {output}: {error.strerror or error}") from None


@app.callback(epilog=example("meshagent-trio token --input spec.yaml", "meshagent-trio token --room lobby --name bob"))
def token(
    ctx: typer.Context,
    project_id: ProjectIdOption = None,
    output: OutputFile = None,
    input: InputFile = None,
    key: KeyOption = None,
    room: RoomName = None,
    name: Name = None,
    role: Role = None,
    api: Api = None,
) -> None:
    """Generate participant tokens (JWTs): `token generate …`, or `token …` with the same options."""
    given = any(value is not None for value in (output, input, key, room, name, role, api))
    if ctx.invoked_subcommand is not None:
        if given:
            raise typer.BadParameter("put the options after 'generate'")
        return
    _generate(project_id, output, input, key, room, name, role, api)


@app.command("generate", epilog=example(*EXAMPLES))
def generate(
    project_id: ProjectIdOption = None,
    output: OutputFile = None,
    input: InputFile = None,
    key: KeyOption = None,
    room: RoomName = None,
    name: Name = None,
    role: Role = None,
    api: Api = None,
) -> None:
    """Generate a signed participant token (JWT) from a YAML spec, or from --room/--name/--role/--api."""
    _generate(project_id, output, input, key, room, name, role, api)


__all__ = ["TokenSpec", "app", "parse_api_scope", "read_token_spec"]
