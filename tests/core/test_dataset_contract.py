"""The `dataset` toolkit contract (`meshagent_core.toolkits.dataset`), the record rows it carries
as Arrow (`dataset_arrow`) and the client's `where` dicts: every key the official client sends
is there (null when unset), chunk headers carry their `kind`, and rows of record values become
the same Arrow rows whether they come as Python values or through the JSON wire form."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from typing import Any

import msgspec
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core import RoomException
from meshagent_core.client.datasets_models import sql_literal, where_clause
from meshagent_core.toolkits import dataset as contract
from meshagent_core.toolkits.dataset_arrow import rows_to_table
from meshagent_core.toolkits.records import DatasetExpression, DatasetJson, DatasetStruct, decode_records, encode_records

#: `arrow.json` where pyarrow has it (19+), else the JSON text itself.
JSON_TYPE = pa.json_() if hasattr(pa, "json_") else pa.string()

# The keys of the official 0.56 client's inputs and start chunks (room_server_client.py).
OFFICIAL_KEYS = {
    contract.SearchStart: ["kind", "table", "text", "vector", "text_columns", "where", "offset", "limit", "select", "namespace", "branch", "version"],
    contract.CreateTableStart: ["kind", "name", "mode", "namespace", "branch", "metadata"],
    contract.InsertStart: ["kind", "table", "namespace", "branch"],
    contract.MergeStart: ["kind", "table", "on", "namespace", "branch"],
    contract.WatchStart: ["kind", "table", "namespace", "branch", "poll_interval_seconds"],
    contract.CountInput: ["table", "namespace", "branch", "text", "vector", "text_columns", "where", "version"],
    contract.StatsInput: ["table", "namespace", "branch", "version", "max_rows_per_group"],
    contract.DropTableInput: ["name", "ignore_missing", "namespace", "branch"],
    contract.SqlHeaders: ["query", "tables", "namespace", "branch"],
}


@pytest.mark.parametrize("type", list(OFFICIAL_KEYS), ids=lambda type: type.__name__)
def test_inputs_carry_every_key_the_official_client_sends(type: Any) -> None:
    required = {field: "x" for field in ("table", "name", "on", "query") if field in type.__struct_fields__}
    assert sorted(msgspec.to_builtins(type(**required))) == sorted(OFFICIAL_KEYS[type])


def test_chunk_headers_and_answers() -> None:
    assert msgspec.to_builtins(contract.Pull()) == {"kind": "pull"}
    assert msgspec.to_builtins(contract.DataHeaders(content_type="x")) == {"kind": "data", "content_type": "x"}
    assert msgspec.to_builtins(contract.SchemaHeaders()) == {"kind": "schema"}
    assert msgspec.to_builtins(contract.SqlQueryHeaders(query_id="q")) == {"kind": "query", "query_id": "q"}
    assert msgspec.to_builtins(contract.SqlStatementOutput(rows_affected=2)) == {"kind": "statement", "rows_affected": 2}
    assert msgspec.to_builtins(contract.WatchReady(phase="initial", version=3)) == {"kind": "ready", "phase": "initial", "version": 3}
    assert msgspec.to_builtins(contract.IndexConfig(column="id", index_type="BTREE")) == {"column": "id", "index_type": "BTREE"}
    assert msgspec.to_builtins(contract.OptimizeConfig()) == {}  # the official defaults, left out
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"compact_files": True, "unknown": 1}, type=contract.OptimizeConfig)
    rows = msgspec.convert({"kind": "rows", "rows": [{"columns": [{"name": "a", "value": {"binary": "AA=="}}]}]}, type=contract.RowsChunk)
    assert rows.rows[0].columns[0].value == {"binary": "AA=="}


def test_where_dicts_are_written_as_the_official_client_writes_them() -> None:
    key = uuid.UUID(int=255)
    assert where_clause({"id": 1, "name": "it's", "ok": True, "gone": None}) == "id = 1 AND name = 'it''s' AND ok = TRUE AND gone = NULL"
    assert sql_literal(key) == "X'000000000000000000000000000000ff'"
    assert sql_literal(b"\x01\x02") == "X'0102'"
    assert sql_literal(datetime(2026, 4, 9, 14, 30, tzinfo=timezone.utc)) == "'2026-04-09T14:30:00Z'"
    assert sql_literal(date(2026, 4, 9)) == "'2026-04-09'"
    assert sql_literal(DatasetJson({"a": ["b"]})) == """'{"a": ["b"]}'"""
    assert sql_literal(DatasetStruct({"x": 1, "y": "z"})) == "named_struct('x', 1, 'y', 'z')"
    assert sql_literal([1, "a"]) == "[1, 'a']"
    assert where_clause("id > 3") == "id > 3" and where_clause(None) is None
    with pytest.raises(RoomException) as error:
        sql_literal({"a": 1})
    assert error.value.code == 1002


SCHEMA = pa.schema(
    [
        ("i", pa.int64()),
        ("f", pa.float64()),
        ("s", pa.string()),
        ("b", pa.binary()),
        ("ok", pa.bool_()),
        ("d", pa.date32()),
        ("t", pa.timestamp("us", tz="UTC")),
        ("l", pa.list_(pa.int64())),
        ("st", pa.struct([("x", pa.int64()), ("y", pa.string())])),
        ("u", pa.uuid()),
        ("j", JSON_TYPE),
    ]
)
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
_row = st.fixed_dictionaries(
    {
        "i": st.none() | st.integers(-(2**63), 2**63 - 1),
        "f": st.none() | st.floats(allow_nan=False),
        "s": st.none() | _text,
        "b": st.none() | st.binary(max_size=6),
        "ok": st.none() | st.booleans(),
        "d": st.none() | st.dates(),
        "t": st.none() | st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)).map(lambda moment: moment.replace(tzinfo=timezone.utc)),
        "l": st.none() | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),
        "st": st.none() | st.builds(lambda x, y: DatasetStruct({"x": x, "y": y}), st.integers(-5, 5), _text),
        "u": st.none() | st.uuids(),
        "j": st.none() | st.dictionaries(_text, st.integers(), max_size=2).map(DatasetJson),
    }
)


def _expected(value: Any) -> Any:
    if isinstance(value, DatasetStruct):
        return dict(value.fields)
    return value


@settings(deadline=None, max_examples=60)
@given(rows=st.lists(_row, max_size=6))
def test_record_rows_become_the_same_arrow_rows_directly_or_through_json(rows: list[dict[str, Any]]) -> None:
    direct = rows_to_table(rows, SCHEMA)
    through_wire = rows_to_table(decode_records(encode_records(rows)), SCHEMA)
    assert direct.schema.equals(SCHEMA) and through_wire.equals(direct)
    for row, got in zip(rows, direct.to_pylist()):
        for name, value in row.items():
            if name == "j":
                assert (got[name] is None) == (value is None)
                continue
            assert got[name] == _expected(value), name


def test_inferred_types_and_refusals() -> None:
    key = uuid.uuid4()
    table = rows_to_table([{"a": 1, "u": key, "j": DatasetJson([1]), "n": None}, {"a": 2, "u": None, "j": None, "n": None}])
    assert table.schema.field("u").type == pa.uuid() and table.schema.field("j").type == JSON_TYPE
    assert table.column("u").to_pylist() == [key, None]
    for rows, schema in (([{"x": DatasetExpression("uuid()")}], None), ([{"zzz": 1}], SCHEMA), ([{"i": "text"}], SCHEMA)):
        with pytest.raises(RoomException) as error:
            rows_to_table(rows, schema)
        assert error.value.code == 1002
