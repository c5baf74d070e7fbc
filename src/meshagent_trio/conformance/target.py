"""The server under test: its URLs, and participant tokens signed with its API key."""

from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import urlsplit

from meshagent_core.tokens import ApiScope, parse_api_key

from ..server.config import Credentials
from ..testing.tokens import participant_token


class Target:
    """A MeshAgent server reached at `api_url` (`http(s)://host:port`, as `MESHAGENT_API_URL`;
    `ws(s)://` is accepted too), trusting the API key `api_key` (`ma-…`)."""

    def __init__(self, api_url: str, api_key: str) -> None:
        url = api_url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
            raise ValueError(f"the API URL must look like http://host:port, not {api_url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"the API URL must not have a query or fragment: {api_url!r}")
        try:
            self.key = parse_api_key(api_key)
        except ValueError as error:
            raise ValueError(f"malformed API key: {error}") from None
        secure = parts.scheme in ("https", "wss")
        self.api_url = f"{'https' if secure else 'http'}://{parts.netloc}{parts.path}"
        self.ws_base = f"{'wss' if secure else 'ws'}://{parts.netloc}{parts.path}"

    def room_url(self, room: str) -> str:
        """The room's WebSocket URL, as the official client derives it (protocol/wire.md §2.1)."""
        return f"{self.ws_base}/rooms/{room}"

    def token(
        self,
        room: str,
        *,
        name: str = "conformance",
        expires: datetime | int | None = None,
        secret: str | None = None,
        scope: ApiScope | None = None,
    ) -> str:
        """A participant JWT for `room`: role `agent`, the default agent API scope, signed with
        the key's secret (or `secret`, to forge one the server must refuse), naming the key as
        `kid`; `expires` sets `exp`."""
        signer = Credentials(self.key.project_id, self.key.id, secret if secret is not None else self.key.secret)
        return participant_token(signer, room, name=name, scope=scope, expires=expires)

    @staticmethod
    def other_secret() -> str:
        """A secret the server cannot know."""
        return secrets.token_urlsafe(32)


__all__ = ["Target"]
