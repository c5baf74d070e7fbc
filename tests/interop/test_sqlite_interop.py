"""The official 0.56 `room.sqlite` against our server (`official_scripts/sqlite_official.py`):
its own batch integration scenario, every other tool, and bad input answered with the codes it
expects, leaving the data unchanged and the connection working."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshagent_trio.server.process import LocalServerProcess

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).resolve().parent / "official_scripts" / "sqlite_official.py"
ROOM = "interop-sqlite"


def run_official(python: str, server: LocalServerProcess) -> Any:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the official interpreter must not see our src/
    for variable in ("MESHAGENT_ROOM_URL", "MESHAGENT_PROFILE_API_URL", "MESHAGENT_ROOM", "MESHAGENT_TOKEN"):
        env.pop(variable, None)
    env.update({"MESHAGENT_API_URL": server.api_url, "MESHAGENT_API_KEY": server.api_key, "SCENARIO_ROOM": ROOM})
    done = subprocess.run([python, str(SCRIPT)], capture_output=True, text=True, timeout=150, env=env, cwd=SCRIPT.parent)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, f"{done.stdout[-4000:]}\n{done.stderr[-3000:]}\n{server.log()}"
    return json.loads(lines[-1])


def test_the_official_client_against_our_server(official_python: str, tmp_path: Path) -> None:
    with LocalServerProcess(tmp_path / "data") as server:
        seen = run_official(official_python, server)

    # The official batch parity test, as it runs against the hosted server.
    assert seen["empty_batch"] == []
    assert seen["batch_statement"] is True and seen["batch_query_is_query"] is True
    assert seen["batch_rows"] == [{"id": 1, "label": "Grace"}]
    assert seen["batch_schema_names"] == ["id", "label"]
    assert seen["batch_failure"]["code"] == 1002 and "command 1 failed" in seen["batch_failure"]["message"]
    assert seen["count_after_failure"] == 1

    assert seen["databases"] == ["app", "python_batch"]
    assert seen["details"]["name"] == "app" and seen["details"]["namespace"] == ["team"] and seen["details"]["tables"] == 0
    assert seen["settings"] == {"replication_mode": "asynchronous", "flush_interval_ms": 250}
    assert seen["updated_settings"] == {"replication_mode": "asynchronous", "flush_interval_ms": 500}
    assert seen["tables"] == ["events", "users"]
    assert seen["inspect_equal"] is True
    assert seen["columns_after_add"] == ["id", "email", "active", "nickname"]
    assert (seen["count"], seen["count_where"]) == (3, 2)
    assert seen["search"] == [{"email": "alice@example.com"}, {"email": "carol@example.com"}]
    assert seen["search_params"] == [{"id": 2, "email": "bob@example.com", "active": 0}]
    assert seen["sql"] == [{"id": 2, "email": "bob@example.com"}]
    assert (seen["statement"], seen["update"], seen["delete"]) == (1, 1, 1)
    assert seen["execute_sql_schema"] == ["id"] and seen["read_sql_query"] == [{"id": 1}, {"id": 2}]
    assert (seen["cancel_closed"], seen["cancel_open"]) == ("not_cancellable", "cancelled")
    assert seen["execute_sql_statement_result"] == 200 and seen["events_streamed"] == 100
    assert seen["tables_after_rename"] == ["log", "users"]
    assert seen["backup_header"] == "SQLite format 3\x00"
    assert seen["restored_count"] == 2 and seen["restored_identical"] is True

    errors = seen["errors"]
    expected = {
        "missing_database": (1003, "does not exist"),
        "existing_database": (1004, "already exists"),
        "missing_table": (1003, "does not exist"),
        "syntax": (1002, "syntax error"),
        "second_statement": (1002, "one statement at a time"),
        "type_mismatch": (1002, "holds int64 values"),
        "unknown_column": (1002, "no such column"),
        "unknown_query": (1003, "was not found"),
        "restore_existing": (1004, "already exists"),
        "restore_garbage": (1002, "not a valid SQLite database"),
    }
    for name, (code, text) in expected.items():
        assert errors[name]["type"] == "RoomException" and errors[name]["code"] == code, (name, errors[name])
        assert text in errors[name]["message"], (name, errors[name])
    assert seen["count_after_errors"] == 2
    assert seen["tables_after_errors"] == ["log", "users"]
    assert seen["databases_after_errors"] == []
    assert seen["databases_end"] == ["app", "python_batch"]
