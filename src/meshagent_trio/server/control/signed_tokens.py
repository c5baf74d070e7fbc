"""Tokens the control plane mints and later verifies itself: repository tokens (registries) and
LLM delegation tokens (llm).

A token is an HS256 JWT signed with a key derived from the server's secret for one purpose
(HMAC-SHA256 of the purpose under the secret), so a token of one kind is never accepted as
another, nor as a participant token (those are signed with the secret itself). Its `kind` claim
names the purpose; `exp` and `iat` are UNIX seconds; the rest are the caller's claims.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import jwt

from meshagent_core.tokens.jws import decode_jwt, encode_jwt

from .common import Forbidden

ISSUER = "meshagent-trio"


class TokenRefused(Forbidden):
    """A token that is not one of ours, not of this kind, or expired (403, saying which)."""


def _key(secret: str, kind: str) -> bytes:
    return hmac.new(secret.encode(), f"meshagent-trio {kind} tokens".encode(), hashlib.sha256).digest()


def mint(secret: str, kind: str, claims: dict[str, Any], *, issued_at: int, expires_at: int) -> str:
    return encode_jwt({"iss": ISSUER, "kind": kind, **claims, "iat": issued_at, "exp": expires_at}, _key(secret, kind))


def verify(secret: str, kind: str, token: str, *, now: float) -> dict[str, Any]:
    """The claims of a valid, unexpired token of `kind` (TokenRefused otherwise)."""
    try:
        claims = decode_jwt(token, _key(secret, kind), now=now)
    except jwt.ExpiredSignatureError:
        raise TokenRefused(f"the {kind} token has expired") from None
    except jwt.InvalidTokenError as error:
        raise TokenRefused(f"not a valid {kind} token: {error}") from None
    if claims.get("iss") != ISSUER or claims.get("kind") != kind:
        raise TokenRefused(f"not a {kind} token")
    return claims


__all__ = ["ISSUER", "TokenRefused", "mint", "verify"]
