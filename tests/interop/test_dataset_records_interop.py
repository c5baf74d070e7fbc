"""Record values (protocol/room-apis.md §12.1): the official 0.56 `decode_records` /
`encode_records` and ours agree on random wire rows — the same decoded values and the same
re-encoding, or the same refusal with the same message. The official side is one process
(`official_scripts/dataset_official.py records`) fed a batch of rows per Hypothesis example."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshagent_core.toolkits.records import DatasetExpression, DatasetJson, DatasetStruct, decode_records, encode_records

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).resolve().parent / "official_scripts" / "dataset_official.py"


class OfficialRecords:
    def __init__(self, python: str) -> None:
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        self.process = subprocess.Popen(
            [python, str(SCRIPT), "records"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=SCRIPT.parent
        )

    def run(self, rows: list[Any]) -> list[dict[str, Any]]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(rows) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the official records process died"
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture(scope="module")
def official_records(official_python: str) -> Iterator[OfficialRecords]:
    records = OfficialRecords(official_python)
    try:
        yield records
    finally:
        records.close()


def _plain(value: Any) -> Any:
    """The official script's description of a decoded value."""
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, DatasetStruct):
        return {"struct": {key: _plain(item) for key, item in value.fields.items()}}
    if isinstance(value, DatasetJson):
        return {"json": value.to_json()}
    if isinstance(value, DatasetExpression):
        return {"expression": value.expression}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _ours(row: Any) -> dict[str, Any]:
    try:
        decoded = decode_records([row])[0]
        return {"decoded": _plain(decoded), "encoded": encode_records([decoded])[0]}
    except Exception as error:  # the refusal is what we compare
        return {"raises": str(error)}


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_json_documents = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_moments = st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30))]))
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
    | st.binary(max_size=8).map(lambda data: {"binary": base64.b64encode(data).decode()})
    | st.uuids().map(lambda value: {"uuid": str(value)})
    | st.dates().map(lambda day: {"date": day.isoformat()})
    | _moments.map(lambda moment: {"timestamp": moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")})
    | _text.filter(str.strip).map(lambda sql: {"expression": sql})
    | _json_documents.map(lambda document: {"json": document})
)
#: What a reader must refuse (or treat the same way as the official one).
_malformed = st.sampled_from(
    [
        [1, 2],
        {},
        {"binary": "AA==", "uuid": "x"},
        {"binary": 5},
        {"binary": "not base64!"},
        {"uuid": "not a uuid"},
        {"uuid": 3},
        {"date": "2025-13-40"},
        {"timestamp": "yesterday"},
        {"list": "x"},
        {"struct": [1]},
        {"unknown": 1},
        {"expression": "   "},
        {"date": 20250101},
    ]
)
_values = st.recursive(
    _scalars | _malformed,
    lambda inner: st.lists(inner, max_size=3).map(lambda items: {"list": items}) | st.dictionaries(_text, inner, max_size=3).map(lambda fields: {"struct": fields}),
    max_leaves=10,
)
_rows = st.lists(st.dictionaries(_text, _values, max_size=4), min_size=1, max_size=20)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows)
def test_official_and_our_record_codecs_agree(official_records: OfficialRecords, rows: list[dict[str, Any]]) -> None:
    theirs = official_records.run(rows)
    ours = [json.loads(json.dumps(_ours(row))) for row in rows]
    for row, official, mine in zip(rows, theirs, ours):
        if "raises" in official and "raises" in mine and _binascii(official["raises"]):
            # The official reader lets binascii's message through for bad base64; ours says
            # "dataset binary values must be base64 strings". Both refuse.
            continue
        assert mine == official, (row, official, mine)


def _binascii(message: str) -> bool:
    return message.startswith(("Invalid base64-encoded string", "Incorrect padding", "Non-base64 digit", "Excess data"))
