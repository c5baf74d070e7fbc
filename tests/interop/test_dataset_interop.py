"""The official 0.56 `room.datasets` against our server (a subprocess): every tool of the
`dataset` toolkit end to end, refused input with its code and text, the connection still working
afterwards (`official_scripts/dataset_official.py live`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshagent_trio.server.process import LocalServerProcess

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).resolve().parent / "official_scripts" / "dataset_official.py"


def run_official(python: str, mode: str, *, server: LocalServerProcess | None = None, stdin: str = "") -> Any:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the official interpreter must not see our src/
    for variable in ("MESHAGENT_ROOM_URL", "MESHAGENT_PROFILE_API_URL", "MESHAGENT_ROOM", "MESHAGENT_TOKEN"):
        env.pop(variable, None)
    if server is not None:
        env.update({"MESHAGENT_API_URL": server.api_url, "MESHAGENT_API_KEY": server.api_key, "SCENARIO_ROOM": "interop-datasets"})
    done = subprocess.run([python, str(SCRIPT), mode], input=stdin, capture_output=True, text=True, timeout=180, env=env, cwd=SCRIPT.parent)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n{server.log() if server else ''}"
    return json.loads(lines[-1])


def test_the_official_client_uses_every_tool(official_python: str, tmp_path: Path) -> None:
    with LocalServerProcess(tmp_path / "data") as server:
        seen = run_official(official_python, "live", server=server)
    assert seen["empty"] == []
    assert seen["inspect"] == {"names": ["id", "name"], "metadata": {"s": "1", "kind": "demo"}, "id_metadata": {"role": "key"}}
    assert seen["rows"] == [
        {"id": 1, "name": "Ann"},
        {"id": 2, "name": "Bob"},
        {"id": 3, "name": "cy"},
        {"id": 4, "name": "dee"},
        {"id": 5, "name": "n5"},
        {"id": 7, "name": "eve"},
    ]
    assert (seen["search_where_dict"], seen["search_limit"], seen["search_nothing"], seen["count"]) == ([{"id": 7}], 2, 0, 4)
    assert seen["versions"] == [1, 2, 3, 4, 5, 6, 7] and seen["version_metadata"]["total_rows"] == "2"
    assert seen["rows_v1"] == [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}]
    assert seen["things"][1] == {
        "id": 1,
        "blob": {"bytes": "AQ=="},
        "key": {"uuid": "00000000-0000-0000-0000-000000000001"},
        "day": {"date": "2026-01-02"},
        "tags": ["x", "1"],
        "point": {"x": 1},
    }
    assert seen["tables_ns"] == ["things"]
    assert seen["indexes"] == [["embedding_idx", ["embedding"], 300], ["id_idx", ["id"], 300], ["text_idx", ["text"], 300]]
    assert (seen["vector_rows"], seen["text_count"]) == (3, 100)
    assert seen["docs_columns"] == ["id", "text", "embedding", "label"]
    assert seen["optimize"]["optimized_indices"] is True and "fragments_removed" in seen["optimize"]["compaction"]
    assert "old_versions" in seen["optimize"]["cleanup"]
    assert seen["stats"] == {"dataset": ["num_deleted_rows", "num_fragments", "num_small_files"], "data": ["fields"]}
    assert (seen["sql"], seen["sql_ref"], seen["read_sql_query"]) == ([{"name": "eve"}], [{"n": 200}], 300)
    assert seen["cancel"] == ["cancelled", "not_cancellable"]
    assert (seen["execute_sql"], seen["execute_sql_statement"]) == (["DatasetSqlStatement", 1], 1)
    assert seen["branch_counts"] == [6, 7] and seen["branches"] == [["main", None], ["exp", "main"]]
    assert seen["watch"] == [["data", "delta", "inserted", [{"id": 50, "name": "watched", "_rowid": 8}]], ["ready", "delta", None, None]]
    assert seen["restored"] == [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}]

    def error(code: int, message: str) -> dict:
        return {"type": "RoomException", "code": code, "message": message}

    errors = seen["errors"]
    assert errors["missing_table"] == error(1003, "table 'missing' does not exist")
    assert errors["exists"] == error(1004, "table 'docs' already exists")
    assert errors["where_injection"] == error(1002, "the where clause must be a single SQL expression (found ';')")
    assert errors["type_mismatch"] == error(1002, "datasets.update failed: Cast error: Cannot cast string 'abc' to value of Int64 type")
    assert errors["unknown_column"] == error(1002, "unknown column 'nope': the table has id, text, embedding, label")
    assert errors["sql_syntax"]["code"] == 1002 and errors["sql_syntax"]["message"].startswith('sql error: Parser Error: syntax error at or near "SELEC"')
    assert errors["sql_update"] == error(1002, "UPDATE statements are not supported on dataset tables: use datasets.update(table=…, where=…, values=…)")
    assert errors["unknown_query"] == error(1003, "sql query 'nope' was not found (it is closed, or was never opened)")
    assert errors["close_unknown"] == {"no_error": "None"}
    assert errors["missing_branch"] == error(1003, "branch 'nope' does not exist")
    assert seen["still_working"] == ["docs"] and seen["docs_count"] == 300
