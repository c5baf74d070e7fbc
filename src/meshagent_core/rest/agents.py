"""Routes and answers of managed agents (protocol/rest.md §5): CRUD, list pages and `connect_agent`.

On the wire an agent's configuration travels as a JSON object (`AgentRecord.configuration`, the
request bodies' `configuration`), so that every route round-trips any JSON; the client's
conveniences (`client/rest_agents.py`) take and hand out the typed `ManagedAgentSpec`
(`agent_spec`), and the server refuses a configuration that is not a valid spec with 400
naming the field.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

import msgspec
from msgspec import UNSET, UnsetType

from .accounts import PROJECT
from .agent_spec import ManagedAgentMetadata, AllowedModel, ManagedAgentSpec, ManagedAgentToolkit, check_strict_schema, read_agent_spec
from .models import JsonObject, Model
from .routes import Route

AGENTS = PROJECT + "/agents"
AGENT_NOT_FOUND = "agent not found"


# --- answers ----------------------------------------------------------------------------------


class AgentRecord(Model):
    """A managed agent as the routes carry it (the configuration as JSON)."""

    id: str
    name: str
    configuration: JsonObject


class AgentsPage(Model):
    agents: list[AgentRecord]
    total: int = 0
    continuation_token: str | None = None


class ManagedAgent(msgspec.Struct, kw_only=True):
    """A managed agent with its typed configuration (what the client's methods return)."""

    id: str
    name: str
    configuration: ManagedAgentSpec


class ManagedAgentsPage(msgspec.Struct, kw_only=True):
    agents: list[ManagedAgent]
    total: int = 0
    continuation_token: str | None = None


class AgentConnectionInfo(Model):
    """`connect_agent`: a participant JWT and the agent's WebSocket URL. A legacy URL
    (`…/accounts/projects/{pid}/agents/{agent}/messages`) is read as the current form
    (`…/agents/{pid}/{agent}/messages`), prefix and query kept, as the official client does."""

    jwt: str
    agent_name: str
    project_id: str
    agent_url: str

    def __post_init__(self) -> None:
        self.agent_url = current_agent_url(self.agent_url, self.project_id, self.agent_name)


def agent_url_path(project_id: str, agent_name: str) -> str:
    return f"/agents/{quote(project_id, safe='')}/{quote(agent_name, safe='')}/messages"


def current_agent_url(url: str, project_id: str, agent_name: str) -> str:
    parts = urlsplit(url)
    legacy = f"/accounts/projects/{quote(project_id, safe='')}/agents/{quote(agent_name, safe='')}/messages"
    if not parts.path.endswith(legacy):
        return url
    return urlunsplit(parts._replace(path=parts.path[: -len(legacy)] + agent_url_path(project_id, agent_name)))


# --- routes -----------------------------------------------------------------------------------


class CreateAgentBody(msgspec.Struct, kw_only=True):
    #: a `ManagedAgentSpec` as JSON (every key, nulls kept)
    configuration: JsonObject
    if_not_exists: bool = False


class UpdateAgentBody(msgspec.Struct, kw_only=True):
    configuration: JsonObject


class AgentsQuery(msgspec.Struct, kw_only=True):
    page_size: int = 100
    continuation_token: str | None = None
    filter: str | None = None
    view: str | None = None


class ConnectAgentBody(msgspec.Struct, kw_only=True):
    #: impersonation: connect as the user with this e-mail address
    email: str | UnsetType = UNSET


ROUTES = [
    Route("create_agent", "POST", AGENTS, AgentRecord, body=CreateAgentBody, payload_noun="agent"),
    Route("get_agent", "GET", AGENTS + "/{name}", AgentRecord, not_found=AGENT_NOT_FOUND, payload_noun="agent"),
    Route("update_agent", "PUT", AGENTS + "/{agent_id}", None, body=UpdateAgentBody),
    Route("delete_agent", "DELETE", AGENTS + "/{agent_id}", None),
    Route("list_agents_page", "GET", AGENTS, AgentsPage, query=AgentsQuery, aliases=("list_agents",), payload_noun="agents list"),
    Route("connect_agent", "POST", AGENTS + "/{agent}/connect", AgentConnectionInfo, body=ConnectAgentBody),
]

__all__ = [
    "AGENT_NOT_FOUND",
    "AgentConnectionInfo",
    "ManagedAgentMetadata",
    "AgentRecord",
    "AgentsPage",
    "AllowedModel",
    "ManagedAgent",
    "ManagedAgentSpec",
    "ManagedAgentsPage",
    "ROUTES",
    "ManagedAgentToolkit",
    "agent_url_path",
    "check_strict_schema",
    "current_agent_url",
    "read_agent_spec",
]
