"""Helpers for tests against the real local server: tokens and room URLs."""

from __future__ import annotations

from datetime import datetime

from meshagent_core.tokens import ApiScope, ParticipantToken
from meshagent_trio.server import Credentials, Server


def mint(
    credentials: Credentials,
    room: str = "test-room",
    *,
    name: str = "alice",
    scope: ApiScope | None = None,
    expires: datetime | None = None,
    role: str = "agent",
) -> str:
    token = ParticipantToken(name=name, project_id=credentials.project_id, api_key_id=credentials.key_id)
    token.add_role_grant(role)
    token.add_room_grant(room)
    token.add_api_grant(scope if scope is not None else ApiScope.agent_default())
    return token.to_jwt(token=credentials.secret, expiration=expires)


def room_url(server: Server, room: str = "test-room") -> str:
    return f"ws://127.0.0.1:{server.port}/rooms/{room}"
