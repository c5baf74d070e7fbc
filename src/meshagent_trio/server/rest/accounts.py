"""REST handlers of project members, profiles, settings documents and sysadmin users (protocol/rest.md §3).

- `user_id` "me" in a profile route is the caller (the owner's key: the owner user).
- Members: roles are `ProjectRole`s (checked by the route); the owner user is `admin` of every
  project and stays so (403 on removing it or taking `admin` away).
- Global profiles: anyone may read one; only the owner (sysadmin) changes another's.
- Sysadmin routes: the local server's owner is its only sysadmin (403 for other callers).
- Pages: by e-mail, `page_size` 1–1000; `filter` is a case-insensitive substring of the
  e-mail, first or last name.
- Settings documents: one JSON object per project and document (path names such as
  `room-roles`); an unknown document name is refused (400) naming the known ones.
"""

from __future__ import annotations

from typing import Any

import msgspec

from meshagent_core.rest.accounts import PROFILE_FIELDS, SETTINGS_DOCUMENTS
from meshagent_core.rest.models import ProjectUsersPage, User, UsersPage

from ..control import ControlError, Forbidden, NotFound
from .context import Caller, Handler, RestContext

OK = {"ok": True}
ME = "me"
_DOCUMENT_PATHS = frozenset(SETTINGS_DOCUMENTS.values())


def page_size(value: int) -> int:
    return max(1, min(int(value), 1000))


async def caller_user_id(context: RestContext, caller: Caller) -> str:
    """The user the caller is: the owner user for the server's key, else the user of the
    caller's id or e-mail (404 for a caller without a user, e.g. a service account)."""
    accounts = context.control.accounts
    if caller.kind == "owner":
        return accounts.owner_user().id
    if caller.kind == "participant" and caller.subject_id:
        try:
            return (await accounts.get_user(caller.subject_id)).id
        except NotFound:
            pass
    if caller.kind == "participant" and caller.email:
        return (await accounts.ensure_user_by_email(caller.email)).id
    raise NotFound("the caller has no user profile ('me' is a user; this caller is a " + caller.kind.replace("_", " ") + ")")


async def own_user_id(context: RestContext, caller: Caller) -> str | None:
    try:
        return await caller_user_id(context, caller)
    except NotFound:
        return None


async def user_id_of(context: RestContext, caller: Caller, user_id: str) -> str:
    return await caller_user_id(context, caller) if user_id == ME else user_id


def require_sysadmin(caller: Caller, method: str) -> None:
    if caller.kind != "owner":
        raise Forbidden(f"{method}: only the local server's owner is a sysadmin")


def profile_fields(a: dict[str, Any]) -> dict[str, Any]:
    return {field: a[field] for field in PROFILE_FIELDS if field in a}


def profile_json(user: User) -> dict[str, Any]:
    """A full profile (every key, null when unset), as raw-JSON readers expect."""
    return {"id": user.id, "email": user.email, "first_name": user.first_name, "last_name": user.last_name,
            "metadata": user.metadata, "annotations": user.annotations}  # fmt: skip


# --- members ----------------------------------------------------------------------------------


async def add_user_to_project(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    await context.control.accounts.add_member(a["project_id"], a["user_id"], a["roles"])
    return OK


async def remove_user_from_project(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    await context.control.accounts.remove_member(a["project_id"], a["user_id"])
    return OK


async def update_project_user(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    await context.control.accounts.set_member_roles(a["project_id"], a["user_id"], a["roles"])
    return OK


async def get_users_in_project_page(context: RestContext, a: dict[str, Any], caller: Caller) -> ProjectUsersPage:
    users, token = await context.control.accounts.members_page(
        a["project_id"], view=a["view"], filter=a.get("filter"), page_size=page_size(a["page_size"]), after=a.get("continuation_token")
    )
    return ProjectUsersPage(users=users, continuation_token=token)


# --- profiles ---------------------------------------------------------------------------------


async def get_user_profile(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return profile_json(await context.control.accounts.get_user(await user_id_of(context, caller, a["user_id"])))


async def update_user_profile(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    user_id = await user_id_of(context, caller, a["user_id"])
    if caller.kind != "owner" and user_id != await own_user_id(context, caller):
        raise Forbidden("update_user_profile: a caller changes its own profile only (the owner, any)")
    await context.control.accounts.update_user(user_id, profile_fields(a))
    return OK


async def get_project_user_profile(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    user_id = await user_id_of(context, caller, a["user_id"])
    user = await context.control.accounts.project_profile(a["project_id"], user_id, a["view"])
    return msgspec.to_builtins(user) if a["view"] == "project" else profile_json(user)


async def update_project_user_profile(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    user_id = await user_id_of(context, caller, a["user_id"])
    await context.control.accounts.update_project_profile(a["project_id"], user_id, profile_fields(a), a.get("inherit") or [])
    return OK


# --- settings documents -----------------------------------------------------------------------


def document_name(a: dict[str, Any]) -> str:
    name = a["document"]
    if name not in _DOCUMENT_PATHS:
        raise ControlError(f"unknown settings document {name!r} (one of {', '.join(sorted(_DOCUMENT_PATHS))})")
    return name


async def get_project_settings_document(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.accounts.get_settings_document(a["project_id"], document_name(a))


async def set_project_settings_document(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    name, document = document_name(a), a["document_body"]
    if not isinstance(document, dict):
        raise ControlError(f"set_project_settings_document: the document must be a JSON object, not {type(document).__name__}")
    await context.control.accounts.set_settings_document(a["project_id"], name, document)
    return OK


async def delete_project_settings_document(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    await context.control.accounts.delete_settings_document(a["project_id"], document_name(a))
    return OK


# --- sysadmin ---------------------------------------------------------------------------------


async def search_sysadmin_users(context: RestContext, a: dict[str, Any], caller: Caller) -> UsersPage:
    require_sysadmin(caller, "search_sysadmin_users")
    users, token = await context.control.accounts.search_users(
        filter=a.get("filter"), page_size=page_size(a["page_size"]), after=a.get("continuation_token")
    )
    return UsersPage(users=users, continuation_token=token)


async def get_sysadmin_user_profile(context: RestContext, a: dict[str, Any], caller: Caller) -> User:
    require_sysadmin(caller, "get_sysadmin_user_profile")
    return await context.control.accounts.get_user(a["user_id"])


async def update_sysadmin_user_profile(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    require_sysadmin(caller, "update_sysadmin_user_profile")
    await context.control.accounts.update_user(a["user_id"], profile_fields(a))
    return OK


HANDLERS: dict[str, Handler] = {
    "add_user_to_project": add_user_to_project,
    "remove_user_from_project": remove_user_from_project,
    "update_project_user": update_project_user,
    "get_users_in_project_page": get_users_in_project_page,
    "get_user_profile": get_user_profile,
    "update_user_profile": update_user_profile,
    "get_project_user_profile": get_project_user_profile,
    "update_project_user_profile": update_project_user_profile,
    "get_project_settings_document": get_project_settings_document,
    "set_project_settings_document": set_project_settings_document,
    "delete_project_settings_document": delete_project_settings_document,
    "search_sysadmin_users": search_sysadmin_users,
    "get_sysadmin_user_profile": get_sysadmin_user_profile,
    "update_sysadmin_user_profile": update_sysadmin_user_profile,
}
