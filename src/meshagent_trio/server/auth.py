"""Who may join a room, and whose key a bearer is: participant tokens and API keys checked
against the keys the server trusts.

The server trusts its own key (`config.credentials`, the owner: it may sign for every project)
and the API keys made through REST (each signs for its own project only). `KeyRing` holds them
in memory; the control plane fills it at start and updates it after every committed change,
so a key is trusted from the moment it is made and refused from the moment it is deleted.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Iterable

import jwt

from meshagent_core.tokens import ParticipantToken, parse_api_key, verify_participant_jwt

from .config import Credentials, ServerConfig


class Refused(Exception):
    """An HTTP request the server turns down, with the status and a body saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TrustedKey:
    """An API key the server accepts: as a REST bearer, and to verify participant JWTs whose
    `kid` is its id."""

    id: str
    project_id: str
    secret: str
    #: the service account the key belongs to; None for the server's own key (the owner)
    service_account_id: str | None = None

    @property
    def is_owner(self) -> bool:
        return self.service_account_id is None

    def __repr__(self) -> str:
        return f"TrustedKey(id={self.id!r}, project_id={self.project_id!r}, service_account_id={self.service_account_id!r})"


class KeyRing:
    """The keys trusted right now, by id: the owner key, and the service-account keys."""

    def __init__(self, credentials: Credentials) -> None:
        self.owner = TrustedKey(credentials.key_id, credentials.project_id, credentials.secret)
        self._keys: dict[str, TrustedKey] = {}

    def lookup(self, key_id: str) -> TrustedKey | None:
        return self.owner if key_id == self.owner.id else self._keys.get(key_id)

    def add(self, keys: Iterable[TrustedKey]) -> None:
        for key in keys:
            if key.id != self.owner.id:
                self._keys[key.id] = key

    def remove(self, key_ids: Iterable[str]) -> None:
        for key_id in key_ids:
            self._keys.pop(key_id, None)



def verify_api_key(text: str, keys: KeyRing) -> TrustedKey:
    """The trusted key an `ma-…` string is, or `Refused(403)`: an unknown (or deleted) key, a
    wrong secret, or a key of another project than its id's."""
    try:
        parsed = parse_api_key(text)
    except ValueError:
        raise Refused(403, "the bearer token is not an API key (ma-…) or participant token this server accepts") from None
    key = keys.lookup(parsed.id)
    if key is None or key.project_id != parsed.project_id or not hmac.compare_digest(key.secret.encode(), parsed.secret.encode()):
        raise Refused(403, "the API key is not known to this server (it was deleted, or never made here)")
    return key


def verify_token(keys: KeyRing, token_text: str, now: float | None) -> tuple[ParticipantToken, TrustedKey]:
    """A participant JWT verified with the key its `kid` names (the owner key when it has
    none), and that key; or `Refused(403, why)`.

    The token's project (`sub`) must be its key's project, except for the owner key, which
    signs for any project. A token without `sub` belongs to the project of its key."""
    signer: list[TrustedKey] = []

    def secret_of(kid: str) -> str | None:
        key = keys.lookup(kid)
        if key is not None:
            signer.append(key)
        return None if key is None else key.secret

    owner = keys.owner
    try:
        token = verify_participant_jwt(token_text, lookup_secret=secret_of, default_secret=owner.secret, now=now)
    except jwt.ExpiredSignatureError:
        raise Refused(403, "the participant token has expired") from None
    except jwt.InvalidTokenError as error:
        raise Refused(403, f"invalid participant token: {error}") from None
    key = signer[0] if signer else owner
    if token.project_id is not None and not key.is_owner and token.project_id != key.project_id:
        raise Refused(403, "the participant token belongs to another project than the key that signed it")
    return token, key


def authorize(config: ServerConfig, room_name: str, token_text: str | None, keys: KeyRing | None = None) -> ParticipantToken:
    """The verified participant token for `room_name`, or `Refused(403, why)`. `keys` are the
    keys trusted now (default: the server's own key only). The token's `project_id` is set to
    the project whose room it joins (its key's project when the token names none)."""
    if token_text is None:
        raise Refused(403, "missing participant token (Authorization: Bearer <jwt>)")
    token, key = verify_token(keys if keys is not None else KeyRing(config.credentials), token_text, config.clock())
    if token.project_id is None:
        token.project_id = key.project_id
    granted_room = token.grant_scope("room")
    if granted_room != room_name:
        raise Refused(403, f"the participant token does not grant access to room {room_name!r}")
    return token


__all__ = ["KeyRing", "Refused", "TrustedKey", "authorize", "verify_api_key", "verify_token"]
