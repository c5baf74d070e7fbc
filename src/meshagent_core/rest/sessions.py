"""Routes of room sessions (protocol/rest.md §19) and their answer models.

A session is one run of a room: from the moment its first participant joins to the moment the
last one leaves (or it is terminated). Agent sessions are sessions of managed agents, listed
by the `agents/sessions` routes. `sessions/active` and `agents/sessions` are literal segments,
so the route table prefers them over `sessions/{session_id}` and `agents/{agent_name}`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .accounts import PROJECT
from .models import JsonObject, Model, RoomEvents
from .routes import Route

SESSIONS = PROJECT + "/sessions"
SESSION = SESSIONS + "/{session_id}"
AGENT_SESSIONS = PROJECT + "/agents/sessions"


class RoomSession(Model):
    """A session (the official `RoomSession`; `room_id` is always sent, null for a room that
    was never created through REST)."""

    id: str
    room_id: str | None
    room_name: str
    created_at: str
    is_active: bool
    #: participants by role (the role grant of their participant tokens), everyone who joined
    participants: dict[str, int] | None = None
    kind: str = "room"
    agent_id: str | None = None
    agent_name: str | None = None
    #: when the session ended (not in the official model, which ignores it)
    ended_at: str | None = None


class RoomSessions(Model):
    sessions: list[RoomSession] = msgspec.field(default_factory=list)


class ParticipantCounts(Model):
    """`get_session_participant_counts`: role -> how many participants joined with it."""

    participants: dict[str, int] = msgspec.field(default_factory=dict)


class SessionSpans(Model):
    spans: list[JsonObject] = msgspec.field(default_factory=list)


class SessionMetrics(Model):
    metrics: list[JsonObject] = msgspec.field(default_factory=list)


class RecentSessionsQuery(msgspec.Struct, kw_only=True):
    limit: int = 25
    room_id: str | None = None


class RecentAgentSessionsQuery(msgspec.Struct, kw_only=True):
    limit: int = 25
    agent_id: str | None = None


class SessionsLimitQuery(msgspec.Struct, kw_only=True):
    limit: int = 25


ROUTES = [
    Route("get_session", "GET", SESSION, RoomSession),
    Route("get_session_participant_counts", "GET", SESSION + "/participants", ParticipantCounts),
    Route("list_active_sessions", "GET", SESSIONS + "/active", RoomSessions),
    Route("list_recent_sessions", "GET", SESSIONS, RoomSessions, query=RecentSessionsQuery),
    Route("list_recent_room_sessions", "GET", PROJECT + "/rooms/{room_name}/sessions", RoomSessions, query=SessionsLimitQuery),
    Route("list_active_agent_sessions", "GET", AGENT_SESSIONS + "/active", RoomSessions),
    Route("list_recent_agent_sessions", "GET", AGENT_SESSIONS, RoomSessions, query=RecentAgentSessionsQuery),
    Route("list_recent_single_agent_sessions", "GET", PROJECT + "/agents/{agent_name}/sessions", RoomSessions, query=SessionsLimitQuery),
    Route("list_session_events", "GET", SESSION + "/events", RoomEvents),
    Route("list_session_spans", "GET", SESSION + "/spans", SessionSpans),
    Route("list_session_metrics", "GET", SESSION + "/metrics", SessionMetrics),
    Route("terminate", "POST", SESSION + "/terminate", Any),
    Route("kill_session", "POST", SESSION + "/kill", Any),
]

__all__ = [
    "ParticipantCounts",
    "RecentAgentSessionsQuery",
    "RecentSessionsQuery",
    "ROUTES",
    "RoomSession",
    "RoomSessions",
    "SessionMetrics",
    "SessionSpans",
    "SessionsLimitQuery",
]
