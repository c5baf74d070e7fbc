"""Serving REST requests from the route table: match, read and check the body, call the
route's handler, answer JSON. A raw-bytes body (`upload`) is not read here but streamed to its
handler (`BodyStream`, up to `max_upload_size`), and a raw answer (`download`) is the file's bytes
(`send_file`). Errors are JSON too, `{"error": {"code", "message"}}`:

- 401 no `Authorization: Bearer <API key>`, 403 a key this server does not trust;
- 400 a request that does not fit its route (naming the field), 413 a body over
  `max_request_body` (an upload over `max_upload_size`), 405 a known path with another verb
  (with `Allow`);
- 404 an unknown project or room, 409 a name that is taken, 423 a disabled room;
- 501 a route (or an option of one) the local server does not implement yet, naming it.

The server's API key acts as the local server's owner: it may act in every project; an API key
made through REST acts in its project; a participant JWT may call a few routes (`keys`).

`GET /openapi.json` is the OpenAPI document of the whole table.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

import msgspec
import trio

from meshagent_core.rest import ROUTES, Route, RouteError
from meshagent_core.rest.openapi import openapi_document

from ..http import BodyTooLarge, Request, read_body, respond_json
from ..http.files import BodyStream, OpenFile, send_file
from ..control import ControlError, Forbidden
from .context import ANONYMOUS, Caller, NotImplementedHere, RestContext, server_version
from .handlers import HANDLERS
from .keys import bearer_caller

log = logging.getLogger("meshagent_trio.server.rest")


#: Routes answered without a key: what a client needs before it has one.
PUBLIC_ROUTES = frozenset({"get_config"})


class Unauthorized(ControlError):
    status = 401
    code = "unauthorized"


def error_body(code: str, message: str) -> bytes:
    return msgspec.json.encode({"error": {"code": code, "message": message}})


def authenticate(context: RestContext, route: Route, request: Request) -> Caller:
    """Who is calling: the bearer (the official clients send an API key as is) is the owner, a
    service account, or a participant (see `keys.bearer_caller`)."""
    if not route.auth or route.name in PUBLIC_ROUTES:
        return ANONYMOUS
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not token or token == "None":  # the official client sends `Bearer None` without a key
        raise Unauthorized("this route needs Authorization: Bearer <API key>")
    matched = ROUTES.match(request.method, request.path)
    return bearer_caller(context, route, matched[1] if matched else {}, token)


def check_project(caller: Caller, arguments: dict[str, object]) -> None:
    """A caller bound to a project acts in that project only."""
    project_id = arguments.get("project_id")
    if caller.project_id is not None and project_id is not None and project_id != caller.project_id:
        raise Forbidden(f"the credentials belong to another project than {project_id!r}")


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
        caller = authenticate(context, route, request)  # before reading a body a stranger sends
    except ControlError as refused:
        await respond_json(stream, connection, refused.status, error_body(refused.code, str(refused)))
        return True
    # A raw-bytes body (`upload`) is not read here: the handler streams it (`BodyStream`,
    # bounded by `max_upload_size`), so it may be larger than `max_request_body`.
    streamed = route.raw_body == "bytes" and route.raw_body_argument is not None
    body: bytes | None = b""
    if not streamed:
        body = await _read_whole_body(request, context)
        if body is None:
            return False
    body_stream: BodyStream | None = None
    try:
        try:
            arguments = route.parse(path_arguments, dict(parse_qsl(request.query, keep_blank_values=True)), body or None, request.headers)
        except RouteError as error:
            raise ControlError(f"{route.name}: {error}") from None
        check_project(caller, arguments)
        handler = HANDLERS.get(route.name)
        if handler is None:
            raise _not_implemented(route)
        if streamed:
            body_stream = BodyStream(request, limit=context.config.max_upload_size, read_timeout=context.config.request_head_timeout)
            arguments[route.raw_body_argument] = body_stream  # type: ignore[index]
        result = await handler(context, arguments, caller)
    except BodyTooLarge:
        limit = context.config.max_upload_size
        await respond_json(stream, connection, 413, error_body("too_large", f"the request body is over {limit} bytes"), [("connection", "close")])
        return False
    except trio.TooSlowError:
        return False
    except ControlError as refused:
        unread = streamed and (body_stream is None or not body_stream.finished)
        await respond_json(stream, connection, refused.status, error_body(refused.code, str(refused)), [("connection", "close")] if unread else None)
        return not unread
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return False  # the client went away in the middle of a streamed body
    except Exception as error:  # a bug in a handler: this call fails, the server goes on
        log.exception("REST %s failed", route.name)
        reason = error.strerror if isinstance(error, OSError) and error.strerror else f"internal error ({type(error).__name__})"
        unread = streamed and (body_stream is None or not body_stream.finished)
        await respond_json(stream, connection, 500, error_body("internal", f"{route.name} failed: {reason}"), [("connection", "close")] if unread else None)
        return not unread
    if isinstance(result, OpenFile):  # a raw answer (`download`)
        await send_file(request, result)
        return True
    await respond_json(stream, connection, 200, msgspec.json.encode({} if result is None else result))
    return True


async def _read_whole_body(request: Request, context: RestContext) -> bytes | None:
    """The request body, at most `max_request_body` bytes; None (answered 413, or too slow)
    when the connection must close."""
    try:
        with trio.fail_after(context.config.request_head_timeout):
            return await read_body(request, context.config.max_request_body)
    except BodyTooLarge:
        limit = context.config.max_request_body
        await respond_json(request.stream, request.connection, 413, error_body("too_large", f"the request body is over {limit} bytes"), [("connection", "close")])
        return None
    except trio.TooSlowError:
        return None


def _not_implemented(route: Route) -> ControlError:
    return NotImplementedHere(f"{route.name} ({route.verb} {route.path}) is not implemented by the local server yet")
