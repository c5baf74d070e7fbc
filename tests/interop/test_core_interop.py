"""Our sans-IO core against the official meshagent-api 0.56 codec, on generated inputs.

The official code runs in its own Python 3.13 process (see conftest.py); each Hypothesis
example sends one batch of cases to it over a pipe. Generation is derandomized, so every run
checks the same inputs, and failures shrink to a minimal case.

  (a) envelopes and content we pack, in both JSON styles, decode with the official
      `unpack_message` / `unpack_content` to the same header and payload;
  (b) the official `pack_message` / `pack_content` output decodes with ours to the same value,
      and our PYTHON style reproduces it byte for byte;
  (c) our packets are reassembled by the official `Protocol.receive_packet`, the official
      sender's packets are byte-identical to ours, and our reader reassembles them.

Comparisons are type-strict (`strict`): 1 vs 1.0 vs True, and dict key order, all count.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshagent_core.content import (
    BinaryContent,
    ControlContent,
    EmptyContent,
    ErrorContent,
    FileContent,
    JsonContent,
    LinkContent,
    RawOutputsContent,
    TextContent,
    pack_content,
    unpack_content,
)
from meshagent_core.envelope import JsonStyle, pack_message, unpack_message
from meshagent_core.framing import PacketReader, PacketWriter, encode_message

pytestmark = pytest.mark.interop

META_KEY = "__meshagent__"

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def strict(value: Any) -> Any:
    """A form of a JSON value whose equality also compares types and key order."""
    if isinstance(value, dict):
        return ("dict", [(key, strict(item)) for key, item in value.items()])
    if isinstance(value, (list, tuple)):
        return ("list", [strict(item) for item in value])
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


# --- strategies --------------------------------------------------------------------------

# Any Unicode scalar value (so plenty of non-ASCII; lone surrogates have their own test below).
text = st.text(st.characters(codec="utf-8"), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: Python's json handles any int
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=16,
)
json_objects = st.dictionaries(text, json_values, max_size=5)
headers = st.dictionaries(text.filter(lambda key: key != META_KEY), json_values, max_size=6)
# Payload sizes: mostly small, sometimes past the 1 KiB packet size and beyond.
payload_sizes = st.integers(0, 64) | st.integers(0, 4096) | st.sampled_from([0, 1, 1023, 1024, 1025, 4096])
payloads = payload_sizes.flatmap(lambda size: st.binary(min_size=size, max_size=size))
envelopes = st.tuples(headers, payloads)


OFFICIAL_CLASS = {
    "json": "JsonContent",
    "text": "TextContent",
    "empty": "EmptyContent",
    "error": "ErrorContent",
    "file": "FileContent",
    "binary": "BinaryContent",
    "link": "LinkContent",
    "raw": "RawOutputsContent",
    "control": "_ControlContent",
}


@st.composite
def contents(draw):
    """(our content value, the official `to_json()` it must decode to, payload bytes)."""
    kind = draw(st.sampled_from(list(OFFICIAL_CLASS)))
    if kind == "json":
        value = draw(json_objects)
        return JsonContent(json=value), {"type": "json", "json": value}, b""
    if kind == "text":
        value = draw(text)
        return TextContent(text=value), {"type": "text", "text": value}, b""
    if kind == "empty":
        return EmptyContent(), {"type": "empty"}, b""
    if kind == "error":
        message, code = draw(text), draw(st.none() | st.integers())
        expected = {"type": "error", "text": message}
        if code is not None:
            expected["code"] = code
        return ErrorContent(text=message, code=code), expected, b""
    if kind == "file":
        name, mime, data = draw(text), draw(text), draw(payloads)
        return (
            FileContent(name=name, mime_type=mime, data=data),
            {"type": "file", "name": name, "mime_type": mime},
            data,
        )
    if kind == "binary":
        extra, data = draw(json_objects), draw(payloads)
        return BinaryContent(headers=extra, data=data), {"type": "binary", "headers": extra}, data
    if kind == "link":
        name, url = draw(text), draw(text)
        return LinkContent(name=name, url=url), {"type": "link", "name": name, "url": url}, b""
    if kind == "raw":
        outputs = draw(st.lists(json_objects, max_size=3))
        return RawOutputsContent(outputs=outputs), {"type": "raw", "outputs": outputs}, b""
    method = draw(st.sampled_from(["open", "close"]))
    if method == "open":
        return ControlContent(method="open"), {"type": "control", "method": "open"}, b""
    status = draw(st.none() | st.sampled_from([0, 1000, 1007]) | st.integers(min_value=0, max_value=65535))
    message = draw(st.none() | text)
    expected = {"type": "control", "method": "close", "status_code": 1000 if status is None else status}
    if message is not None:
        expected["message"] = message
    return ControlContent(method="close", status_code=status, message=message), expected, b""



# Sizes around the 1024-byte packet boundaries are drawn often on purpose.
data_sizes = st.integers(0, 5000) | st.sampled_from([0, 1, 1023, 1024, 1025, 2047, 2048, 2049, 4096, 5000])
messages = st.tuples(
    st.integers(0, 2**64 - 1),
    st.text(st.characters(codec="utf-8"), max_size=30),
    data_sizes.flatmap(lambda size: st.binary(min_size=size, max_size=size)),
)


# --- sanity ------------------------------------------------------------------------------


def test_official_codec_is_the_pinned_version(official_codec):
    assert official_codec.info["version"] == "0.56.0"
    assert official_codec.info["python"].startswith("3.13")


def test_strict_comparison_sees_what_plain_equality_misses():
    assert {"a": 1} == {"a": 1.0} == {"a": True}
    assert strict({"a": 1}) != strict({"a": 1.0}) != strict({"a": True})
    assert strict({"a": 1, "b": 2}) != strict({"b": 2, "a": 1})


# --- (a) ours -> official ----------------------------------------------------------------


@SETTINGS
@given(st.lists(envelopes, min_size=1, max_size=10))
def test_official_unpacks_our_envelopes(official_codec, cases):
    packed = [pack_message(h, p, style=style) for h, p in cases for style in (JsonStyle.COMPACT, JsonStyle.PYTHON)]
    results = official_codec.call("unpack_message", [b64(data) for data in packed])
    expected = [(h, p) for h, p in cases for _ in (JsonStyle.COMPACT, JsonStyle.PYTHON)]
    for data, (header, payload), result in zip(packed, expected, results, strict=True):
        assert "raises" not in result, (data, result)
        assert strict(result["header"]) == strict(header), data
        assert unb64(result["payload"]) == payload, data


@SETTINGS
@given(st.lists(contents(), min_size=1, max_size=10))
def test_official_unpacks_our_content(official_codec, cases):
    packed = [
        (pack_content(content, style=style), expected, data)
        for content, expected, data in cases
        for style in (JsonStyle.COMPACT, JsonStyle.PYTHON)
    ]
    results = official_codec.call("unpack_content", [b64(envelope) for envelope, _, _ in packed])
    for (envelope, expected, data), result in zip(packed, results, strict=True):
        assert "raises" not in result, (envelope, result)
        assert result["class"] == OFFICIAL_CLASS[expected["type"]], envelope
        assert strict(result["json"]) == strict(expected), envelope
        assert unb64(result["data"]) == data, envelope


# --- (b) official -> ours ----------------------------------------------------------------


@SETTINGS
@given(st.lists(envelopes, min_size=1, max_size=10))
def test_we_unpack_official_envelopes_and_match_them_byte_for_byte(official_codec, cases):
    results = official_codec.call("pack_message", [{"header": h, "payload": b64(p)} for h, p in cases])
    for (header, payload), result in zip(cases, results, strict=True):
        theirs = unb64(result)
        assert pack_message(header, payload, style=JsonStyle.PYTHON) == theirs
        got_header, got_payload = unpack_message(theirs)
        assert strict(got_header) == strict(header), theirs
        assert got_payload == payload, theirs


@SETTINGS
@given(st.lists(contents(), min_size=1, max_size=10))
def test_we_unpack_official_content_and_match_it_byte_for_byte(official_codec, cases):
    results = official_codec.call(
        "pack_content", [{"json": expected, "data": b64(data)} for _, expected, data in cases]
    )
    for (content, _, _), result in zip(cases, results, strict=True):
        theirs = unb64(result)
        assert pack_content(content, style=JsonStyle.PYTHON) == theirs
        assert unpack_content(theirs) == content, theirs


# --- (c) framing -------------------------------------------------------------------------


@SETTINGS
@given(st.lists(messages, min_size=1, max_size=12))
def test_framing_matches_the_official_protocol(official_codec, cases):
    ours = [encode_message(message_id, type, data) for message_id, type, data in cases]

    # One PacketWriter batch is the same packets as encoding message by message.
    writer = PacketWriter()
    for message_id, type, data in cases:
        writer.add(message_id, type, data)
    assert writer.flush() == [packet for packets in ours for packet in packets]

    # The official receiver reassembles our stream of packets, message by message.
    stream = [b64(packet) for packets in ours for packet in packets]
    received = official_codec.call("receive_packets", stream)
    assert [(m["id"], m["type"], unb64(m["data"])) for m in received] == cases

    # The official sender's packets are ours, byte for byte...
    sent = official_codec.call(
        "send_messages", [{"id": i, "type": t, "data": b64(d)} for i, t, d in cases]
    )
    theirs = [[unb64(packet) for packet in packets] for packets in sent]
    assert theirs == ours

    # ...and our reader reassembles them from one continuous stream.
    reader = PacketReader()
    assert reader.receive_packets(packet for packets in theirs for packet in packets) == cases
    assert not reader.in_progress


def test_framing_boundaries_against_the_official_protocol(official_codec):
    """Fixed sizes around the packet boundaries, and the largest message id."""
    cases = [
        (message_id, type, bytes(i % 251 for i in range(size)))
        for message_id, type, size in [
            (0, "", 0),
            (1, "a", 1),
            (2**64 - 1, "room.invoke_tool", 1024),
            (7, "ünïcødé ✓", 1025),
            (8, "x" * 200, 3 * 1024),
            (9, "y", 3 * 1024 + 1),
        ]
    ]
    sent = official_codec.call("send_messages", [{"id": i, "type": t, "data": b64(d)} for i, t, d in cases])
    for (message_id, type, data), packets in zip(cases, sent, strict=True):
        ours = encode_message(message_id, type, data)
        assert [unb64(p) for p in packets] == ours
        assert len(ours) == 1 + -(-len(data) // 1024)
    stream = [b64(p) for i, t, d in cases for p in encode_message(i, t, d)]
    received = official_codec.call("receive_packets", stream)
    assert [(m["id"], m["type"], unb64(m["data"])) for m in received] == cases


# --- inputs outside strict JSON ---------------------------------------------------------------
# The official Python client packs NaN / Infinity literals and lone surrogate escapes without
# complaint (the JS client would reject them). Our decoder falls back to the standard library
# for them, so a Python peer's message is never lost.


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_we_unpack_official_non_finite_floats(official_codec, value):
    # The request line is written by json.dumps, which passes NaN / Infinity through as-is.
    (result,) = official_codec.call("pack_message", [{"header": {"k": value}, "payload": ""}])
    theirs = unb64(result)
    assert pack_message({"k": value}, style=JsonStyle.PYTHON) == theirs
    header, _ = unpack_message(theirs)
    assert repr(header["k"]) == repr(value)


def test_we_unpack_official_lone_surrogate(official_codec):
    (result,) = official_codec.call("pack_message", [{"header": {"k": "\ud800"}, "payload": ""}])
    theirs = unb64(result)
    assert b'"\\ud800"' in theirs
    assert pack_message({"k": "\ud800"}, style=JsonStyle.PYTHON) == theirs
    header, _ = unpack_message(theirs)
    assert header == {"k": "\ud800"}
