"""Conformance with the bytes the official 0.56 client produces (`wire_vectors`, see
`meshagent_core.testing.vectors`)."""

from __future__ import annotations

import json

import pytest

from meshagent_core import FramingError, JsonStyle, PacketReader, encode_message, pack_message, unpack_message
from meshagent_core.content import content_from_header, pack_content, unpack_content
from meshagent_core.envelope import encode_header
from meshagent_core.testing import vectors

VECTORS = vectors.load("wire_vectors")


def cases(kind: str) -> list[dict]:
    return [case for case in VECTORS if case["kind"] == kind]


def ids(kind: str) -> list[str]:
    return [case["description"] for case in cases(kind)]


def test_every_vector_kind_is_covered() -> None:
    assert {case["kind"] for case in VECTORS} == {"packets", "envelope", "message", "receiver"}


@pytest.mark.parametrize("case", cases("packets"), ids=ids("packets"))
def test_packets_byte_exact(case: dict) -> None:
    given = case["input"]
    payload = bytes.fromhex(given["payload_hex"])
    packets = encode_message(given["message_id"], given["type"], payload)
    assert [p.hex() for p in packets] == [frame["hex"] for frame in case["frames"]]
    reader = PacketReader()
    messages = reader.receive_packets(bytes.fromhex(frame["hex"]) for frame in case["frames"])
    assert messages == [(given["message_id"], given["type"], payload)]


def _trace(case: dict) -> dict | None:
    otel = json.loads(case["header_json"])["__meshagent__"]["otel"]
    return otel or None


@pytest.mark.parametrize("case", cases("envelope"), ids=ids("envelope"))
def test_envelope_python_style_byte_exact(case: dict) -> None:
    header = case["input"]["header"]
    payload = bytes.fromhex(case["input"].get("data_hex", ""))
    packed = pack_message(header, payload, trace=_trace(case), style=JsonStyle.PYTHON)
    assert packed.hex() == case["envelope_hex"]
    assert int.from_bytes(packed[:8], "big") == case["header_length"]


UNTRACED = [c for c in cases("envelope") if not _trace(c)]


@pytest.mark.parametrize("case", UNTRACED, ids=[c["description"] for c in UNTRACED])
def test_envelope_content_classes_byte_exact(case: dict) -> None:
    """The content Structs write the same header, in the same key order, as the official classes."""
    content = content_from_header(case["input"]["header"], bytes.fromhex(case["input"].get("data_hex", "")))
    assert pack_content(content, style=JsonStyle.PYTHON).hex() == case["envelope_hex"]


@pytest.mark.parametrize("case", cases("envelope"), ids=ids("envelope"))
def test_envelope_decodes(case: dict) -> None:
    data = bytes.fromhex(case["envelope_hex"])
    header, payload = unpack_message(data)
    assert header == case["decoded_header_without_meshagent_key"]
    assert payload.hex() == case["payload_hex"]
    content = unpack_content(data)
    assert content.header() == content_from_header(case["decoded_header_without_meshagent_key"]).header()
    assert content.data.hex() == case["payload_hex"]


@pytest.mark.parametrize("case", cases("envelope"), ids=ids("envelope"))
def test_envelope_compact_style_decodes_to_the_same_value(case: dict) -> None:
    header = case["input"]["header"]
    payload = bytes.fromhex(case["input"].get("data_hex", ""))
    compact = pack_message(header, payload, trace=_trace(case))
    assert unpack_message(compact) == (case["decoded_header_without_meshagent_key"], payload)
    assert json.loads(compact[8 : 8 + int.from_bytes(compact[:8], "big")])["__meshagent__"] == json.loads(
        case["header_json"]
    )["__meshagent__"]


@pytest.mark.parametrize("case", cases("message"), ids=ids("message"))
def test_session_messages_byte_exact(case: dict) -> None:
    given = case["input"]
    data = pack_message(given["header"], bytes.fromhex(given["data_hex"]), style=JsonStyle.PYTHON)
    assert data.hex() == case["envelope_hex"]
    packets = encode_message(given["message_id"], given["type"], data)
    assert [p.hex() for p in packets] == [frame["hex"] for frame in case["frames"]]


def test_header_with_caller_meshagent_key_is_overwritten_in_place() -> None:
    header = {"a": 1, "__meshagent__": "mine", "b": 2}
    assert encode_header(header, style=JsonStyle.PYTHON) == (
        b'{"a": 1, "__meshagent__": {"v": 1, "otel": {}}, "b": 2}'
    )
    assert json.loads(encode_header(header)) == {"a": 1, "b": 2, "__meshagent__": {"v": 1, "otel": {}}}


# --- the reference receiver's bugs are documented in the vectors, not copied -----------------


def _feed(frames: list[str]) -> tuple[list[tuple[int, str, bytes]], list[Exception]]:
    reader = PacketReader()
    delivered, errors = [], []
    for frame in frames:
        try:
            message = reader.receive_packet(bytes.fromhex(frame))
        except FramingError as error:
            errors.append(error)
            continue
        if message is not None:
            delivered.append(tuple(message))
    return delivered, errors


def _well_formed(case: dict) -> list[tuple[int, str, bytes]]:
    """Messages of the case whose packets all arrived contiguously, in order, from a header."""
    frames = [bytes.fromhex(f) for f in case["frames_hex"]]
    result = []
    for start, frame in enumerate(frames):
        message_id = int.from_bytes(frame[:8], "big")
        if int.from_bytes(frame[8:12], "big") != 0:
            continue
        count = int.from_bytes(frame[12:16], "big")
        body = frames[start + 1 : start + 1 + count]
        if len(body) == count and all(
            int.from_bytes(p[:8], "big") == message_id and int.from_bytes(p[8:12], "big") == i + 1
            for i, p in enumerate(body)
        ):
            result.append((message_id, frame[16:].decode(), b"".join(p[12:] for p in body)))
    return result


@pytest.mark.parametrize("case", cases("receiver"), ids=ids("receiver"))
def test_receiver_never_leaks_stale_bytes(case: dict) -> None:
    delivered, errors = _feed(case["frames_hex"])
    # Everything delivered is exactly a message that was sent whole; nothing carries bytes of
    # an abandoned message (the reference receiver's stale-buffer bug).
    for message in delivered:
        assert message in _well_formed(case)
    # Each malformed sequence in the vectors is reported, not silently absorbed.
    assert errors, case["description"]
    assert all(isinstance(e, FramingError) for e in errors)


def test_receiver_recovers_where_the_reference_leaks() -> None:
    """A.header, A.d1, Z.header, Z.header: the reference delivers Z with A's 1024 stale bytes;
    we report the interruption, drop A and the interrupting header, and deliver the next Z empty."""
    case = next(c for c in cases("receiver") if c["description"] == "A.header, A.d1, Z.header, Z.header")
    (reference,) = case["reference_delivered"]
    assert len(bytes.fromhex(reference["data_hex"])) == 1024
    delivered, errors = _feed(case["frames_hex"])
    assert delivered == [(reference["message_id"], "z", b"")]
    assert len(errors) == 1
