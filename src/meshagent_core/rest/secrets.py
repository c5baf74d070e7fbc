"""Routes of secrets (protocol/rest.md §9): the official 0.56 user and service-account secrets
with their versions, search, proxy access grants and pull secrets, and the seed's project, room
and agent secrets (`SEED_METHODS`, not in the official 0.56 client).

A 0.56 secret is metadata (`Secret`) plus numbered versions (`SecretVersion`) holding the value;
`value_base64` appears only in answers that were asked for the value. A seed secret is one value
(`ManagedSecret`, `data_base64`), optionally stored for a delegate (`delegated_to`).
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from .access import AccessSubject
from .accounts import PROJECT
from .keys import ACCOUNT
from .models import JsonObject, Model
from .routes import Route

USER_SECRETS = "/accounts/users/me/secrets"
ACCOUNT_SECRETS = ACCOUNT + "/secrets"
PULL_SECRETS = ACCOUNT + "/pull-secrets"
PROJECT_SECRETS = PROJECT + "/secrets"
ROOM_SECRETS = PROJECT + "/rooms/{room_name}/secrets"
AGENT_SECRETS = PROJECT + "/agents/{agent_id}/secrets"

#: The only role of a secret's proxy access grant.
USE_PROXY = "use_proxy"


# --- answers -----------------------------------------------------------------------------------


class Secret(Model, kw_only=True):
    """A secret's metadata; `value_base64` is its current version's value, only when asked for."""

    id: str
    project_id: str
    owner_user_id: str | None = None
    owner_service_account_id: str | None = None
    created_by_user_id: str | None = None
    created_by_service_account_id: str | None = None
    type: str
    name: str
    http_only: bool = False
    metadata: JsonObject = msgspec.field(default_factory=dict)
    annotations: JsonObject = msgspec.field(default_factory=dict)
    current_version_id: str | None = None
    value_base64: str | None = None
    created_at: str
    updated_at: str


class SecretVersion(Model, kw_only=True):
    id: str
    secret_id: str
    version: int
    #: hex SHA-256 of the version's value
    value_sha256: str | None = None
    created_by_user_id: str | None = None
    created_by_service_account_id: str | None = None
    created_at: str


class SecretsPage(Model):
    secrets: list[Secret]
    continuation_token: str | None = None


class SecretVersions(Model):
    versions: list[SecretVersion]


class SecretVersionValue(Model):
    secret_id: str
    version_id: str
    value_base64: str

    @property
    def value(self) -> bytes:
        return base64.b64decode(self.value_base64)


class SecretProxyAccessGrant(Model):
    subject: AccessSubject
    roles: list[str] = msgspec.field(default_factory=list)


class SecretProxyAccessGrantsPage(Model):
    access_grants: list[SecretProxyAccessGrant]
    continuation_token: str | None = None


class ManagedSecretInfo(Model):
    """A seed secret as lists show it: no value."""

    id: str
    type: str
    name: str
    delegated_to: str | None = None


class ManagedSecret(ManagedSecretInfo, kw_only=True):
    data_base64: str

    @property
    def data(self) -> bytes:
        return base64.b64decode(self.data_base64)


class ManagedSecrets(Model):
    secrets: list[ManagedSecretInfo]


class CreatedSecret(Model):
    id: str


# --- requests ----------------------------------------------------------------------------------


class SecretFields(msgspec.Struct, kw_only=True):
    """What a create sends: `name`, `type` and `http_only` always, the rest when given."""

    name: str
    type: str = "opaque"
    http_only: bool = False
    metadata: JsonObject | UnsetType = UNSET
    annotations: JsonObject | UnsetType = UNSET


class CreateUserSecretBody(SecretFields, kw_only=True):
    project_id: str


class UpdateSecretBody(msgspec.Struct, kw_only=True):
    """Only the fields given are sent and changed."""

    name: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    http_only: bool | UnsetType = UNSET
    metadata: JsonObject | UnsetType = UNSET
    annotations: JsonObject | UnsetType = UNSET


class SecretsQuery(msgspec.Struct, kw_only=True):
    page_size: int = 100
    continuation_token: str | UnsetType = UNSET
    filter: str | UnsetType = UNSET


#: The search criteria that name a metadata key of the same name (`provider`, `username`, …).
SEARCH_METADATA_KEYS = ("provider", "service", "account", "username", "email", "url", "oauth_provider", "oauth_scopes")


class SearchSecretsBody(msgspec.Struct, kw_only=True):
    page_size: int = 100
    filter: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    http_only: bool | UnsetType = UNSET
    metadata: JsonObject | UnsetType = UNSET
    annotations: JsonObject | UnsetType = UNSET
    provider: str | UnsetType = UNSET
    service: str | UnsetType = UNSET
    account: str | UnsetType = UNSET
    username: str | UnsetType = UNSET
    email: str | UnsetType = UNSET
    url: str | UnsetType = UNSET
    oauth_provider: str | UnsetType = UNSET
    oauth_scopes: str | UnsetType = UNSET
    continuation_token: str | UnsetType = UNSET


class GetSecretQuery(msgspec.Struct, kw_only=True):
    #: sent (as `true`) only when the value is wanted
    include_value: bool | UnsetType = UNSET


class CreateVersionBody(msgspec.Struct, kw_only=True):
    value_base64: str
    set_current: bool = True


class ProxySubject(msgspec.Struct, kw_only=True):
    type: str
    id: str


class ProxyAccessBody(msgspec.Struct, kw_only=True):
    subject: ProxySubject


class ProxyAccessQuery(msgspec.Struct, kw_only=True):
    page_size: int = 100
    continuation_token: str | UnsetType = UNSET


class ProjectSecretBody(msgspec.Struct, kw_only=True):
    name: str
    type: str
    data_base64: str


class CreateScopedSecretBody(msgspec.Struct, kw_only=True):
    """A room or agent secret: the value, and the rest when given."""

    data_base64: str
    secret_id: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    delegated_to: str | UnsetType = UNSET


class UpdateScopedSecretBody(msgspec.Struct, kw_only=True):
    data_base64: str
    name: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    delegated_to: str | UnsetType = UNSET


class DelegateQuery(msgspec.Struct, kw_only=True):
    delegated_to: str | UnsetType = UNSET


# --- routes ------------------------------------------------------------------------------------


def _owned_secret_routes(kind: str, prefix: str, create_body: type[msgspec.Struct]) -> list[Route]:
    """The ten routes of one owner kind (`user`, `service_account`) at `prefix` (`…/secrets`)."""
    secret = prefix + "/{secret_id}"
    return [
        Route(f"create_{kind}_secret", "POST", prefix, Secret, body=create_body),
        Route(f"list_{kind}_secrets", "GET", prefix, SecretsPage, query=SecretsQuery),
        Route(f"search_{kind}_secrets", "POST", prefix + ":search", SecretsPage, body=SearchSecretsBody),
        Route(f"get_{kind}_secret", "GET", secret, Secret, query=GetSecretQuery),
        Route(f"update_{kind}_secret", "PATCH", secret, Secret, body=UpdateSecretBody),
        Route(f"delete_{kind}_secret", "DELETE", secret, Any),
        Route(f"list_{kind}_secret_versions", "GET", secret + "/versions", SecretVersions, payload_noun="_ListSecretVersionsResponse"),
        Route(f"create_{kind}_secret_version", "POST", secret + "/versions", SecretVersion, body=CreateVersionBody),
        Route(
            f"access_{kind}_secret_version",
            "GET",
            secret + "/versions/{version_id}:access",
            SecretVersionValue,
            payload_noun="_SecretVersionValueResponse",
        ),
        Route(f"delete_{kind}_secret_version", "DELETE", secret + "/versions/{version_id}", Any),
    ]


def _scoped_secret_routes(scope: str, prefix: str) -> list[Route]:
    """The seed's five routes of room or agent secrets."""
    secret = prefix + "/{secret_id}"
    return [
        Route(f"create_{scope}_secret", "POST", prefix, CreatedSecret, body=CreateScopedSecretBody, payload_noun="secret"),
        Route(f"list_{scope}_secrets", "GET", prefix, ManagedSecrets, payload_noun=f"{scope} secrets"),
        Route(f"get_{scope}_secret", "GET", secret, ManagedSecret, query=DelegateQuery, payload_noun=f"{scope} secret"),
        Route(f"update_{scope}_secret", "PUT", secret, Any, body=UpdateScopedSecretBody),
        Route(f"delete_{scope}_secret", "DELETE", secret, Any, query=DelegateQuery),
    ]


_USER_SECRET = USER_SECRETS + "/{secret_id}"

_SEED_ROUTES = [
    Route("create_project_secret", "POST", PROJECT_SECRETS, CreatedSecret, body=ProjectSecretBody, payload_noun="secret"),
    Route("list_project_secrets", "GET", PROJECT_SECRETS, ManagedSecrets, payload_noun="secrets"),
    Route("get_project_secret", "GET", PROJECT_SECRETS + "/{secret_id}", ManagedSecret, payload_noun="secret"),
    Route("update_project_secret", "PUT", PROJECT_SECRETS + "/{secret_id}", Any, body=ProjectSecretBody),
    Route("delete_project_secret", "DELETE", PROJECT_SECRETS + "/{secret_id}", Any),
    *_scoped_secret_routes("room", ROOM_SECRETS),
    *_scoped_secret_routes("agent", AGENT_SECRETS),
]

ROUTES = [
    *_owned_secret_routes("user", USER_SECRETS, CreateUserSecretBody),
    Route("list_user_secret_proxy_access", "GET", _USER_SECRET + "/access", SecretProxyAccessGrantsPage, query=ProxyAccessQuery),
    Route("grant_user_secret_proxy_access", "POST", _USER_SECRET + "/access:grant-proxy", Any, body=ProxyAccessBody),
    Route("revoke_user_secret_proxy_access", "POST", _USER_SECRET + "/access:revoke-proxy", Any, body=ProxyAccessBody),
    *_owned_secret_routes("service_account", ACCOUNT_SECRETS, SecretFields),
    Route("list_service_account_pull_secrets", "GET", PULL_SECRETS, SecretsPage),
    Route("add_service_account_pull_secret", "PUT", PULL_SECRETS + "/{secret_id}", Any),
    Route("remove_service_account_pull_secret", "DELETE", PULL_SECRETS + "/{secret_id}", Any),
    *_SEED_ROUTES,
]

#: The seed-only methods (not in the official 0.56 client): served here and by our client.
SEED_METHODS = frozenset(route.name for route in _SEED_ROUTES)

__all__ = [
    "CreatedSecret",
    "ManagedSecret",
    "ManagedSecretInfo",
    "ManagedSecrets",
    "ROUTES",
    "SEARCH_METADATA_KEYS",
    "SEED_METHODS",
    "Secret",
    "SecretProxyAccessGrant",
    "SecretProxyAccessGrantsPage",
    "SecretVersion",
    "SecretVersionValue",
    "SecretVersions",
    "SecretsPage",
    "USE_PROXY",
]
