"""`messaging` toolkit contract (protocol/room-apis.md §3, presence protocol/room-apis.md §3.3).

Inputs of `enable` / `disable` / `send` / `broadcast` / `stream`, the presence messages carried
by the `messaging.send` event (whose header is `meshagent_core.messages.MessagingSend`), and the
chunks of a `messaging.stream` in both directions.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from ..jsondepth import MAX_JSON_DEPTH, decode_bounded

TOOLKIT = "messaging"

# --- `messaging.send` inner types consumed by the client itself (protocol/room-apis.md §3.2) ------------

MESSAGING_ENABLED = "messaging.enabled"
PARTICIPANT_ENABLED = "participant.enabled"
PARTICIPANT_DISABLED = "participant.disabled"
PARTICIPANT_ATTRIBUTES = "participant.attributes"
#: A user message of this type makes the official client close without reconnecting.
DISMISS = "dismiss"

#: Types only the server may emit: the client consumes them as presence updates.
PRESENCE_TYPES = frozenset({MESSAGING_ENABLED, PARTICIPANT_ENABLED, PARTICIPANT_DISABLED, PARTICIPANT_ATTRIBUTES})

NOT_FOUND_MESSAGE = "the participant was not found"


# --- tool inputs -----------------------------------------------------------------------------


class EnableInput(msgspec.Struct):
    """`enable` / `disable`: the official client sends `{}`."""


class SendInput(msgspec.Struct):
    """`send`: `message_json` is the message object serialised to a JSON string;
    `attachment_base64` standard base64 or null."""

    to_participant_id: str
    type: str
    message_json: str
    attachment_base64: str | None = None


class BroadcastInput(msgspec.Struct):
    """`broadcast`: as `send`, without a recipient."""

    type: str
    message_json: str
    attachment_base64: str | None = None


# --- presence messages (the `message` of a `messaging.send` event) ---------------------------


class PresenceParticipant(msgspec.Struct):
    """One participant in presence messages: `participant.enabled`'s message, and each item
    of `messaging.enabled`'s `participants`."""

    id: str
    role: str
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)


class MessagingEnabled(msgspec.Struct):
    """`messaging.enabled`: the other messaging-enabled participants."""

    participants: list[PresenceParticipant]


class ParticipantDisabled(msgspec.Struct):
    """`participant.disabled`."""

    id: str


class ParticipantAttributes(msgspec.Struct):
    """`participant.attributes` (the participant is the event's `from_participant_id`)."""

    attributes: dict[str, Any]


# --- messaging.stream chunks -----------------------------------------------------------------


class StreamStart(msgspec.Struct):
    """First input chunk of the initiator (a `json` chunk)."""

    to_participant_id: str
    type: str
    message_json: str
    attachment_base64: str | None = None


class StreamRequest(msgspec.Struct):
    """First chunk as forwarded to the recipient: the initiator's first chunk with
    `from_participant_id` added by the server (the official recipient requires it)."""

    from_participant_id: str
    to_participant_id: str
    type: str
    message_json: str
    attachment_base64: str | None = None


class StreamInput(msgspec.Struct):
    """Later input chunks of the initiator (`json`), forwarded unchanged."""

    type: str
    message_json: str
    attachment_base64: str | None = None


class StreamAccepted(msgspec.Struct, tag_field="kind", tag="accepted"):
    """First output chunk of the initiator's stream: the recipient accepted.
    `stream_id` is the call's `tool_call_id` (also the id the recipient sees)."""

    stream_id: str


class StreamMessage(msgspec.Struct, tag_field="kind", tag="message"):
    """A message of the recipient, sent as its output chunk and relayed unchanged."""

    type: str
    message: dict[str, Any]
    attachment_base64: str | None = None


class StreamClientDisconnected(msgspec.Struct, tag_field="kind", tag="client_disconnected"):
    """Not terminal for the official client; the local server does not emit it."""

    participant_id: str


class StreamClosed(msgspec.Struct, tag_field="kind", tag="closed", omit_defaults=True):
    """Terminal: the stream ended for `reason` (`client_disconnected`, `error`)."""

    reason: str
    message: str | None = None


StreamOutput = StreamAccepted | StreamMessage | StreamClientDisconnected | StreamClosed


# --- codecs shared by both sides -------------------------------------------------------------


class MessagingFormatError(ValueError):
    """A `message_json` or `attachment_base64` that cannot be decoded."""


def encode_message(message: dict[str, Any]) -> str:
    """A message object as the `message_json` string."""
    return msgspec.json.encode(message).decode("utf-8")


def decode_message(message_json: str, limit: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """The object of a `message_json` string (it must be a JSON object, nested at most `limit`
    deep)."""
    try:
        message = decode_bounded(message_json, limit=limit)
    except msgspec.DecodeError as error:
        raise MessagingFormatError(f"message_json is not valid JSON: {error}") from None
    if not isinstance(message, dict):
        raise MessagingFormatError("message_json must encode a JSON object")
    return message


def encode_attachment(attachment: bytes | None) -> str | None:
    return None if attachment is None else base64.b64encode(attachment).decode("ascii")


def decode_attachment(attachment_base64: str | None) -> bytes:
    """The bytes of an `attachment_base64` (null or "" = no attachment = b"")."""
    if not attachment_base64:
        return b""
    try:
        return base64.b64decode(attachment_base64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise MessagingFormatError(f"attachment_base64 is not valid base64: {error}") from None


__all__ = [
    "DISMISS",
    "MESSAGING_ENABLED",
    "NOT_FOUND_MESSAGE",
    "PARTICIPANT_ATTRIBUTES",
    "PARTICIPANT_DISABLED",
    "PARTICIPANT_ENABLED",
    "PRESENCE_TYPES",
    "TOOLKIT",
    "BroadcastInput",
    "EnableInput",
    "MessagingEnabled",
    "MessagingFormatError",
    "ParticipantAttributes",
    "ParticipantDisabled",
    "PresenceParticipant",
    "SendInput",
    "StreamAccepted",
    "StreamClientDisconnected",
    "StreamClosed",
    "StreamInput",
    "StreamMessage",
    "StreamOutput",
    "StreamRequest",
    "StreamStart",
    "decode_attachment",
    "decode_message",
    "encode_attachment",
    "encode_message",
]
