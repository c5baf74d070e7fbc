"""An OpenAPI 3.1 document generated from the route table (`openapi_document()`), which the
local server serves at `GET /openapi.json`: none of the official SDKs or the cloud publishes one."""

from __future__ import annotations

from typing import Any

import msgspec

from .routes import Route, RouteTable

REF_TEMPLATE = "#/components/schemas/{name}"


def openapi_document(table: RouteTable, *, title: str, version: str) -> dict[str, Any]:
    models: list[Any] = []
    for route in table.unique():
        for model in (route.query, route.body, route.response):
            if isinstance(model, type) and issubclass(model, msgspec.Struct) and model not in models:
                models.append(model)
    schemas, components = msgspec.json.schema_components(models, ref_template=REF_TEMPLATE)
    by_model = dict(zip(models, schemas))
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(table.unique(), key=lambda r: (r.path, r.verb)):
        paths.setdefault(route.path, {})[route.verb.lower()] = _operation(route, by_model, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(route: Route, by_model: dict[Any, Any], components: dict[str, Any]) -> dict[str, Any]:
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in route.path_parameters]
    if route.query is not None:
        query_schema = components.get(route.query.__name__, {})
        required = set(query_schema.get("required", []))
        for name, schema in query_schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required, "schema": schema})
    operation: dict[str, Any] = {"operationId": route.name, "parameters": parameters}
    if route.aliases:
        operation["x-meshagent-aliases"] = list(route.aliases)
    if not route.auth:
        operation["security"] = []
    else:
        operation["security"] = [{"bearer": []}]
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": by_model[route.body]}}}
    elif route.raw_body_argument is not None and route.raw_body == "bytes":
        binary = {"type": "string", "contentMediaType": "application/octet-stream"}
        operation["requestBody"] = {"required": True, "content": {"application/octet-stream": {"schema": binary}}}
    elif route.raw_body_argument is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": {}}}}
    if route.raw_answer:
        success = {"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}
    else:
        success = {"application/json": {"schema": by_model.get(route.response, {}) if route.response is not None else {}}}
    operation["responses"] = {
        "200": {"description": "success", "content": success},
        "default": {"description": "an error: 400 bad input, 403 forbidden, 404 unknown, 409 duplicate, 423 room disabled"},
    }
    return operation


__all__ = ["openapi_document"]
