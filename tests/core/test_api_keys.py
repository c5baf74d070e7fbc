"""API key strings and base36 UUID compression (protocol/tokens.md §1, §1.4), against the vectors."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshagent_core.testing import vectors
from meshagent_core.tokens import (
    ApiKey,
    base36decode,
    base36encode,
    base64_compress_uuid,
    base64_decompress_uuid,
    compress_uuid,
    decompress_uuid,
    encode_api_key,
    parse_api_key,
)

API_KEY_VECTORS: dict[str, Any] = vectors.load("api_key_vectors")
TOKEN_VECTORS: dict[str, Any] = vectors.load("token_vectors")

ALL_KEY_CASES = API_KEY_VECTORS["api_keys"] + TOKEN_VECTORS["api_keys"]
ALL_BASE36_CASES = API_KEY_VECTORS["base36_compress_uuid"] + TOKEN_VECTORS["base36_compress_uuid"]


@pytest.mark.parametrize("case", ALL_KEY_CASES, ids=lambda c: c["note"][:40])
def test_encode_matches_vector(case: dict[str, Any]) -> None:
    key = ApiKey(id=case["key_id"], project_id=case["project_id"], secret=case["secret"])
    assert encode_api_key(key) == case["encoded"]
    assert base64_compress_uuid(case["key_id"]) == case["key_id_compressed"]
    assert base64_compress_uuid(case["project_id"]) == case["project_id_compressed"]


@pytest.mark.parametrize("case", ALL_KEY_CASES, ids=lambda c: c["note"][:40])
def test_parse_matches_vector(case: dict[str, Any]) -> None:
    parsed = parse_api_key(case["encoded"])
    assert parsed.id == case["parsed"]["id"]
    assert parsed.project_id == case["parsed"]["project_id"]
    assert parsed.secret == case["parsed"]["secret"]
    assert base64_decompress_uuid(case["key_id_compressed"]) == case["key_id"]


@pytest.mark.parametrize("case", ALL_KEY_CASES, ids=lambda c: c["note"][:40])
def test_compressed_id_is_raw_base64_with_dots(case: dict[str, Any]) -> None:
    raw = case["raw_urlsafe_b64_of_key_id_bytes"]
    assert case["key_id_compressed"] == raw.rstrip("=").replace("-", ".")
    assert base64.urlsafe_b64decode(raw) == uuid.UUID(case["key_id"]).bytes


def test_invalid_prefix_message_is_exact() -> None:
    expected = API_KEY_VECTORS["invalid_prefix_error"]
    assert expected == TOKEN_VECTORS["api_key_invalid_prefix_error"]
    with pytest.raises(ValueError) as info:
        parse_api_key("sk-not-a-meshagent-key")
    assert str(info.value) == expected


@pytest.mark.parametrize(
    "bad", ["", "ma", "MA-AAAAAAAAAAAAAAAAAAAAAA-AAAAAAAAAAAAAAAAAAAAAA-s", " ma-x"]
)
def test_wrong_prefix_is_rejected_with_first_five_chars(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid api key: ") as info:
        parse_api_key(bad)
    assert str(info.value) == "invalid api key: " + bad[:5] + "..."


@pytest.mark.parametrize(
    "bad",
    [
        "ma-",
        "ma-AAAAAAAAAAAAAAAAAAAAAA",
        "ma-AAAAAAAAAAAAAAAAAAAAAA-AAAAAAAAAAAAAAAAAAAAAA",  # no secret part at all
        "ma-AAAAAAAAAAAAAAAAAAAAA-AAAAAAAAAAAAAAAAAAAAAA-secret",  # 21 chars
        "ma-AAAAAAAAAAAAAAAAAAAAAAA-AAAAAAAAAAAAAAAAAAAAAA-secret",  # 23 chars
        "ma-AAAAAAAAAAAAAAAAAAAA+A-AAAAAAAAAAAAAAAAAAAAAA-secret",  # not URL-safe
        "ma-AAAAAAAAAAAAAAAAAAAAAA-AAAAAAAAAAAAAAAAAAAA!A-secret",
    ],
)
def test_malformed_key_segments_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid api key"):
        parse_api_key(bad)


def test_secret_may_be_empty_and_keeps_every_dash() -> None:
    base = "ma-AAAAAAAAAAAAAAAAAAAAAA-_____________________w-"
    assert parse_api_key(base).secret == ""
    assert parse_api_key(base + "--a--b-").secret == "--a--b-"


def test_repr_hides_secret() -> None:
    key = parse_api_key(TOKEN_VECTORS["api_keys"][0]["encoded"])
    assert "s3cr3t" not in repr(key)
    assert key.id in repr(key)


@given(key_id=st.uuids(), project_id=st.uuids(), secret=st.text())
def test_encode_parse_round_trip(key_id: uuid.UUID, project_id: uuid.UUID, secret: str) -> None:
    key = ApiKey(id=str(key_id), project_id=str(project_id), secret=secret)
    encoded = encode_api_key(key)
    assert encoded.startswith("ma-")
    head = encoded[3:].split("-", 2)
    assert len(head[0]) == 22 and len(head[1]) == 22
    assert "-" not in head[0] and "-" not in head[1]
    assert parse_api_key(encoded) == key


@given(value=st.uuids())
def test_base64_uuid_round_trip_accepts_any_uuid_form(value: uuid.UUID) -> None:
    compressed = base64_compress_uuid(value.hex.upper())
    assert base64_decompress_uuid(compressed) == str(value)


# -- base36 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALL_BASE36_CASES, ids=lambda c: c["uuid"])
def test_base36_vectors(case: dict[str, Any]) -> None:
    assert compress_uuid(case["uuid"]) == case["compress_uuid_base36"]
    assert decompress_uuid(case["compress_uuid_base36"]) == case["roundtrip"]


@given(value=st.uuids())
def test_base36_uuid_round_trip(value: uuid.UUID) -> None:
    compressed = compress_uuid(str(value))
    assert set(compressed) <= set("0123456789abcdefghijklmnopqrstuvwxyz")
    assert decompress_uuid(compressed) == str(value)


@given(number=st.integers(min_value=0, max_value=2**200))
def test_base36_integer_round_trip(number: int) -> None:
    encoded = base36encode(number)
    assert base36decode(encoded) == number
    assert encoded == "0" or not encoded.startswith("0")


def test_base36_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="Invalid character 'A'"):
        base36decode("A")
    with pytest.raises(ValueError, match="non-negative"):
        base36encode(-1)
    with pytest.raises(TypeError):
        base36encode("12")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out of range"):
        decompress_uuid("z" * 30)
    assert decompress_uuid("") == "00000000-0000-0000-0000-000000000000"
