"""REST handlers of service accounts, API keys, participant tokens and `whoami` (protocol/rest.md §14,
§3), and who a REST bearer is (`bearer_caller`, used by `front.authenticate`).

A bearer is one of:

- the server's own API key: the owner, acting in every project;
- an API key made through REST (`create_api_key`): its service account, in its project;
- a participant JWT (the official CLI sends `MESHAGENT_TOKEN` to the REST client), verified
  as a room join verifies it: a `participant` of the token's project, which may only call
  `PARTICIPANT_ROUTES` (ask who it is, and connect to the room its token grants); anything
  else needs an API key and is refused with 403 saying so.
- an OAuth access token (`mat-…`, protocol/rest.md §15): its client, in its project, for the
  routes its scope covers (`oauth.oauth_caller`).
"""

from __future__ import annotations

from typing import Any, Mapping

from meshagent_core.rest import Route
from meshagent_core.rest.models import ApiKeyList, MintedToken, ServiceAccountsPage, User, WhoAmI
from meshagent_core.tokens import ApiScope, ParticipantGrant, ParticipantToken
from meshagent_core.tokens.api_keys import API_KEY_PREFIX

from ..auth import Refused, TrustedKey, verify_api_key, verify_token
from ..control import ControlError, Forbidden
from ..control.oauth import ACCESS_PREFIX as OAUTH_ACCESS_PREFIX
from .context import OWNER, Caller, Handler, NotImplementedHere, RestContext
from .oauth import oauth_caller

#: The routes a participant JWT may call as a REST bearer. For a route with a `room` in its
#: path, that room must be the one the token grants.
PARTICIPANT_ROUTES = frozenset({"whoami", "connect_room"})


def bearer_caller(context: RestContext, route: Route, path_arguments: Mapping[str, str], bearer: str) -> Caller:
    """Who the bearer of `Authorization: Bearer <bearer>` is, for a call of `route` (403 with
    the reason for a key or token the server does not trust now)."""
    keys = context.control.keys.ring
    if bearer.startswith(OAUTH_ACCESS_PREFIX):  # protocol/rest.md §15
        return oauth_caller(context, route, bearer)
    try:
        if bearer.startswith(API_KEY_PREFIX) or bearer.count(".") != 2:
            key = verify_api_key(bearer, keys)
            if key.is_owner:
                return OWNER
            return Caller("service_account", project_id=key.project_id, subject_id=key.service_account_id, key_id=key.id)
        token, key = verify_token(keys, bearer, context.config.clock())
    except Refused as refused:
        raise Forbidden(refused.message) from None
    if route.name not in PARTICIPANT_ROUTES:
        allowed = ", ".join(sorted(PARTICIPANT_ROUTES))
        raise Forbidden(f"{route.name}: a participant token may only call {allowed} (use an API key for the rest)")
    room = path_arguments.get("room")
    if room is not None and room != token.grant_scope("room"):
        raise Forbidden(f"the participant token does not grant access to room {room!r}")
    return Caller("participant", project_id=token.project_id or key.project_id, name=token.name, token=token)


def _signing_key(context: RestContext, caller: Caller) -> TrustedKey:
    """The key that signs the tokens `caller` mints: its own API key, else the server's."""
    keys = context.control.keys.ring
    if caller.kind != "service_account":
        return keys.owner
    key = keys.lookup(caller.key_id or "")
    if key is None:
        raise Forbidden("the API key of this call was deleted")
    return key


# --- service accounts -----------------------------------------------------------------------


async def list_service_accounts(context: RestContext, a: dict[str, Any], caller: Caller) -> ServiceAccountsPage:
    if a.get("filter") or a.get("view"):
        raise NotImplementedHere("list_service_accounts: filter and view are not implemented by the local server yet")
    page_size = max(1, min(int(a.get("page_size", 100)), 1000))
    accounts, token = await context.control.keys.list_service_accounts(a["project_id"], page_size=page_size, after=a.get("continuation_token"))
    return ServiceAccountsPage(service_accounts=accounts, continuation_token=token)


async def create_service_account(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.keys.create_service_account(
        a["project_id"],
        name=a["name"],
        description=a["description"],
        key=a.get("key"),
        display_name=a.get("display_name"),
        metadata=a.get("metadata"),
        annotations=a.get("annotations"),
    )


async def get_service_account(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.keys.get_service_account(a["project_id"], a["service_account_id"])


async def get_service_account_by_name(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.keys.get_service_account_by_name(a["project_id"], a["name"])


async def update_service_account(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    optional = {field: a[field] for field in ("display_name", "metadata", "annotations") if field in a}
    await context.control.keys.update_service_account(a["project_id"], a["service_account_id"], name=a["name"], description=a["description"], **optional)


async def delete_service_account(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.keys.delete_service_account(a["project_id"], a["service_account_id"])


# --- API keys --------------------------------------------------------------------------------


async def create_api_key(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.keys.create_api_key(a["project_id"], a["service_account_id"], name=a["name"], description=a["description"])


async def list_api_keys(context: RestContext, a: dict[str, Any], caller: Caller) -> ApiKeyList:
    return ApiKeyList(keys=await context.control.keys.list_api_keys(a["project_id"], a["service_account_id"]))


async def delete_api_key(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.keys.delete_api_key(a["project_id"], a["service_account_id"], a["id"])


async def revoke_api_keys_by_msid(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.keys.require_service_account(a["project_id"], a["service_account_id"])
    raise NotImplementedHere(
        "revoke_api_keys_by_msid: what an msid is is not documented by the official client or CLI, and the "
        "local server records none; delete keys by id with delete_api_key"
    )


# --- participant tokens ----------------------------------------------------------------------


async def mint_participant_token(context: RestContext, a: dict[str, Any], caller: Caller) -> MintedToken:
    """A participant JWT of the project, signed with the caller's key (the server's key for
    the owner), with the grants given (`grants`, or `room_name`, `role`, `api`). Its name is
    `name`, else `email`, else the caller's e-mail; it does not expire."""
    project_id = a["project_id"]
    await context.control.get_project(project_id)
    key = _signing_key(context, caller)
    name = a.get("name") or a.get("email") or await _caller_email(context, caller)
    token = ParticipantToken(name=name, project_id=project_id, api_key_id=key.id, extra_payload={"email": a["email"]} if a.get("email") else None)
    try:
        if "grants" in a:
            token.grants = [ParticipantGrant.from_json({"name": grant.name, "scope": grant.scope}) for grant in a["grants"]]
        else:
            if "room_name" in a:
                token.add_room_grant(a["room_name"])
            if "role" in a:
                token.add_role_grant(a["role"])
            if "api" in a:
                token.add_api_grant(ApiScope.from_json(a["api"]))
    except ValueError as error:
        raise ControlError(f"mint_participant_token: invalid grant: {error}") from None
    return MintedToken(token=token.to_jwt(token=key.secret))


async def validate_participant_token(context: RestContext, a: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """The claims of a token the server would accept at a room join (403 saying why not)."""
    try:
        token, _ = verify_token(context.control.keys.ring, a["token"], context.config.clock())
    except Refused as refused:
        raise Forbidden(refused.message) from None
    return token.to_json()


# --- whoami ----------------------------------------------------------------------------------


async def _caller_email(context: RestContext, caller: Caller) -> str:
    return (await whoami(context, {}, caller)).email


async def whoami(context: RestContext, a: dict[str, Any], caller: Caller) -> WhoAmI:
    """The owner is the local server's user; a service account's key is that account; a
    participant token is a user named by the token (its id and e-mail are the token's name)."""
    if caller.kind == "service_account":
        account = await context.control.keys.get_service_account(caller.project_id or "", caller.subject_id or "")
        return WhoAmI(id=account.id, email=account.email or "", type="service_account", service_account=account)
    if caller.kind == "participant":
        user = User(id=caller.name or "", email=caller.name or "")
    elif caller.kind == "owner":
        user = await context.control.accounts.get_user(context.control.accounts.owner_user().id)  # with profile edits
    elif caller.kind == "oauth_client":
        raise Forbidden("whoami: an OAuth client's token acts for the client, which is neither a user nor a service account")
    else:
        raise Forbidden("whoami needs credentials")
    return WhoAmI(id=user.id, email=user.email, type="user", user=user)


HANDLERS: dict[str, Handler] = {
    "list_service_accounts": list_service_accounts,
    "create_service_account": create_service_account,
    "get_service_account": get_service_account,
    "get_service_account_by_name": get_service_account_by_name,
    "update_service_account": update_service_account,
    "delete_service_account": delete_service_account,
    "create_api_key": create_api_key,
    "list_api_keys": list_api_keys,
    "delete_api_key": delete_api_key,
    "revoke_api_keys_by_msid": revoke_api_keys_by_msid,
    "mint_participant_token": mint_participant_token,
    "validate_participant_token": validate_participant_token,
    "whoami": whoami,
}
