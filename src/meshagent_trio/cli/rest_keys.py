"""`meshagent-trio api-key`: the API keys of a project's service accounts (ours: the official CLI
has them as `service-account api-key`, with the same option names). Keys belong to a service
account: `--service-account` names it, and defaults to the account of `MESHAGENT_API_KEY` when
that is a service account's key (the server's own key belongs to none).

Also `resolve_service_account`, which the secret commands use for `--subject`."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from .common import CommandFailed, OutputFormat, OutputOption, ProjectIdOption, example, group, resolve_project_id, rest_session, run
from .output import print_data
from .output import note, print_listing

EXTENSIONS = ("api-key", "api-key list", "api-key create", "api-key delete")

app = group("Manage the API keys of a project's service accounts.")

ServiceAccountOption = Annotated[
    Optional[str],
    typer.Option("--service-account", help="Service account id, name, key or e-mail (default: the account of MESHAGENT_API_KEY)"),
]


async def resolve_service_account(api: Any, project_id: str, subject: str) -> str:
    """The id of the project's service account that `subject` names: its id, name, key,
    display name or e-mail (the server's own lookups are by id and by name only)."""
    wanted = subject.strip()
    token = None
    while True:
        page = await api.list_service_accounts(project_id=project_id, page_size=1000, continuation_token=token)
        for account in page.service_accounts:
            if wanted in (account.id, account.name, account.key, account.email, account.display_name):
                return account.id  # type: ignore[no-any-return]
        token = page.continuation_token
        if not token:
            raise CommandFailed(f"no service account {subject!r} in project {project_id}")


async def _account(api: Any, project_id: str, service_account: str | None) -> str:
    if service_account:
        return await resolve_service_account(api, project_id, service_account)
    me = await api.whoami()
    if me.type != "service_account" or me.service_account is None:
        raise typer.BadParameter("MESHAGENT_API_KEY belongs to no service account: name one", param_hint="--service-account")
    return me.service_account.id  # type: ignore[no-any-return]


@app.command("list", epilog=example("meshagent-trio api-key list --service-account worker", "meshagent-trio api-key list -o json"))
def list_keys(project_id: ProjectIdOption = None, service_account: ServiceAccountOption = None, output: OutputOption = OutputFormat.table) -> None:
    """List a service account's API keys (never their values)."""

    async def body() -> list[Any]:
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            account = await _account(api, project, service_account)
            return (await api.list_api_keys(project_id=project, service_account_id=account)).keys  # type: ignore[no-any-return]

    print_listing("api_keys", run(body), output, columns=("id", "name", "description", "created_at"), empty="No API keys.")


@app.command(
    "create",
    epilog=example("meshagent-trio api-key create ci --service-account worker", "meshagent-trio api-key create ci -o json > key.json"),
)
def create_key(
    name: Annotated[str, typer.Argument(help="A name for the key")],
    project_id: ProjectIdOption = None,
    service_account: ServiceAccountOption = None,
    description: Annotated[str, typer.Option("--description", help="A description for the key")] = "",
    output: OutputOption = OutputFormat.table,
) -> None:
    """Create an API key and print it: this is the only time its value is shown."""

    async def body() -> Any:
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            account = await _account(api, project, service_account)
            return await api.create_api_key(project_id=project, service_account_id=account, name=name, description=description)

    key = run(body)
    if output is OutputFormat.json:
        print_data(key, output)
        return
    note(f"API key {key.id} created. Save it now: its value is not shown again.")
    print_data(key.value, output)


@app.command("delete", epilog=example("meshagent-trio api-key delete 5f0c… --service-account worker"))
def delete_key(
    id: Annotated[str, typer.Argument(help="The key's id")], project_id: ProjectIdOption = None, service_account: ServiceAccountOption = None
) -> None:
    """Delete an API key: the server refuses it from now on."""

    async def body() -> None:
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            account = await _account(api, project, service_account)
            await api.delete_api_key(project_id=project, service_account_id=account, id=id)

    run(body)
    note(f"API key {id} deleted.")
