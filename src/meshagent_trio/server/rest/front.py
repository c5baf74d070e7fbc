"""Serving REST requests from the route table: match, read and check the body, call the
route's handler, answer JSON. Errors are JSON too, `{"error": {"code", "message"}}`:

- 400 a request that does not fit its route (naming the field), 413 a body over
  `max_request_body`, 405 a known path with another verb (with `Allow`);
- 501 a route the local server does not implement yet, naming the method.

`GET /openapi.json` is the OpenAPI document of the whole table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

import msgspec
import trio

from meshagent_core.rest import ROUTES, RouteError
from meshagent_core.rest.models import DeploymentConfig, DeploymentDomains
from meshagent_core.rest.openapi import openapi_document

from ..config import ServerConfig
from ..http import BodyTooLarge, Request, read_body, respond_json

log = logging.getLogger("meshagent_trio.server.rest")


def server_version() -> str:
    try:
        return version("meshagent-trio")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


@dataclass
class RestContext:
    """What a REST handler works with."""

    config: ServerConfig

    @property
    def api_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"


Handler = Callable[[RestContext, dict[str, Any]], Awaitable[Any]]


async def get_config(context: RestContext, arguments: dict[str, Any]) -> DeploymentConfig:
    return DeploymentConfig(domains=DeploymentDomains(api=context.api_url), version=server_version())


HANDLERS: dict[str, Handler] = {"get_config": get_config}


def error_body(code: str, message: str) -> bytes:
    return msgspec.json.encode({"error": {"code": code, "message": message}})


async def serve_rest(request: Request, context: RestContext) -> bool | None:
    """Answer `request` if it is a REST request; None if no REST route has its path. Returns
    whether the connection may serve another request (as the HTTP front's routes do)."""
    stream, connection = request.stream, request.connection
    if request.path == "/openapi.json" and request.method == "GET":
        document = openapi_document(ROUTES, title="MeshAgent (local server)", version=server_version())
        await respond_json(stream, connection, 200, msgspec.json.encode(document))
        return True
    matched = ROUTES.match(request.method, request.path)
    if matched is None:
        allowed = ROUTES.allowed_verbs(request.path)
        if not allowed:
            return None
        message = f"{request.method} is not allowed on {request.path} (allowed: {', '.join(allowed)})"
        await respond_json(stream, connection, 405, error_body("method_not_allowed", message), [("allow", ", ".join(allowed))])
        return True
    route, path_arguments = matched
    try:
        with trio.fail_after(context.config.request_head_timeout):
            body = await read_body(request, context.config.max_request_body)
    except BodyTooLarge:
        limit = context.config.max_request_body
        await respond_json(stream, connection, 413, error_body("too_large", f"the request body is over {limit} bytes"), [("connection", "close")])
        return False
    except trio.TooSlowError:
        return False
    try:
        arguments = route.parse(path_arguments, dict(parse_qsl(request.query, keep_blank_values=True)), body or None)
    except RouteError as error:
        await respond_json(stream, connection, 400, error_body("invalid_request", f"{route.name}: {error}"))
        return True
    handler = HANDLERS.get(route.name)
    if handler is None:
        message = f"{route.name} ({route.verb} {route.path}) is not implemented by the local server yet"
        await respond_json(stream, connection, 501, error_body("not_implemented", message))
        return True
    result = await handler(context, arguments)
    await respond_json(stream, connection, 200, msgspec.json.encode(result))
    return True
