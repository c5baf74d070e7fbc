"""REST handlers of routes and custom domains (protocol/rest.md §10). The routes are stored and
checked here; proxying the requests whose `Host` is a route's domain to the room's service is
the service runner's work, not these handlers'."""

from __future__ import annotations

from typing import Any

from meshagent_core.rest.domains import CustomDomainAnswer, CustomDomainsPage, RouteAnswer, RoutesPage

from ..control import ControlError
from .context import Caller, Handler, RestContext

#: what `list_custom_domains`' view may be: the local server has one user, so both are the same
CUSTOM_DOMAIN_VIEWS = ("my", "all")


def _page_size(value: int, field: str = "page_size") -> int:
    if value < 1:
        raise ControlError(f"{field} must be 1 or more")
    return min(value, 1000)


async def create_route(context: RestContext, a: dict[str, Any], caller: Caller) -> RouteAnswer:
    return RouteAnswer(route=await context.control.domains.create_route(a["project_id"], a["spec"]))


async def update_route(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.domains.update_route(a["project_id"], a["domain"], a["spec"])


async def get_route(context: RestContext, a: dict[str, Any], caller: Caller) -> RouteAnswer:
    return RouteAnswer(route=await context.control.domains.get_route(a["project_id"], a["domain"]))


async def list_routes_page(context: RestContext, a: dict[str, Any], caller: Caller) -> RoutesPage:
    routes, total, token = await context.control.domains.list_routes(
        a["project_id"], page_size=_page_size(a["page_size"]), after=a.get("continuation_token"), filter=a.get("filter")
    )
    return RoutesPage(routes=routes, total=total, continuation_token=token)


async def list_room_routes_page(context: RestContext, a: dict[str, Any], caller: Caller) -> RoutesPage:
    if a["offset"] < 0:
        raise ControlError("offset must be 0 or more")
    routes, total = await context.control.domains.list_room_routes(
        a["project_id"], a["room_name"], count=_page_size(a["count"], "count"), offset=a["offset"], filter=a.get("filter")
    )
    return RoutesPage(routes=routes, total=total)


async def delete_route(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.domains.delete_route(a["project_id"], a["domain"])


async def create_custom_domain(context: RestContext, a: dict[str, Any], caller: Caller) -> CustomDomainAnswer:
    return CustomDomainAnswer(custom_domain=await context.control.domains.create_custom_domain(a["project_id"], a["domain"]))


async def get_custom_domain(context: RestContext, a: dict[str, Any], caller: Caller) -> CustomDomainAnswer:
    return CustomDomainAnswer(custom_domain=await context.control.domains.get_custom_domain(a["project_id"], a["domain"]))


async def list_custom_domains(context: RestContext, a: dict[str, Any], caller: Caller) -> CustomDomainsPage:
    if a["view"] not in CUSTOM_DOMAIN_VIEWS:
        raise ControlError(f"view must be one of {', '.join(CUSTOM_DOMAIN_VIEWS)}, not {a['view']!r}")
    domains, token = await context.control.domains.list_custom_domains(
        a["project_id"], page_size=_page_size(a["page_size"]), after=a.get("continuation_token"), filter=a.get("filter")
    )
    return CustomDomainsPage(custom_domains=domains, continuation_token=token)


async def delete_custom_domain(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.domains.delete_custom_domain(a["project_id"], a["domain"])


HANDLERS: dict[str, Handler] = {
    "create_route": create_route,
    "update_route": update_route,
    "get_route": get_route,
    "list_routes_page": list_routes_page,
    "list_room_routes_page": list_room_routes_page,
    "delete_route": delete_route,
    "create_custom_domain": create_custom_domain,
    "get_custom_domain": get_custom_domain,
    "list_custom_domains": list_custom_domains,
    "delete_custom_domain": delete_custom_domain,
}
