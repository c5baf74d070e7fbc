"""REST handlers of secrets (protocol/rest.md §9): user secrets (`/accounts/users/me/…`, "me"
being the caller), service-account secrets and pull secrets, and the seed's project, room and
agent secrets. The store is `context.control.secrets` (values sealed at rest, see
`control.secret_crypto`).

"me" is a user: the server's owner (its API key). A service account's key has no user secrets
(403 saying where its own secrets are); a participant token may not call these routes at all.
Values travel base64 (`value_base64`, `data_base64`) and are checked here (400 naming the
field, never the value).
"""

from __future__ import annotations

from typing import Any

from meshagent_core.rest.secrets import ManagedSecrets, SecretProxyAccessGrantsPage, SecretsPage, SecretVersions

from ..control import ControlError, Forbidden
from ..control.scoped_secrets import Scope
from ..control.secret_crypto import decode_value
from ..control.secrets import Author, SecretOwner
from .context import Caller, Handler, RestContext

_SECRET_FIELDS = ("name", "type", "http_only", "metadata", "annotations")
_SEARCH_FIELDS = (
    "filter", "name", "type", "http_only", "metadata", "annotations",
    "provider", "service", "account", "username", "email", "url", "oauth_provider", "oauth_scopes",
)  # fmt: skip


def _me(context: RestContext, caller: Caller) -> SecretOwner:
    if caller.kind != "owner":
        raise Forbidden(
            "user secrets belong to users: this API key is a service account's, whose secrets are at "
            "/accounts/projects/{project_id}/service-accounts/{service_account_id}/secrets"
        )
    return SecretOwner("user", context.control.accounts.owner_user().id)


def _account(a: dict[str, Any]) -> SecretOwner:
    return SecretOwner("service_account", a["service_account_id"], a["project_id"])


def _author(context: RestContext, caller: Caller) -> Author:
    if caller.kind == "service_account":
        return Author(service_account_id=caller.subject_id)
    return Author(user_id=context.control.accounts.owner_user().id)


def _given(a: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {field: a[field] for field in fields if field in a}


# --- the 0.56 secrets, for either owner ------------------------------------------------------------


def _owned_secret_handlers(kind: str, owner_of: Any) -> dict[str, Handler]:
    """The ten handlers of user (`kind` "user") or service-account secrets; `owner_of(context,
    arguments, caller)` is whose secrets a call is about."""

    async def create(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
        owner = owner_of(context, a, caller)
        return await context.control.secrets.create(owner, a["project_id"], fields=_given(a, _SECRET_FIELDS), author=_author(context, caller))

    async def search(context: RestContext, a: dict[str, Any], caller: Caller) -> SecretsPage:
        """`list_*` (a `filter`) and `search_*` (any criterion of `SecretsStore.search`)."""
        secrets, token = await context.control.secrets.search(
            owner_of(context, a, caller), _given(a, _SEARCH_FIELDS), page_size=a["page_size"], continuation_token=a.get("continuation_token")
        )
        return SecretsPage(secrets=secrets, continuation_token=token)

    async def get(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
        return await context.control.secrets.get(owner_of(context, a, caller), a["secret_id"], include_value=bool(a.get("include_value")))

    async def update(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
        return await context.control.secrets.update(owner_of(context, a, caller), a["secret_id"], _given(a, _SECRET_FIELDS))

    async def delete(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
        await context.control.secrets.delete(owner_of(context, a, caller), a["secret_id"])

    async def list_versions(context: RestContext, a: dict[str, Any], caller: Caller) -> SecretVersions:
        return SecretVersions(versions=await context.control.secrets.list_versions(owner_of(context, a, caller), a["secret_id"]))

    async def create_version(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
        value = decode_value(a["value_base64"], "value_base64")
        owner = owner_of(context, a, caller)
        return await context.control.secrets.create_version(owner, a["secret_id"], value, set_current=a["set_current"], author=_author(context, caller))

    async def access_version(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
        return await context.control.secrets.access_version(owner_of(context, a, caller), a["secret_id"], a["version_id"])

    async def delete_version(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
        await context.control.secrets.delete_version(owner_of(context, a, caller), a["secret_id"], a["version_id"])

    return {
        f"create_{kind}_secret": create,
        f"list_{kind}_secrets": search,
        f"search_{kind}_secrets": search,
        f"get_{kind}_secret": get,
        f"update_{kind}_secret": update,
        f"delete_{kind}_secret": delete,
        f"list_{kind}_secret_versions": list_versions,
        f"create_{kind}_secret_version": create_version,
        f"access_{kind}_secret_version": access_version,
        f"delete_{kind}_secret_version": delete_version,
    }


# --- proxy access and pull secrets ----------------------------------------------------------------


async def list_user_secret_proxy_access(context: RestContext, a: dict[str, Any], caller: Caller) -> SecretProxyAccessGrantsPage:
    grants, token = await context.control.secrets.list_proxy_access(
        _me(context, caller), a["secret_id"], page_size=a["page_size"], continuation_token=a.get("continuation_token")
    )
    return SecretProxyAccessGrantsPage(access_grants=grants, continuation_token=token)


def _proxy_subject(a: dict[str, Any]) -> str:
    subject = a["subject"]
    if subject.type != "service_account":
        raise ControlError(f"subject.type: proxy access is granted to service accounts only, not to a {subject.type!r}")
    return subject.id  # type: ignore[no-any-return]


async def grant_user_secret_proxy_access(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.secrets.set_proxy_access(_me(context, caller), a["secret_id"], _proxy_subject(a), granted=True)


async def revoke_user_secret_proxy_access(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.secrets.set_proxy_access(_me(context, caller), a["secret_id"], _proxy_subject(a), granted=False)


async def list_service_account_pull_secrets(context: RestContext, a: dict[str, Any], caller: Caller) -> SecretsPage:
    return SecretsPage(secrets=await context.control.secrets.list_pull_secrets(a["project_id"], a["service_account_id"]))


async def add_service_account_pull_secret(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.secrets.set_pull_secret(a["project_id"], a["service_account_id"], a["secret_id"], added=True)


async def remove_service_account_pull_secret(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.secrets.set_pull_secret(a["project_id"], a["service_account_id"], a["secret_id"], added=False)


# --- the seed's project, room and agent secrets ---------------------------------------------------


def _scoped_secret_handlers(scope_type: str, key: str | None) -> dict[str, Handler]:
    """The five handlers of one scope: `project` (no `key`), `room` (`room_name`), `agent`
    (`agent_id`)."""

    def scope(a: dict[str, Any]) -> Scope:
        return Scope(scope_type, a[key] if key else "")  # type: ignore[arg-type]

    async def create(context: RestContext, a: dict[str, Any], caller: Caller) -> dict[str, str]:
        value = decode_value(a["data_base64"], "data_base64")
        fields = _given(a, ("secret_id", "name", "type", "delegated_to"))
        return {"id": await context.control.secrets.scoped.create(a["project_id"], scope(a), value, **fields)}

    async def list_(context: RestContext, a: dict[str, Any], caller: Caller) -> ManagedSecrets:
        return ManagedSecrets(secrets=await context.control.secrets.scoped.list(a["project_id"], scope(a)))

    async def get(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
        return await context.control.secrets.scoped.get(a["project_id"], scope(a), a["secret_id"], **_given(a, ("delegated_to",)))

    async def update(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
        value = decode_value(a["data_base64"], "data_base64")
        fields = _given(a, ("name", "type", "delegated_to"))
        await context.control.secrets.scoped.update(a["project_id"], scope(a), a["secret_id"], value, **fields)

    async def delete(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
        await context.control.secrets.scoped.delete(a["project_id"], scope(a), a["secret_id"], **_given(a, ("delegated_to",)))

    return {
        f"create_{scope_type}_secret": create,
        f"list_{scope_type}_secrets": list_,
        f"get_{scope_type}_secret": get,
        f"update_{scope_type}_secret": update,
        f"delete_{scope_type}_secret": delete,
    }


HANDLERS: dict[str, Handler] = {
    **_owned_secret_handlers("user", lambda context, a, caller: _me(context, caller)),
    "list_user_secret_proxy_access": list_user_secret_proxy_access,
    "grant_user_secret_proxy_access": grant_user_secret_proxy_access,
    "revoke_user_secret_proxy_access": revoke_user_secret_proxy_access,
    **_owned_secret_handlers("service_account", lambda context, a, caller: _account(a)),
    "list_service_account_pull_secrets": list_service_account_pull_secrets,
    "add_service_account_pull_secret": add_service_account_pull_secret,
    "remove_service_account_pull_secret": remove_service_account_pull_secret,
    **_scoped_secret_handlers("project", None),
    **_scoped_secret_handlers("room", "room_name"),
    **_scoped_secret_handlers("agent", "agent_id"),
}
