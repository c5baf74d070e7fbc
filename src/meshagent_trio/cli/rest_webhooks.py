"""`meshagent-trio webhook …`: a project's webhooks, URLs told of its rooms' lifecycle events
(`room.started`, `room.ended`, or `*` for all), signed with the project's webhook secret. The
official CLI has no such group (its client dropped the seed's webhook routes); ours has one
because our REST client and server keep them."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from .common import CommandFailed, OutputFormat, OutputOption, ProjectIdOption, example, group, resolve_project_id, rest_session, run, with_api
from .output import print_data

EXTENSIONS = ("webhook", "webhooks")

app = group("Manage the webhooks of a project.")

#: The events the local server sends (`*`: all of them).
EVENTS = ("room.started", "room.ended", "*")

WebhookArgument = Annotated[str, typer.Argument(help="the webhook's id")]
UrlOption = Annotated[Optional[str], typer.Option("--url", help="where the events are POSTed (http:// or https://)")]
EventsOption = Annotated[
    Optional[list[str]], typer.Option("--events", help="events to send: room.started, room.ended or * (repeatable, or comma-separated)")
]
NameOption = Annotated[Optional[str], typer.Option("--name", help="a name for the webhook")]
DescriptionOption = Annotated[Optional[str], typer.Option("--description", help="what the webhook is for")]
ActionOption = Annotated[Optional[str], typer.Option("--action", help="free text stored with the webhook")]
PayloadOption = Annotated[Optional[str], typer.Option("--payload", help="free text stored with the webhook")]

COLUMNS = ("id", "name", "url", "events", "description")


def _events(values: Optional[list[str]]) -> Optional[list[str]]:
    if values is None:
        return None
    events = [event.strip() for value in values for event in value.split(",") if event.strip()]
    unknown = [event for event in events if event not in EVENTS]
    if not events or unknown:
        raise typer.BadParameter(f"{', '.join(unknown) or 'nothing'}: events are {', '.join(EVENTS)}", param_hint="--events")
    return events


def _url(url: Optional[str]) -> Optional[str]:
    if url is not None and not url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r} is not an http:// or https:// URL", param_hint="--url")
    return url


async def _find(api: Any, project: str, webhook_id: str) -> Any:
    for webhook in await api.list_webhooks(project_id=project):
        if webhook.id == webhook_id:
            return webhook
    raise CommandFailed(f"no webhook {webhook_id!r}")


@app.command(
    "create",
    epilog=example(
        "meshagent-trio webhook create --url https://example.com/hook --events room.started,room.ended",
        "meshagent-trio webhook create --url http://127.0.0.1:8080/webhook --name local -o json",
    ),
)
def create(
    url: Annotated[str, typer.Option("--url", help="where the events are POSTed (http:// or https://)")],
    events: EventsOption = None,
    name: NameOption = None,
    description: DescriptionOption = None,
    action: ActionOption = None,
    payload: PayloadOption = None,
    project_id: ProjectIdOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Create a webhook that is sent the project's room events (default: all of them)."""
    chosen = _events(events) or ["*"]
    _url(url)

    async def body() -> Any:
        async with rest_session() as api:
            return await api.create_webhook(
                project_id=resolve_project_id(project_id),
                name=name or url,
                url=url,
                events=chosen,
                description=description or "",
                action=action or "",
                payload=payload or "",
            )

    webhook = run(body)
    print(f"created webhook {webhook.id}", file=sys.stderr)
    print_data(webhook, output)


@app.command("list", epilog=example("meshagent-trio webhook list", "meshagent-trio webhook list -o json"))
def list_webhooks(project_id: ProjectIdOption = None, output: OutputOption = OutputFormat.table) -> None:
    """List the project's webhooks."""

    print_data(with_api(lambda api: api.list_webhooks(project_id=resolve_project_id(project_id))), output, columns=None if output is OutputFormat.json else COLUMNS, empty="no webhooks")


@app.command("get", epilog=example("meshagent-trio webhook get 5a0c…", "meshagent-trio webhook get 5a0c… -o json"))
def get(webhook_id: WebhookArgument, project_id: ProjectIdOption = None, output: OutputOption = OutputFormat.table) -> None:
    """Show a webhook."""

    print_data(with_api(lambda api: _find(api, resolve_project_id(project_id), webhook_id)), output)


@app.command("update", epilog=example("meshagent-trio webhook update 5a0c… --events room.ended", "meshagent-trio webhook update 5a0c… --url https://example.com/new"))
def update(
    webhook_id: WebhookArgument,
    url: UrlOption = None,
    events: EventsOption = None,
    name: NameOption = None,
    description: DescriptionOption = None,
    action: ActionOption = None,
    payload: PayloadOption = None,
    project_id: ProjectIdOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Change a webhook (what is not given stays as it is)."""
    chosen = _events(events)
    _url(url)

    async def body() -> Any:
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            current = await _find(api, project, webhook_id)
            return await api.update_webhook(
                project_id=project,
                webhook_id=webhook_id,
                name=current.name if name is None else name,
                url=url or current.url,
                events=chosen or current.events,
                description=current.description if description is None else description,
                action=current.action if action is None else action,
                payload=current.payload if payload is None else payload,
            )

    webhook = run(body)
    print(f"updated webhook {webhook.id}", file=sys.stderr)
    print_data(webhook, output)


@app.command("delete", epilog=example("meshagent-trio webhook delete 5a0c…"))
def delete(webhook_id: WebhookArgument, project_id: ProjectIdOption = None) -> None:
    """Delete a webhook (what it had pending is dropped)."""

    async def body() -> None:
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            await _find(api, project, webhook_id)
            await api.delete_webhook(project_id=project, webhook_id=webhook_id)

    run(body)
    print(f"deleted webhook {webhook_id}", file=sys.stderr)
