"""REST handlers of room sessions (protocol/rest.md §19), and of room status, room events and room
volumes (§4), over the control plane's session store (`control.sessions`).

What the local server does not have, it answers truthfully:
- spans and metrics: the server records none, so a session's lists are empty;
- agent sessions: no managed agent runs on the local server, so there are none;
- volumes: only the `standard` class (a directory of the room); `max_size_mb` is recorded, not
  enforced.
"""

from __future__ import annotations

from typing import Any

from meshagent_core.rest.models import RoomEvents, RoomStatus, StorageVolume, StorageVolumes
from meshagent_core.rest.sessions import ParticipantCounts, RoomSession, RoomSessions, SessionMetrics, SessionSpans

from .context import Caller, Handler, NotImplementedHere, RestContext


async def get_session(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomSession:
    return await context.control.sessions.get_session(a["project_id"], a["session_id"])


async def get_session_participant_counts(context: RestContext, a: dict[str, Any], caller: Caller) -> ParticipantCounts:
    """Everyone who joined the session, by the role of their token (also those who left)."""
    return ParticipantCounts(participants=await context.control.sessions.participant_counts(a["project_id"], a["session_id"]))


async def list_active_sessions(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomSessions:
    return RoomSessions(sessions=await context.control.sessions.active_sessions(a["project_id"]))


async def list_recent_sessions(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomSessions:
    sessions = await context.control.sessions.recent_sessions(a["project_id"], limit=a["limit"], room_id=a.get("room_id"))
    return RoomSessions(sessions=sessions)


async def list_recent_room_sessions(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomSessions:
    sessions = await context.control.sessions.recent_room_sessions(a["project_id"], a["room_name"], limit=a["limit"])
    return RoomSessions(sessions=sessions)


async def list_agent_sessions(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomSessions:
    """No managed agent runs on the local server: there are no agent sessions. The project, and
    the agent when one is named (`agent_name`, `agent_id`), must exist."""
    agents = context.control.agents
    if "agent_name" in a:
        await agents.get_agent(a["project_id"], a["agent_name"])
    elif a.get("agent_id") is not None:
        await agents.get_agent_by_id(a["project_id"], a["agent_id"])
    else:
        await context.control.get_project(a["project_id"])
    return RoomSessions()


async def list_session_events(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomEvents:
    """The session's events, oldest first: started, joined, left, terminated, ended."""
    return RoomEvents(events=await context.control.sessions.session_events(a["project_id"], a["session_id"]))


async def list_session_spans(context: RestContext, a: dict[str, Any], caller: Caller) -> SessionSpans:
    """The local server records no trace spans: the list of a known session is empty."""
    await context.control.sessions.require_session(a["project_id"], a["session_id"])
    return SessionSpans()


async def list_session_metrics(context: RestContext, a: dict[str, Any], caller: Caller) -> SessionMetrics:
    """The local server records no metrics: the list of a known session is empty."""
    await context.control.sessions.require_session(a["project_id"], a["session_id"])
    return SessionMetrics()


async def terminate(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    """End an active session: its participants get a close frame; answers once they are gone."""
    await context.control.sessions.end_session(a["project_id"], a["session_id"], kill=False)


async def kill_session(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    """End an active session at once: its participants get a close frame; answers without waiting."""
    await context.control.sessions.end_session(a["project_id"], a["session_id"], kill=True)


async def get_room_status(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomStatus:
    return await context.control.sessions.room_status(a["project_id"], a["name"])


async def list_room_events(context: RestContext, a: dict[str, Any], caller: Caller) -> RoomEvents:
    """The room's latest events, newest first, across its sessions."""
    return RoomEvents(events=await context.control.sessions.room_events(a["project_id"], a["name"], limit=a["limit"]))


async def list_room_volumes(context: RestContext, a: dict[str, Any], caller: Caller) -> StorageVolumes:
    return StorageVolumes(volumes=await context.control.sessions.volumes.list(a["project_id"], a["room"]))


async def create_room_volume(context: RestContext, a: dict[str, Any], caller: Caller) -> StorageVolume:
    if a["storage_class"] != "standard":
        raise NotImplementedHere(f"create_room_volume: storage_class {a['storage_class']!r} is not available on the local server (only 'standard')")
    return await context.control.sessions.volumes.create(
        a["project_id"],
        a["room"],
        name=a["name"],
        description=a["description"],
        metadata=a["metadata"],
        storage_class=a["storage_class"],
        max_size_mb=a["max_size_mb"],
        annotations=a["annotations"],
    )


async def delete_room_volume(context: RestContext, a: dict[str, Any], caller: Caller) -> StorageVolume:
    return await context.control.sessions.volumes.delete(a["project_id"], a["room"], a["volume_id"])


async def expand_room_volume(context: RestContext, a: dict[str, Any], caller: Caller) -> StorageVolume:
    return await context.control.sessions.volumes.expand(a["project_id"], a["room"], a["volume_id"], max_size_mb=a["max_size_mb"])


HANDLERS: dict[str, Handler] = {
    "get_session": get_session,
    "get_session_participant_counts": get_session_participant_counts,
    "list_active_sessions": list_active_sessions,
    "list_recent_sessions": list_recent_sessions,
    "list_recent_room_sessions": list_recent_room_sessions,
    "list_active_agent_sessions": list_agent_sessions,
    "list_recent_agent_sessions": list_agent_sessions,
    "list_recent_single_agent_sessions": list_agent_sessions,
    "list_session_events": list_session_events,
    "list_session_spans": list_session_spans,
    "list_session_metrics": list_session_metrics,
    "terminate": terminate,
    "kill_session": kill_session,
    "get_room_status": get_room_status,
    "list_room_events": list_room_events,
    "list_room_volumes": list_room_volumes,
    "create_room_volume": create_room_volume,
    "delete_room_volume": delete_room_volume,
    "expand_room_volume": expand_room_volume,
}
