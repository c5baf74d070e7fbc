"""Managed agents (protocol/rest.md §5): one row per agent, its configuration (a `ManagedAgentSpec` as
JSON, checked by the REST layer) and its name (`configuration.metadata.name`), unique per
project. The local server stores agents; it does not run them (a managed agent needs an LLM)."""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from meshagent_core.rest.agents import AgentRecord

from .accounts import contains_pattern
from .common import Conflict, NotFound, key_page, now_iso, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE agents (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            configuration TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (project_id, name)
        )""",
    ),
    (  # a deleted agent leaves no policies on it or of it, and no group memberships
        """CREATE TRIGGER access_of_deleted_agents AFTER DELETE ON agents BEGIN
            DELETE FROM policy_grants WHERE project_id = OLD.project_id
                AND ((resource_type = 'agent' AND resource_id = OLD.id) OR (subject_type = 'agent' AND subject_key = OLD.id));
            DELETE FROM group_members WHERE subject_type = 'agent' AND subject_key = OLD.id;
        END""",
    ),
]

_COLUMNS = "id, name, configuration"


def _agent(row: tuple[Any, ...]) -> AgentRecord:
    return AgentRecord(id=row[0], name=row[1], configuration=msgspec.json.decode(row[2]))


def _by_name(db: sqlite3.Connection, project_id: str, name: str) -> AgentRecord | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM agents WHERE project_id = ? AND name = ?", (project_id, name)).fetchone()
    return None if row is None else _agent(row)


def _check_name_free(db: sqlite3.Connection, project_id: str, name: str, agent_id: str) -> None:
    if db.execute("SELECT 1 FROM agents WHERE project_id = ? AND name = ? AND id != ?", (project_id, name, agent_id)).fetchone():
        raise Conflict(f"agent {name!r} already exists")


class AgentStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    async def create_agent(self, project_id: str, name: str, configuration: dict[str, Any], *, if_not_exists: bool) -> AgentRecord:
        """A new agent named `name` (409 when the name is taken, unless `if_not_exists`: then the
        existing agent, unchanged)."""

        def work(db: sqlite3.Connection) -> AgentRecord:
            require_project(db, project_id)
            existing = _by_name(db, project_id, name)
            if existing is not None:
                if if_not_exists:
                    return existing
                raise Conflict(f"agent {name!r} already exists")
            agent = AgentRecord(id=str(uuid.uuid4()), name=name, configuration=configuration)
            db.execute(
                "INSERT INTO agents (id, project_id, name, configuration, created_at) VALUES (?, ?, ?, ?, ?)",
                (agent.id, project_id, name, msgspec.json.encode(configuration).decode(), now_iso()),
            )
            return agent

        return await self.plane.run(work)

    async def get_agent(self, project_id: str, name: str) -> AgentRecord:
        def work(db: sqlite3.Connection) -> AgentRecord:
            require_project(db, project_id)
            agent = _by_name(db, project_id, name)
            if agent is None:
                raise NotFound(f"agent {name!r} does not exist")
            return agent

        return await self.plane.run(work)

    async def get_agent_by_id(self, project_id: str, agent_id: str) -> AgentRecord:
        def work(db: sqlite3.Connection) -> AgentRecord:
            require_project(db, project_id)
            row = db.execute(f"SELECT {_COLUMNS} FROM agents WHERE project_id = ? AND id = ?", (project_id, agent_id)).fetchone()
            if row is None:
                raise NotFound(f"agent id {agent_id!r} does not exist")
            return _agent(row)

        return await self.plane.run(work)

    async def update_agent(self, project_id: str, agent_id: str, name: str, configuration: dict[str, Any]) -> None:
        """Replace the configuration (and so the name: 409 when another agent has it)."""

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            if db.execute("SELECT 1 FROM agents WHERE project_id = ? AND id = ?", (project_id, agent_id)).fetchone() is None:
                raise NotFound(f"agent id {agent_id!r} does not exist")
            _check_name_free(db, project_id, name, agent_id)
            db.execute(
                "UPDATE agents SET name = ?, configuration = ? WHERE id = ?", (name, msgspec.json.encode(configuration).decode(), agent_id)
            )

        await self.plane.run(work)

    async def delete_agent(self, project_id: str, agent_id: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            if db.execute("DELETE FROM agents WHERE project_id = ? AND id = ?", (project_id, agent_id)).rowcount == 0:
                raise NotFound(f"agent id {agent_id!r} does not exist")

        await self.plane.run(work)

    async def list_agents(self, project_id: str, *, filter: str | None, page_size: int, after: str | None) -> tuple[list[AgentRecord], int, str | None]:
        """One page by name after the name `after`, of the agents whose name contains `filter`
        (case-insensitive): (agents, total matching, next token or None)."""
        pattern = contains_pattern(filter or "")

        def work(db: sqlite3.Connection) -> tuple[list[AgentRecord], int, str | None]:
            require_project(db, project_id)
            return key_page(
                db, "agents", _COLUMNS, _agent, project_id=project_id, after=after, page_size=page_size,
                where=" AND name LIKE ? ESCAPE '\\'", parameters=(pattern,),
            )  # fmt: skip

        return await self.plane.run(work)


__all__ = ["MIGRATIONS", "AgentStore"]
