"""The official conveniences of `Meshagent` for OAuth clients and the token endpoint
(protocol/rest.md §15): `list_oauth_clients` answers the list, and `exchange_oauth_token` posts
a form (not JSON) to `/oauth/token` without `Authorization`, as the official client does.
`Meshagent` inherits them; they call `self.call` and, for the form, `self._send`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import msgspec

from ..errors import ConnectionLost, ErrorCode, RoomException
from ..rest.oauth import FORM, TOKEN_PATH, OAuthClient, OAuthTokenResponse
from ..rest.routes import JSON, RestRequest


class OauthMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def _send(self, request: RestRequest, headers: dict[str, str]) -> tuple[int, bytes]:  # provided by Meshagent
        raise NotImplementedError

    consistency: str
    _transport_errors: tuple[type[BaseException], ...]

    async def list_oauth_clients(self, *, project_id: str, **query: Any) -> list[OAuthClient]:
        """The clients of one page (`list_oauth_clients_page(...).clients`), without secrets."""
        return list((await self.call("list_oauth_clients_page", project_id=project_id, **query)).clients)

    async def exchange_oauth_token(self, *, form: dict[str, str]) -> OAuthTokenResponse:
        """`POST /oauth/token` with `form` (`grant_type` and the grant's fields); a refusal raises
        `RoomException("Token endpoint error N: <body>")`, as the official client does."""
        request = RestRequest("POST", TOKEN_PATH, {}, urlencode(form).encode(), auth=False, content_type=FORM)
        headers = {"Content-Type": FORM, "Accept": JSON, "Consistency": self.consistency}
        try:
            status, body = await self._send(request, headers)
        except self._transport_errors as error:  # a token request is not retried: a code is used once
            raise ConnectionLost(f"POST {TOKEN_PATH}: {error or type(error).__name__}") from None
        if status >= 400:
            raise RoomException(f"Token endpoint error {status}: {body.decode('utf-8', 'replace')}", code=ErrorCode.INVALID_REQUEST)
        try:
            return msgspec.json.decode(body, type=OAuthTokenResponse)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            raise RoomException(f"Invalid oauth-token payload: {error}", code=ErrorCode.INVALID_REQUEST) from None
