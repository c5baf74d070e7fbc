"""`meshagent-trio service …`: the project's and rooms' services (REST), their templates, and
`service run`, which runs a local command as a service and calls it into a room.

A service is global (the project's, brought into every room) or a room's; `create` and
`update` need `--room NAME` or `--global`, the other commands act on the room's services with
`--room` and on the project's without. A service is named by its id or its `metadata.name`."""

from __future__ import annotations

import os
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
    mint_token,
    require_room,
    resolve_project_id,
    rest_message,
    rest_session,
    run,
    with_api,
)
from .output import print_data
from .service_specs import annotated_id, dump_yaml, load_service_spec, load_template_text, template_values, to_template, with_service_id

EXTENSIONS = (
    "services",
    "service get --output",
    "service get -o",
)

app = group("Manage services for your project.")

FileOption = Annotated[Optional[str], typer.Option("--file", "-f", help="a service spec file (YAML or JSON)")]
TemplateFileOption = Annotated[Optional[str], typer.Option("--file", "-f", help="a service template file (YAML)")]
UrlOption = Annotated[Optional[str], typer.Option("--url", help="read the spec from this http(s) URL instead of a file")]
McpOption = Annotated[Optional[str], typer.Option("--mcp", help="an MCP server URL: the server discovers the service spec for it")]
#: Unlike `RoomOption`, not read from MESHAGENT_ROOM: where a service is installed is said explicitly.
ScopeRoomOption = Annotated[Optional[str], typer.Option("--room", help="install in this room (or pass --global)")]
GlobalOption = Annotated[bool, typer.Option("--global", help="install for the whole project (every room)")]
ServiceIdOption = Annotated[Optional[str], typer.Option("--service-id", help="set the meshagent.service.id annotation")]
ForceOption = Annotated[bool, typer.Option("--force", help="ignore a service that has the same meshagent.service.id")]
ReplaceOption = Annotated[bool, typer.Option("--replace", help="replace the service that has the same meshagent.service.id")]
CreateOption = Annotated[bool, typer.Option("--create/--no-create", help="create the service when there is none to update")]
ValuesFileOption = Annotated[Optional[str], typer.Option("--values-file", help="a YAML/JSON mapping of template values")]
ValueOption = Annotated[Optional[list[str]], typer.Option("--value", "-v", help="a template value, key=value (repeatable; wins over --values-file)")]
ServiceArgument = Annotated[str, typer.Argument(help="the service's id or metadata.name")]


# --- where a service lives, and finding it -------------------------------------------------


def _scope(room: Optional[str], global_: bool) -> Optional[str]:
    """The room a create/update acts in (None: the project)."""
    if room and global_:
        raise typer.BadParameter("pass either --room or --global, not both", param_hint="--room")
    if not room and not global_:
        raise typer.BadParameter("pass --room NAME to install in a room, or --global for the whole project", param_hint="--room")
    return room


def _where(room: Optional[str]) -> str:
    return f"room {room!r}" if room else "the project's services"


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def _list(api: Any, project: str, room: Optional[str]) -> list[Any]:
    if room:
        return await api.list_room_services(project_id=project, room_name=room)
    return await api.list_services(project_id=project)


async def _find(api: Any, project: str, room: Optional[str], name: str) -> Any:
    """The service named by id or metadata.name (a one-line failure when there is none)."""
    from meshagent_core.rest.answers import NotFoundError

    name = name.strip()
    if not name:
        raise typer.BadParameter("must not be empty", param_hint="SERVICE_ID")
    try:
        if room:
            if _is_uuid(name):
                return await api.get_room_service(project_id=project, room_name=room, service_id=name)
            return await api.get_room_service_by_name(project_id=project, room_name=room, service_name=name)
        if _is_uuid(name):
            return await api.get_service(project_id=project, service_id=name)
        return await api.get_service_by_name(project_id=project, service_name=name)
    except NotFoundError:
        raise CommandFailed(f"no service {name!r} in {_where(room)}") from None


def _target(spec_id: Optional[str], requested: Optional[str], services: list[Any], force: bool, replace: bool, updating: bool) -> Optional[str]:
    """The id to update, from the `meshagent.service.id` annotation: an existing service with
    that annotation is a conflict unless `--force` (ignore it) or `--replace` (update it), as
    in the official CLI, except that an update without `--id` takes it as its target."""
    if force and replace:
        raise typer.BadParameter("pass only one of --force or --replace", param_hint="--force")
    if spec_id is None:
        return requested
    existing = next((service for service in services if annotated_id(service) == spec_id), None)
    if existing is None or force or requested == existing.id:
        return requested
    if replace or (updating and requested is None):
        return existing.id
    raise CommandFailed(f"a service with meshagent.service.id {spec_id!r} exists ({existing.id}): pass --force to ignore it or --replace to replace it")


async def _create(api: Any, project: str, room: Optional[str], spec: Any) -> str:
    if room:
        return await api.create_room_service(project_id=project, room_name=room, service=spec)
    return (await api.create_service(project_id=project, service=spec)).id or ""


async def _update(api: Any, project: str, room: Optional[str], service_id: str, spec: Any) -> str:
    spec.id = service_id
    if room:
        await api.update_room_service(project_id=project, room_name=room, service_id=service_id, service=spec)
        return service_id
    return (await api.update_service(project_id=project, service_id=service_id, service=spec)).id or service_id


async def _from_template(api: Any, project: str, room: Optional[str], service_id: Optional[str], template: str, values: dict[str, str]) -> str:
    """Create (no `service_id`) or update a service rendered from `template`; its id."""
    where = {"room_name": room} if room else {}
    verb = ("update" if service_id else "create") + ("_room" if room else "") + "_service_from_template"
    ids = {"service_id": service_id} if service_id else {}
    return (await getattr(api, verb)(project_id=project, template=template, values=values, **where, **ids)).id or service_id or ""


async def _spec_from(api: Any, file: Optional[str], url: Optional[str], mcp: Optional[str]) -> Any:
    if sum(source is not None for source in (file, url, mcp)) != 1:
        raise typer.BadParameter("pass exactly one of --file, --url or --mcp", param_hint="--file")
    if mcp is not None:
        return await api.discover_mcp_service(url=mcp)
    return load_service_spec(file, url)


async def _rendered(api: Any, template: str, values: dict[str, str], source: str) -> Any:
    from meshagent_core.errors import RoomException

    try:
        return await api.render_template(template=template, values=values)
    except RoomException as error:
        raise CommandFailed(f"invalid service template in {source}: {rest_message(error)}") from None


def _done(verb: str, service_id: str) -> None:
    """The id on stdout (for scripts), what happened on stderr."""
    print(f"{verb} service {service_id}", file=sys.stderr)
    print(service_id)


async def _install(api: Any, project: str, scope: Optional[str], model: Any, requested: Optional[str], options: tuple[bool, bool, bool, bool], make: Any, change: Any) -> tuple[str, str]:
    """Create or update the service `model` describes (a spec or a rendered template): `make()`
    creates it, `change(id)` updates one. `options` are (update, create, force, replace): an
    update finds its target by `requested`, the annotation, else the name; a create only
    replaces what `--replace` names."""
    from meshagent_core.rest.answers import ConflictError

    updating, create, force, replace = options
    services = await _list(api, project, scope)
    target = _target(annotated_id(model), requested, services, force, replace, updating)
    if target is None and updating:
        target = next((service.id for service in services if service.metadata.name == model.metadata.name), None)
        if target is None and not create:
            raise CommandFailed(f"no service named {model.metadata.name!r} in {_where(scope)}: pass --id or --create")
    try:
        if target is None:
            return "created", await make()
        return "updated", await change(target)
    except ConflictError:
        raise CommandFailed(f"service name already in use: {model.metadata.name}") from None


# --- commands --------------------------------------------------------------------------------


@app.command(
    "create",
    epilog=example(
        "meshagent-trio service create --file service.yaml --room lobby",
        "meshagent-trio service create -f service.yaml --global --service-id my-agent --replace",
    ),
)
def create(
    project_id: ProjectIdOption = None,
    file: FileOption = None,
    url: UrlOption = None,
    mcp: McpOption = None,
    room: ScopeRoomOption = None,
    global_: GlobalOption = False,
    service_id: ServiceIdOption = None,
    force: ForceOption = False,
    replace: ReplaceOption = False,
) -> None:
    """Create a service from a ServiceSpec (YAML or JSON) in a room or for the project; prints its id."""
    _install_spec(project_id, (file, url, mcp), _scope(room, global_), service_id, None, (False, False, force, replace))


@app.command(
    "update",
    epilog=example(
        "meshagent-trio service update --file service.yaml --room lobby",
        "meshagent-trio service update -f service.yaml --global --id 1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    ),
)
def update(
    project_id: ProjectIdOption = None,
    id: Annotated[Optional[str], typer.Option("--id", help="the service to update (default: the one with the spec's name)")] = None,
    file: FileOption = None,
    url: UrlOption = None,
    mcp: McpOption = None,
    create: CreateOption = False,
    room: ScopeRoomOption = None,
    global_: GlobalOption = False,
    service_id: ServiceIdOption = None,
    force: ForceOption = False,
    replace: ReplaceOption = False,
) -> None:
    """Replace a service's spec (found by --id, the spec's id, or its name); prints its id."""
    _install_spec(project_id, (file, url, mcp), _scope(room, global_), service_id, id, (True, create, force, replace))


def _install_spec(
    project_id: Optional[str], source: tuple[Any, Any, Any], scope: Optional[str], service_id: Optional[str], requested: Optional[str], options: tuple[bool, bool, bool, bool]
) -> None:
    """`create` and `update` from a spec: read it, then `_install` it (a create may not carry an id)."""

    async def body() -> tuple[str, str]:
        async with rest_session() as api:
            spec = with_service_id(await _spec_from(api, *source), service_id)
            updating = options[0]
            if spec.id is not None and not updating:
                raise CommandFailed("the spec sets id: a new service gets its id from the server")
            project = resolve_project_id(project_id)
            return await _install(
                api, project, scope, spec, (spec.id or requested) if updating else None, options,
                lambda: _create(api, project, scope, spec), lambda target: _update(api, project, scope, target, spec),
            )  # fmt: skip

    _done(*run(body))


@app.command("validate", epilog=example("meshagent-trio service validate --file service.yaml"))
def validate(file: FileOption = None) -> None:
    """Check a service spec file without sending it anywhere."""
    spec = load_service_spec(file)
    print(f"service spec is valid: {spec.metadata.name}", file=sys.stderr)
    print(spec.metadata.name)


@app.command(
    "create-template",
    epilog=example("meshagent-trio service create-template --file template.yaml -v name=helper --room lobby"),
)
def create_template(
    project_id: ProjectIdOption = None,
    file: TemplateFileOption = None,
    url: UrlOption = None,
    values_file: ValuesFileOption = None,
    value: ValueOption = None,
    room: ScopeRoomOption = None,
    global_: GlobalOption = False,
    force: ForceOption = False,
    replace: ReplaceOption = False,
) -> None:
    """Create a service from a ServiceTemplate and its values; prints its id."""
    _install_template(project_id, (file, url), (values_file, value), _scope(room, global_), None, (False, False, force, replace))


@app.command(
    "update-template",
    epilog=example("meshagent-trio service update-template --file template.yaml -v name=helper --room lobby"),
)
def update_template(
    project_id: ProjectIdOption = None,
    id: Annotated[Optional[str], typer.Option("--id", help="the service to update (default: the one with the template's name)")] = None,
    file: TemplateFileOption = None,
    url: UrlOption = None,
    values_file: ValuesFileOption = None,
    value: ValueOption = None,
    create: CreateOption = False,
    room: ScopeRoomOption = None,
    global_: GlobalOption = False,
    force: ForceOption = False,
    replace: ReplaceOption = False,
) -> None:
    """Replace a service with one rendered from a ServiceTemplate; prints its id."""
    _install_template(project_id, (file, url), (values_file, value), _scope(room, global_), id, (True, create, force, replace))


def _install_template(
    project_id: Optional[str], source: tuple[Any, Any], given_values: tuple[Any, Any], scope: Optional[str], requested: Optional[str], options: tuple[bool, bool, bool, bool]
) -> None:
    """`create-template` and `update-template`: render the template, then `_install` it."""
    values = template_values(*given_values)
    template, origin = load_template_text(*source)

    async def body() -> tuple[str, str]:
        async with rest_session() as api:
            rendered = await _rendered(api, template, values, origin)
            project = resolve_project_id(project_id)
            return await _install(
                api, project, scope, rendered, requested, options,
                lambda: _from_template(api, project, scope, None, template, values),
                lambda target: _from_template(api, project, scope, target, template, values),
            )  # fmt: skip

    _done(*run(body))


@app.command("validate-template", epilog=example("meshagent-trio service validate-template --file template.yaml -v name=helper"))
def validate_template(file: TemplateFileOption = None, url: UrlOption = None, values_file: ValuesFileOption = None, value: ValueOption = None) -> None:
    """Check that a template renders, with its values, into a valid service template (the server renders it)."""
    values = template_values(values_file, value)
    template, source = load_template_text(file, url)

    rendered = with_api(lambda api: _rendered(api, template, values, source))
    print(f"service template is valid: {rendered.metadata.name}", file=sys.stderr)
    print(rendered.metadata.name)


@app.command("render-template", epilog=example("meshagent-trio service render-template --file template.yaml -v name=helper"))
def render_template(file: TemplateFileOption = None, url: UrlOption = None, values_file: ValuesFileOption = None, value: ValueOption = None) -> None:
    """Render a template with its values (on the server) and print the rendered YAML."""
    values = template_values(values_file, value)
    template, source = load_template_text(file, url)

    sys.stdout.write(dump_yaml(with_api(lambda api: _rendered(api, template, values, source))))


@app.command(
    "spec",
    epilog=example("meshagent-trio service spec --file service.yaml --format template", "meshagent-trio service spec -f service.yaml --service-id my-agent"),
)
def spec(
    file: FileOption = None,
    url: UrlOption = None,
    mcp: McpOption = None,
    format: Annotated[str, typer.Option("--format", help="service (a Service) or template (a ServiceTemplate)")] = "service",
    service_id: ServiceIdOption = None,
) -> None:
    """Print a service spec, or its template form, as YAML without creating anything."""
    if format not in ("service", "template"):
        raise typer.BadParameter(f"{format!r} is not one of 'service', 'template'", param_hint="--format")

    model = with_service_id(with_api(lambda api: _spec_from(api, file, url, mcp)) if mcp is not None else load_service_spec(file, url), service_id)
    sys.stdout.write(dump_yaml(to_template(model) if format == "template" else model))


@app.command(
    "get",
    epilog=example("meshagent-trio service get my-agent", "meshagent-trio service get 1b4e28ba-2fa1-11d2-883f-0016d3cca427 --room lobby -o json"),
)
def get(service_id: ServiceArgument, project_id: ProjectIdOption = None, room: RoomOption = None, output: OutputOption = OutputFormat.table) -> None:
    """Show a service's spec (a room's with --room, else the project's)."""

    print_data(with_api(lambda api: _find(api, resolve_project_id(project_id), room, service_id)), output)


@app.command("list", epilog=example("meshagent-trio service list", "meshagent-trio service list --room lobby -o json"))
def list_services(project_id: ProjectIdOption = None, output: OutputOption = OutputFormat.table, room: RoomOption = None) -> None:
    """List the project's services, or a room's with --room."""

    services = with_api(lambda api: _list(api, resolve_project_id(project_id), room))
    if output is OutputFormat.json:
        print_data(services, output)
        return
    rows = [
        {"id": s.id, "name": s.metadata.name, "enabled": s.enabled, "image": s.container.image if s.container else None, "external": s.external.url if s.external else None}
        for s in services
    ]
    print_data(rows, output, empty=f"no services in {_where(room)}")


@app.command("delete", epilog=example("meshagent-trio service delete my-agent", "meshagent-trio service delete my-agent --room lobby"))
def delete(service_id: ServiceArgument, project_id: ProjectIdOption = None, room: RoomOption = None) -> None:
    """Delete a service (a room's with --room, else the project's)."""

    async def body() -> str:
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            record = (await _find(api, project, room, service_id)).id
            if room:
                await api.delete_room_service(project_id=project, room_name=room, service_id=record)
            else:
                await api.delete_service(project_id=project, service_id=record)
            return record

    print(f"deleted service {run(body)}", file=sys.stderr)


def _set_enabled(service_id: str, project_id: Optional[str], room: Optional[str], enabled: bool) -> None:
    async def body() -> str:
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            service = await _find(api, project, room, service_id)
            service.enabled = enabled
            return await _update(api, project, room, service.id, service)

    print(f"{'enabled' if enabled else 'disabled'} service {run(body)}", file=sys.stderr)


@app.command("enable", epilog=example("meshagent-trio service enable my-agent --room lobby"))
def enable(service_id: ServiceArgument, project_id: ProjectIdOption = None, room: RoomOption = None) -> None:
    """Enable a service, so that it runs when its room starts."""
    _set_enabled(service_id, project_id, room, True)


@app.command("disable", epilog=example("meshagent-trio service disable my-agent --room lobby"))
def disable(service_id: ServiceArgument, project_id: ProjectIdOption = None, room: RoomOption = None) -> None:
    """Disable a service: it is stopped and not started again until enabled."""
    _set_enabled(service_id, project_id, room, False)


@app.command(
    "run",
    epilog=example("meshagent-trio service run 'python agent.py' --room lobby", "meshagent-trio service run agent.py --room lobby --port 7777"),
)
def service_run(
    command: Annotated[str, typer.Argument(help="the command to run (a .py file runs with this Python, a .dart file with dart run)")],
    project_id: ProjectIdOption = None,
    port: Annotated[Optional[int], typer.Option("--port", "-p", min=1, max=65535, help="the port it serves on, as MESHAGENT_PORT (default: a free one)")] = None,
    room: RoomOption = None,
    key: Annotated[Optional[str], typer.Option("--key", help="an API key (ma-…) to sign the agents' tokens with (default: $MESHAGENT_API_KEY)")] = None,
) -> None:
    """Run a local command as a service and call its agents into a room until Ctrl-C (exit status: the command's)."""
    name = require_room(room)
    signer = key or os.environ.get("MESHAGENT_API_KEY")
    if not signer and not os.environ.get("MESHAGENT_SECRET"):
        raise CommandFailed("nothing to sign the agents' tokens with: pass --key or set MESHAGENT_API_KEY")
    status = run(lambda: _run_service(command, room=name, port=port or _free_port(), signer=signer))
    if status:
        raise typer.Exit(status)


# --- service run -----------------------------------------------------------------------------

#: Seconds `service run` waits for the command to serve its spec.
SPEC_TIMEOUT = 30.0
#: Seconds a stopped command has between SIGTERM and SIGKILL.
STOP_GRACE = 5.0


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _argv(command: str) -> list[str]:
    import shlex

    if command.endswith(".py"):
        return [sys.executable, *shlex.split(command)]
    if command.endswith(".dart"):
        return ["dart", "run", *shlex.split(command)]
    return shlex.split(command)


async def _run_service(command: str, *, room: str, port: int, signer: Optional[str]) -> int:
    """Run `command` with MESHAGENT_PORT and a webhook secret, call each agent endpoint of the
    spec it serves into `room`, and wait for it to exit; it is stopped (SIGTERM to its process
    group, SIGKILL after `STOP_GRACE`) when this is cancelled or interrupted."""
    import secrets
    import subprocess

    import trio

    # The command's own ServiceHost checks the calls' signatures with this secret; the calls are
    # sent from here (as the official CLI does for a local URL), so any secret will do.
    secret = os.environ.get("MESHAGENT_WEBHOOK_SECRET") or secrets.token_urlsafe(32)
    environment = {**os.environ, "MESHAGENT_PORT": str(port), "MESHAGENT_WEBHOOK_SECRET": secret}
    environment.setdefault("MESHAGENT_HOST", "127.0.0.1")
    argv = _argv(command)
    try:
        process = await trio.lowlevel.open_process(argv, env=environment, start_new_session=True, stdin=subprocess.DEVNULL)
    except OSError as error:
        raise CommandFailed(f"cannot start {argv[0] if argv else command!r}: {error.strerror or error}") from None
    print(f"started {command} (pid {process.pid}) on port {port}", file=sys.stderr, flush=True)
    try:
        spec = await _served_spec(process, port)
        if spec is not None:
            await _call_in(spec, room=room, port=port, secret=secret, signer=signer)
            await process.wait()
        status = _status(process.returncode)
        print(f"{command} exited with status {status}", file=sys.stderr)
        return status
    finally:
        with trio.CancelScope(shield=True):
            await _stop(process)


def _status(returncode: Optional[int]) -> int:
    if returncode is None:
        return 1
    return 128 - returncode if returncode < 0 else returncode


async def _served_spec(process: Any, port: int) -> Any:
    """The ServiceSpec the command serves at /.well-known/meshagent-service.json, polled with
    backoff; None when the command exits first."""
    import httpx
    import trio

    from meshagent_core.rest.service_spec import read_service_spec

    url = f"http://127.0.0.1:{port}/.well-known/meshagent-service.json"
    delay = 0.1
    with trio.move_on_after(SPEC_TIMEOUT):
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as http:
            while process.poll() is None:
                try:
                    response = await http.get(url)
                    if response.status_code == 200:
                        return read_service_spec(response.json())
                except (httpx.HTTPError, ValueError):
                    pass
                await trio.sleep(delay)
                delay = min(delay * 2, 1.0)
            return None
    raise CommandFailed(f"the command served no service spec at {url} within {SPEC_TIMEOUT:g} s")


async def _call_in(spec: Any, *, room: str, port: int, secret: str, signer: Optional[str]) -> None:
    """A signed `room.call` to each `meshagent` endpoint, with a token for its identity."""
    import msgspec

    from meshagent_core.client.room import websocket_room_url
    from meshagent_core.client.webhook_send import send_webhook
    from meshagent_core.tokens import ApiScope
    from meshagent_core.webhooks import CallEvent

    called = 0
    for served in spec.ports or []:
        number = served.num if isinstance(served.num, int) else port
        for endpoint in served.endpoints:
            if endpoint.meshagent is None:
                continue
            api = endpoint.meshagent.api
            scope = ApiScope.from_json(api) if api is not None else ApiScope.agent_default()
            token = mint_token(name=endpoint.meshagent.identity, room=room, role="agent", api=scope, key=signer)
            event = CallEvent(room_name=room, room_url=websocket_room_url(room_name=room), token=token, arguments={})
            url = f"http://127.0.0.1:{number}{endpoint.path}"
            await send_webhook(url=url, event=CallEvent.name, data=msgspec.to_builtins(event), secret=secret)
            print(f"called {endpoint.meshagent.identity} into room {room} ({url})", file=sys.stderr, flush=True)
            called += 1
    if not called:
        print("the service has no agent endpoints to call into the room", file=sys.stderr)


async def _stop(process: Any) -> None:
    import signal

    import trio

    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.returncode is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        with trio.move_on_after(STOP_GRACE):
            await process.wait()
    try:  # what the command left behind in its process group
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
