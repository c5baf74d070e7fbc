"""JSON nesting limit (`meshagent_core.jsondepth`): JSON nested past `MAX_JSON_DEPTH` is a decode
error wherever untrusted JSON is read (decoders, envelopes, content, sessions, tokens), never a
`RecursionError`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from typing import Any

import jwt
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core import ClientSession, EnvelopeError, ErrorContent, ServerSession, encode_message, unpack_content, unpack_message
from meshagent_core import messages as m
from meshagent_core.envelope import decode_header_as, decode_json
from meshagent_core.framing import PacketReader
from meshagent_core.jsondepth import (
    MAX_JSON_DEPTH,
    BoundedDecoder,
    check_decoded,
    decode_bounded,
    json_depth_exceeds,
    loads_bounded,
)
from meshagent_core.session import events as ev
from meshagent_core.tokens import ApiScope, ParticipantToken, decode_jwt, verify_participant_jwt
from meshagent_core.tokens.jws import decode_unverified

SECRET = "depth-secret-0123456789abcdef0123456789"
DEEP = [1_000, 100_000]


# --- building nested JSON without recursion --------------------------------------------------


def brackets(depth: int) -> str:
    """`[[...]]`: `depth` levels."""
    return "[" * depth + "]" * depth


def nested(levels: list[tuple[bool, bool]]) -> str:
    """JSON nested `len(levels)` deep: per level (an object? a scalar sibling before the child?)."""
    opening = []
    for is_object, sibling in levels:
        if is_object:
            opening.append('{"s":1,"k":' if sibling else '{"k":')
        else:
            opening.append("[true," if sibling else "[")
    closing = "".join("}" if is_object else "]" for is_object, _ in reversed(levels))
    return "".join(opening) + "0" + closing


def python_nested(depth: int) -> Any:
    """The decoded form of `brackets(depth)`, built iteratively."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def depths_around_the_limit() -> st.SearchStrategy[int]:
    return st.integers(min_value=MAX_JSON_DEPTH - 8, max_value=MAX_JSON_DEPTH + 8) | st.integers(1, 600)


@st.composite
def level_lists(draw: st.DrawFn) -> list[tuple[bool, bool]]:
    """A random mix of lists and objects (with or without scalar siblings), as deep as drawn.
    The mix comes from a drawn seed: drawing hundreds of levels one by one is slow."""
    depth = draw(depths_around_the_limit())
    mix = draw(st.sampled_from(["lists", "objects", "random"]))
    generator = random.Random(draw(st.integers(0, 2**32)))
    if mix == "random":
        return [(generator.random() < 0.5, generator.random() < 0.3) for _ in range(depth)]
    return [(mix == "objects", generator.random() < 0.3) for _ in range(depth)]


def as_bytes_like(text: str, kind: str) -> Any:
    data = text.encode()
    return {"bytes": data, "bytearray": bytearray(data), "memoryview": memoryview(data), "str": text}[kind]


buffer_kinds = st.sampled_from(["bytes", "bytearray", "memoryview", "str"])


# --- the limit itself ------------------------------------------------------------------------


def test_the_limit_is_256() -> None:
    assert MAX_JSON_DEPTH == 256


def test_exactly_the_limit_is_accepted_and_one_more_is_refused() -> None:
    decoder = BoundedDecoder()
    assert decoder.decode(brackets(MAX_JSON_DEPTH)) == python_nested(MAX_JSON_DEPTH)
    with pytest.raises(msgspec.DecodeError, match="nested more than 256"):
        decoder.decode(brackets(MAX_JSON_DEPTH + 1))
    assert decode_bounded(brackets(MAX_JSON_DEPTH).encode()) == python_nested(MAX_JSON_DEPTH)
    with pytest.raises(msgspec.DecodeError):
        decode_bounded(brackets(MAX_JSON_DEPTH + 1).encode())
    assert loads_bounded(brackets(MAX_JSON_DEPTH)) == python_nested(MAX_JSON_DEPTH)
    with pytest.raises(ValueError):
        loads_bounded(brackets(MAX_JSON_DEPTH + 1))


@pytest.mark.parametrize("depth", DEEP)
def test_very_deep_json_is_a_decode_error_not_a_recursion_error(depth: int) -> None:
    text = brackets(depth)
    for data in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        with pytest.raises(msgspec.DecodeError):
            BoundedDecoder().decode(data)
        with pytest.raises(msgspec.DecodeError):
            decode_bounded(data)
    with pytest.raises(msgspec.DecodeError):
        decode_bounded(text, list)
    with pytest.raises(ValueError):
        loads_bounded(text)
    with pytest.raises(ValueError):
        loads_bounded(text.encode())


class Holder(msgspec.Struct):
    name: str
    value: Any


@pytest.mark.parametrize("depth", DEEP)
def test_typed_decoders_refuse_deep_fields(depth: int) -> None:
    deep = '{"name":"x","value":' + brackets(depth - 1) + "}"
    with pytest.raises(msgspec.DecodeError):
        BoundedDecoder(Holder).decode(deep)
    with pytest.raises(msgspec.DecodeError):
        decode_bounded(deep, Holder)
    with pytest.raises(msgspec.DecodeError):
        decode_bounded(deep, dict)
    unknown = '{"name":"x","value":1,"extra":' + brackets(depth - 1) + "}"
    with pytest.raises(msgspec.DecodeError):
        BoundedDecoder(Holder).decode(unknown)


def test_a_typed_decoder_accepts_its_fields_at_the_limit() -> None:
    ok = '{"name":"x","value":' + brackets(MAX_JSON_DEPTH - 1) + "}"  # the object is a level
    assert BoundedDecoder(Holder).decode(ok).value == python_nested(MAX_JSON_DEPTH - 1)
    assert decode_bounded(ok, Holder).name == "x"
    assert decode_bounded(ok, dict)["value"] == python_nested(MAX_JSON_DEPTH - 1)


def test_a_typed_decoder_refuses_one_level_past_the_limit() -> None:
    text = '{"name":"x","value":' + brackets(MAX_JSON_DEPTH) + "}"  # 257 levels
    with pytest.raises(msgspec.DecodeError):
        decode_bounded(text, dict)  # the untyped decoders refuse it...
    with pytest.raises(msgspec.DecodeError):
        BoundedDecoder(Holder).decode(text)  # ...and so should the typed one
    assert json_depth_exceeds({"name": "x", "value": python_nested(MAX_JSON_DEPTH)})
    assert json_depth_exceeds(Holder("x", python_nested(MAX_JSON_DEPTH)))  # the same JSON


def test_a_typed_decoder_refuses_deep_json_under_an_unknown_key() -> None:
    with pytest.raises(msgspec.DecodeError):
        BoundedDecoder(Holder).decode('{"name":"x","value":1,"extra":' + brackets(500) + "}")


@settings(max_examples=300, deadline=None)
@given(level_lists(), buffer_kinds)
def test_random_mixes_of_lists_and_objects_are_accepted_up_to_the_limit(shape: list[tuple[bool, bool]], kind: str) -> None:
    text = nested(shape)
    depth = len(shape)
    data = as_bytes_like(text, kind)
    if depth <= MAX_JSON_DEPTH:
        expected = json.loads(text)
        assert BoundedDecoder().decode(data) == expected
        assert decode_bounded(data) == expected
        assert loads_bounded(text) == expected
        assert not json_depth_exceeds(expected)
        assert json_depth_exceeds(expected, depth - 1)
    else:
        with pytest.raises(msgspec.DecodeError):
            BoundedDecoder().decode(data)
        with pytest.raises(msgspec.DecodeError):
            decode_bounded(data)
        with pytest.raises(ValueError):
            loads_bounded(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(MAX_JSON_DEPTH + 1, 5_000), st.integers(0, 3))
def test_brackets_inside_strings_do_not_count(count: int, depth: int) -> None:
    """Many brackets (past the cheap pre-check) in string values: only real nesting counts."""
    text = brackets(depth).replace("[]", '["' + "[{" * count + '"]') if depth else '"' + "{[" * count + '"'
    value = json.loads(text)
    assert BoundedDecoder().decode(text) == value
    assert loads_bounded(text) == value
    assert check_decoded(text, value) == value


@settings(max_examples=200, deadline=None)
@given(depths_around_the_limit())
def test_json_depth_exceeds_counts_levels(depth: int) -> None:
    value = python_nested(depth)
    assert json_depth_exceeds(value) == (depth > MAX_JSON_DEPTH)
    assert json_depth_exceeds(value, depth - 1) and not json_depth_exceeds(value, depth)


def test_json_depth_exceeds_needs_no_recursion() -> None:
    value: Any = 0
    for index in range(200_000):
        value = {"k": value} if index % 2 else (value,)
    assert json_depth_exceeds(value)
    assert not json_depth_exceeds(value, 200_000)


# --- envelopes and content -------------------------------------------------------------------


def envelope(header: str | bytes, payload: bytes = b"") -> bytes:
    header_bytes = header.encode() if isinstance(header, str) else header
    return len(header_bytes).to_bytes(8, "big") + header_bytes + payload


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, *DEEP])
def test_unpack_message_refuses_a_deep_header(depth: int) -> None:
    header = '{"a":' + brackets(depth - 1) + "}"
    with pytest.raises(EnvelopeError, match="invalid message header"):
        unpack_message(envelope(header, b"payload"))
    with pytest.raises(EnvelopeError):
        decode_json(header.encode())
    if depth in DEEP:
        with pytest.raises(EnvelopeError):
            decode_header_as(header.encode(), m.ListToolkits)
    # a header that is itself only brackets
    with pytest.raises(EnvelopeError):
        unpack_message(envelope(brackets(depth)))


def test_unpack_message_accepts_a_header_at_the_limit() -> None:
    header, payload = unpack_message(envelope('{"a":' + brackets(MAX_JSON_DEPTH - 1) + "}", b"p"))
    assert header == {"a": python_nested(MAX_JSON_DEPTH - 1)} and payload == b"p"


def test_the_standard_library_fallback_is_bounded_too() -> None:
    """NaN makes msgspec refuse the header, so the `json.loads` path decides: still bounded."""
    deep = '{"n":NaN,"a":' + brackets(5_000) + "}"
    with pytest.raises(EnvelopeError):
        unpack_message(envelope(deep))
    header, _ = unpack_message(envelope('{"n":NaN,"a":' + brackets(10) + "}"))
    assert header["a"] == python_nested(10)


@pytest.mark.parametrize("depth", DEEP)
def test_unpack_content_refuses_deep_content(depth: int) -> None:
    with pytest.raises(EnvelopeError):
        unpack_content(envelope('{"type":"json","json":' + brackets(depth) + "}"))
    with pytest.raises(EnvelopeError):
        unpack_content(envelope('{"type":"raw","outputs":' + brackets(depth) + "}"))


# --- sessions --------------------------------------------------------------------------------


def feed(session: Any, message_id: int, type: str, header: str) -> list[ev.Event]:
    session.receive_packets(encode_message(message_id, type, envelope(header)))
    return session.events_received()


def ready_server() -> ServerSession:
    server = ServerSession()
    server.send_room_ready("r", "ws://h/rooms/r", "s")
    server.send_connected("p1", {"name": "alice"})
    server.packets_to_send()
    return server


def server_answer(server: ServerSession, request_id: int) -> Any:
    """The content of the one message `server` queued, which must be the answer to `request_id`."""
    reader = PacketReader()
    messages = reader.receive_packets(server.packets_to_send())
    assert [(message.type, message.id) for message in messages] == [(m.RESPONSE, request_id)]
    return unpack_content(messages[0].data)


@pytest.mark.parametrize("depth", DEEP)
@pytest.mark.parametrize(
    "type, header",
    [
        ("room.list_toolkits", '{"participant_name":"x","extra":%s}'),
        ("room.invoke_tool", '{"toolkit":"storage","tool":"exists","arguments":{"type":"json","json":{"path":%s}},"tool_call_id":"t"}'),
        ("room.invoke_tool", '{"toolkit":"storage","tool":"exists","arguments":%s,"tool_call_id":"t"}'),
        ("room.tool_call_request_chunk", '{"tool_call_id":"t","chunk":%s}'),
    ],
)
def test_the_server_session_answers_deep_requests_with_an_error(depth: int, type: str, header: str) -> None:
    server = ready_server()
    events = feed(server, 7, type, header % brackets(depth))
    assert [event.__class__ for event in events] == [ev.MalformedMessage]
    answer = server_answer(server, 7)
    assert isinstance(answer, ErrorContent) and answer.code == 1002, answer
    assert "nested" in answer.text or "invalid" in answer.text


@pytest.mark.parametrize("depth", DEEP)
def test_the_server_session_reports_deep_attributes(depth: int) -> None:
    server = ready_server()
    (event,) = feed(server, 7, "set_attributes", '{"a":' + brackets(depth) + "}")
    assert isinstance(event, ev.MalformedMessage)
    assert server.packets_to_send() == []  # one-way: nothing to answer


@pytest.mark.parametrize("depth", DEEP)
def test_the_client_session_fails_a_request_whose_answer_is_deep(depth: int) -> None:
    client = ClientSession()
    request_id = client.send_request("room.list_toolkits", {})
    (event,) = feed(client, request_id, m.RESPONSE, '{"type":"json","json":' + brackets(depth) + "}")
    assert isinstance(event, ev.RequestFailed) and event.request_id == request_id


# --- tokens ----------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_raw(header: bytes, payload: bytes, key: str = SECRET) -> str:
    signing_input = b64url(header) + "." + b64url(payload)
    digest = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(digest)


def good_payload() -> dict[str, Any]:
    token = ParticipantToken(name="alice", project_id="p", api_key_id="k")
    token.add_room_grant("r")
    return json.loads(base64.urlsafe_b64decode(token.to_jwt(token=SECRET).split(".")[1] + "=="))


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, *DEEP])
def test_a_jwt_with_a_deep_header_is_an_invalid_token(depth: int) -> None:
    header = ('{"alg":"HS256","typ":"JWT","x":' + brackets(depth) + "}").encode()
    token = sign_raw(header, json.dumps(good_payload()).encode())
    with pytest.raises(jwt.DecodeError):
        decode_jwt(token, SECRET)
    with pytest.raises(jwt.DecodeError):
        decode_unverified(token)
    with pytest.raises(jwt.InvalidTokenError):
        ParticipantToken.from_jwt(token, token=SECRET)
    with pytest.raises(jwt.InvalidTokenError):
        verify_participant_jwt(token, lookup_secret=lambda kid: SECRET, now=None, default_secret=SECRET)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, *DEEP])
def test_a_jwt_with_a_deep_payload_is_an_invalid_token(depth: int) -> None:
    payload = json.dumps(good_payload())[:-1] + ',"x":' + brackets(depth) + "}"
    token = sign_raw(b'{"alg":"HS256","typ":"JWT"}', payload.encode())
    with pytest.raises(jwt.InvalidTokenError):
        ParticipantToken.from_jwt(token, token=SECRET)
    with pytest.raises(jwt.InvalidTokenError):
        verify_participant_jwt(token, lookup_secret=lambda kid: SECRET, now=None, default_secret=SECRET)


def test_a_jwt_with_nesting_at_the_limit_still_verifies() -> None:
    header = ('{"alg":"HS256","typ":"JWT","x":' + brackets(MAX_JSON_DEPTH - 1) + "}").encode()
    token = sign_raw(header, json.dumps(good_payload()).encode())
    assert ParticipantToken.from_jwt(token, token=SECRET).name == "alice"


@pytest.mark.parametrize("depth", DEEP)
def test_grant_json_with_deep_nesting_is_refused(depth: int) -> None:
    assert ApiScope.from_json_bytes('{"x":' + brackets(MAX_JSON_DEPTH - 1) + "}") == ApiScope()
    with pytest.raises(msgspec.DecodeError):
        ApiScope.from_json_bytes('{"x":' + brackets(depth) + "}")
