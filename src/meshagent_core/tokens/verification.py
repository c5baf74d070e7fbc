"""Server-side verification of participant JWTs signed with per-API-key secrets (protocol/tokens.md §6.1)."""

from __future__ import annotations

from collections.abc import Callable

import jwt

from .jws import ALGORITHM, decode_jwt, decode_unverified
from .participant_token import ParticipantToken, participant_from_claims

SecretLookup = Callable[[str], str | None]


class UnknownKeyIdError(jwt.InvalidTokenError):
    """The token's `kid` claim names no API key the verifier knows."""


def verify_participant_jwt(
    jwt_str: str,
    *,
    lookup_secret: SecretLookup,
    now: float | None,
    default_secret: str | None = None,
    leeway: float = 0,
) -> ParticipantToken:
    """Verify a participant JWT with the secret of the API key named by its `kid` claim.

    `kid` is read from the unverified payload and `lookup_secret(kid)` returns that key's
    secret, or `None` for an unknown key (`UnknownKeyIdError`). A token without `kid` is
    verified with `default_secret` (the deployment secret); when there is none it is
    rejected with `jwt.MissingRequiredClaimError("kid")`. Only `HS256` is accepted (`none`
    and every other `alg` raise `jwt.InvalidAlgorithmError` before any lookup). `now` is the
    current UNIX time for the `exp`/`nbf`/`iat` checks and must be passed explicitly
    (`None` skips them). Other failures raise as in `ParticipantToken.from_jwt`.
    """
    header, unverified = decode_unverified(jwt_str)
    if header.get("alg") != ALGORITHM:
        raise jwt.InvalidAlgorithmError("The specified alg value is not allowed")
    kid = unverified.get("kid")
    if kid is None:
        if default_secret is None:
            raise jwt.MissingRequiredClaimError("kid")
        secret = default_secret
    elif not isinstance(kid, str):
        raise jwt.InvalidTokenError("The kid claim must be a string")
    else:
        found = lookup_secret(kid)
        if found is None:
            raise UnknownKeyIdError(f"Unknown API key id: {kid!r}")
        secret = found
    claims = decode_jwt(jwt_str, secret, now=now, leeway=leeway)
    return participant_from_claims(claims)
