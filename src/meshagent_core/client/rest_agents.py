"""The official conveniences of `Meshagent` for managed agents (protocol/rest.md §5): methods that are more than one
route call (paging loops, reshaped answers). `Meshagent` inherits them; they call `self.call`.

The routes carry an agent's configuration as JSON; these methods take a `ManagedAgentSpec` (or
its JSON, checked here as the official client's model checks it: `msgspec.ValidationError`, a
`ValueError`, naming the field) and return `ManagedAgent`s with a typed configuration. A
`connect_agent` answer in the legacy URL form is read as the current one (`AgentConnectionInfo`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import ErrorCode, RoomException
from ..rest.agents import AgentRecord, ManagedAgent, ManagedAgentSpec, ManagedAgentsPage, read_agent_spec


def _configuration(value: ManagedAgentSpec | dict[str, Any]) -> dict[str, Any]:
    """The spec's JSON as the official client sends it (every key, nulls kept)."""
    return msgspec.to_builtins(read_agent_spec(value))


def _typed(record: AgentRecord) -> ManagedAgent:
    try:
        return ManagedAgent(id=record.id, name=record.name, configuration=read_agent_spec(record.configuration))
    except msgspec.ValidationError as error:
        raise RoomException(f"Invalid agent payload: {error}", code=ErrorCode.INVALID_REQUEST) from None


class AgentMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def create_agent(self, *, project_id: str, configuration: ManagedAgentSpec | dict[str, Any], if_not_exists: bool = False) -> ManagedAgent:
        """A new managed agent named `configuration.metadata.name` (ConflictError when taken,
        unless `if_not_exists`: then the existing one)."""
        record = await self.call("create_agent", project_id=project_id, configuration=_configuration(configuration), if_not_exists=if_not_exists)
        return _typed(record)

    async def get_agent(self, *, project_id: str, name: str) -> ManagedAgent:
        """The agent named `name` (`RoomException("agent not found")` when there is none)."""
        return _typed(await self.call("get_agent", project_id=project_id, name=name))

    async def update_agent(self, *, project_id: str, agent_id: str, configuration: ManagedAgentSpec | dict[str, Any]) -> None:
        """Replace the agent's configuration (renames it when `metadata.name` changes)."""
        await self.call("update_agent", project_id=project_id, agent_id=agent_id, configuration=_configuration(configuration))

    async def list_agents_page(
        self, *, project_id: str, page_size: int = 100, continuation_token: str | None = None, filter: str | None = None, view: str | None = None
    ) -> ManagedAgentsPage:
        page = await self.call(
            "list_agents_page", project_id=project_id, page_size=page_size, continuation_token=continuation_token, filter=filter, view=view
        )
        return ManagedAgentsPage(agents=[_typed(record) for record in page.agents], total=page.total, continuation_token=page.continuation_token)

    async def list_agents(
        self, *, project_id: str, page_size: int = 100, continuation_token: str | None = None, filter: str | None = None, view: str | None = None
    ) -> list[ManagedAgent]:
        """The agents of one page (`list_agents_page(...).agents`), as the official method."""
        page = await self.list_agents_page(
            project_id=project_id, page_size=page_size, continuation_token=continuation_token, filter=filter, view=view
        )
        return page.agents
