"""Who may join a room: participant tokens checked against the server's credentials."""

from __future__ import annotations

import jwt

from meshagent_core.tokens import ParticipantToken, verify_participant_jwt

from .config import ServerConfig


class Refused(Exception):
    """An HTTP request the server turns down, with the status and a body saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def authorize(config: ServerConfig, room_name: str, token_text: str | None) -> ParticipantToken:
    """The verified participant token for `room_name`, or `Refused(403, why)`."""
    if token_text is None:
        raise Refused(403, "missing participant token (Authorization: Bearer <jwt>)")
    credentials = config.credentials
    try:
        token = verify_participant_jwt(
            token_text,
            lookup_secret=lambda kid: credentials.secret if kid == credentials.key_id else None,
            default_secret=credentials.secret,
            now=config.clock(),
        )
    except jwt.ExpiredSignatureError:
        raise Refused(403, "the participant token has expired") from None
    except jwt.InvalidTokenError as error:
        raise Refused(403, f"invalid participant token: {error}") from None
    if token.project_id is not None and token.project_id != credentials.project_id:
        raise Refused(403, "the participant token belongs to another project")
    granted_room = token.grant_scope("room")
    if granted_room != room_name:
        raise Refused(403, f"the participant token does not grant access to room {room_name!r}")
    return token


__all__ = ["Refused", "authorize"]
