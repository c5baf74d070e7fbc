"""REST handlers of managed agents (protocol/rest.md §5).

The local server stores managed agents (their `ManagedAgentSpec`, checked as the official model
checks it: 400 naming the field) but does not run them: a managed agent needs an LLM.
`connect_agent` still answers what the cloud answers — a real participant token (signed with
the server's own key, for the caller or the `email` impersonated, with an `agent` grant for the
agent) and the agent's URL `ws://<host:port>/agents/{project_id}/{agent}/messages` — and that
URL answers that managed agents do not run on the local server.

`list_agents`: `filter` is a case-insensitive substring of the name; `view` is not implemented
(501, no view is documented).
"""

from __future__ import annotations

from typing import Any

import msgspec

from meshagent_core.rest.agents import AgentConnectionInfo, AgentsPage, ManagedAgentSpec, agent_url_path, read_agent_spec
from meshagent_core.tokens import ApiScope, ParticipantToken

from ..control import ControlError
from .context import Caller, Handler, NotImplementedHere, RestContext
from .holders import token_holder


def checked_configuration(method: str, configuration: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(name, the spec as stored) of a configuration; 400 naming the field when it is not a
    valid `ManagedAgentSpec`."""
    try:
        spec: ManagedAgentSpec = read_agent_spec(configuration)
    except msgspec.ValidationError as error:
        where = str(error).replace("- at `$", "- at `$.configuration", 1)
        raise ControlError(f"{method}: configuration: {where}") from None
    if not spec.name or "/" in spec.name:
        raise ControlError(f"{method}: configuration.metadata.name {spec.name!r} must be non-empty, without '/'")
    return spec.name, msgspec.to_builtins(spec)


async def create_agent(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    name, configuration = checked_configuration("create_agent", a["configuration"])
    return await context.control.agents.create_agent(a["project_id"], name, configuration, if_not_exists=a["if_not_exists"])


async def get_agent(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.agents.get_agent(a["project_id"], a["name"])


async def update_agent(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    name, configuration = checked_configuration("update_agent", a["configuration"])
    await context.control.agents.update_agent(a["project_id"], a["agent_id"], name, configuration)


async def delete_agent(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.agents.delete_agent(a["project_id"], a["agent_id"])


async def list_agents_page(context: RestContext, a: dict[str, Any], caller: Caller) -> AgentsPage:
    if a.get("view"):
        raise NotImplementedHere("list_agents: view is not implemented by the local server")
    page_size = max(1, min(int(a["page_size"]), 1000))
    agents, total, token = await context.control.agents.list_agents(
        a["project_id"], filter=a.get("filter"), page_size=page_size, after=a.get("continuation_token")
    )
    return AgentsPage(agents=agents, total=total, continuation_token=token)


def agent_url(context: RestContext, project_id: str, agent: str) -> str:
    base = context.config.public_url or f"ws://{context.config.host}:{context.config.port}"
    return base.rstrip("/") + agent_url_path(project_id, agent)


async def connect_agent(context: RestContext, a: dict[str, Any], caller: Caller) -> AgentConnectionInfo:
    """A participant token to talk to the agent, and its URL (which, on the local server, says
    that managed agents do not run here)."""
    credentials = context.config.credentials
    project_id = a["project_id"]
    agent = await context.control.agents.get_agent(project_id, a["agent"])
    holder = await token_holder(context, caller, project_id, a.get("email"))
    token = ParticipantToken(name=holder.name, project_id=project_id, api_key_id=credentials.key_id)
    token.add_role_grant(holder.role)
    token.add_agent_grant(agent.name)
    token.add_api_grant(holder.scope or ApiScope.user_default())
    return AgentConnectionInfo(
        jwt=token.to_jwt(token=credentials.secret), agent_name=agent.name, project_id=project_id, agent_url=agent_url(context, project_id, agent.name)
    )


HANDLERS: dict[str, Handler] = {
    "create_agent": create_agent,
    "get_agent": get_agent,
    "update_agent": update_agent,
    "delete_agent": delete_agent,
    "list_agents_page": list_agents_page,
    "connect_agent": connect_agent,
}
