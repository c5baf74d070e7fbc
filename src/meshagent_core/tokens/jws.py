"""HS256 JSON Web Tokens, byte-compatible with PyJWT's output (protocol/tokens.md §2, §6).

Signing and verification are done here with `hmac` so no clock is ever read: the time
claims (`exp`, `nbf`, `iat`) are checked against the `now` the caller passes. Errors are
PyJWT's exception classes with PyJWT's messages, so code catching `jwt.InvalidTokenError`
keeps working.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from calendar import timegm
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt

from ..jsondepth import loads_bounded

ALGORITHM = "HS256"

# PyJWT sorts header keys: this is exactly what `jwt.encode(..., algorithm="HS256")` emits.
_HEADER_SEGMENT = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"HS256","typ":"JWT"}
_TIME_CLAIMS = ("exp", "iat", "nbf")
_B64URL = re.compile(rb"[A-Za-z0-9_-]*")

# Added in PyJWT 2.10; older versions raise the base class.
_InvalidSubjectError: type[jwt.InvalidTokenError] = getattr(
    jwt.exceptions, "InvalidSubjectError", jwt.InvalidTokenError
)
_InvalidJTIError: type[jwt.InvalidTokenError] = getattr(
    jwt.exceptions, "InvalidJTIError", jwt.InvalidTokenError
)


def _key_bytes(key: str | bytes) -> bytes:
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not raw:
        raise ValueError("the HMAC signing secret must not be empty")
    return raw


def _b64url_encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64url_decode(segment: bytes, what: str) -> bytes:
    if _B64URL.fullmatch(segment) is None or len(segment) % 4 == 1:
        raise jwt.DecodeError(f"Invalid {what} padding")
    try:
        return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - pattern checked above
        raise jwt.DecodeError(f"Invalid {what} padding") from exc


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = loads_bounded(raw)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise jwt.DecodeError(f"Invalid {what} string: {exc}") from exc
    if not isinstance(value, dict):
        raise jwt.DecodeError(f"Invalid {what} string: must be a json object")
    return value


def _signature(key: bytes, signing_input: bytes) -> bytes:
    return hmac.new(key, signing_input, hashlib.sha256).digest()


def encode_jwt(payload: Mapping[str, Any], key: str | bytes) -> str:
    """Sign `payload` as an HS256 JWT exactly as PyJWT does.

    Header `{"alg":"HS256","typ":"JWT"}`; payload compact JSON in the mapping's key order with
    non-ASCII escaped; `datetime` values of `exp`/`iat`/`nbf` become integer UNIX seconds
    (naive datetimes are taken as UTC). Raises `TypeError` for a non-string `iss` or a value
    JSON cannot encode, `ValueError` for an empty key.
    """
    claims = dict(payload)
    for claim in _TIME_CLAIMS:
        value = claims.get(claim)
        if isinstance(value, datetime):
            claims[claim] = timegm(value.utctimetuple())
    if "iss" in claims and not isinstance(claims["iss"], str):
        raise TypeError("Issuer (iss) must be a string.")
    body = json.dumps(claims, separators=(",", ":"), allow_nan=False).encode("utf-8")
    signing_input = _HEADER_SEGMENT + b"." + _b64url_encode(body)
    signature = _b64url_encode(_signature(_key_bytes(key), signing_input))
    return (signing_input + b"." + signature).decode("ascii")


def decode_unverified(token: str | bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a compact JWT into its header and payload objects, checking nothing but form.

    Raises `jwt.DecodeError` when the token is not three base64url segments holding JSON
    objects.
    """
    header, payload_bytes, _signing_input, _signature = _split(token)
    return header, _json_object(payload_bytes, "payload")


def _split(token: str | bytes) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    if isinstance(token, str):
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError as exc:
            raise jwt.DecodeError("Invalid token: not ASCII") from exc
    elif isinstance(token, bytes):
        raw = token
    else:
        raise jwt.DecodeError(f"Invalid token type. Token must be a {bytes}")
    segments = raw.split(b".")
    if len(segments) < 3:
        raise jwt.DecodeError("Not enough segments")
    if len(segments) > 3:
        raise jwt.DecodeError("Too many segments")
    header_segment, payload_segment, signature_segment = segments
    header = _json_object(_b64url_decode(header_segment, "header"), "header")
    payload_bytes = _b64url_decode(payload_segment, "payload")
    signature = _b64url_decode(signature_segment, "crypto")
    return header, payload_bytes, header_segment + b"." + payload_segment, signature


def decode_jwt(
    token: str | bytes,
    key: str | bytes | None,
    *,
    verify: bool = True,
    now: float | None = None,
    leeway: float = 0,
) -> dict[str, Any]:
    """Verify an HS256 JWT and return its payload.

    With `verify=True`: the header's `alg` must be `HS256` (`jwt.InvalidAlgorithmError`
    otherwise, which rejects `none`), no `crit` header is accepted, the HMAC must match
    (`jwt.InvalidSignatureError`), and the registered claims are checked as PyJWT does:
    `iat`/`nbf`/`exp` must be integers; when `now` (UNIX seconds) is given, `exp <= now -
    leeway` raises `jwt.ExpiredSignatureError` and `iat`/`nbf > now + leeway` raise
    `jwt.ImmatureSignatureError`; `now=None` skips only these time comparisons. A non-empty
    `aud` is rejected, `sub` and `jti` must be strings.

    With `verify=False` nothing but the form is checked and `key` is ignored. A malformed
    token raises `jwt.DecodeError`; a missing or empty `key` (with `verify=True`) raises
    `ValueError`, a configuration error rather than a bad token.
    """
    header, payload_bytes, signing_input, signature = _split(token)
    if not verify:
        return _json_object(payload_bytes, "payload")
    if key is None:
        raise ValueError("no secret to verify the token with")
    if header.get("alg") != ALGORITHM:
        raise jwt.InvalidAlgorithmError("The specified alg value is not allowed")
    if "crit" in header:
        raise jwt.InvalidTokenError("Unsupported critical header parameters")
    if not hmac.compare_digest(_signature(_key_bytes(key), signing_input), signature):
        raise jwt.InvalidSignatureError("Signature verification failed")
    payload = _json_object(payload_bytes, "payload")
    validate_claims(payload, now=now, leeway=leeway)
    return payload


def _int_claim(payload: Mapping[str, Any], claim: str, error: jwt.InvalidTokenError) -> int:
    try:
        return int(payload[claim])
    except (ValueError, TypeError, OverflowError):
        raise error from None


def validate_claims(payload: Mapping[str, Any], *, now: float | None, leeway: float = 0) -> None:
    """Check the registered claims of a verified payload, in PyJWT's order (see `decode_jwt`)."""
    if "iat" in payload:
        iat = _int_claim(
            payload, "iat", jwt.InvalidIssuedAtError("Issued At claim (iat) must be an integer.")
        )
        if now is not None and iat > now + leeway:
            raise jwt.ImmatureSignatureError("The token is not yet valid (iat)")
    if "nbf" in payload:
        nbf = _int_claim(
            payload, "nbf", jwt.DecodeError("Not Before claim (nbf) must be an integer.")
        )
        if now is not None and nbf > now + leeway:
            raise jwt.ImmatureSignatureError("The token is not yet valid (nbf)")
    if "exp" in payload:
        exp = _int_claim(
            payload, "exp", jwt.DecodeError("Expiration Time claim (exp) must be an integer.")
        )
        if now is not None and exp <= now - leeway:
            raise jwt.ExpiredSignatureError("Signature has expired")
    if payload.get("aud"):
        raise jwt.InvalidAudienceError("Invalid audience")
    if "sub" in payload and not isinstance(payload["sub"], str):
        raise _InvalidSubjectError("Subject must be a string")
    if "jti" in payload and not isinstance(payload["jti"], str):
        raise _InvalidJTIError("JWT ID must be a string")
