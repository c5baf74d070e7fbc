"""Record values on the wire (protocol/room-apis.md §12): every value round-trips through
`encode_records` / `decode_records`, and malformed wire values are refused with the official
client's texts."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core.toolkits.records import (
    DatasetExpression,
    DatasetJson,
    DatasetStruct,
    decode_record_value,
    decode_records,
    encode_record_value,
    encode_records,
)

json_documents = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
scalars = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | st.text()
    | st.binary(max_size=40) | st.uuids() | st.dates()
    | st.datetimes(timezones=st.just(timezone.utc)) | st.datetimes()
    | st.text(min_size=1).filter(lambda t: t.strip() != "").map(DatasetExpression)
    | json_documents.map(DatasetJson)
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4).map(DatasetStruct),
    max_leaves=10,
)


@settings(deadline=None, max_examples=300)
@given(st.lists(st.dictionaries(st.text(max_size=8), values, max_size=5), max_size=4))
def test_rows_round_trip_through_json_text(rows: list) -> None:
    wire = json.loads(json.dumps(encode_records(rows)))
    assert decode_records(wire) == rows


def test_wire_forms() -> None:
    moment = datetime(2026, 12, 6, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    assert encode_record_value(b"\x00\xff") == {"binary": "AP8="}
    assert encode_record_value(uuid.UUID(int=1)) == {"uuid": "00000000-0000-0000-0000-000000000001"}
    assert encode_record_value(date(2026, 12, 6)) == {"date": "2026-12-06"}
    assert encode_record_value(moment) == {"timestamp": "2026-12-06T08:30:00Z"}
    assert encode_record_value([1, "a", [b""]]) == {"list": [1, "a", {"list": [{"binary": ""}]}]}
    assert encode_record_value(DatasetStruct({"a": 1})) == {"struct": {"a": 1}}
    assert encode_record_value(DatasetJson({"k": [1, None]})) == {"json": {"k": [1, None]}}
    assert encode_record_value(DatasetExpression("  uuid() ")) == {"expression": "uuid()"}


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ({"binary": "a", "uuid": "b"}, "single-key type wrapper"),
        ({}, "single-key type wrapper"),
        ({"binary": 5}, "base64 strings"),
        ({"binary": "not base64!"}, "base64 strings"),
        ({"uuid": "nope"}, "badly formed"),
        ({"date": "2026-13-40"}, "date value is not valid"),
        ({"timestamp": "yesterday"}, "timestamp value is not valid"),
        ({"list": {"a": 1}}, "list values must be arrays"),
        ({"struct": [1]}, "struct values must be objects"),
        ({"expression": "  "}, "must not be empty"),
        ({"decimal": "1.5"}, "unsupported dataset value wrapper 'decimal'"),
        ([1, 2], "must use a {'list': [...]} wrapper"),
    ],
)
def test_malformed_values_are_refused(wire: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        decode_record_value(wire)


def test_rows_must_be_objects_and_dicts_must_say_what_they_are() -> None:
    with pytest.raises(ValueError, match="records must be objects"):
        decode_records([[1]])
    with pytest.raises(TypeError, match="DatasetStruct or DatasetJson"):
        encode_records([{"a": {"b": 1}}])
    with pytest.raises(TypeError, match="JSON-compatible"):
        DatasetJson({"a": object()})
