"""`meshagent-trio project`: create, list and show projects, and the project settings documents
the official CLI edits (the LLM router configuration and the room roles). `activate` is left
out: it sets the official CLI's login profile, which this command line does not have (it acts
with `MESHAGENT_API_KEY` and `--project-id`).

Also the helpers the other REST groups of this command line share: JSON-object options and
listings printed as the official CLI prints them (`-o json` wraps a list in `{"<key>": […]}`
where the official CLI does)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .common import CommandFailed, OutputFormat, OutputOption, ProjectIdOption, example, group, resolve_project_id, rest_session, run, with_api
from .output import note, print_data, print_listing

EXTENSIONS = ("project create --output", "project create -o")

app = group("Manage projects.")

#: The roles a RoomRoles spec may map (the official `RoomAccessRole`).
ROOM_ROLES = ("guest", "viewer", "operator", "developer", "admin")
#: The top-level keys of an LLM router configuration document.
ROUTER_KEYS = ("allowedModels", "apps", "rules")


# --- projects --------------------------------------------------------------------------------

PROJECT_COLUMNS = ("id", "name", "project_key")


@app.command("create", epilog=example("meshagent-trio project create research", "meshagent-trio project create research -o json"))
def create(name: Annotated[str, typer.Argument(help="Project name")], output: OutputOption = OutputFormat.table) -> None:
    """Create a new project."""

    print_data(with_api(lambda api: api.create_project(name=name)), output)


@app.command("list", epilog=example("meshagent-trio project list", "meshagent-trio project list -o json"))
def list_projects(output: OutputOption = OutputFormat.table) -> None:
    """List the projects the API key may see (the current one marked with *)."""
    import os

    async def body() -> Any:
        async with rest_session() as api:
            return (await api.list_projects()).projects

    projects = run(body)
    current = os.environ.get("MESHAGENT_PROJECT_ID") or _key_project()
    if output is OutputFormat.table:
        rows = [{**_plain(project), "name": ("*" if project.id == current else "") + project.name} for project in projects]
    else:
        rows = [{**_plain(project), "current": project.id == current} for project in projects]
    print_listing("projects", rows, output, columns=PROJECT_COLUMNS, empty="No projects.")


@app.command("get", epilog=example("meshagent-trio project get 4b1e…", "meshagent-trio project get my-key -o json"))
def get(project: Annotated[str, typer.Argument(help="Project id or key")], output: OutputOption = OutputFormat.table) -> None:
    """Show a project, by id or by key."""

    async def body() -> Any:
        from meshagent_core.rest import NotFoundError

        async with rest_session() as api:
            try:
                return await api.get_project(project_id=project)
            except NotFoundError:
                return await api.get_project_by_key(project_key=project)

    print_data(run(body), output, columns=PROJECT_COLUMNS)


# --- settings documents ----------------------------------------------------------------------


@app.command(
    "get-llm-router-config",
    epilog=example("meshagent-trio project get-llm-router-config", "meshagent-trio project get-llm-router-config -o router.yaml"),
)
def get_llm_router_config(
    project_id: ProjectIdOption = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the YAML to this file instead of stdout.")] = None,
) -> None:
    """Print the project's LLM router configuration (allowedModels, apps, rules) as YAML."""
    import yaml

    document = with_api(lambda api: api.get_project_settings_document(resolve_project_id(project_id), "router")) or {}
    text = yaml.safe_dump({key: document[key] for key in ROUTER_KEYS if key in document}, sort_keys=False, allow_unicode=True)
    if output is None:
        import sys

        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as error:
        raise CommandFailed(f"cannot write {output}: {error.strerror or error}") from None


@app.command("set-llm-router-config", epilog=example("meshagent-trio project set-llm-router-config router.yaml"))
def set_llm_router_config(file: Annotated[Path, typer.Argument(help="LLM router configuration YAML")], project_id: ProjectIdOption = None) -> None:
    """Replace the project's LLM router configuration (allowedModels, apps, rules) from YAML."""
    document = _read_yaml(file, "LLM router configuration")
    unknown = sorted(set(document) - set(ROUTER_KEYS))
    if unknown:
        raise CommandFailed(f"invalid LLM router configuration: unknown key {unknown[0]!r} (expected {', '.join(ROUTER_KEYS)})")
    _put_settings(project_id, "router", document)
    note("LLM router configuration updated.")


@app.command("set-room-roles", epilog=example("meshagent-trio project set-room-roles roles.yaml"))
def set_room_roles(file: Annotated[Path, typer.Argument(help="RoomRoles YAML spec")], project_id: ProjectIdOption = None) -> None:
    """Set the project's room-role mappings from a RoomRoles YAML spec."""
    spec = _read_yaml(file, "room role spec")
    _put_settings(project_id, "room_roles", {"roles": _room_roles(spec)})
    note("Room role override updated.")


@app.command("reset-room-roles", epilog=example("meshagent-trio project reset-room-roles"))
def reset_room_roles(project_id: ProjectIdOption = None) -> None:
    """Remove the project's room-role override (the built-in defaults apply again)."""

    async def body() -> None:
        from meshagent_core.rest import NotFoundError

        async with rest_session() as api:
            try:
                await api.delete_project_settings_document(resolve_project_id(project_id), "room_roles")
            except NotFoundError:
                pass  # no override: the defaults already apply

    run(body)
    note("Room role defaults restored.")


def _put_settings(project_id: str | None, name: str, document: dict[str, Any]) -> None:
    with_api(lambda api: api.set_project_settings_document(resolve_project_id(project_id), name, document))


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise CommandFailed(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise CommandFailed(f"invalid {what}: {' '.join(str(error).split())}") from None
    if not isinstance(document, dict):
        raise CommandFailed(f"invalid {what}: expected a mapping at the top of {path}")
    return document


def _room_roles(spec: dict[str, Any]) -> dict[str, Any]:
    """The `roles` of a RoomRoles spec, checked as the official CLI checks them (version v1,
    kind RoomRoles, known roles, `participant.api` a valid ApiScope, `site_user` a boolean)."""
    from meshagent_core.tokens import ApiScope

    def fail(reason: str) -> CommandFailed:
        return CommandFailed(f"invalid room role spec: {reason}")

    unknown = sorted(set(spec) - {"version", "kind", "roles"})
    if unknown:
        raise fail(f"unknown key {unknown[0]!r}")
    if spec.get("version") != "v1" or spec.get("kind") != "RoomRoles":
        raise fail("expected version: v1 and kind: RoomRoles")
    roles = spec.get("roles")
    if not isinstance(roles, dict):
        raise fail("roles must be a mapping of role to definition")
    checked: dict[str, Any] = {}
    for role, definition in roles.items():
        if role not in ROOM_ROLES:
            raise fail(f"unknown role {role!r} (one of {', '.join(ROOM_ROLES)})")
        definition = definition or {}
        if not isinstance(definition, dict) or set(definition) - {"participant", "site_user"}:
            raise fail(f"roles.{role}: only participant and site_user may be given")
        result: dict[str, Any] = {"site_user": definition.get("site_user", False)}
        if not isinstance(result["site_user"], bool):
            raise fail(f"roles.{role}.site_user must be true or false")
        participant = definition.get("participant")
        if participant is not None:
            if not isinstance(participant, dict) or set(participant) != {"api"}:
                raise fail(f"roles.{role}.participant must hold exactly api")
            try:
                result["participant"] = {"api": ApiScope.from_json(participant["api"]).to_json()}
            except (TypeError, ValueError) as error:
                raise fail(f"roles.{role}.participant.api: {error}") from None
        checked[role] = result
    return checked


def _plain(value: Any) -> dict[str, Any]:
    from .output import to_plain

    return to_plain(value)


def _key_project() -> str | None:
    try:
        return resolve_project_id(None)
    except CommandFailed:
        return None
