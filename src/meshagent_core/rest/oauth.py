"""Routes of OAuth clients (protocol/rest.md §15), and the token endpoint's form and answer.

The token endpoint (`exchange_oauth_token`, `POST /oauth/token`) is not a JSON route: the
official client sends an `application/x-www-form-urlencoded` form and reads a JSON answer, so
it is defined here as `TOKEN_PATH`, `TokenForm` (the fields a form may have) and
`OAuthTokenResponse`, used by `Meshagent.exchange_oauth_token` and by the server's endpoint.

`SCOPES` is the official scope vocabulary; `required_scope(route)` is the scope an OAuth access
token needs to call a route, and `scope_allows` whether a token's scopes include it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from .accounts import PROJECT
from .models import JsonObject, Model
from .routes import Route

CLIENTS = PROJECT + "/oauth/clients"
CLIENT = CLIENTS + "/{client_id}"
TOKEN_PATH = "/oauth/token"
FORM = "application/x-www-form-urlencoded"

#: The grant types the token endpoint serves (what the official client and CLI send, and the
#: machine-to-machine grant).
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


#: The official OAuth scope vocabulary (the official client's `FULL_OAUTH_SCOPES`).
SCOPES = frozenset(
    """profile:read profile:write project/* room/* agent/* users:create users:read users:update users:delete
    projects:read projects:update projects:iam.read projects:iam.write projects:billing.read projects:billing.write
    rooms:create rooms:read rooms:connect rooms:update rooms:delete rooms:files.list rooms:files.read rooms:files.write
    rooms:files.delete rooms:files.presign agents:create agents:read agents:update agents:delete agents:run
    agents:sessions.read agents:files.list agents:files.read agents:files.write agents:files.delete agents:files.presign
    mailboxes:create mailboxes:read mailboxes:update mailboxes:delete routes:create routes:read routes:update
    routes:delete scheduledTasks:create scheduledTasks:read scheduledTasks:update scheduledTasks:delete
    services:create services:read services:update services:delete repositories:create repositories:read
    repositories:update repositories:delete apiKeys:create apiKeys:read apiKeys:delete serviceAccounts:create
    serviceAccounts:read serviceAccounts:update serviceAccounts:delete oauthClients:create oauthClients:read
    oauthClients:update oauthClients:delete llm:invoke llm:usage.read llm:logs.read llm:logs.write secrets:read
    secrets:write secrets:delete secrets:grant secrets:proxy""".split()
)
#: Scopes that grant every route of the project, of its rooms, of its agents.
WILDCARDS = {"project/*": "", "room/*": "rooms:", "agent/*": "agents:"}


def _crud(resource: str) -> dict[str, str]:
    return {"GET": f"{resource}:read", "POST": f"{resource}:create", "PUT": f"{resource}:update", "PATCH": f"{resource}:update", "DELETE": f"{resource}:delete"}


def _read_write(read: str, write: str, delete: str | None = None) -> dict[str, str]:
    return {"GET": read, "POST": write, "PUT": write, "PATCH": write, "DELETE": delete or write}


_IAM = _read_write("projects:iam.read", "projects:iam.write")
_BILLING = _read_write("projects:billing.read", "projects:billing.write")
#: The scope a route needs, by the last of its path's literal segments (after the project) that
#: is here; a project route with none of them needs `project/*`.
_SEGMENT_SCOPES: dict[str, dict[str, str]] = {
    **{segment: _crud(resource) for segment, resource in (
        ("rooms", "rooms"), ("agents", "agents"), ("mailboxes", "mailboxes"), ("routes", "routes"),
        ("custom-domains", "routes"), ("scheduled-tasks", "scheduledTasks"), ("services", "services"),
        ("repositories", "repositories"), ("service-accounts", "serviceAccounts"), ("api-keys", "apiKeys"),
        ("oauth", "oauthClients"), ("users", "users"),
    )},  # fmt: skip
    **dict.fromkeys(("iam", "groups", "room-grants", "agent-grants", "agent-room-grants", "access:test", "access:effective", "access:bindings"), _IAM),
    **dict.fromkeys(("balance", "credits", "recharge", "subscription", "transactions", "usage", "status"), _BILLING),
    "secrets": _read_write("secrets:read", "secrets:write", "secrets:delete"),
    "secrets:search": _read_write("secrets:read", "secrets:read"),
    "settings": _read_write("projects:read", "projects:update"),
    "llm-loggers": _read_write("llm:logs.read", "llm:logs.write"),
    "llm-proxy": _read_write("llm:usage.read", "llm:usage.read"),
    "sessions": _read_write("rooms:read", "rooms:update"),
}
_PROJECT_SCOPES = _read_write("projects:read", "projects:update")
_ROUTE_SCOPES = {
    "connect_room": "rooms:connect",
    "connect_agent": "agents:run",
    "connect_llm": "llm:invoke",
    "revoke_api_keys_by_msid": "apiKeys:delete",
    "whoami": "profile:read",
    "get_user_profile": "profile:read",
    "update_user_profile": "profile:write",
    **dict.fromkeys(("list_active_agent_sessions", "list_recent_agent_sessions", "list_recent_single_agent_sessions"), "agents:sessions.read"),
}


def required_scope(route: Route) -> str:
    """The OAuth scope a token needs to call `route` (`project/*` where no narrower one fits)."""
    if route.name in _ROUTE_SCOPES:
        return _ROUTE_SCOPES[route.name]
    if route.path == PROJECT:
        return _PROJECT_SCOPES[route.verb]
    if not route.path.startswith(PROJECT + "/"):
        return "project/*"
    found = "project/*"
    for segment in route.segments[3:]:
        if segment in _SEGMENT_SCOPES:
            found = _SEGMENT_SCOPES[segment][route.verb]
    return found


def scope_allows(granted: str, required: str) -> bool:
    """Whether the space-separated scopes `granted` include `required` (or a wildcard of it)."""
    scopes = set(granted.split())
    return required in scopes or any(wildcard in scopes and required.startswith(prefix) for wildcard, prefix in WILDCARDS.items())


class OAuthClient(Model, kw_only=True):
    """An OAuth client; `client_secret` only in the answer of `create_oauth_client`."""

    client_id: str
    client_secret: str | None = None
    grant_types: list[str]
    response_types: list[str]
    redirect_uris: list[str]
    #: space-separated scopes
    scope: str
    project_id: str
    metadata: dict[str, str]
    official: bool = False


class OAuthClientsPage(Model, kw_only=True):
    clients: list[OAuthClient]
    total: int


class OAuthTokenResponse(Model, kw_only=True):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int | None = None
    refresh_token: str | None = None
    scope: str | None = None
    id_token: str | None = None


class CreateOAuthClientBody(msgspec.Struct, kw_only=True):
    grant_types: list[str]
    response_types: list[str]
    redirect_uris: list[str]
    scope: str
    #: the official client types it `Dict[str, Any]`; the server keeps a map of strings
    metadata: JsonObject = msgspec.field(default_factory=dict)
    official: bool = False


class UpdateOAuthClientBody(msgspec.Struct, kw_only=True):
    """Any subset of the client's fields; only the given ones change."""

    grant_types: list[str] | UnsetType = UNSET
    response_types: list[str] | UnsetType = UNSET
    redirect_uris: list[str] | UnsetType = UNSET
    scope: str | UnsetType = UNSET
    metadata: JsonObject | UnsetType = UNSET
    official: bool | UnsetType = UNSET


class OAuthClientsQuery(msgspec.Struct, kw_only=True):
    count: int = 100
    offset: int = 0
    filter: str | UnsetType = UNSET


class TokenForm(msgspec.Struct, kw_only=True):
    """The fields of a token request form that the server reads (RFC 6749 §4.1.3, §4.4.2, §6;
    PKCE, RFC 7636 §4.5); others are ignored, as RFC 6749 §3.2 says."""

    grant_type: str
    client_id: str | UnsetType = UNSET
    client_secret: str | UnsetType = UNSET
    code: str | UnsetType = UNSET
    redirect_uri: str | UnsetType = UNSET
    code_verifier: str | UnsetType = UNSET
    refresh_token: str | UnsetType = UNSET
    scope: str | UnsetType = UNSET


ROUTES = [
    Route("create_oauth_client", "POST", CLIENTS, OAuthClient, body=CreateOAuthClientBody, payload_noun="create-oauth-client"),
    Route("update_oauth_client", "PUT", CLIENT, Any, body=UpdateOAuthClientBody),
    Route("list_oauth_clients_page", "GET", CLIENTS, OAuthClientsPage, query=OAuthClientsQuery, aliases=("list_oauth_clients",), payload_noun="oauth-clients list"),
    Route("get_oauth_client", "GET", CLIENT, OAuthClient, not_found="oauth client not found", payload_noun="oauth-client"),
    Route("delete_oauth_client", "DELETE", CLIENT, None),
]

__all__ = [
    "FORM",
    "GRANT_TYPES",
    "ROUTES",
    "SCOPES",
    "WILDCARDS",
    "TOKEN_PATH",
    "CreateOAuthClientBody",
    "OAuthClient",
    "OAuthClientsPage",
    "OAuthClientsQuery",
    "OAuthTokenResponse",
    "TokenForm",
    "UpdateOAuthClientBody",
    "required_scope",
    "scope_allows",
]
