"""API key strings: `ma-<key id>-<project id>-<secret>` (protocol/tokens.md §1)."""

from __future__ import annotations

import base64
import binascii
import re
import uuid

import msgspec

API_KEY_PREFIX = "ma-"

# 16 bytes of URL-safe base64 without padding is 22 characters; `-` is written as `.`.
_COMPRESSED_UUID = re.compile(r"[A-Za-z0-9_.]{22}")


class ApiKey(msgspec.Struct, kw_only=True, frozen=True):
    """A parsed API key: its id, its project's id and the HMAC signing secret.

    `secret` is the signing key for participant JWTs, used verbatim (UTF-8 bytes).
    """

    id: str
    project_id: str
    secret: str

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!r}, project_id={self.project_id!r}, secret='***')"


def base64_compress_uuid(id: str) -> str:
    """Encode a UUID as the 22-character key-string form (URL-safe base64, `-` -> `.`)."""
    raw = base64.urlsafe_b64encode(uuid.UUID(hex=id).bytes).decode("ascii")
    return raw.rstrip("=").replace("-", ".")


def base64_decompress_uuid(id: str) -> str:
    """Decode the 22-character key-string form back to a lower-case 8-4-4-4-12 UUID."""
    if _COMPRESSED_UUID.fullmatch(id) is None:
        raise ValueError("invalid api key: malformed id segment")
    try:
        raw = base64.urlsafe_b64decode(id.replace(".", "-") + "==")
    except binascii.Error as exc:  # pragma: no cover - the pattern admits only valid text
        raise ValueError("invalid api key: malformed id segment") from exc
    return str(uuid.UUID(bytes=raw))


def parse_api_key(key: str) -> ApiKey:
    """Parse an `ma-…` API key string.

    Raises `ValueError("invalid api key: <first 5 chars>...")` when the prefix is wrong, and
    `ValueError` when the id segments are malformed or missing. The secret keeps its dashes.
    """
    if not key.startswith(API_KEY_PREFIX):
        raise ValueError("invalid api key: " + key[:5] + "...")
    parts = key[len(API_KEY_PREFIX) :].split("-", 2)
    if len(parts) != 3:
        raise ValueError("invalid api key: expected ma-<key id>-<project id>-<secret>")
    key_id, project_id, secret = parts
    return ApiKey(
        id=base64_decompress_uuid(key_id),
        project_id=base64_decompress_uuid(project_id),
        secret=secret,
    )


def encode_api_key(key: ApiKey) -> str:
    """Format an `ApiKey` as its `ma-…` string (the inverse of `parse_api_key`)."""
    return (
        API_KEY_PREFIX
        + base64_compress_uuid(key.id)
        + "-"
        + base64_compress_uuid(key.project_id)
        + "-"
        + key.secret
    )
