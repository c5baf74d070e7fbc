"""Routes of service accounts, their API keys, and participant tokens."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from .accounts import PROJECT
from .models import ApiKeyInfo, ApiKeyList, JsonObject, MintedToken, RevokedKeys, ServiceAccount, ServiceAccountsPage
from .routes import Route

ACCOUNTS = PROJECT + "/service-accounts"
ACCOUNT = ACCOUNTS + "/{service_account_id}"


class ServiceAccountsQuery(msgspec.Struct, kw_only=True):
    """Only the parameters given are sent (no query at all by default)."""

    page_size: int | UnsetType = UNSET
    continuation_token: str | UnsetType = UNSET
    filter: str | UnsetType = UNSET
    view: str | UnsetType = UNSET


class CreateServiceAccountBody(msgspec.Struct, kw_only=True):
    name: str
    description: str = msgspec.field(default="")
    key: str | UnsetType = UNSET
    display_name: str | UnsetType = UNSET
    metadata: JsonObject | UnsetType = UNSET
    annotations: dict[str, str] | UnsetType = UNSET


class UpdateServiceAccountBody(msgspec.Struct, kw_only=True):
    name: str
    description: str = ""
    display_name: str | UnsetType = UNSET
    metadata: JsonObject | UnsetType = UNSET
    annotations: dict[str, str] | UnsetType = UNSET


class CreateApiKeyBody(msgspec.Struct, kw_only=True):
    name: str
    description: str


class RevokeKeysBody(msgspec.Struct, kw_only=True):
    msid: str


class TokenGrant(msgspec.Struct, kw_only=True):
    """A participant-token grant: the scope is a string (room, role, …) or, for `api`, the
    `ApiScope` JSON object."""

    name: str
    scope: Any


class MintTokenBody(msgspec.Struct, kw_only=True):
    """Either `grants`, or the short form (`room_name`, `role`, `api`); only given keys are sent."""

    name: str | UnsetType = UNSET
    email: str | UnsetType = UNSET
    grants: list[TokenGrant] | UnsetType = UNSET
    room_name: str | UnsetType = UNSET
    role: str | UnsetType = UNSET
    #: the full `ApiScope` JSON
    api: JsonObject | UnsetType = UNSET


class ValidateTokenBody(msgspec.Struct, kw_only=True):
    token: str


ROUTES = [
    Route("list_service_accounts", "GET", ACCOUNTS, ServiceAccountsPage, query=ServiceAccountsQuery),
    Route("create_service_account", "POST", ACCOUNTS, ServiceAccount, body=CreateServiceAccountBody),
    Route("get_service_account", "GET", ACCOUNT, ServiceAccount),
    Route("get_service_account_by_name", "GET", ACCOUNTS + "/by-name/{name}", ServiceAccount),
    Route("update_service_account", "PUT", ACCOUNT, Any, body=UpdateServiceAccountBody),
    Route("delete_service_account", "DELETE", ACCOUNT, Any),
    Route("create_api_key", "POST", ACCOUNT + "/api-keys", ApiKeyInfo, body=CreateApiKeyBody),
    Route("list_api_keys", "GET", ACCOUNT + "/api-keys", ApiKeyList),
    Route("delete_api_key", "DELETE", ACCOUNT + "/api-keys/{id}", Any),
    Route("revoke_api_keys_by_msid", "POST", ACCOUNT + "/api-keys:revoke", RevokedKeys, body=RevokeKeysBody),
    Route("mint_participant_token", "POST", PROJECT + "/participant-tokens", MintedToken, body=MintTokenBody),
    Route("validate_participant_token", "POST", "/api/participant-token/validate", Any, body=ValidateTokenBody, auth=False),
]
