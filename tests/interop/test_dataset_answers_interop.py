"""Our `room.datasets` reads every answer as the official 0.56 `DatasetsClient` reads it: the same
value, or the same refusal (`unexpected return type from datasets.<op>`, code 1100). Each answer
is handed to both clients directly (no server sends a wrong answer);
`official_scripts/dataset_official.py answers` runs the official side."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pytest
import trio

from meshagent_core import BinaryContent, EmptyContent, JsonContent, RoomException, TextContent
from meshagent_core.client.datasets import DatasetsClient
from meshagent_core.toolkits.arrow_ipc import schema_blob

from test_dataset_interop import run_official

pytestmark = pytest.mark.interop

SCHEMA = base64.b64encode(schema_blob(pa.schema([("a", pa.int64())]))).decode()


def _version(**overrides: Any) -> dict[str, Any]:
    return {"version": 1, "timestamp": "2025-01-01T00:00:00Z", "metadata_json": '{"k": "v"}', **overrides}


def _index(**overrides: Any) -> dict[str, Any]:
    return {"name": "i", "columns": ["a"], "type": "BTree", "details_json": "{}", "statistics_json": '{"n": 1}', **overrides}


def _json(value: Any) -> dict[str, Any]:
    return {"type": "json", "json": value}


def _binary(headers: dict[str, Any], data: str = SCHEMA) -> dict[str, Any]:
    return {"type": "binary", "headers": headers, "data": data}


T = {"table": "t"}
Q = {"query": "SELECT 1"}
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("list_tables", {}, _json({"tables": ["a", "b"]})),
    ("list_tables", {}, _json({})),
    ("list_tables", {}, _json({"tables": ["a", 2]})),
    ("list_tables", {}, _json({"tables": [], "more": True})),
    ("list_tables", {}, {"type": "empty"}),
    ("list_tables", {}, {"type": "text", "text": "a"}),
    ("inspect", T, _binary({"kind": "schema"})),
    ("inspect", T, _binary({"kind": "schema", "content_type": "application/vnd.apache.arrow.stream"})),
    ("inspect", T, _binary({"kind": "data"})),
    ("inspect", T, _binary({})),
    ("inspect", T, _binary({"kind": "schema", "extra": 1})),
    ("inspect", T, _json({"kind": "schema"})),
    ("count", T, _json({"count": 3})),
    ("count", T, _json({"count": "3"})),
    ("count", T, _json({"count": "three"})),
    ("count", T, _json({"count": 3.0})),
    ("count", T, _json({"count": 3.5})),
    ("count", T, _json({"count": "3.0"})),
    ("count", T, _json({"count": 3, "x": 1})),
    ("count", T, {"type": "empty"}),
    ("list_versions", T, _json({"versions": [_version()]})),
    ("list_versions", T, _json({"versions": [_version(version="4")]})),
    ("list_versions", T, _json({"versions": [_version(extra=1)]})),
    ("list_versions", T, _json({"versions": [_version(metadata_json="nope")]})),
    ("list_versions", T, _json({"versions": [_version(timestamp="yesterday")]})),
    ("list_versions", T, _json({"versions": []})),
    ("list_versions", T, _json({"versions": [], "x": 1})),
    ("list_indexes", T, _json({"indexes": [_index()]})),
    ("list_indexes", T, _json({"indexes": [_index(fields=[1], num_rows_indexed=5, type_url="u", num_segments=1, total_size_bytes=9)]})),
    ("list_indexes", T, _json({"indexes": [_index(extra=1)]})),
    ("list_indexes", T, _json({"indexes": [{"name": "i"}]})),
    ("list_branches", {}, _json({"branches": [{"name": "main"}]})),
    ("list_branches", {}, _json({"branches": [{"name": "b", "parent_branch": "main", "created_at": "2025-01-01T00:00:00Z", "x": 1}]})),
    ("list_branches", {}, _json({"branches": [{"name": "b", "parent_version": "x"}]})),
    ("list_branches", {}, _json({"branches": [{"parent_branch": "main"}]})),
    ("optimize", T, _json({"compaction": {"files_added": 1}, "optimized_indices": True, "cleanup": {"old_versions": 2}})),
    ("optimize", T, _json({"compaction_json": '{"files_added": 1}', "cleanup_json": '{"b": 1}'})),
    ("optimize", T, _json({"optimized_indices": True, "unknown": 1})),
    ("optimize", T, _json({})),
    ("stats", T, _json({"dataset": {"n": 1}, "data": {"fields": []}})),
    ("stats", T, _json({"dataset_json": '{"n": 1}', "data_json": '{"fields": []}'})),
    ("stats", T, _json({"dataset": {"n": 1}, "data": {}, "extra": 1})),
    ("cancel_sql_query", {"query_id": "q"}, _json({"status": "cancelling"})),
    ("cancel_sql_query", {"query_id": "q"}, _json({"status": "bad"})),
    ("cancel_sql_query", {"query_id": "q"}, _json({"status": "cancelled", "x": 1})),
    ("close_sql_query", {"query_id": "q"}, {"type": "empty"}),
    ("close_sql_query", {"query_id": "q"}, _json({})),
    ("execute_sql_statement", Q, _json({"rows_affected": 2})),
    ("execute_sql_statement", Q, _json({"rows_affected": "2"})),
    ("execute_sql_statement", Q, _json({"kind": "statement", "rows_affected": 2})),
    ("execute_sql", Q, _json({"kind": "statement", "rows_affected": 3})),
    ("execute_sql", Q, _json({"rows_affected": 3})),
    ("execute_sql", Q, _binary({"kind": "query", "query_id": "q1"})),
    ("execute_sql", Q, _binary({"kind": "query", "query_id": ""})),
    ("execute_sql", Q, _binary({"query_id": "q1"})),
    ("open_sql_query", Q, _binary({"kind": "query", "query_id": "q1", "content_type": "x"})),
    ("open_sql_query", Q, _binary({"kind": "query", "query_id": 123})),
    ("open_sql_query", Q, _json({"kind": "statement", "rows_affected": 1})),
    ("add_columns", {"table": "t", "new_columns": {"a": "1"}}, {"type": "empty"}),
    ("add_columns", {"table": "t", "new_columns": {"a": "1"}}, _json({})),
]


def _content(data: dict[str, Any]) -> Any:
    if data["type"] == "json":
        return JsonContent(json=data["json"])
    if data["type"] == "text":
        return TextContent(text=data["text"])
    if data["type"] == "binary":
        return BinaryContent(headers=data["headers"], data=base64.b64decode(data["data"]))
    return EmptyContent()


class _AnsweringRoom:
    def __init__(self, content: Any) -> None:
        self.content = content

    async def invoke(self, toolkit: str, tool: str, arguments: Any = None) -> Any:
        return self.content


def _plain(value: Any) -> Any:
    if isinstance(value, pa.Schema):
        return {"schema": value.names}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


async def _ours(operation: str, arguments: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    client = DatasetsClient(_AnsweringRoom(_content(content)))  # type: ignore[arg-type]

    async def inline(function: Any, *args: Any) -> Any:
        return function(*args)

    client._thread = inline  # type: ignore[method-assign]
    try:
        return {"ok": _plain(await getattr(client, operation)(**arguments))}
    except RoomException as error:
        return {"error": [str(error), error.code]}


def _improved(case: tuple, theirs: dict, mine: dict) -> bool:
    """Where the official client lets a pydantic `ValidationError` escape (a malformed entry
    inside a list), ours raises its usual 1100."""
    return "escapes" in theirs and mine == {"error": [f"unexpected return type from datasets.{case[0]}", 1100]}


def test_our_client_reads_answers_as_the_official_client_does(official_python: str) -> None:
    cases = [{"op": operation, "args": arguments, "content": content} for operation, arguments, content in CASES]
    official = run_official(official_python, "answers", stdin=json.dumps(cases))
    ours = [trio.run(_ours, operation, arguments, content) for operation, arguments, content in CASES]
    differences = [
        (case, theirs, mine)
        for case, theirs, mine in zip(CASES, official, ours)
        if json.loads(json.dumps(theirs)) != json.loads(json.dumps(mine)) and not _improved(case, theirs, mine)
    ]
    assert not differences, "\n".join(f"{case}\n  official: {theirs}\n  ours:     {mine}" for case, theirs, mine in differences)
