"""Routes of services, room services, service templates and MCP discovery (protocol/rest.md §8).

A service travels as its JSON (`ServiceSpec`, `service_spec`): the official client sends it as the
whole body, without nulls or `id` on create and with every key on update, and a `{template,
values}` body on the same route creates or updates from a template, so these routes take any
JSON object (`service`) and answer one; the client's conveniences (`client/rest_services.py`)
take and hand out the typed `ServiceSpec` and `ServiceTemplateSpec`, and the server refuses a
body that is neither a valid spec nor a `{template, values}` pair with 400 naming the field.
Each `*_from_template` method is an alias of its route; so are `discover_mcp_service` and
`discover_mcp_service_template` of `discover_mcp_spec` (with `format` fixed).

These routes keep services; the local server runs them when their room starts (protocol/webhooks.md §8).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .accounts import PROJECT
from .models import JsonObject, Model
from .routes import Route
from .service_spec import ServiceSpec, ServiceTemplateSpec, read_service_spec, read_service_template, service_json
from .service_template import TemplateError, check_template_values, render_service_template

SERVICES = PROJECT + "/services"
ROOM_SERVICES = PROJECT + "/rooms/{room_name}/services"


class ServicesList(Model):
    """`list_services`, `list_room_services`: the services, as JSON."""

    services: list[JsonObject]


class TemplateBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`{template, values}`: a template's YAML text and the values of its variables (the body of
    `render_template` and of the `*_from_template` methods)."""

    template: str
    values: dict[str, str] = msgspec.field(default_factory=dict)


class DiscoverBody(msgspec.Struct, kw_only=True):
    url: str
    format: Literal["service", "template"] = "service"


def _service_routes(prefix: str, room: str) -> list[Route]:
    """The six routes of project services (`room` "") or room services (`room` "room_")."""
    return [
        Route(f"create_{room}service", "POST", prefix, JsonObject, raw_body_argument="service", aliases=(f"create_{room}service_from_template",), payload_noun="ServiceSpec"),
        Route(f"update_{room}service", "PUT", prefix + "/{service_id}", JsonObject, raw_body_argument="service", aliases=(f"update_{room}service_from_template",), payload_noun="ServiceSpec"),
        Route(f"get_{room}service", "GET", prefix + "/{service_id}", JsonObject, payload_noun="service"),
        Route(f"get_{room}service_by_name", "GET", prefix + "/by-name/{service_name}", JsonObject, payload_noun="service"),
        Route(f"list_{room}services", "GET", prefix, ServicesList, payload_noun="services"),
        Route(f"delete_{room}service", "DELETE", prefix + "/{service_id}", None),
    ]


ROUTES: list[Route] = [
    *_service_routes(SERVICES, ""),
    *_service_routes(ROOM_SERVICES, "room_"),
    Route("render_template", "POST", "/templates/render", JsonObject, body=TemplateBody, payload_noun="ServiceTemplateSpec"),
    Route("discover_mcp_spec", "POST", "/mcp/discover", JsonObject, body=DiscoverBody, aliases=("discover_mcp_service", "discover_mcp_service_template")),
]

__all__ = [
    "DiscoverBody",
    "ROUTES",
    "ServiceSpec",
    "ServiceTemplateSpec",
    "ServicesList",
    "TemplateBody",
    "TemplateError",
    "check_template_values",
    "read_service_spec",
    "read_service_template",
    "render_service_template",
    "service_json",
]
