"""Routes of external OAuth registrations (protocol/rest.md §16): OAuth clients that a project
or one of its rooms holds at another service (an MCP server's authorization server, say), for
connections that sign in there. These are the seed documents' methods; the official 0.56 client
has none (`SEED_METHODS`).

A registration is the official `OAuthClientConfig` (client id and secret, endpoints, PKCE,
scopes) with a name, unique in its project or room. Its `client_secret` is written, never read
back: answers say `has_client_secret`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from .accounts import PROJECT
from .models import Model
from .routes import Route

PROJECT_REGISTRATIONS = PROJECT + "/external-oauth"
ROOM_REGISTRATIONS = PROJECT + "/rooms/{room_name}/external-oauth"


class ExternalOAuthRegistrationBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Endpoints are absolute http(s) URLs; `client_secret` is kept when an update leaves it out."""

    name: str
    client_id: str
    authorization_endpoint: str
    token_endpoint: str
    client_secret: str | UnsetType = UNSET
    no_pkce: bool = False
    scopes: list[str] = msgspec.field(default_factory=list)
    server_url: str | UnsetType = UNSET
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class ExternalOAuthRegistration(Model, kw_only=True):
    id: str
    project_id: str
    name: str
    client_id: str
    authorization_endpoint: str
    token_endpoint: str
    created_at: str
    updated_at: str
    room_name: str | None = None
    has_client_secret: bool = False
    no_pkce: bool = False
    scopes: list[str] = msgspec.field(default_factory=list)
    server_url: str | None = None
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class ExternalOAuthRegistrations(Model, kw_only=True):
    registrations: list[ExternalOAuthRegistration]


ROUTES = [
    Route("create_project_external_oauth_registration", "POST", PROJECT_REGISTRATIONS, ExternalOAuthRegistration, body=ExternalOAuthRegistrationBody),
    Route("update_project_external_oauth_registration", "PUT", PROJECT_REGISTRATIONS + "/{registration_id}", ExternalOAuthRegistration, body=ExternalOAuthRegistrationBody),
    Route("list_project_external_oauth_registrations", "GET", PROJECT_REGISTRATIONS, ExternalOAuthRegistrations),
    Route("delete_project_external_oauth_registration", "DELETE", PROJECT_REGISTRATIONS + "/{registration_id}", Any),
    Route("create_room_external_oauth_registration", "POST", ROOM_REGISTRATIONS, ExternalOAuthRegistration, body=ExternalOAuthRegistrationBody),
    Route("update_room_external_oauth_registration", "PUT", ROOM_REGISTRATIONS + "/{registration_id}", ExternalOAuthRegistration, body=ExternalOAuthRegistrationBody),
    Route("list_room_external_oauth_registrations", "GET", ROOM_REGISTRATIONS, ExternalOAuthRegistrations),
    Route("delete_room_external_oauth_registration", "DELETE", ROOM_REGISTRATIONS + "/{registration_id}", Any),
]  # fmt: skip

#: Not in the official 0.56 client (the seed documents' methods).
SEED_METHODS = frozenset(route.name for route in ROUTES)

__all__ = ["ExternalOAuthRegistration", "ExternalOAuthRegistrationBody", "ExternalOAuthRegistrations", "ROUTES", "SEED_METHODS"]
