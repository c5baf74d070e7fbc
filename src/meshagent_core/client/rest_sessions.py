"""The official conveniences of `Meshagent` for sessions (protocol/rest.md §19) and for room events and
volumes (§4): the official methods answer the list inside the route's answer, the participant
counts as a dict, and a session or its events as plain JSON. `Meshagent` inherits them; they
call `self.call` (the route's own answer model is there for who wants it)."""

from __future__ import annotations

from typing import Any

import msgspec

from ..rest.models import RoomEvent, StorageVolume
from ..rest.sessions import RoomSession


class SessionMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def _listed(self, route_name: str, key: str, **arguments: Any) -> list[Any]:
        return list(getattr(await self.call(route_name, **arguments), key))

    # --- sessions -------------------------------------------------------------------------

    async def get_session(self, project_id: str, session_id: str) -> dict[str, Any]:
        """The session as JSON (`id`, `room_id`, `room_name`, `created_at`, `is_active`, …)."""
        return msgspec.to_builtins(await self.call("get_session", project_id=project_id, session_id=session_id))

    async def get_session_participant_counts(self, project_id: str, session_id: str) -> dict[str, int]:
        """Role -> how many participants joined the session with it."""
        answer = await self.call("get_session_participant_counts", project_id=project_id, session_id=session_id)
        return dict(answer.participants)

    async def list_active_sessions(self, project_id: str) -> list[RoomSession]:
        return await self._listed("list_active_sessions", "sessions", project_id=project_id)

    async def list_recent_sessions(self, project_id: str, *, limit: int = 25, room_id: str | None = None) -> list[RoomSession]:
        return await self._listed("list_recent_sessions", "sessions", project_id=project_id, limit=limit, room_id=room_id)

    async def list_recent_room_sessions(self, project_id: str, room_name: str, *, limit: int = 25) -> list[RoomSession]:
        return await self._listed("list_recent_room_sessions", "sessions", project_id=project_id, room_name=room_name, limit=limit)

    async def list_active_agent_sessions(self, project_id: str) -> list[RoomSession]:
        return await self._listed("list_active_agent_sessions", "sessions", project_id=project_id)

    async def list_recent_agent_sessions(self, project_id: str, *, limit: int = 25, agent_id: str | None = None) -> list[RoomSession]:
        return await self._listed("list_recent_agent_sessions", "sessions", project_id=project_id, limit=limit, agent_id=agent_id)

    async def list_recent_single_agent_sessions(self, project_id: str, agent_name: str, *, limit: int = 25) -> list[RoomSession]:
        return await self._listed("list_recent_single_agent_sessions", "sessions", project_id=project_id, agent_name=agent_name, limit=limit)

    async def list_session_events(self, project_id: str, session_id: str) -> list[dict[str, Any]]:
        events = await self._listed("list_session_events", "events", project_id=project_id, session_id=session_id)
        return msgspec.to_builtins(events)

    async def list_session_spans(self, project_id: str, session_id: str) -> list[dict[str, Any]]:
        return await self._listed("list_session_spans", "spans", project_id=project_id, session_id=session_id)

    async def list_session_metrics(self, project_id: str, session_id: str) -> list[dict[str, Any]]:
        return await self._listed("list_session_metrics", "metrics", project_id=project_id, session_id=session_id)

    # --- room events and volumes ----------------------------------------------------------

    async def list_room_events(self, *, project_id: str, name: str, limit: int = 100) -> list[RoomEvent]:
        return await self._listed("list_room_events", "events", project_id=project_id, name=name, limit=limit)

    async def list_room_volumes(self, *, project_id: str, room: str) -> list[StorageVolume]:
        return await self._listed("list_room_volumes", "volumes", project_id=project_id, room=room)
