"""Webhook events and their signatures, sans-IO (protocol/webhooks.md §1, §2).

This module holds:

* the event models (`CallEvent` for `room.call`, `RoomStartedEvent`, `RoomEndedEvent`, and
  `UnknownEvent` for any other name) and `read_event`, which decodes a webhook envelope
  `{"event": <name>, "data": {...}}`;
* `webhook_body`, the envelope text exactly as the official sender renders it (Python's
  `json.dumps` defaults), and `event_body` for an event model;
* `sign`, the `Meshagent-Signature` header value (`Bearer <HS256 JWT>` whose only claim is
  `sha256`, the hex SHA-256 of the body), and `verify`, which checks it the way the official
  receiver does: the body is parsed and re-rendered with Python's defaults before hashing, so
  any text with the same JSON value as the signed rendering is accepted.

No clock is read: `verify` takes `now` for the JWT's time claims, if a sender added any.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

import jwt
import msgspec

from .jsondepth import decode_bounded, loads_bounded
from .tokens.jws import decode_jwt, encode_jwt

#: The header carrying the signature, and the header that may carry the envelope instead of
#: the body (protocol/webhooks.md §2.1).
SIGNATURE_HEADER = "Meshagent-Signature"
ENVELOPE_HEADER = "Meshagent-Webhook"
_BEARER = "Bearer "

#: The official receiver's refusals (HTTP 401 reasons), protocol/webhooks.md §2.3.
MISSING_SIGNATURE = "missing signature"
INVALID_JWT = "invalid jwt"
SIGNATURE_MISMATCH = "signature does not match payload"
#: The official receiver's answer to an envelope that is not a JSON object (HTTP 400).
INVALID_BODY = "invalid request body"


class WebhookBodyError(ValueError):
    """The webhook body is not a well-formed envelope (malformed or too deeply nested JSON,
    not an object, no event name, or data that does not fit the named event). A receiver
    answers 400."""


class WebhookSignatureError(ValueError):
    """The signature is missing, is not a valid JWT signed with the secret, or does not match
    the body. `str(error)` is the official receiver's 401 reason: `MISSING_SIGNATURE`,
    `INVALID_JWT` or `SIGNATURE_MISMATCH`."""


class CallEvent(msgspec.Struct, kw_only=True):
    """`room.call`: join the room `room_name` at `room_url` with the participant JWT `token`;
    `arguments` is the caller's object (or None)."""

    name: ClassVar[str] = "room.call"
    room_name: str
    room_url: str
    token: str
    arguments: dict[str, Any] | None = None


class RoomStartedEvent(msgspec.Struct, kw_only=True):
    """`room.started`: a session of the room `room_name` (at `room_url`) started."""

    name: ClassVar[str] = "room.started"
    room_name: str
    room_url: str


class RoomEndedEvent(msgspec.Struct, kw_only=True):
    """`room.ended`: the session of the room `room_name` ended."""

    name: ClassVar[str] = "room.ended"
    room_name: str


class UnknownEvent(msgspec.Struct, kw_only=True):
    """An event of any other name, kept as sent: `data` is the decoded JSON value (None when
    the envelope has no `data`). The official receiver accepts and ignores these."""

    name: str
    data: Any = None


WebhookEvent = CallEvent | RoomStartedEvent | RoomEndedEvent | UnknownEvent
KNOWN_EVENTS: dict[str, type[CallEvent | RoomStartedEvent | RoomEndedEvent]] = {
    cls.name: cls for cls in (CallEvent, RoomStartedEvent, RoomEndedEvent)
}


def read_event(body: bytes | bytearray | memoryview | str) -> WebhookEvent:
    """Decode a webhook envelope (protocol/webhooks.md §1).

    Unknown keys in the envelope and inside `data` are ignored. Raises `WebhookBodyError` for
    malformed JSON (or JSON nested past `MAX_JSON_DEPTH`), an envelope that is not an object
    (the message is `INVALID_BODY`), a missing or non-string `event`, and `data` that does not
    fit a known event.
    """
    try:
        envelope = decode_bounded(body)
    except msgspec.DecodeError as error:
        raise WebhookBodyError(f"malformed webhook body: {error}") from None
    if not isinstance(envelope, dict):
        raise WebhookBodyError(INVALID_BODY)
    if "event" not in envelope:
        raise WebhookBodyError("webhook body has no event name")
    name = envelope["event"]
    if not isinstance(name, str):
        raise WebhookBodyError(f"webhook event name must be a string, not {type(name).__name__}")
    data = envelope.get("data")
    cls = KNOWN_EVENTS.get(name)
    if cls is None:
        return UnknownEvent(name=name, data=data)
    if not isinstance(data, dict):
        raise WebhookBodyError(f"invalid {name} webhook: data must be an object")
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as error:
        raise WebhookBodyError(f"invalid {name} webhook: {error}") from None


def webhook_body(event_name: str, data: Any) -> bytes:
    """The envelope `{"event": event_name, "data": data}` as the official sender writes it:
    `json.dumps` with its defaults (separators `", "` and `": "`, non-ASCII escaped, keys in
    the order given), UTF-8 encoded (protocol/webhooks.md §2.2). The signature covers exactly
    this text. `data` is JSON-able builtins (msgspec Structs are converted first)."""
    if isinstance(data, msgspec.Struct):
        data = msgspec.to_builtins(data)
    return json.dumps({"event": event_name, "data": data}).encode("utf-8")


def event_data(event: WebhookEvent) -> Any:
    """The `data` object of `event`, fields in their declared order (`arguments` included
    when None)."""
    if isinstance(event, UnknownEvent):
        return event.data
    return {field: getattr(event, field) for field in event.__struct_fields__}


def event_body(event: WebhookEvent) -> bytes:
    """`webhook_body` of an event model."""
    return webhook_body(event.name, event_data(event))


def _digest(body: bytes | bytearray | memoryview | str) -> str:
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return hashlib.sha256(raw).hexdigest()


def sign(body: bytes | bytearray | memoryview | str, secret: str) -> str:
    """The `Meshagent-Signature` value for `body`: `"Bearer "` and an HS256 JWT (PyJWT's
    exact bytes) whose only claim is `{"sha256": <lower-case hex SHA-256 of body>}`
    (protocol/webhooks.md §2.2). Raises `ValueError` for an empty secret."""
    return _BEARER + encode_jwt({"sha256": _digest(body)}, secret)


def verify(
    body: bytes | bytearray | memoryview | str,
    signature: str | None,
    secret: str,
    *,
    now: float | None,
) -> dict[str, Any]:
    """Check `signature` (the `Meshagent-Signature` value, None when absent) over `body` as
    the official receiver does, and return the parsed envelope (protocol/webhooks.md §2.3).

    In the official order: the body is parsed first (`WebhookBodyError` when it is not JSON,
    is nested too deeply, or is not an object); then `WebhookSignatureError(MISSING_SIGNATURE)`
    when there is no value or it does not start with `"Bearer "`, `INVALID_JWT` when the JWT
    is malformed, not HS256, signed with another key, lacks a `sha256` claim, or has time
    claims that fail against `now` (UNIX seconds; None skips the time comparisons), and
    `SIGNATURE_MISMATCH` when the claim is not the SHA-256 of the parsed envelope re-rendered
    with `json.dumps` defaults. Raises `ValueError` for an empty secret.
    """
    try:
        envelope = loads_bounded(body if isinstance(body, str) else bytes(body).decode("utf-8"))
    except ValueError as error:  # includes UnicodeDecodeError
        raise WebhookBodyError(f"malformed webhook body: {error}") from None
    if not isinstance(envelope, dict):
        raise WebhookBodyError(INVALID_BODY)
    if signature is None or not signature.startswith(_BEARER):
        raise WebhookSignatureError(MISSING_SIGNATURE)
    if not secret:
        raise ValueError("the webhook secret must not be empty")
    try:
        claims = decode_jwt(signature[len(_BEARER) :], secret, now=now)
    except jwt.PyJWTError:
        raise WebhookSignatureError(INVALID_JWT) from None
    if "sha256" not in claims:  # the official receiver fails with a KeyError (HTTP 500)
        raise WebhookSignatureError(INVALID_JWT)
    claimed = claims["sha256"]
    rendered = json.dumps(envelope).encode("utf-8")
    if claimed != _digest(rendered):  # compared as the official receiver does (`!=`)
        raise WebhookSignatureError(SIGNATURE_MISMATCH)
    return envelope


__all__ = [
    "ENVELOPE_HEADER",
    "INVALID_BODY",
    "INVALID_JWT",
    "KNOWN_EVENTS",
    "MISSING_SIGNATURE",
    "SIGNATURE_HEADER",
    "SIGNATURE_MISMATCH",
    "CallEvent",
    "RoomEndedEvent",
    "RoomStartedEvent",
    "UnknownEvent",
    "WebhookBodyError",
    "WebhookEvent",
    "WebhookSignatureError",
    "event_body",
    "event_data",
    "read_event",
    "sign",
    "verify",
    "webhook_body",
]
