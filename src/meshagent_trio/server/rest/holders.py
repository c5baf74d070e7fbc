"""Who the participant token that `connect_room` and `connect_agent` mint is for, by caller:

- the owner: the owner user, or with `email` the user it impersonates (who must exist);
- a service account's key: the service account (role `agent`), or with `email` the user it
  impersonates, as the owner may (any key of a project may mint any token of it anyway,
  `mint_participant_token`);
- a participant bearer: the participant itself, with its own role and `api` grant, never more
  (impersonation is refused).

A user's `api` grant in a room is what their grants give (`access.room_scope`); a service
account gets the agent default.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshagent_core.tokens import ApiScope

from ..control import Forbidden
from .context import Caller, RestContext


@dataclass(frozen=True)
class Holder:
    name: str
    role: str
    #: the user whose grants decide the token's scope (None: `scope` is decided already)
    user_id: str | None = None
    scope: ApiScope | None = None


async def token_holder(context: RestContext, caller: Caller, project_id: str, email: str | None) -> Holder:
    if caller.kind == "participant":
        if email:
            raise Forbidden("a participant token may not connect as another user (use an API key)")
        assert caller.token is not None
        return Holder(caller.token.name, caller.token.role, scope=caller.token.get_api_grant() or ApiScope())
    if email:
        found = await context.control.access.user_by_email(email)
        if found is None:
            raise Forbidden(f"{email} is not a member of project {project_id!r} and has no grant here")
        return Holder(found.email or email, "user", user_id=found.id)
    if caller.kind == "service_account" and caller.subject_id is not None:
        account = await context.control.keys.get_service_account(project_id, caller.subject_id)
        return Holder(account.name, "agent", scope=ApiScope.agent_default())
    owner = context.control.accounts.owner_user()
    return Holder(owner.email, "user", user_id=owner.id)


__all__ = ["Holder", "token_holder"]
