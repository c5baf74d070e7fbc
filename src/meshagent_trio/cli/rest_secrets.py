"""`meshagent-trio secret`: user and service-account secrets with their versions, search, proxy
access grants and pull secrets, as the official CLI has them. `--subject` says whose secrets:
`me` (the default: the caller as a user, i.e. the holder of the server's own key) or a service
account of the project, by id, name, key or e-mail. Values are versions: `create --value` makes
the first, `add-version` the next, `access` prints one (raw on stdout; base64 in `-o json`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Awaitable, Callable, Optional, TypeVar

import typer

from .common import OutputFormat, OutputOption, ProjectIdOption, example, group, parse_object_option, resolve_project_id, rest_session, run, with_api
from .output import note, print_data, print_listing
from .rest_keys import resolve_service_account

T = TypeVar("T")

EXTENSIONS: tuple[str, ...] = ()

app = group("Manage user and service account secrets.")

SubjectOption = Annotated[str, typer.Option("--subject", help='Whose secrets: "me" or a service account id, name, key or e-mail')]
AccountSubjectOption = Annotated[str, typer.Option("--subject", help="Service account id, name, key or e-mail")]
SecretIdArgument = Annotated[str, typer.Argument(help="Secret id")]
PageSizeOption = Annotated[int, typer.Option("--page-size", help="Secrets asked for per page", min=1, max=1000)]
FilterOption = Annotated[Optional[str], typer.Option("--filter", help="Only secrets whose name contains this (any case)")]
TypeOption = Annotated[Optional[str], typer.Option("--type", help="Secret type")]
HttpOnlyOption = Annotated[Optional[bool], typer.Option("--http-only/--not-http-only", help="Whether the secret is proxy-only")]
MetadataOption = Annotated[Optional[str], typer.Option("--metadata", help="JSON object")]
AnnotationsOption = Annotated[Optional[str], typer.Option("--annotations", help="JSON object")]
ValueOption = Annotated[Optional[str], typer.Option("--value", help="The value (text)")]
ValueFileOption = Annotated[
    Optional[Path], typer.Option("--value-file", help="A file holding the value (bytes)", exists=True, dir_okay=False, readable=True)
]

SECRET_COLUMNS = ("name", "id", "type", "http_only", "current_version_id")
VERSION_COLUMNS = ("version", "id", "secret_id", "created_at")


class Owner:
    """Whose secrets a command acts on: the REST methods of user secrets (`…_user_secret…`) or
    of one service account's (`…_service_account_secret…`, with its project and id)."""

    def __init__(self, kind: str, where: dict[str, str]) -> None:
        self.kind = kind
        self.where = where

    async def call(self, api: Any, method: str, **arguments: Any) -> Any:
        """`method` with `{kind}` in place of `user` / `service_account`."""
        return await getattr(api, method.format(kind=self.kind))(**self.where, **arguments)


def _is_me(subject: str) -> bool:
    return subject.strip().lower() == "me"


async def _owner(api: Any, project_id: str | None, subject: str) -> Owner:
    if _is_me(subject):
        return Owner("user", {})
    project = resolve_project_id(project_id)
    return Owner("service_account", {"project_id": project, "service_account_id": await resolve_service_account(api, project, subject)})


def _run(project_id: str | None, subject: str, work: Callable[[Any, Owner], Awaitable[T]]) -> T:
    async def operation(api: Any) -> T:
        return await work(api, await _owner(api, project_id, subject))

    return with_api(operation)


def _account_subject(subject: str) -> str:
    if _is_me(subject):
        raise typer.BadParameter("this command needs a service account", param_hint="--subject")
    return subject


def _value(value: str | None, value_file: Path | None) -> bytes | None:
    if value is not None and value_file is not None:
        raise typer.BadParameter("use only one of --value or --value-file", param_hint="--value / --value-file")
    if value_file is not None:
        return value_file.read_bytes()
    return value.encode() if value is not None else None


async def _all_secrets(owner: Owner, api: Any, method: str, page_size: int, **criteria: Any) -> list[Any]:
    """Every page of a listing or search."""
    secrets: list[Any] = []
    token = None
    while True:
        page = await owner.call(api, method, page_size=page_size, continuation_token=token, **criteria)
        secrets.extend(page.secrets)
        token = page.continuation_token
        if not token:
            return secrets


def _print_secrets(secrets: list[Any], output: OutputFormat) -> None:
    if output is OutputFormat.table:  # every column, also the fields JSON leaves out at their default
        secrets = [{column: getattr(secret, column) for column in SECRET_COLUMNS} for secret in secrets]
    print_listing("secrets", secrets, output, columns=SECRET_COLUMNS, empty="No secrets.")


@app.command("list", epilog=example("meshagent-trio secret list", "meshagent-trio secret list --subject worker -o json"))
def list_secrets(
    project_id: ProjectIdOption = None,
    subject: SubjectOption = "me",
    page_size: PageSizeOption = 100,
    filter: FilterOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the subject's secrets (metadata only)."""

    async def work(api: Any, owner: Owner) -> list[Any]:
        return await _all_secrets(owner, api, "list_{kind}_secrets", page_size, filter=filter)

    _print_secrets(_run(project_id, subject, work), output)


@app.command(
    "search",
    epilog=example("meshagent-trio secret search --provider github", 'meshagent-trio secret search --metadata \'{"team":"a"}\' -o json'),
)
def search_secrets(
    project_id: ProjectIdOption = None,
    subject: SubjectOption = "me",
    filter: FilterOption = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Secret name (exactly)")] = None,
    type: TypeOption = None,
    http_only: HttpOnlyOption = None,
    metadata: MetadataOption = None,
    annotations: AnnotationsOption = None,
    provider: Annotated[Optional[str], typer.Option("--provider", help="Metadata provider")] = None,
    service: Annotated[Optional[str], typer.Option("--service", help="Metadata service")] = None,
    account: Annotated[Optional[str], typer.Option("--account", help="Metadata account")] = None,
    username: Annotated[Optional[str], typer.Option("--username", help="Metadata username")] = None,
    email: Annotated[Optional[str], typer.Option("--email", help="Metadata email")] = None,
    url: Annotated[Optional[str], typer.Option("--url", help="Metadata url")] = None,
    oauth_provider: Annotated[Optional[str], typer.Option("--oauth-provider", help="Metadata oauth_provider")] = None,
    oauth_scopes: Annotated[Optional[str], typer.Option("--oauth-scopes", help="Metadata oauth_scopes")] = None,
    page_size: PageSizeOption = 100,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Search the subject's secrets by name, type, metadata and annotations."""
    criteria = dict(
        filter=filter,
        name=name,
        type=type,
        http_only=http_only,
        metadata=parse_object_option(metadata, "--metadata"),
        annotations=parse_object_option(annotations, "--annotations"),
        provider=provider,
        service=service,
        account=account,
        username=username,
        email=email,
        url=url,
        oauth_provider=oauth_provider,
        oauth_scopes=oauth_scopes,
    )

    async def work(api: Any, owner: Owner) -> list[Any]:
        return await _all_secrets(owner, api, "search_{kind}_secrets", page_size, **criteria)

    _print_secrets(_run(project_id, subject, work), output)


@app.command("get", epilog=example("meshagent-trio secret get 7d2e…", "meshagent-trio secret get 7d2e… --include-value -o json"))
def get_secret(
    secret_id: SecretIdArgument,
    project_id: ProjectIdOption = None,
    subject: SubjectOption = "me",
    include_value: Annotated[bool, typer.Option("--include-value", help="Include the current version's value (base64)")] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a secret's metadata (and, if asked, its current value)."""

    async def work(api: Any, owner: Owner) -> Any:
        return await owner.call(api, "get_{kind}_secret", secret_id=secret_id, include_value=include_value)

    print_data(_run(project_id, subject, work), output)


@app.command(
    "create",
    epilog=example("meshagent-trio secret create github-token --value-file token.txt", "meshagent-trio secret create db --subject worker --value s3cret -o json"),
)
def create_secret(
    name: Annotated[str, typer.Argument(help="Secret name")],
    project_id: ProjectIdOption = None,
    subject: SubjectOption = "me",
    type: Annotated[str, typer.Option("--type", help="Secret type")] = "opaque",
    http_only: Annotated[bool, typer.Option("--http-only", help="Make the secret proxy-only")] = False,
    metadata: MetadataOption = None,
    annotations: AnnotationsOption = None,
    value: ValueOption = None,
    value_file: ValueFileOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Create a secret, with its first version when a value is given."""
    initial = _value(value, value_file)
    fields = dict(
        name=name,
        type=type,
        http_only=http_only,
        metadata=parse_object_option(metadata, "--metadata"),
        annotations=parse_object_option(annotations, "--annotations"),
    )

    async def work(api: Any, owner: Owner) -> Any:
        project = {"project_id": resolve_project_id(project_id)} if owner.kind == "user" else {}
        secret = await owner.call(api, "create_{kind}_secret", **project, **fields)
        if initial is None:
            return secret
        await owner.call(api, "create_{kind}_secret_version", secret_id=secret.id, value=initial)
        return await owner.call(api, "get_{kind}_secret", secret_id=secret.id)

    print_data(_run(project_id, subject, work), output)


@app.command("update", epilog=example("meshagent-trio secret update 7d2e… --name gh-token --not-http-only"))
def update_secret(
    secret_id: SecretIdArgument,
    project_id: ProjectIdOption = None,
    subject: SubjectOption = "me",
    name: Annotated[Optional[str], typer.Option("--name", help="New name")] = None,
    type: TypeOption = None,
    http_only: HttpOnlyOption = None,
    metadata: MetadataOption = None,
    annotations: AnnotationsOption = None,
) -> None:
    """Change a secret's name, type, http-only flag, metadata or annotations."""
    fields = dict(
        name=name,
        type=type,
        http_only=http_only,
        metadata=parse_object_option(metadata, "--metadata"),
        annotations=parse_object_option(annotations, "--annotations"),
    )
    if all(item is None for item in fields.values()):
        raise typer.BadParameter("give at least one of --name, --type, --http-only, --metadata or --annotations", param_hint="--name")

    async def work(api: Any, owner: Owner) -> None:
        await owner.call(api, "update_{kind}_secret", secret_id=secret_id, **fields)

    _run(project_id, subject, work)
    note(f"Secret {secret_id} updated.")


@app.command("delete", epilog=example("meshagent-trio secret delete 7d2e…"))
def delete_secret(secret_id: SecretIdArgument, project_id: ProjectIdOption = None, subject: SubjectOption = "me") -> None:
    """Delete a secret with all its versions."""

    async def work(api: Any, owner: Owner) -> None:
        await owner.call(api, "delete_{kind}_secret", secret_id=secret_id)

    _run(project_id, subject, work)
    note(f"Secret {secret_id} deleted.")


@app.command("versions", epilog=example("meshagent-trio secret versions 7d2e…", "meshagent-trio secret versions 7d2e… -o json"))
def list_versions(secret_id: SecretIdArgument, project_id: ProjectIdOption = None, subject: SubjectOption = "me", output: OutputOption = OutputFormat.table) -> None:
    """List a secret's versions (numbers, ids and SHA-256 of the values, not the values)."""

    async def work(api: Any, owner: Owner) -> list[Any]:
        return await owner.call(api, "list_{kind}_secret_versions", secret_id=secret_id)  # type: ignore[no-any-return]

    print_listing("versions", _run(project_id, subject, work), output, columns=VERSION_COLUMNS, empty="No versions.")


@app.command("add-version", epilog=example("meshagent-trio secret add-version 7d2e… --value-file token.txt", "meshagent-trio secret add-version 7d2e… --value new --no-set-current"))
def add_version(
    secret_id: SecretIdArgument,
    project_id: ProjectIdOption = None,
    subject: SubjectOption = "me",
    value: ValueOption = None,
    value_file: ValueFileOption = None,
    set_current: Annotated[bool, typer.Option("--set-current/--no-set-current", help="Make it the current version")] = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Add a version holding a new value to a secret."""
    data = _value(value, value_file)
    if data is None:
        raise typer.BadParameter("one of --value or --value-file is required", param_hint="--value / --value-file")

    async def work(api: Any, owner: Owner) -> Any:
        return await owner.call(api, "create_{kind}_secret_version", secret_id=secret_id, value=data, set_current=set_current)

    print_listing("versions", [_run(project_id, subject, work)], output, columns=VERSION_COLUMNS, empty="No versions.")


@app.command("access", epilog=example("meshagent-trio secret access 7d2e… > token.txt", "meshagent-trio secret access 7d2e… --version 91ab… -o json"))
def access_version(
    secret_id: SecretIdArgument,
    project_id: ProjectIdOption = None,
    subject: SubjectOption = "me",
    version_id: Annotated[Optional[str], typer.Option("--version", help="Version id (default: the current version)")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Print the value of a secret's version: as it is, or as base64 in JSON."""

    async def work(api: Any, owner: Owner) -> bytes:
        return await owner.call(api, "access_{kind}_secret_version", secret_id=secret_id, version_id=version_id or "latest")  # type: ignore[no-any-return]

    value = _run(project_id, subject, work)
    if output is OutputFormat.json:
        import base64

        print_data({"value_base64": base64.b64encode(value).decode()}, output)
        return
    ending = b"" if value.endswith(b"\n") else b"\n"
    stream = getattr(sys.stdout, "buffer", None)
    if stream is not None:
        sys.stdout.flush()
        stream.write(value + ending)
        stream.flush()
    else:  # a text-only stdout (an embedding program's)
        sys.stdout.write((value + ending).decode(errors="replace"))


@app.command("delete-version", epilog=example("meshagent-trio secret delete-version 7d2e… 91ab…"))
def delete_version(
    secret_id: SecretIdArgument,
    version_id: Annotated[str, typer.Argument(help="Version id")],
    project_id: ProjectIdOption = None,
    subject: SubjectOption = "me",
) -> None:
    """Delete one version of a secret (the newest remaining one becomes current)."""

    async def work(api: Any, owner: Owner) -> None:
        await owner.call(api, "delete_{kind}_secret_version", secret_id=secret_id, version_id=version_id)

    _run(project_id, subject, work)
    note(f"Version {version_id} of secret {secret_id} deleted.")


# --- proxy access and pull secrets ------------------------------------------------------------


@app.command("grants", epilog=example("meshagent-trio secret grants 7d2e…", "meshagent-trio secret grants 7d2e… -o json"))
def list_grants(secret_id: SecretIdArgument, output: OutputOption = OutputFormat.table) -> None:
    """List the service accounts that may use one of your secrets through the proxy."""

    async def body() -> list[Any]:
        grants: list[Any] = []
        token = None
        async with rest_session() as api:
            while True:
                page = await api.list_user_secret_proxy_access(secret_id=secret_id, continuation_token=token)
                grants.extend(page.access_grants)
                token = page.continuation_token
                if not token:
                    return grants

    grants = run(body)
    if output is OutputFormat.json:
        print_data({"access_grants": grants}, output)
        return
    rows = [
        {"subject_type": g.subject.type, "subject_id": g.subject.id, "subject_name": getattr(g.subject, "name", None), "roles": ", ".join(g.roles)}
        for g in grants
    ]
    print_data(rows, output, empty="No proxy access grants.")


def _proxy(secret_id: str, project_id: str | None, subject: str, method: str) -> None:
    async def work(api: Any, owner: Owner) -> None:
        await getattr(api, method)(secret_id=secret_id, service_account_id=owner.where["service_account_id"])

    _run(project_id, _account_subject(subject), work)


@app.command("grant-proxy", epilog=example("meshagent-trio secret grant-proxy 7d2e… --subject worker"))
def grant_proxy(secret_id: SecretIdArgument, subject: AccountSubjectOption, project_id: ProjectIdOption = None) -> None:
    """Let a service account use one of your secrets through the proxy."""
    _proxy(secret_id, project_id, subject, "grant_user_secret_proxy_access")
    note(f"Proxy access to {secret_id} granted to {subject}.")


@app.command("revoke-proxy", epilog=example("meshagent-trio secret revoke-proxy 7d2e… --subject worker"))
def revoke_proxy(secret_id: SecretIdArgument, subject: AccountSubjectOption, project_id: ProjectIdOption = None) -> None:
    """Take a service account's proxy access to one of your secrets away."""
    _proxy(secret_id, project_id, subject, "revoke_user_secret_proxy_access")
    note(f"Proxy access to {secret_id} revoked from {subject}.")


@app.command("pull-secrets", epilog=example("meshagent-trio secret pull-secrets --subject worker", "meshagent-trio secret pull-secrets --subject worker -o json"))
def pull_secrets(subject: AccountSubjectOption, project_id: ProjectIdOption = None, output: OutputOption = OutputFormat.table) -> None:
    """List a service account's pull secrets (registry credentials for its images)."""

    async def work(api: Any, owner: Owner) -> list[Any]:
        return await api.list_service_account_pull_secrets(**owner.where)  # type: ignore[no-any-return]

    _print_secrets(_run(project_id, _account_subject(subject), work), output)


def _pull_secret(secret_id: str, project_id: str | None, subject: str, method: str) -> None:
    async def work(api: Any, owner: Owner) -> None:
        await getattr(api, method)(secret_id=secret_id, **owner.where)

    _run(project_id, _account_subject(subject), work)


@app.command("add-pull-secret", epilog=example("meshagent-trio secret add-pull-secret 7d2e… --subject worker"))
def add_pull_secret(secret_id: SecretIdArgument, subject: AccountSubjectOption, project_id: ProjectIdOption = None) -> None:
    """Make one of a service account's secrets one of its pull secrets."""
    _pull_secret(secret_id, project_id, subject, "add_service_account_pull_secret")
    note(f"Secret {secret_id} is a pull secret of {subject}.")


@app.command("remove-pull-secret", epilog=example("meshagent-trio secret remove-pull-secret 7d2e… --subject worker"))
def remove_pull_secret(secret_id: SecretIdArgument, subject: AccountSubjectOption, project_id: ProjectIdOption = None) -> None:
    """Stop using a secret as one of a service account's pull secrets."""
    _pull_secret(secret_id, project_id, subject, "remove_service_account_pull_secret")
    note(f"Secret {secret_id} is no longer a pull secret of {subject}.")
