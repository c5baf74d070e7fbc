"""Credentials and participant tokens for tests: `new_credentials()`, `participant_token()`.

Imports nothing of the server (only `meshagent_core.tokens`, and `Credentials` when asked for
a new set), so a test helper that only mints tokens stays light.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from meshagent_core.tokens import ApiScope, ParticipantToken

if TYPE_CHECKING:
    from meshagent_trio.server import Credentials

__all__ = ["new_credentials", "participant_token"]


def new_credentials() -> "Credentials":
    """A fresh project id, key id and secret (what `meshagent_server` starts with)."""
    from meshagent_trio.server.config import Credentials

    return Credentials(str(uuid.uuid4()), str(uuid.uuid4()), secrets.token_urlsafe(32))


def participant_token(
    credentials: "Credentials",
    room: str,
    *,
    name: str = "participant",
    scope: ApiScope | None = None,
    expires: datetime | int | None = None,
    role: str = "agent",
) -> str:
    """A participant JWT signed with `credentials` (those of the server that is to trust it).

    It grants `room` only, the role `role`, and the API scope `scope`
    (`ApiScope.agent_default()` when left out: every family except `admin`, `secrets` and
    `tunnels`). `expires` (a datetime, naive = UTC, or UNIX seconds) becomes `exp`; without it
    the token never expires.
    """
    token = ParticipantToken(name=name, project_id=credentials.project_id, api_key_id=credentials.key_id)
    token.add_role_grant(role)
    token.add_room_grant(room)
    token.add_api_grant(scope if scope is not None else ApiScope.agent_default())
    return token.to_jwt(token=credentials.secret, expiration=expires)
