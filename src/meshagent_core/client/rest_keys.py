"""The official conveniences of `Meshagent` for service accounts, API keys and participant
tokens (protocol/rest.md §14): `mint_participant_token` answers the JWT text, and
`validate_participant_token` the decoded `ParticipantToken`. `Meshagent` inherits them; they
call `self.call` (the route's own answer model is there for who wants it)."""

from __future__ import annotations

from typing import Any

from ..errors import RoomException
from ..tokens import ParticipantToken


class KeyMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def mint_participant_token(self, project_id: str, **fields: Any) -> str:
        """A participant JWT of the project (`name`, `email`, and `grants` or `room_name`,
        `role`, `api`), signed by the server with the caller's key."""
        answer = await self.call("mint_participant_token", project_id=project_id, **fields)
        if not answer.token.strip():
            raise RoomException("Invalid participant token mint response")
        return answer.token  # type: ignore[no-any-return]

    async def validate_participant_token(self, *, token: str) -> ParticipantToken:
        """The claims of `token`, if the server accepts it (else `PermissionDeniedError`)."""
        claims = await self.call("validate_participant_token", token=token)
        try:
            return ParticipantToken.from_json(claims)
        except ValueError as error:
            raise RoomException(f"Invalid participant token payload: {error}") from None
