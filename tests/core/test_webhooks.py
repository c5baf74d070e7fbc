"""Webhook events, bodies and signatures against the official 0.56 sender's and receiver's
vectors, and their properties (protocol/webhooks.md §1, §2)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core.jsondepth import MAX_JSON_DEPTH
from meshagent_core.testing import vectors
from meshagent_core.tokens import encode_jwt
from meshagent_core.webhooks import (
    INVALID_BODY,
    INVALID_JWT,
    MISSING_SIGNATURE,
    SIGNATURE_MISMATCH,
    CallEvent,
    RoomEndedEvent,
    RoomStartedEvent,
    UnknownEvent,
    WebhookBodyError,
    WebhookSignatureError,
    event_body,
    read_event,
    sign,
    verify,
    webhook_body,
)

VECTORS: dict[str, Any] = vectors.load("webhook_vectors")
CALL = VECTORS["room_call_vector"]
RESULTS = VECTORS["official_server_results"]
SECRET = CALL["secret"]
BODY = CALL["request"]["body"].encode("utf-8")
SIGNATURE = CALL["request"]["headers"]["Meshagent-Signature"]
NOW = 1_800_000_000

REFUSAL = {401: WebhookSignatureError, 400: WebhookBodyError}


def refusal_reason(result: dict[str, Any]) -> str:
    return result["body"].removeprefix(f"{result['status']}: ")


# --- vectors -------------------------------------------------------------------------------------


def test_room_call_body_and_signature_are_byte_exact():
    event = read_event(BODY)
    assert event == CallEvent(
        room_name="my-room",
        room_url="wss://api.example.test/rooms/my-room",
        token="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.placeholder",
        arguments={"hello": "world", "n": 1, "unicode": "café"},
    )
    assert webhook_body("room.call", json.loads(BODY)["data"]) == BODY
    assert event_body(event) == BODY
    assert hashlib.sha256(BODY).hexdigest() == CALL["body_sha256_hex"]
    assert sign(BODY, SECRET) == SIGNATURE == "Bearer " + CALL["signature_jwt"]
    assert verify(BODY, SIGNATURE, SECRET, now=NOW) == json.loads(BODY)
    assert RESULTS["official_body_and_signature"]["status"] == 200


@pytest.mark.parametrize("name, cls", [("room.started", RoomStartedEvent), ("room.ended", RoomEndedEvent)])
def test_lifecycle_vectors(name, cls):
    result = RESULTS[name]
    body = result["body_sent"].encode()
    event = read_event(body)
    assert type(event) is cls and event.name == name
    assert event_body(event) == body
    assert sign(body, SECRET) == result["signature"]
    verify(body, result["signature"], SECRET, now=NOW)


def test_events_seen_by_the_official_receiver():
    classes = {"room.call": CallEvent, "room.started": RoomStartedEvent, "room.ended": RoomEndedEvent}
    for name, *fields in VECTORS["events_seen_by_official_server"]:
        cls = classes[name]
        event = cls(**dict(zip(cls.__struct_fields__, fields, strict=True)))
        assert read_event(event_body(event)) == event


def _compact(body: bytes) -> bytes:
    return json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()


def _with_exp(exp: int) -> str:
    return "Bearer " + encode_jwt({"sha256": CALL["body_sha256_hex"], "exp": exp}, SECRET)


# Each variant the official receiver was shown, rebuilt here: (body, signature, secret).
VARIANTS = {
    "official_body_and_signature": (BODY, SIGNATURE),
    "compact_body_signed_over_its_own_bytes": (_compact(BODY), sign(_compact(BODY), SECRET)),
    "compact_body_with_signature_of_python_default_form": (_compact(BODY), SIGNATURE),
    "missing_signature": (BODY, None),
    "no_bearer_prefix": (BODY, CALL["signature_jwt"]),
    "wrong_secret": (BODY, sign(BODY, SECRET + "x")),
    "signature_jwt_with_past_exp": (BODY, _with_exp(NOW - 1)),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_official_receiver_answers(variant):
    body, signature = VARIANTS[variant]
    result = RESULTS[variant]
    if result["status"] == 200:
        assert verify(body, signature, SECRET, now=NOW) == json.loads(BODY)
        return
    with pytest.raises(REFUSAL[result["status"]]) as caught:
        verify(body, signature, SECRET, now=NOW)
    assert str(caught.value) == refusal_reason(result)


def test_time_claims_are_checked_against_now_only():
    signature = _with_exp(NOW + 10)
    verify(BODY, signature, SECRET, now=NOW)
    verify(BODY, _with_exp(NOW - 1), SECRET, now=None)  # None skips the comparison
    with pytest.raises(WebhookSignatureError, match=f"^{INVALID_JWT}$"):
        verify(BODY, signature, SECRET, now=NOW + 10)


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature, reason",
    [
        (None, MISSING_SIGNATURE),
        ("", MISSING_SIGNATURE),
        ("bearer " + CALL["signature_jwt"], MISSING_SIGNATURE),
        ("Bearer", MISSING_SIGNATURE),
        ("Bearer ", INVALID_JWT),
        ("Bearer not.a.jwt", INVALID_JWT),
        ("Bearer " + encode_jwt({"hash": CALL["body_sha256_hex"]}, SECRET), INVALID_JWT),
        ("Bearer " + encode_jwt({"sha256": CALL["body_sha256_hex"].upper()}, SECRET), SIGNATURE_MISMATCH),
        ("Bearer " + encode_jwt({"sha256": 1}, SECRET), SIGNATURE_MISMATCH),
        ("Bearer " + "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + CALL["signature_jwt"].split(".")[1] + ".", INVALID_JWT),
    ],
)
def test_signature_refusals(signature, reason):
    with pytest.raises(WebhookSignatureError) as caught:
        verify(BODY, signature, SECRET, now=NOW)
    assert str(caught.value) == reason


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b"\xff\xfe{}", b'{"event": "room.call"', b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)],
)
def test_malformed_bodies(body):
    with pytest.raises(WebhookBodyError, match="malformed webhook body"):
        read_event(body)
    with pytest.raises(WebhookBodyError, match="malformed webhook body"):
        verify(body, sign(body, SECRET), SECRET, now=NOW)


@pytest.mark.parametrize("body", [b"[]", b"1", b'"room.call"', b"null"])
def test_non_object_envelopes(body):
    with pytest.raises(WebhookBodyError, match=f"^{INVALID_BODY}$"):
        read_event(body)
    with pytest.raises(WebhookBodyError, match=f"^{INVALID_BODY}$"):
        verify(body, sign(body, SECRET), SECRET, now=NOW)


@pytest.mark.parametrize(
    "envelope, match",
    [
        ({}, "no event name"),
        ({"data": {}}, "no event name"),
        ({"event": 5, "data": {}}, "must be a string"),
        ({"event": "room.call"}, "data must be an object"),
        ({"event": "room.call", "data": []}, "data must be an object"),
        ({"event": "room.call", "data": {"room_name": "r", "room_url": "u"}}, "token"),
        ({"event": "room.call", "data": {"room_name": 1, "room_url": "u", "token": "t"}}, "room_name"),
        ({"event": "room.call", "data": {"room_name": "r", "room_url": "u", "token": "t", "arguments": []}}, "arguments"),
        ({"event": "room.started", "data": {"room_name": "r"}}, "room_url"),
        ({"event": "room.ended", "data": {}}, "room_name"),
    ],
)
def test_invalid_envelopes(envelope, match):
    with pytest.raises(WebhookBodyError, match=match):
        read_event(json.dumps(envelope))


def test_unknown_events_and_ignored_keys():
    assert read_event(b'{"event": "room.paused", "data": [1, {"a": null}]}') == UnknownEvent(
        name="room.paused", data=[1, {"a": None}]
    )
    assert read_event(b'{"event": "x"}') == UnknownEvent(name="x", data=None)
    event = read_event(b'{"event": "room.ended", "data": {"room_name": "r", "extra": 1}, "id": 7}')
    assert event == RoomEndedEvent(room_name="r")
    call = read_event(b'{"event": "room.call", "data": {"room_name": "r", "room_url": "u", "token": "t"}}')
    assert call == CallEvent(room_name="r", room_url="u", token="t", arguments=None)


def test_empty_secret_is_a_configuration_error():
    with pytest.raises(ValueError):
        sign(BODY, "")
    with pytest.raises(ValueError) as caught:
        verify(BODY, SIGNATURE, "", now=NOW)
    assert not isinstance(caught.value, WebhookSignatureError)


# --- properties ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
event_names = st.sampled_from(["room.call", "room.started", "room.ended"]) | st.text(max_size=12)
secrets = st.text(min_size=1, max_size=40)


@settings(deadline=None)  # the first example also pays for warming up; no timing is under test
@given(name=event_names, data=json_values, secret=secrets)
def test_any_body_round_trips(name, data, secret):
    body = webhook_body(name, data)
    assert body == json.dumps({"event": name, "data": data}).encode()
    assert body.isascii()
    assert verify(body, sign(body, secret), secret, now=NOW) == {"event": name, "data": data}
    # the official receiver's rule: any text of the same JSON value verifies too
    compact = json.dumps({"event": name, "data": data}, separators=(",", ":"), ensure_ascii=False)
    verify(compact.encode(), sign(body, secret), secret, now=NOW)


@settings(deadline=None)
@given(data=json_values, secret=secrets, position=st.integers(min_value=0), byte=st.integers(0, 255))
def test_a_changed_body_byte_is_refused_unless_the_value_is_the_same(data, secret, position, byte):
    body = webhook_body("room.call", data)
    signature = sign(body, secret)
    position %= len(body)
    changed = body[:position] + bytes([byte]) + body[position + 1 :]
    try:
        same = json.dumps(json.loads(changed.decode("utf-8"))).encode() == body
    except ValueError:
        with pytest.raises(WebhookBodyError):
            verify(changed, signature, secret, now=NOW)
        return
    if same:  # whitespace, or the case of a \\u escape: the official receiver accepts these
        verify(changed, signature, secret, now=NOW)
    else:
        with pytest.raises((WebhookSignatureError, WebhookBodyError)) as caught:
            verify(changed, signature, secret, now=NOW)
        if caught.type is WebhookSignatureError:
            assert str(caught.value) == SIGNATURE_MISMATCH


def _b64url_decode(segment: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:
        return None


@settings(max_examples=300, deadline=None)
@given(data=json_values, secret=secrets, position=st.integers(min_value=0), char=st.characters(max_codepoint=0x7F))
def test_a_changed_signature_byte_is_refused(data, secret, position, char):
    body = webhook_body("room.started", data)
    signature = sign(body, secret)
    position %= len(signature)
    changed = signature[:position] + char + signature[position + 1 :]
    if changed == signature:
        return
    mac = signature.rsplit(".", 1)[1]
    changed_mac = changed.rsplit(".", 1)[-1]
    if position >= len(signature) - 1 and "." not in char and _b64url_decode(changed_mac) == _b64url_decode(mac):
        # the last character's two unused bits (protocol/webhooks.md §2.3): the same signature
        verify(body, changed, secret, now=NOW)
        return
    with pytest.raises(WebhookSignatureError):
        verify(body, changed, secret, now=NOW)


def test_the_last_signature_character_carries_unused_bits():
    jwt_text = CALL["signature_jwt"]
    last = jwt_text[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(last)
    twin = alphabet[index ^ 1]
    verify(BODY, "Bearer " + jwt_text[:-1] + twin, SECRET, now=NOW)
    with pytest.raises(WebhookSignatureError, match=f"^{INVALID_JWT}$"):
        verify(BODY, "Bearer " + jwt_text[:-1] + alphabet[index ^ 4], SECRET, now=NOW)
