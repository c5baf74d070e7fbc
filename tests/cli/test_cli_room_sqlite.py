"""`meshagent-trio room sqlite …` against the local server: databases, tables, rows, SQL, and
CSV / Parquet / JSON files in and out."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from clirun import CliResult, assert_one_line_error
from clirun import ok

Cli = Callable[..., CliResult]


@pytest.fixture
def db(cli: Cli, room_name: str) -> tuple[str, ...]:
    """`--room ROOM -d app` of a room with the database `app` and a table `users` of two rows."""
    where = ("--room", room_name, "-d", "app")
    ok(cli("room", "sqlite", "database", "create", *where))
    rows = json.dumps([{"id": 1, "name": "ada", "score": 1.5}, {"id": 2, "name": "bo", "score": None}])
    ok(cli("room", "sqlite", "create", *where, "-t", "users", "-c", "id int not null, name text, score float", "--data-json", rows))
    return where


def rows_of(cli: Cli, where: tuple[str, ...], query: str) -> list[dict]:
    return ok(cli("room", "sqlite", "sql", *where, "-q", query, "--format", "json")).json()


def test_databases(cli: Cli, db: tuple[str, ...], room_name: str) -> None:
    assert ok(cli("room", "sqlite", "database", "list", "--room", room_name, "-o", "json")).json() == ["app"]
    assert "app" in ok(cli("room", "sqlite", "database", "list", "--room", room_name)).stdout
    details = ok(cli("room", "sqlite", "database", "inspect", *db, "-o", "json")).json()
    assert details["name"] == "app" and details["tables"] == 1
    assert "app" in ok(cli("room", "sqlite", "database", "inspect", *db)).stdout
    settings = ok(cli("room", "sqlite", "database", "settings", *db, "-o", "json")).json()
    assert "replication_mode" in settings
    changed = ok(cli("room", "sqlite", "database", "settings", *db, "--replication-mode", "asynchronous", "--flush-interval-ms", "250", "-o", "json")).json()
    assert changed["replication_mode"] == "asynchronous" and changed["flush_interval_ms"] == 250
    flushed = ok(cli("room", "sqlite", "database", "flush", *db))
    assert flushed.stdout == "" and "Flushed" in flushed.stderr
    ok(cli("room", "sqlite", "database", "create", "--room", room_name, "-d", "scratch"))
    ok(cli("room", "sqlite", "database", "drop", "--room", room_name, "-d", "scratch"))
    ok(cli("room", "sqlite", "database", "drop", "--room", room_name, "-d", "scratch", "--ignore-missing"))
    assert ok(cli("room", "sqlite", "database", "list", "--room", room_name, "-o", "json")).json() == ["app"]


def test_tables_and_schema(cli: Cli, db: tuple[str, ...]) -> None:
    assert ok(cli("room", "sqlite", "table", *db, "-o", "json")).json() == ["users"]
    assert ok(cli("room", "sqlite", "tables", *db)).stdout.split() == ["users"]
    schema = ok(cli("room", "sqlite", "inspect", *db, "-t", "users", "--json")).json()
    assert [column["name"] for column in schema] == ["id", "name", "score"]
    assert schema[0]["nullable"] is False
    assert "score" in ok(cli("room", "sqlite", "inspect", *db, "-t", "users")).stdout
    ok(cli("room", "sqlite", "add-columns", *db, "-t", "users", "-c", "email text, age int"))
    names = [column["name"] for column in ok(cli("room", "sqlite", "inspect", *db, "-t", "users", "-o", "json")).json()]
    assert names == ["id", "name", "score", "email", "age"]
    ok(cli("room", "sqlite", "drop-columns", *db, "-t", "users", "-c", "email", "-c", "age"))
    assert len(ok(cli("room", "sqlite", "inspect", *db, "-t", "users", "-o", "json")).json()) == 3
    ok(cli("room", "sqlite", "rename", *db, "-t", "users", "--new-name", "people"))
    assert ok(cli("room", "sqlite", "table", *db, "-o", "json")).json() == ["people"]
    ok(cli("room", "sqlite", "drop", *db, "-t", "people"))
    ok(cli("room", "sqlite", "drop", *db, "-t", "people", "--ignore-missing"))
    assert ok(cli("room", "sqlite", "table", *db, "-o", "json")).json() == []


def test_rows(cli: Cli, db: tuple[str, ...], tmp_path: Path) -> None:
    ok(cli("room", "sqlite", "insert", *db, "-t", "users", "--json", json.dumps([{"id": 3, "name": "cy"}])))
    (tmp_path / "more.json").write_text(json.dumps([{"id": 4, "name": "di", "score": 4.0}]))
    ok(cli("room", "sqlite", "insert", *db, "-t", "users", "-f", str(tmp_path / "more.json")))
    assert ok(cli("room", "sqlite", "count", *db, "-t", "users", "-o", "json")).json() == 4
    assert ok(cli("room", "sqlite", "count", *db, "-t", "users", "--where", "id > ?", "--params-json", "[2]")).stdout.strip() == "2"
    updated = ok(cli("room", "sqlite", "update", *db, "-t", "users", "--where", "id = ?", "--params-json", "[3]", "--values-json", '{"score": 9.5}'))
    assert "1 row" in updated.stderr
    found = ok(cli("room", "sqlite", "search", *db, "-t", "users", "--where-json", '{"name": "cy"}', "-o", "json")).json()
    assert found == [{"id": 3, "name": "cy", "score": 9.5}]
    page = ok(cli("room", "sqlite", "search", *db, "-t", "users", "--select", "id", "--limit", "2", "--offset", "1", "-o", "json", "--no-pretty"))
    assert json.loads(page.stdout) == [{"id": 2}, {"id": 3}] and "\n" not in page.stdout.strip()
    table = ok(cli("room", "sqlite", "search", *db, "-t", "users", "--where", "id < 3"))
    assert table.stdout.split()[:3] == ["id", "name", "score"] and "ada" in table.stdout and "cy" not in table.stdout
    assert "1 row" in ok(cli("room", "sqlite", "delete", *db, "-t", "users", "--where", "id = ?", "--params-json", "[4]")).stderr
    assert [row["id"] for row in rows_of(cli, db, "select id from users order by id")] == [1, 2, 3]


def test_sql(cli: Cli, db: tuple[str, ...], tmp_path: Path) -> None:
    table = ok(cli("room", "sqlite", "sql", *db, "-q", "select id, name from users order by id"))
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["id", "name"] and lines[1].split() == ["1", "ada"]
    assert rows_of(cli, db, "select name from users where id = 2") == [{"name": "bo"}]
    by_params = ok(cli("room", "sqlite", "sql", *db, "-q", "select name from users where id = :id", "--params-json", '{"id": 1}', "--format", "json"))
    assert by_params.json() == [{"name": "ada"}]
    statement = ok(cli("room", "sqlite", "sql", *db, "-q", "update users set score = 0", "--format", "json"))
    assert statement.json() == {"rows_affected": 2}
    csv_text = ok(cli("room", "sqlite", "sql", *db, "-q", "select id, name from users order by id", "--format", "csv")).stdout
    assert csv_text.splitlines() == ['"id","name"', '1,"ada"', '2,"bo"']
    target = tmp_path / "out.parquet"
    written = ok(cli("room", "sqlite", "sql", *db, "-q", "select * from users order by id", "--format", "parquet", "-o", str(target)))
    assert written.stdout == "" and pq.read_table(target).column("name").to_pylist() == ["ada", "bo"]
    ok(cli("room", "sqlite", "sql", *db, "-q", "select * from users", "--format", "table", "-o", str(tmp_path / "t.txt")))
    assert "ada" in (tmp_path / "t.txt").read_text()
    binary = cli("room", "sqlite", "sql", *db, "-q", "select * from users", "--format", "parquet")
    assert_one_line_error(binary, 1, "--output FILE")


def test_import_and_export_round_trips(cli: Cli, db: tuple[str, ...], tmp_path: Path) -> None:
    source = pa.table({"id": list(range(1000)), "name": [f"n{i}" for i in range(1000)], "value": [i / 4 for i in range(1000)]})
    pa_csv.write_csv(source, tmp_path / "in.csv")
    pq.write_table(source, tmp_path / "in.parquet")
    ok(cli("room", "sqlite", "import", *db, "-t", "from_csv", "-f", str(tmp_path / "in.csv"), "--batch-size", "128"))
    ok(cli("room", "sqlite", "import", *db, "-t", "from_parquet", "-f", str(tmp_path / "in.parquet"), "--batch-size", "300"))
    for name in ("from_csv", "from_parquet"):
        assert ok(cli("room", "sqlite", "count", *db, "-t", name)).stdout.strip() == "1000"
        out = tmp_path / f"{name}.parquet"
        exported = ok(cli("room", "sqlite", "export", *db, "-t", name, "-f", str(out)))
        assert "1000 row" in exported.stderr and exported.stdout == ""
        back = pq.read_table(out).sort_by("id")
        assert back.column("name").to_pylist() == source.column("name").to_pylist()
        assert back.column("value").to_pylist() == source.column("value").to_pylist()
    ok(cli("room", "sqlite", "export", *db, "-q", "select id, name from from_csv where id < ? order by id", "--params-json", "[3]", "-f", str(tmp_path / "q.csv")))
    assert (tmp_path / "q.csv").read_text().splitlines() == ['"id","name"', '0,"n0"', '1,"n1"', '2,"n2"']
    ok(cli("room", "sqlite", "export", *db, "-t", "users", "-f", str(tmp_path / "users.json")))
    assert [row["name"] for row in json.loads((tmp_path / "users.json").read_text())] == ["ada", "bo"]
    replaced = ok(cli("room", "sqlite", "import", *db, "-t", "from_csv", "-f", str(tmp_path / "users.json"), "--mode", "replace"))
    assert "Replaced" in replaced.stderr
    assert [row["name"] for row in rows_of(cli, db, "select name from from_csv order by id")] == ["ada", "bo"]
    jsonl = tmp_path / "lines.jsonl"
    jsonl.write_text('{"k": 1}\n{"k": 2}\n\n{"k": 3}\n')
    ok(cli("room", "sqlite", "import", *db, "-t", "lines", "-f", str(jsonl), "--batch-size", "2"))
    assert rows_of(cli, db, "select sum(k) as s from lines") == [{"s": 6}]
    assert_one_line_error(cli("room", "sqlite", "export", *db, "-t", "users", "-f", str(tmp_path / "users.json")), 2, "already exists")
    ok(cli("room", "sqlite", "export", *db, "-t", "users", "-f", str(tmp_path / "users.json"), "--force", "--format", "csv"))
    assert (tmp_path / "users.json").read_text().startswith('"id","name","score"')


def test_backup_and_restore(cli: Cli, db: tuple[str, ...], tmp_path: Path, room_name: str) -> None:
    target = tmp_path / "app.sqlite"
    ok(cli("room", "sqlite", "backup", *db, "-o", str(target)))
    assert_one_line_error(cli("room", "sqlite", "backup", *db, "-o", str(target)), 2, "already exists")
    ok(cli("room", "sqlite", "restore", "--room", room_name, "-d", "copy", "--input", str(target)))
    assert rows_of(cli, ("--room", room_name, "-d", "copy"), "select count(*) as n from users") == [{"n": 2}]
    connection = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        assert connection.execute("select name from users order by id").fetchall() == [("ada",), ("bo",)]
    finally:
        connection.close()


def test_errors(cli: Cli, db: tuple[str, ...], room_name: str, tmp_path: Path) -> None:
    assert_one_line_error(cli("room", "sqlite", "table", "-d", "app"), 2, "--room")
    assert_one_line_error(cli("room", "sqlite", "search", *db, "-t", "nope"), 1, "room sqlite search: error:", "nope")
    assert_one_line_error(cli("room", "sqlite", "table", "--room", room_name, "-d", "nodb"), 1, "nodb")
    assert_one_line_error(cli("room", "sqlite", "sql", *db, "-q", "selec nothing"), 1, "room sqlite sql: error:")
    assert_one_line_error(cli("room", "sqlite", "insert", *db, "-t", "users", "--json", "[{"), 2, "--json")
    assert_one_line_error(cli("room", "sqlite", "create", *db, "-t", "x", "-c", "id integer"), 2, "--columns", "integer")
    assert_one_line_error(cli("room", "sqlite", "create", *db, "-t", "users", "-c", "id int"), 1, "users")
    assert_one_line_error(cli("room", "sqlite", "import", *db, "-t", "x", "-f", str(tmp_path / "missing.csv")), 1, "missing.csv")
    assert_one_line_error(cli("room", "sqlite", "import", *db, "-t", "x", "-f", "data.bin"), 2, "--format")
    assert_one_line_error(cli("room", "sqlite", "search", *db, "-t", "users", "--where", "a", "--where-json", "{}"), 2, "not both")


def test_no_permission(cli: Cli, cli_env, room_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from meshagent_core.tokens import ApiScope

    ok(cli("room", "sqlite", "database", "create", "--room", room_name, "-d", "app"))
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope(storage={})))
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.delenv("MESHAGENT_API_KEY")
    assert_one_line_error(cli("room", "sqlite", "database", "list"), 1, "room sqlite database list: error:")
    assert_one_line_error(cli("room", "sqlite", "table", "-d", "app"), 1, "room sqlite table: error:")


def test_json_values_reach_typed_columns(cli: Cli, db: tuple[str, ...]) -> None:
    ok(cli("room", "sqlite", "create", *db, "-t", "typed", "-c", "id int, ts timestamp, b binary"))
    row = {"id": 1, "ts": "2024-01-01T00:00:00Z", "b": "aGVsbG8="}
    ok(cli("room", "sqlite", "insert", *db, "-t", "typed", "--json", json.dumps([row])))
    assert ok(cli("room", "sqlite", "search", *db, "-t", "typed", "-o", "json")).json() == [row]
    assert_one_line_error(cli("room", "sqlite", "insert", *db, "-t", "typed", "--json", '[{"ts": "yesterday"}]'), 2, "--json")


def test_json_columns_hold_json_documents(cli: Cli, db: tuple[str, ...]) -> None:
    """The official grammar's `json` type (Arrow's JSON extension) is a column of JSON texts."""
    if not hasattr(pa, "json_"):  # pyarrow 18 (the floor) has no JSON type: a clear usage error
        assert_one_line_error(cli("room", "sqlite", "create", *db, "-t", "docs", "-c", "id int, doc json"), 2, "'json' type needs a newer pyarrow")
        return
    ok(cli("room", "sqlite", "create", *db, "-t", "docs", "-c", "id int, doc json"))
    documents = [{"id": 1, "doc": {"tags": ["a", "b"], "n": 1}}, {"id": 2, "doc": [1, 2]}, {"id": 3, "doc": None}]
    ok(cli("room", "sqlite", "insert", *db, "-t", "docs", "--json", json.dumps(documents)))
    assert ok(cli("room", "sqlite", "search", *db, "-t", "docs", "-o", "json")).json() == documents
    stored = rows_of(cli, db, "select id, json_extract(doc, '$.n') as n, typeof(doc) as kind from docs order by id")
    assert stored == [{"id": 1, "n": 1, "kind": "text"}, {"id": 2, "n": None, "kind": "text"}, {"id": 3, "n": None, "kind": "null"}]
    refused = cli("room", "sqlite", "insert", *db, "-t", "docs", "--json", '[{"id": 4, "doc": "{not json"}]')
    assert_one_line_error(refused, 1, "column 'doc' is not JSON")
    assert len(ok(cli("room", "sqlite", "search", *db, "-t", "docs", "-o", "json")).json()) == 3


def test_a_table_for_people_is_bounded(cli: Cli, db: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    """A table is collected before it is drawn, so it shows at most TABLE_ROWS rows and says
    so; JSON streams every row."""
    monkeypatch.setattr("meshagent_trio.cli.table_output.TABLE_ROWS", 5)
    query = "with recursive n(i) as (select 1 union all select i + 1 from n where i < 40) select i from n"
    shown = ok(cli("room", "sqlite", "sql", *db, "-q", query))
    assert shown.stdout.split() == ["i", "1", "2", "3", "4", "5"] and "the first 5 rows" in shown.stderr
    assert [row["i"] for row in ok(cli("room", "sqlite", "sql", *db, "-q", query, "--format", "json")).json()] == list(range(1, 41))
