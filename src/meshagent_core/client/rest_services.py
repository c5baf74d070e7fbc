"""The official conveniences of `Meshagent` for services, room services, service templates and MCP
discovery (protocol/rest.md §8). `Meshagent` inherits them; they call `self.call`.

The routes carry a service as JSON; these methods take a `ServiceSpec` (or its JSON, checked here
as the official client's model checks it: `msgspec.ValidationError`, a `ValueError`, naming the
field), send it as the official client does (on create without nulls or `id`, on update every
key), and return `ServiceSpec`s and `ServiceTemplateSpec`s (an answer that is not one raises
`RoomException("Invalid … payload: …")`, as officially). As officially, `create_room_service`
returns the new service's id and `update_room_service` nothing.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, TypeVar

import msgspec

from ..errors import ErrorCode, RoomException
from ..rest.service_spec import ServiceSpec, ServiceTemplateSpec, read_service_spec, read_service_template, service_json

_Spec = TypeVar("_Spec")


def _typed(read: Callable[[Any], _Spec], value: Any, noun: str) -> _Spec:
    try:
        return read(value)
    except msgspec.ValidationError as error:
        raise RoomException(f"Invalid {noun} payload: {error}", code=ErrorCode.INVALID_REQUEST) from None


def _service(value: Any) -> ServiceSpec:
    return _typed(read_service_spec, value, "ServiceSpec")


def _template(value: Any) -> ServiceTemplateSpec:
    return _typed(read_service_template, value, "ServiceTemplateSpec")


class ServicesMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    # --- project services -------------------------------------------------------------------

    async def create_service(self, *, project_id: str, service: ServiceSpec | dict[str, Any]) -> ServiceSpec:
        """A new service (ConflictError when its `metadata.name` is taken); the answer has its id."""
        body = service_json(read_service_spec(service), for_create=True)
        return _service(await self.call("create_service", project_id=project_id, service=body))

    async def update_service(self, *, project_id: str, service_id: str, service: ServiceSpec | dict[str, Any]) -> ServiceSpec:
        """Replace the service's spec (`service.id` must be set, as officially)."""
        spec = read_service_spec(service)
        if spec.id is None:
            raise RoomException("Service id must be set")
        return _service(await self.call("update_service", project_id=project_id, service_id=service_id, service=service_json(spec)))

    async def create_service_from_template(self, *, project_id: str, template: str, values: dict[str, str]) -> ServiceSpec:
        """A new service rendered from a template's YAML and its variables' values."""
        answer = await self.call("create_service", project_id=project_id, service={"template": template, "values": values})
        return _service(answer)

    async def update_service_from_template(self, *, project_id: str, service_id: str, template: str, values: dict[str, str]) -> ServiceSpec:
        answer = await self.call("update_service", project_id=project_id, service_id=service_id, service={"template": template, "values": values})
        return _service(answer)

    async def get_service(self, *, project_id: str, service_id: str) -> ServiceSpec:
        return _typed(read_service_spec, await self.call("get_service", project_id=project_id, service_id=service_id), "service")

    async def get_service_by_name(self, *, project_id: str, service_name: str) -> ServiceSpec:
        answer = await self.call("get_service_by_name", project_id=project_id, service_name=service_name)
        return _typed(read_service_spec, answer, "service")

    async def list_services(self, *, project_id: str) -> list[ServiceSpec]:
        page = await self.call("list_services", project_id=project_id)
        return [_typed(read_service_spec, item, "services") for item in page.services]

    # --- room services ----------------------------------------------------------------------

    async def create_room_service(self, *, project_id: str, room_name: str, service: ServiceSpec | dict[str, Any]) -> str:
        """A new service of the room; returns its id."""
        body = service_json(read_service_spec(service), for_create=True)
        answer = await self.call("create_room_service", project_id=project_id, room_name=room_name, service=body)
        return answer["id"]

    async def update_room_service(self, *, project_id: str, room_name: str, service_id: str, service: ServiceSpec | dict[str, Any]) -> None:
        body = service_json(read_service_spec(service))
        await self.call("update_room_service", project_id=project_id, room_name=room_name, service_id=service_id, service=body)

    async def create_room_service_from_template(self, *, project_id: str, room_name: str, template: str, values: dict[str, str]) -> ServiceSpec:
        body = {"template": template, "values": values}
        return _service(await self.call("create_room_service", project_id=project_id, room_name=room_name, service=body))

    async def update_room_service_from_template(
        self, *, project_id: str, room_name: str, service_id: str, template: str, values: dict[str, str]
    ) -> ServiceSpec:
        body = {"template": template, "values": values}
        answer = await self.call("update_room_service", project_id=project_id, room_name=room_name, service_id=service_id, service=body)
        return _service(answer)

    async def get_room_service(self, *, project_id: str, room_name: str, service_id: str) -> ServiceSpec:
        answer = await self.call("get_room_service", project_id=project_id, room_name=room_name, service_id=service_id)
        return _typed(read_service_spec, answer, "service")

    async def get_room_service_by_name(self, *, project_id: str, room_name: str, service_name: str) -> ServiceSpec:
        answer = await self.call("get_room_service_by_name", project_id=project_id, room_name=room_name, service_name=service_name)
        return _typed(read_service_spec, answer, "service")

    async def list_room_services(self, *, project_id: str, room_name: str) -> list[ServiceSpec]:
        page = await self.call("list_room_services", project_id=project_id, room_name=room_name)
        return [_typed(read_service_spec, item, "services") for item in page.services]

    # --- templates and MCP discovery ------------------------------------------------------------

    async def render_template(self, *, template: str, values: dict[str, str]) -> ServiceTemplateSpec:
        """The template rendered by the server (see `rest.service_template`)."""
        return _template(await self.call("render_template", template=template, values=values))

    async def discover_mcp_spec(self, *, url: str, format: Literal["service", "template"] = "service") -> ServiceSpec | ServiceTemplateSpec:
        if format not in ("service", "template"):
            raise RoomException("format must be 'service' or 'template'")
        answer = await self.call("discover_mcp_spec", url=url, format=format)
        return _service(answer) if format == "service" else _template(answer)

    async def discover_mcp_service(self, *, url: str) -> ServiceSpec:
        return await self.discover_mcp_spec(url=url, format="service")  # type: ignore[return-value]

    async def discover_mcp_service_template(self, *, url: str) -> ServiceTemplateSpec:
        return await self.discover_mcp_spec(url=url, format="template")  # type: ignore[return-value]
