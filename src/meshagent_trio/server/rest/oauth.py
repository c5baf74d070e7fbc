"""REST handlers of OAuth clients (protocol/rest.md §15), and the OAuth endpoints that are not
JSON routes (`serve_oauth`, called by the server's router for paths under `/oauth/`):

- `POST /oauth/token` (`exchange_oauth_token`): a form (`application/x-www-form-urlencoded`),
  the client authenticated by `client_id` and `client_secret` in the form or by HTTP Basic;
  grant types `authorization_code` (with PKCE S256 or plain; a PKCE code needs no secret),
  `refresh_token` (rotated: each refresh token is used once) and `client_credentials`. Answers
  `{access_token, token_type, expires_in, refresh_token?, scope}`, or RFC 6749 §5.2 errors
  (`{error, error_description}`, 400, or 401 for `invalid_client`).
- `GET /oauth/authorize`: the authorization endpoint. The local server has no login page, so
  the approval is the caller's API key (`Authorization: Bearer`, the owner's or one of the
  client's project); it answers 302 to the redirect URI with `code` and `state`.
- `POST /oauth/revoke` (RFC 7009): a token of the client is refused from then on.

An access token is a REST bearer acting in its client's project, for the routes its scope
covers (`oauth_caller`, called by `keys.bearer_caller`).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import msgspec
import trio

from meshagent_core.rest import Route
from meshagent_core.rest.oauth import FORM, TOKEN_PATH, OAuthClientsPage, OAuthTokenResponse, TokenForm, required_scope, scope_allows

from ..auth import Refused, verify_api_key
from ..control import ControlError, Forbidden
from ..control.oauth import OAuthError
from ..http import BodyTooLarge, Request, read_body, respond_json
from .context import Caller, Handler, NotImplementedHere, RestContext

AUTHORIZE_PATH = "/oauth/authorize"
REVOKE_PATH = "/oauth/revoke"
#: Largest token or revocation form, in bytes.
MAX_FORM_BYTES = 16 * 1024


# --- clients ---------------------------------------------------------------------------------

_CLIENT_FIELDS = ("grant_types", "response_types", "redirect_uris", "scope", "metadata", "official")


async def create_oauth_client(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.oauth.create_client(a["project_id"], {field: a[field] for field in _CLIENT_FIELDS})


async def update_oauth_client(context: RestContext, a: dict[str, Any], caller: Caller) -> dict[str, bool]:
    await context.control.oauth.update_client(a["project_id"], a["client_id"], {field: a[field] for field in _CLIENT_FIELDS if field in a})
    return {"ok": True}


async def list_oauth_clients_page(context: RestContext, a: dict[str, Any], caller: Caller) -> OAuthClientsPage:
    if a.get("filter", "").strip():
        raise NotImplementedHere("list_oauth_clients: filter is not implemented by the local server")
    if a["count"] < 0 or a["offset"] < 0:
        raise ControlError("count and offset must not be negative")
    clients, total = await context.control.oauth.list_clients(a["project_id"], count=min(a["count"], 1000), offset=a["offset"])
    return OAuthClientsPage(clients=clients, total=total)


async def get_oauth_client(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.oauth.get_client(a["project_id"], a["client_id"])


async def delete_oauth_client(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.oauth.delete_client(a["project_id"], a["client_id"])


HANDLERS: dict[str, Handler] = {
    "create_oauth_client": create_oauth_client,
    "update_oauth_client": update_oauth_client,
    "list_oauth_clients_page": list_oauth_clients_page,
    "get_oauth_client": get_oauth_client,
    "delete_oauth_client": delete_oauth_client,
}


def oauth_caller(context: RestContext, route: Route, bearer: str) -> Caller:
    """The caller an OAuth access token is: its client, in its client's project, for the routes
    its scope covers (`required_scope`); 403 saying why otherwise."""
    live = context.control.oauth.access_token(bearer, context.config.clock())
    if live is None:
        raise Forbidden("the OAuth access token is not known to this server (revoked, expired, or its client deleted)")
    needed = required_scope(route)
    if not scope_allows(live.scope, needed):
        raise Forbidden(f"{route.name}: the OAuth access token's scope does not include {needed!r}")
    return Caller("oauth_client", project_id=live.project_id, subject_id=live.client_id, name=live.client_id)


# --- the OAuth endpoints ---------------------------------------------------------------------


def is_oauth_endpoint(path: str) -> bool:
    return path in (TOKEN_PATH, AUTHORIZE_PATH, REVOKE_PATH)


async def serve_oauth(request: Request, context: RestContext) -> bool:
    """Answer a request for one of the OAuth endpoints; whether the connection may go on."""
    expected = "GET" if request.path == AUTHORIZE_PATH else "POST"
    if request.method != expected:
        await _refuse(request, OAuthError("invalid_request", f"{request.path} takes {expected}", 405), [("allow", expected)])
        return True
    try:
        if request.path == AUTHORIZE_PATH:
            location = await _authorize(request, context)
            await respond_json(request.stream, request.connection, 302, b"{}", [("location", location)])
            return True
        form = await _read_form(request, context)
        client_id, secret = _client_credentials(request, form)
        if request.path == REVOKE_PATH:
            await context.control.oauth.revoke(form.get("token", ""), client_id, secret)
            await respond_json(request.stream, request.connection, 200, b"{}")
            return True
        if "grant_type" not in form:
            raise OAuthError("invalid_request", "grant_type is missing")
        form = {**form, "client_id": client_id, **({"client_secret": secret} if secret is not None else {})}
        issued = await context.control.oauth.exchange(form, now=context.config.clock())
    except BodyTooLarge:
        await _refuse(request, OAuthError("invalid_request", f"the form is over {MAX_FORM_BYTES} bytes", 413), [("connection", "close")])
        return False
    except trio.TooSlowError:
        return False
    except OAuthError as refused:
        await _refuse(request, refused)
        return True
    except ControlError as refused:  # the authorization endpoint's refusals (404, 403, 400)
        await _refuse(request, OAuthError("invalid_request", str(refused), refused.status))
        return True
    answer = OAuthTokenResponse(access_token=issued.access_token, expires_in=issued.expires_in, refresh_token=issued.refresh_token, scope=issued.scope)
    await respond_json(request.stream, request.connection, 200, msgspec.json.encode(answer), [("cache-control", "no-store")])
    return True


async def _refuse(request: Request, error: OAuthError, headers: list[tuple[str, str]] | None = None) -> None:
    body = msgspec.json.encode({"error": error.error, "error_description": str(error)})
    await respond_json(request.stream, request.connection, error.status, body, headers)


async def _read_form(request: Request, context: RestContext) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM:
        raise OAuthError("invalid_request", f"the body must be {FORM}, not {content_type or 'missing'}")
    with trio.fail_after(context.config.request_head_timeout):
        body = await read_body(request, MAX_FORM_BYTES)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a form") from None
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise OAuthError("invalid_request", f"{repeated[0]} is given more than once")
    known = set(TokenForm.__struct_fields__) | {"token", "token_type_hint"}
    return {name: value for name, value in pairs if name in known}


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str | None]:
    """The client id and secret: HTTP Basic (RFC 6749 §2.3.1) or the form's fields."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "the Basic credentials are not base64 of id:secret", 401) from None
        return unquote(client_id), unquote(secret)
    return form.get("client_id", ""), form.get("client_secret")


async def _authorize(request: Request, context: RestContext) -> str:
    """The redirect of an approved authorization request (RFC 6749 §4.1.1)."""
    query = dict(parse_qsl(request.query, keep_blank_values=True))
    if query.get("response_type") != "code":
        raise ControlError("response_type must be code")
    client_id = query.get("client_id") or ""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise OAuthError("access_denied", "the local server approves an authorization request with the Authorization: Bearer <API key> of the client's project", 401)
    try:
        key = verify_api_key(header[7:].strip(), context.control.keys.ring)
    except Refused as refused:
        raise Forbidden(refused.message) from None
    target, code = await context.control.oauth.authorize(
        client_id,
        approver_project=None if key.is_owner else key.project_id,
        redirect_uri=query.get("redirect_uri"),
        scope=query.get("scope"),
        challenge=query.get("code_challenge"),
        method=query.get("code_challenge_method"),
        now=context.config.clock(),
    )
    parameters = {"code": code, **({"state": query["state"]} if "state" in query else {})}
    return target + ("&" if "?" in target else "?") + urlencode(parameters)


__all__ = ["HANDLERS", "is_oauth_endpoint", "oauth_caller", "serve_oauth"]
