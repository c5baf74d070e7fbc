"""Managed agents on the local server (protocol/rest.md §5), over real sockets with our `Meshagent`
client: CRUD, pages, `connect_agent`'s token and URL, and the refusals (a configuration that is
not a valid `ManagedAgentSpec` names the field; 404 "agent not found"; 409 for a taken name)."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import given, settings

from agent_specs import RICH_SPEC, mutations

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import ConflictError, NotFoundError, PermissionDeniedError, RestError, ServerError, ValidationErrorResponse
from meshagent_core.rest.agents import AgentConnectionInfo, ManagedAgentSpec, read_agent_spec
from meshagent_core.tokens import ParticipantToken
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.control import NotFound as ControlNotFound


def client(server: Server, credentials: Credentials) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=credentials.api_key)


def spec(name: str, **fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "allowed_models": [{"provider": "openai", "model": "gpt-4.1"}], **fields}


async def test_agents_are_created_read_updated_listed_and_deleted(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials) as api:
        planner = await api.create_agent(project_id=own, configuration=spec("  Planner "))
        assert planner.name == "planner" and isinstance(planner.configuration, ManagedAgentSpec)
        assert planner.configuration.allowed_models[0].model == "gpt-4.1"
        assert await api.create_agent(project_id=own, configuration=spec("planner", instructions="x"), if_not_exists=True) == planner
        with pytest.raises(ConflictError, match="agent 'planner' already exists"):
            await api.create_agent(project_id=own, configuration=spec("planner"))
        assert await api.get_agent(project_id=own, name="planner") == planner

        tools = [{"name": "add", "input_schema": {"type": "object", "properties": {}, "required": [], "additionalProperties": False}, "source": "x"}]
        await api.update_agent(project_id=own, agent_id=planner.id, configuration=spec("writer", instructions="write", tools=tools))
        writer = await api.get_agent(project_id=own, name="writer")
        assert (writer.id, writer.configuration.instructions, writer.configuration.tools[0].name) == (planner.id, "write", "add")
        with pytest.raises(RestError, match="agent not found"):
            await api.get_agent(project_id=own, name="planner")

        for name in ("alpha", "beta", "gamma"):
            await api.create_agent(project_id=own, configuration=spec(name))
        with pytest.raises(ConflictError, match="'alpha' already exists"):
            await api.update_agent(project_id=own, agent_id=planner.id, configuration=spec("alpha"))
        first = await api.list_agents_page(project_id=own, page_size=3)
        assert [a.name for a in first.agents] == ["alpha", "beta", "gamma"] and first.total == 4 and first.continuation_token
        rest = await api.list_agents_page(project_id=own, page_size=3, continuation_token=first.continuation_token)
        assert [a.name for a in rest.agents] == ["writer"] and rest.continuation_token is None
        assert [a.name for a in await api.list_agents(project_id=own, filter="MM")] == ["gamma"]
        with pytest.raises(ServerError, match="view is not implemented"):
            await api.list_agents(project_id=own, view="all")

        await api.delete_agent(project_id=own, agent_id=planner.id)
        assert [a.name for a in await api.list_agents(project_id=own)] == ["alpha", "beta", "gamma"]
        with pytest.raises(NotFoundError, match=f"agent id '{planner.id}' does not exist"):
            await api.delete_agent(project_id=own, agent_id=planner.id)
        with pytest.raises(NotFoundError, match="does not exist"):
            await api.update_agent(project_id=own, agent_id=planner.id, configuration=spec("x"))
        with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
            await api.create_agent(project_id="nope", configuration=spec("x"))
        assert (await server.control.agents.get_agent_by_id(own, first.agents[0].id)).name == "alpha"
        with pytest.raises(ControlNotFound, match="agent id 'ghost' does not exist"):
            await server.control.agents.get_agent_by_id(own, "ghost")


async def test_connect_agent_gives_a_participant_token_and_the_agent_url(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials) as api:
        await api.create_agent(project_id=own, configuration=spec("helper"))
        info = await api.connect_agent(project_id=own, agent="helper")
        assert (info.agent_name, info.project_id) == ("helper", own)
        assert info.agent_url == f"ws://127.0.0.1:{server.port}/agents/{own}/helper/messages"
        token = ParticipantToken.from_jwt(info.jwt, token=credentials.secret)
        assert (token.name, token.project_id, token.grant_scope("agent")) == ("owner@localhost", own, "helper")
        with pytest.raises(PermissionDeniedError, match="ada@example.com is not a member"):
            await api.connect_agent(project_id=own, agent="helper", email="ada@example.com")
        ada = {"type": "user", "email": "ada@example.com"}
        await api.grant_resource_policy(project_id=own, resource_type="project", resource_id=own, subject=ada, roles=["member"])
        impersonated = await api.connect_agent(project_id=own, agent="helper", email="ada@example.com")
        assert ParticipantToken.from_jwt(impersonated.jwt, token=credentials.secret).name == "ada@example.com"
        with pytest.raises(NotFoundError, match="agent 'ghost' does not exist"):
            await api.connect_agent(project_id=own, agent="ghost")
        other = await api.create_project(name="other")
        await api.create_agent(project_id=other.id, configuration=spec("helper"))  # names are per project
        elsewhere = await api.connect_agent(project_id=other.id, agent="helper")
        assert ParticipantToken.from_jwt(elsewhere.jwt, token=credentials.secret).project_id == other.id
    async with httpx.AsyncClient() as http:  # the agent URL says the agent does not run here
        upgrade = {"connection": "Upgrade", "upgrade": "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="}
        answer = await http.get(info.agent_url.replace("ws://", "http://"), headers={**upgrade, "authorization": f"Bearer {info.jwt}"})
    assert answer.status_code == 501 and "managed agents do not run on the local server" in answer.json()["error"]["message"]


def test_a_legacy_agent_url_is_read_in_the_current_form() -> None:
    legacy = "wss://h:1/base/accounts/projects/p%201/agents/a/messages?x=1"
    info = msgspec.json.decode(
        msgspec.json.encode({"jwt": "j", "agent_name": "a", "project_id": "p 1", "agent_url": legacy}), type=AgentConnectionInfo
    )
    assert info.agent_url == "wss://h:1/base/agents/p%201/a/messages?x=1"


@settings(max_examples=300, deadline=None)
@given(configuration=mutations())
def test_reading_a_spec_refuses_with_a_validation_error_or_reads_it_for_good(configuration: dict[str, Any]) -> None:
    """Any configuration is either refused with a `ValidationError` (naming the field, never
    another exception) or read to a spec that reads back to itself from its JSON (the
    normalizations are done once: a stored spec is stable)."""
    try:
        spec = read_agent_spec(configuration)
    except msgspec.ValidationError as error:
        assert str(error)
        return
    dumped = msgspec.json.encode(spec)
    assert read_agent_spec(msgspec.json.decode(dumped)) == spec
    assert msgspec.json.encode(read_agent_spec(msgspec.json.decode(dumped))) == dumped


def test_the_rich_spec_is_read_with_the_official_normalizations() -> None:
    spec = read_agent_spec(RICH_SPEC)
    assert spec.name == "big agent" and spec.run_as.email == "bot@example.com"
    assert spec.run_as.scopes == ["secrets:read", "llm_proxy"]
    assert [type(toolkit).__name__ for toolkit in spec.toolkits] == ["ManagedAgentWebSearch", "ManagedAgentWebFetch", "ManagedAgentImageGeneration", "McpToolkit"]


BAD_SPECS = [
    (spec("x", colour="blue"), "unknown field `colour`"),
    (spec("x", metadata={"name": "x", "owner": "me"}), "unknown field `owner` - at `$.configuration.metadata`"),
    ({"metadata": {"name": "x"}}, "missing required field `allowed_models`"),
    (spec("x", allowed_models=[{"provider": "mistral", "model": "m"}]), "allowed_models[0].provider"),
    (spec("x", environment=[{"name": "A"}]), "exactly one of value or secret - at `$.configuration.environment[0]`"),
    (spec("x", environment=[{"name": "A", "secret": {"id": "s"}}]), "require run_as with secrets:read"),
    (spec("x", connections={"c": {"base_url": "ftp://h"}}), "base_url must be HTTP(S)"),
    (spec("x", tools=[{"name": "t", "input_schema": {"type": "object"}, "source": "x"}]), "additionalProperties must be false"),
    (spec("x", tools=[{"name": "1t", "input_schema": {}, "source": "x"}]), "tools[0].name"),
    (spec("x", toolkits=[{"type": "web_search", "colour": 1}]), "unknown field `colour` - at `$.configuration.toolkits[0]`"),
    (spec("x", llm_delegation="sometimes"), "llm_delegation"),
    (spec(" "), "metadata.name ''"),
]


@pytest.mark.parametrize("configuration, message", BAD_SPECS)
async def test_a_bad_configuration_is_refused_naming_the_field(server: Server, credentials: Credentials, configuration, message) -> None:
    own = credentials.project_id
    headers = {"Authorization": f"Bearer {credentials.api_key}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", headers=headers) as http:
        created = await http.post(f"/accounts/projects/{own}/agents", json={"configuration": configuration})
        assert created.status_code == 400 and message in created.json()["error"]["message"], created.text
    if configuration["metadata"]["name"].strip():  # an empty name is the server's rule, not the model's
        with pytest.raises(ValueError):  # our client refuses it before sending, as the official model does
            read_agent_spec(configuration)


async def test_legacy_spec_forms_are_read_as_the_official_model_reads_them(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    legacy = {
        "name": "Legacy",
        "allowed_models": [{"provider": "anthropic", "model": "claude"}],
        "toolkits": [{"type": "mcp", "servers": [{"server_label": "s", "server_url": "https://m", "authorization": "t"}]}],
    }
    async with client(server, credentials) as api:
        agent = await api.create_agent(project_id=own, configuration=legacy)
        assert agent.name == "legacy" and agent.configuration.toolkits[0].servers[0].server_label == "s"
        with pytest.raises(ValidationErrorResponse, match="update_agent: configuration"):
            await api.call("update_agent", project_id=own, agent_id=agent.id, configuration={"metadata": {"name": "x"}})
