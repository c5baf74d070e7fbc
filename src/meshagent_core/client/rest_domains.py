"""The official conveniences of `Meshagent` for routes and custom domains (protocol/rest.md §10): methods that are more than one
route call (paging loops, reshaped answers). `Meshagent` inherits them; they call `self.call`.

`create_route` and `update_route` take a `RouteSpec` (or its JSON), or, as the official client,
a domain, room and port from which they build one; `list_custom_domains` takes the official
`count` (sent as `page_size`).
"""

from __future__ import annotations

from typing import Any

from ..rest.domains import CustomDomainsPage, RouteInfo, RouteSpec, simple_route_spec


def _spec(spec: RouteSpec | dict[str, Any] | None, *, domain: str | None, room_name: str | None, port: str | int | None, annotations: dict[str, str] | None, method: str) -> Any:
    if spec is not None:
        return spec
    if domain is None or room_name is None or port is None:
        raise ValueError(f"{method} requires spec or domain, room_name, and port")
    return simple_route_spec(domain=domain, room_name=room_name, port=port, annotations=annotations)


class DomainsMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def create_route(
        self,
        *,
        project_id: str,
        spec: RouteSpec | dict[str, Any] | None = None,
        domain: str | None = None,
        room_name: str | None = None,
        port: str | int | None = None,
        annotations: dict[str, str] | None = None,
    ) -> None:
        route_spec = _spec(spec, domain=domain, room_name=room_name, port=port, annotations=annotations, method="create_route")
        await self.call("create_route", project_id=project_id, spec=route_spec)

    async def update_route(
        self,
        *,
        project_id: str,
        domain: str,
        spec: RouteSpec | dict[str, Any] | None = None,
        room_name: str | None = None,
        port: str | int | None = None,
        annotations: dict[str, str] | None = None,
    ) -> None:
        route_spec = _spec(spec, domain=domain, room_name=room_name, port=port, annotations=annotations, method="update_route")
        await self.call("update_route", project_id=project_id, domain=domain, spec=route_spec)

    async def list_routes(self, *, project_id: str, page_size: int = 100, continuation_token: str | None = None, filter: str | None = None) -> list[RouteInfo]:
        """The routes of one page (`list_routes_page(...).routes`)."""
        page = await self.call("list_routes_page", project_id=project_id, page_size=page_size, continuation_token=continuation_token, filter=filter)
        return page.routes  # type: ignore[no-any-return]

    async def list_room_routes(self, *, project_id: str, room_name: str, count: int = 100, offset: int = 0, filter: str | None = None) -> list[RouteInfo]:
        """The room's routes of one page (`list_room_routes_page(...).routes`)."""
        page = await self.call("list_room_routes_page", project_id=project_id, room_name=room_name, count=count, offset=offset, filter=filter)
        return page.routes  # type: ignore[no-any-return]

    async def list_custom_domains(
        self, *, project_id: str, count: int = 100, continuation_token: str | None = None, filter: str | None = None, view: str = "my"
    ) -> CustomDomainsPage:
        return await self.call(  # type: ignore[no-any-return]
            "list_custom_domains", project_id=project_id, page_size=count, continuation_token=continuation_token, filter=filter, view=view
        )
