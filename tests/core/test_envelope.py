from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from meshagent_core import (
    ControlContent,
    EmptyContent,
    EnvelopeError,
    JsonContent,
    JsonStyle,
    TextContent,
    pack_content,
    pack_message,
    to_content,
    unpack_content,
    unpack_message,
)
from meshagent_core.content import content_from_header
from meshagent_core.testing.strategies import contents, envelopes

styles = st.sampled_from(list(JsonStyle))


@given(envelopes(), styles)
def test_envelope_round_trip(envelope: tuple[dict, bytes], style: JsonStyle) -> None:
    header, payload = envelope
    assert unpack_message(pack_message(header, payload, style=style)) == (header, payload)


@given(contents(), styles)
def test_content_round_trip(content, style: JsonStyle) -> None:
    assert unpack_content(pack_content(content, style=style)) == content


@given(envelopes(max_payload=0))
def test_python_style_is_json_dumps(envelope: tuple[dict, bytes]) -> None:
    header, _ = envelope
    packed = pack_message(header, style=JsonStyle.PYTHON)
    expected = json.dumps({**header, "__meshagent__": {"v": 1, "otel": {}}}).encode()
    assert packed[8:] == expected


def test_conversions_as_the_official_client() -> None:
    assert to_content(None) == EmptyContent()
    assert to_content("hi") == TextContent(text="hi")
    assert to_content({"a": 1}) == JsonContent(json={"a": 1})
    with pytest.raises(TypeError):
        to_content(3)  # type: ignore[arg-type]


def test_lenient_fields_as_the_official_decoder() -> None:
    assert content_from_header({"type": "error", "text": "x", "code": True}).code is None
    assert content_from_header({"type": "error", "text": "x", "code": "17"}).code == 17
    assert content_from_header({"type": "error", "text": "x", "code": "zz"}).code is None
    close = content_from_header({"type": "control", "method": "close", "message": 5})
    assert close.status_code == 1000 and close.message == "5"
    assert content_from_header({"type": "control", "method": "close", "status_code": "1007"}).status_code == 1007
    assert content_from_header({"type": "binary", "headers": [1]}).headers == {}
    assert content_from_header({"type": "binary"}).headers == {}
    assert content_from_header({"type": "text", "text": "a", "extra": 1}) == TextContent(text="a")


def test_control_open_never_writes_status() -> None:
    assert ControlContent(method="open", status_code=1000).status_code is None


def test_meshagent_key_is_stripped_and_not_required() -> None:
    raw = b'{"a": 1}'
    assert unpack_message(len(raw).to_bytes(8, "big") + raw + b"p") == ({"a": 1}, b"p")
    raw = b'{"a": 1, "__meshagent__": 7}'
    assert unpack_message(len(raw).to_bytes(8, "big") + raw) == ({"a": 1}, b"")


def test_trace_context_goes_in_otel() -> None:
    packed = pack_message({"a": 1}, trace={"traceparent": "00-ab-cd-01"})
    header = json.loads(packed[8:])
    assert header["__meshagent__"] == {"v": 1, "otel": {"traceparent": "00-ab-cd-01"}}


def test_header_must_be_an_object_to_pack() -> None:
    with pytest.raises(TypeError):
        pack_message([1, 2])  # type: ignore[arg-type]


# --- each malformed-envelope case, by name (protocol/wire.md §4.4) ----------------------------------


def envelope(header: bytes, payload: bytes = b"") -> bytes:
    return len(header).to_bytes(8, "big") + header + payload


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00" * 7, "message is too short"),
        ((100).to_bytes(8, "big") + b"{}", "message header is incomplete"),
        (envelope(b"{nope"), "invalid message header: "),
        (envelope(b"\xff\xfe"), "invalid message header: "),
        (envelope(b"[1, 2]"), "message header must be an object"),
    ],
    ids=["too-short", "incomplete-header", "not-json", "not-utf8", "not-an-object"],
)
def test_malformed_envelope(data: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match="^" + message.replace("[", r"\[")) as info:
        unpack_message(data)
    assert info.value.code == 1002
    with pytest.raises(EnvelopeError, match="^" + message.replace("[", r"\[")):
        unpack_content(data)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b'{"json": 1}', "content header is missing required 'type'"),
        (b'{"type": 3}', "content header is missing required 'type'"),
        (b'{"type": "video"}', "unsupported content type: video"),
        (b'{"type": "json"}', "json content is missing required field 'json'"),
        (b'{"type": "text"}', "text content is missing required field 'text'"),
        (b'{"type": "file", "name": "a"}', "file content is missing required field 'mime_type'"),
        (b'{"type": "link", "url": "u"}', "link content is missing required field 'name'"),
        (b'{"type": "raw"}', "raw content is missing required field 'outputs'"),
        (b'{"type": "error"}', "error content is missing required field 'text'"),
        (b'{"type": "control"}', "control content is missing required field 'method'"),
        (b'{"type": "text", "text": 3}', "text content is invalid: "),
    ],
)
def test_malformed_content(header: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match="^" + message):
        unpack_content(envelope(header))


def test_compact_style_escapes_what_utf8_cannot_carry() -> None:
    packed = pack_message({"k": "\ud800"})
    assert b'"\\ud800"' in packed
    assert unpack_message(packed) == ({"k": "\ud800"}, b"")


def test_non_finite_floats_from_python_peers_decode() -> None:
    raw = b'{"a": NaN, "b": -Infinity}'
    header, _ = unpack_message(envelope(raw))
    assert header["b"] == float("-inf") and header["a"] != header["a"]


def test_none_payload_is_no_payload() -> None:
    assert pack_message({"a": 1}, None) == pack_message({"a": 1})
