"""REST handlers of external OAuth registrations, project-wide and per room (protocol/rest.md
§16; the seed documents' methods)."""

from __future__ import annotations

from typing import Any

from meshagent_core.rest.external_oauth import ExternalOAuthRegistration, ExternalOAuthRegistrationBody, ExternalOAuthRegistrations

from .context import Caller, Handler, RestContext


def _body(a: dict[str, Any]) -> ExternalOAuthRegistrationBody:
    return ExternalOAuthRegistrationBody(**{name: a[name] for name in ExternalOAuthRegistrationBody.__struct_fields__ if name in a})


async def create_registration(context: RestContext, a: dict[str, Any], caller: Caller) -> ExternalOAuthRegistration:
    return await context.control.external_oauth.create(a["project_id"], a.get("room_name"), _body(a))


async def update_registration(context: RestContext, a: dict[str, Any], caller: Caller) -> ExternalOAuthRegistration:
    return await context.control.external_oauth.update(a["project_id"], a.get("room_name"), a["registration_id"], _body(a))


async def list_registrations(context: RestContext, a: dict[str, Any], caller: Caller) -> ExternalOAuthRegistrations:
    return ExternalOAuthRegistrations(registrations=await context.control.external_oauth.list_registrations(a["project_id"], a.get("room_name")))


async def delete_registration(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.external_oauth.delete(a["project_id"], a.get("room_name"), a["registration_id"])


HANDLERS: dict[str, Handler] = {
    "create_project_external_oauth_registration": create_registration,
    "update_project_external_oauth_registration": update_registration,
    "list_project_external_oauth_registrations": list_registrations,
    "delete_project_external_oauth_registration": delete_registration,
    "create_room_external_oauth_registration": create_registration,
    "update_room_external_oauth_registration": update_registration,
    "list_room_external_oauth_registrations": list_registrations,
    "delete_room_external_oauth_registration": delete_registration,
}
