"""REST handlers of services, room services, service templates and MCP discovery (protocol/rest.md §8).

The local server stores services (their `ServiceSpec`, checked as the official model checks it:
400 naming the field) and renders service templates (`meshagent_core.rest.service_template`, in
a worker thread; a required variable without a value, or a template that does not render, is a
400 saying which and where). A stored service runs when its room starts (`services.room_services`,
protocol/webhooks.md §8); a container image is recorded, not run.

MCP discovery answers 501: the cloud connects to the MCP server and writes a service (or
template) for it, and how it writes one is documented nowhere, so the local server does not
guess it.
"""

from __future__ import annotations

from typing import Any

import msgspec
import trio

from meshagent_core.rest.service_spec import ServiceTemplateSpec, read_service_spec
from meshagent_core.rest.services import TemplateBody
from meshagent_core.rest.service_template import TemplateError, render_service_template

from ..control import ControlError
from ..control.services import PROJECT_SCOPE
from .context import Caller, Handler, NotImplementedHere, RestContext


def _refused(method: str, what: str, error: Exception) -> ControlError:
    return ControlError(f"{method}: {what}: {error}")


async def rendered_template(method: str, body: Any) -> ServiceTemplateSpec:
    """The `ServiceTemplateSpec` of a `{template, values}` body (400 saying why it is not one)."""
    try:
        request = msgspec.convert(body, TemplateBody)
    except msgspec.ValidationError as error:
        raise _refused(method, "body", error) from None

    try:
        return await trio.to_thread.run_sync(lambda: render_service_template(request.template, request.values, require_values=True))
    except TemplateError as error:
        raise ControlError(f"{method}: {error}") from None


async def checked_service(method: str, body: Any) -> dict[str, Any]:
    """The `ServiceSpec` of a request body as JSON (every key, nulls kept): the body itself, or
    the service of a `{template, values}` body (400 naming the field or the template's fault)."""
    if not isinstance(body, dict):
        raise ControlError(f"{method}: the body must be a ServiceSpec or {{template, values}} JSON object")
    if "template" in body:
        method = f"{method}_from_template"
        template = await rendered_template(method, body)
        try:
            spec = template.to_service_spec()
        except msgspec.ValidationError as error:
            raise _refused(method, "the rendered service", error) from None
    else:
        try:
            spec = read_service_spec(body)
        except msgspec.ValidationError as error:
            raise _refused(method, "service", error) from None
    if not spec.metadata.name.strip():
        raise ControlError(f"{method}: service.metadata.name must not be empty")
    return msgspec.to_builtins(spec)


def _room(a: dict[str, Any]) -> str:
    return a.get("room_name", PROJECT_SCOPE)


async def create_service(context: RestContext, a: dict[str, Any], caller: Caller) -> dict[str, Any]:
    spec = await checked_service("create_service" if "room_name" not in a else "create_room_service", a["service"])
    return await context.control.services.create(a["project_id"], _room(a), spec)


async def update_service(context: RestContext, a: dict[str, Any], caller: Caller) -> dict[str, Any]:
    spec = await checked_service("update_service" if "room_name" not in a else "update_room_service", a["service"])
    return await context.control.services.update(a["project_id"], _room(a), a["service_id"], spec)


async def get_service(context: RestContext, a: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return await context.control.services.get(a["project_id"], _room(a), a["service_id"])


async def get_service_by_name(context: RestContext, a: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return await context.control.services.get_by_name(a["project_id"], _room(a), a["service_name"])


async def list_services(context: RestContext, a: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return {"services": await context.control.services.list(a["project_id"], _room(a))}


async def delete_service(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.services.delete(a["project_id"], _room(a), a["service_id"])


async def render_template(context: RestContext, a: dict[str, Any], caller: Caller) -> dict[str, Any]:
    template = await rendered_template("render_template", {"template": a["template"], "values": a["values"]})
    return msgspec.to_builtins(template)


async def discover_mcp_spec(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    raise NotImplementedHere(
        f"discover_mcp_spec ({a['format']}): the local server does not discover MCP servers; how the cloud writes "
        "a service or template for one is not documented, and this server does not guess it"
    )


HANDLERS: dict[str, Handler] = {
    "create_service": create_service,
    "update_service": update_service,
    "get_service": get_service,
    "get_service_by_name": get_service_by_name,
    "list_services": list_services,
    "delete_service": delete_service,
    "create_room_service": create_service,
    "update_room_service": update_service,
    "get_room_service": get_service,
    "get_room_service_by_name": get_service_by_name,
    "list_room_services": list_services,
    "delete_room_service": delete_service,
    "render_template": render_template,
    "discover_mcp_spec": discover_mcp_spec,
}
