"""`meshagent-trio room dataset …` against the local server: tables, rows, search, SQL,
CSV / Parquet / JSON files in and out, versions, indexes, branches and maintenance."""

from __future__ import annotations

import json
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
def docs(cli: Cli, room_name: str) -> tuple[str, ...]:
    """`--room ROOM` of a room with a table `docs` of three rows."""
    where = ("--room", room_name)
    rows = [{"id": i, "text": text, "embedding": [float(i), 0.0, 1.0]} for i, text in enumerate(["alpha beta", "beta gamma", "gamma delta"])]
    ok(cli("room", "dataset", "create", *where, "-t", "docs", "-c", "id int not null, text text, embedding vector(3, float)", "--data-json", json.dumps(rows)))
    return where


def sql_rows(cli: Cli, where: tuple[str, ...], query: str, *more: str) -> list[dict]:
    return ok(cli("room", "dataset", "sql", *where, "-q", query, "--format", "json", *more)).json()


def test_tables_and_schema(cli: Cli, docs: tuple[str, ...]) -> None:
    assert ok(cli("room", "dataset", "table", *docs, "-o", "json")).json() == ["docs"]
    assert ok(cli("room", "dataset", "tables", *docs)).stdout.split() == ["docs"]
    assert ok(cli("room", "database", "table", *docs, "-o", "json")).json() == ["docs"]
    schema = ok(cli("room", "dataset", "inspect", *docs, "-t", "docs", "--json")).json()
    assert [column["name"] for column in schema] == ["id", "text", "embedding"] and schema[0]["nullable"] is False
    assert "fixed_size_list" in ok(cli("room", "dataset", "inspect", *docs, "-t", "docs")).stdout
    ok(cli("room", "dataset", "add-columns", *docs, "-t", "docs", "-c", "lang text"))
    ok(cli("room", "dataset", "add-columns", *docs, "-t", "docs", "--columns-json", '{"doubled": "id * 2"}'))
    assert sql_rows(cli, docs, "select doubled, lang from docs order by id") == [{"doubled": 0, "lang": None}, {"doubled": 2, "lang": None}, {"doubled": 4, "lang": None}]
    ok(cli("room", "dataset", "drop-columns", *docs, "-t", "docs", "-c", "lang", "-c", "doubled"))
    assert len(ok(cli("room", "dataset", "inspect", *docs, "-t", "docs", "-o", "json")).json()) == 3
    ok(cli("room", "dataset", "create", *docs, "-t", "scratch", "--data-json", '[{"a": 1, "b": "x"}]'))
    assert sql_rows(cli, docs, "select a, b from scratch") == [{"a": 1, "b": "x"}]
    ok(cli("room", "dataset", "drop", *docs, "-t", "scratch"))
    ok(cli("room", "dataset", "drop", *docs, "-t", "scratch", "--ignore-missing"))
    ok(cli("room", "dataset", "create", *docs, "-n", "team", "-t", "inner", "-c", "x int"))
    assert ok(cli("room", "dataset", "table", *docs, "-n", "team", "-o", "json")).json() == ["inner"]


def test_rows_and_search(cli: Cli, docs: tuple[str, ...], tmp_path: Path) -> None:
    ok(cli("room", "dataset", "insert", *docs, "-t", "docs", "--json", json.dumps([{"id": 3, "text": "epsilon", "embedding": [3.0, 0.0, 1.0]}])))
    (tmp_path / "m.json").write_text(json.dumps([{"id": 1, "text": "BETA GAMMA", "embedding": [1.0, 0.0, 1.0]}, {"id": 4, "text": "zeta", "embedding": [4.0, 0.0, 1.0]}]))
    ok(cli("room", "dataset", "merge", *docs, "-t", "docs", "--on", "id", "-f", str(tmp_path / "m.json")))
    assert [row["text"] for row in sql_rows(cli, docs, "select text from docs order by id")] == ["alpha beta", "BETA GAMMA", "gamma delta", "epsilon", "zeta"]
    ok(cli("room", "dataset", "update", *docs, "-t", "docs", "--where", "id = 4", "--values-json", '{"text": "eta"}'))
    ok(cli("room", "dataset", "delete", *docs, "-t", "docs", "--where", "id = 3"))
    found = ok(cli("room", "dataset", "search", *docs, "-t", "docs", "--where", "id >= 2", "--select", "id", "--select", "text", "-o", "json")).json()
    assert sorted(found, key=lambda row: row["id"]) == [{"id": 2, "text": "gamma delta"}, {"id": 4, "text": "eta"}]
    by_json = ok(cli("room", "dataset", "search", *docs, "-t", "docs", "--where-json", '{"id": 0}', "--select", "text", "-o", "json", "--no-pretty"))
    assert by_json.stdout == '[{"text":"alpha beta"}]\n'
    nearest = ok(cli("room", "dataset", "search", *docs, "-t", "docs", "--vector-json", "[4.0, 0.0, 1.0]", "--limit", "1", "--select", "id", "-o", "json")).json()
    assert [row["id"] for row in nearest] == [4]
    table = ok(cli("room", "dataset", "search", *docs, "-t", "docs", "--where", "id = 2", "--select", "id", "--select", "text"))
    assert table.stdout.split() == ["id", "text", "2", "gamma", "delta"]
    ok(cli("room", "dataset", "index-create", *docs, "-t", "docs", "-c", "text", "--index-type", "INVERTED"))
    texts = ok(cli("room", "dataset", "search", *docs, "-t", "docs", "--text", "delta", "--select", "id", "-o", "json")).json()
    assert [row["id"] for row in texts] == [2]


def test_sql(cli: Cli, docs: tuple[str, ...], tmp_path: Path) -> None:
    lines = ok(cli("room", "dataset", "sql", *docs, "-q", "select id, text from docs order by id")).stdout.splitlines()
    assert lines[0].split() == ["id", "text"] and lines[1].split() == ["0", "alpha", "beta"]
    assert sql_rows(cli, docs, "select id from docs where id > $min order by id", "--params-json", '{"min": 0}') == [{"id": 1}, {"id": 2}]
    assert sql_rows(cli, docs, "select count(*) as n from d", "--tables-json", '[{"name": "docs", "alias": "d"}]') == [{"n": 3}]
    assert sql_rows(cli, docs, "select count(*) as n from docs", "-t", "docs") == [{"n": 3}]
    target = tmp_path / "q.csv"
    ok(cli("room", "dataset", "sql", *docs, "-q", "select id, text from docs order by id", "--format", "csv", "-o", str(target)))
    assert target.read_text().splitlines()[:2] == ['"id","text"', '0,"alpha beta"']
    vectors = ok(cli("room", "dataset", "sql", *docs, "-q", "select embedding from docs order by id", "--format", "csv")).stdout
    assert vectors.splitlines()[1] == '"[0.0,0.0,1.0]"'
    assert_one_line_error(cli("room", "dataset", "sql", *docs, "-q", "select nothing from nowhere"), 1, "room dataset sql: error:")
    assert_one_line_error(cli("room", "dataset", "sql", *docs, "-q", "select 1", "--format", "yaml"), 2, "--format")


def test_import_and_export_round_trips(cli: Cli, docs: tuple[str, ...], tmp_path: Path) -> None:
    source = pa.table({"id": list(range(2000)), "name": [f"n{i}" for i in range(2000)], "value": [i / 8 for i in range(2000)]})
    pa_csv.write_csv(source, tmp_path / "in.csv")
    pq.write_table(source, tmp_path / "in.parquet", row_group_size=500)
    ok(cli("room", "dataset", "import", *docs, "-t", "from_csv", "-f", str(tmp_path / "in.csv"), "--batch-size", "256"))
    ok(cli("room", "dataset", "import", *docs, "-t", "from_parquet", "-f", str(tmp_path / "in.parquet"), "--batch-size", "700"))
    for name in ("from_csv", "from_parquet"):
        for suffix in ("parquet", "csv"):
            out = tmp_path / f"{name}.{suffix}"
            exported = ok(cli("room", "dataset", "export", *docs, "-t", name, "-f", str(out)))
            assert "2000 row" in exported.stderr and exported.stdout == ""
            back = (pq.read_table(out) if suffix == "parquet" else pa_csv.read_csv(out)).sort_by("id")
            assert back.select(["id", "name", "value"]).equals(source)
    more = tmp_path / "more.json"
    more.write_text(json.dumps([{"id": 5, "name": "five", "value": 0.0}, {"id": 5000, "name": "new", "value": 1.0}]))
    ok(cli("room", "dataset", "import", *docs, "-t", "from_csv", "-f", str(more), "--mode", "merge", "--on", "id"))
    assert sql_rows(cli, docs, "select name from from_csv where id in (5, 5000) order by id") == [{"name": "five"}, {"name": "new"}]
    ok(cli("room", "dataset", "import", *docs, "-t", "from_csv", "-f", str(more), "--mode", "replace"))
    assert sql_rows(cli, docs, "select count(*) as n from from_csv") == [{"n": 2}]
    ok(cli("room", "dataset", "export", *docs, "-q", "select id from from_parquet where id < 3 order by id", "-f", str(tmp_path / "q.json")))
    assert json.loads((tmp_path / "q.json").read_text()) == [{"id": 0}, {"id": 1}, {"id": 2}]
    assert_one_line_error(cli("room", "dataset", "import", *docs, "-t", "x", "-f", str(more), "--mode", "merge"), 2, "--on")


def test_versions_indexes_maintenance(cli: Cli, docs: tuple[str, ...]) -> None:
    versions = ok(cli("room", "dataset", "version", *docs, "-t", "docs", "-o", "json")).json()
    assert versions and all("version" in entry for entry in versions)
    first = versions[0]["version"]
    ok(cli("room", "dataset", "insert", *docs, "-t", "docs", "--json", json.dumps([{"id": 9, "text": "x", "embedding": [0.0, 0.0, 0.0]}])))
    assert len(ok(cli("room", "dataset", "versions", *docs, "-t", "docs", "-o", "json")).json()) > len(versions)
    assert sql_rows(cli, docs, "select count(*) as n from docs") == [{"n": 4}]
    old = ok(cli("room", "dataset", "search", *docs, "-t", "docs", "-v", str(versions[-1]["version"]), "--select", "id", "-o", "json")).json()
    assert len(old) == 3
    ok(cli("room", "dataset", "restore", *docs, "-t", "docs", "-v", str(versions[-1]["version"])))
    assert sql_rows(cli, docs, "select count(*) as n from docs") == [{"n": 3}]
    assert first >= 1
    ok(cli("room", "dataset", "index-create", *docs, "-t", "docs", "-c", "id", "--index-type", "BTREE"))
    indexes = ok(cli("room", "dataset", "index", *docs, "-t", "docs", "-o", "json")).json()
    assert [(index["name"], index["columns"]) for index in indexes] == [("id_idx", ["id"])]
    assert "id_idx" in ok(cli("room", "dataset", "indexes", *docs, "-t", "docs")).stdout
    ok(cli("room", "dataset", "index-drop", *docs, "-t", "docs", "--name", "id_idx"))
    assert ok(cli("room", "dataset", "index", *docs, "-t", "docs", "-o", "json")).json() == []
    stats = ok(cli("room", "dataset", "stats", *docs, "-t", "docs", "-o", "json")).json()
    assert set(stats) == {"dataset", "data"}
    assert "group" in ok(cli("room", "dataset", "stats", *docs, "-t", "docs")).stdout
    optimized = ok(cli("room", "dataset", "optimize", *docs, "-t", "docs", "--cleanup-old-versions", "--older-than-seconds", "0", "-o", "json")).json()
    assert "compaction" in optimized
    assert ok(cli("room", "dataset", "optimize", *docs, "-t", "docs")).stdout.split()[:3] == ["group", "name", "value"]
    assert_one_line_error(cli("room", "dataset", "optimize", *docs, "-t", "docs", "--config-json", '{"bogus": 1}'), 2, "--config-json")


def test_branches(cli: Cli, docs: tuple[str, ...]) -> None:
    ok(cli("room", "dataset", "branch", "create", *docs, "--branch", "exp"))
    ok(cli("room", "dataset", "insert", *docs, "-t", "docs", "--branch", "exp", "--json", json.dumps([{"id": 7, "text": "b", "embedding": [0.0, 0.0, 0.0]}])))
    assert sql_rows(cli, docs, "select count(*) as n from docs", "--branch", "exp") == [{"n": 4}]
    assert sql_rows(cli, docs, "select count(*) as n from docs") == [{"n": 3}]
    names = [branch["name"] for branch in ok(cli("room", "dataset", "branch", "list", *docs, "-o", "json")).json()]
    assert "exp" in names
    assert ok(cli("room", "dataset", "branch", "get", *docs, "--branch", "exp", "-o", "json")).json()["name"] == "exp"
    assert "exp" in ok(cli("room", "dataset", "branch", "list", *docs)).stdout
    assert_one_line_error(cli("room", "dataset", "branch", "get", *docs, "--branch", "nope"), 1, "nope")
    ok(cli("room", "dataset", "branch", "delete", *docs, "--branch", "exp"))
    assert "exp" not in [branch["name"] for branch in ok(cli("room", "dataset", "branch", "list", *docs, "-o", "json")).json()]


def test_errors(cli: Cli, docs: tuple[str, ...], tmp_path: Path) -> None:
    assert_one_line_error(cli("room", "dataset", "table"), 2, "--room")
    assert_one_line_error(cli("room", "dataset", "search", *docs, "-t", "nope"), 1, "room dataset search: error:", "nope")
    assert_one_line_error(cli("room", "dataset", "inspect", *docs, "-t", "nope"), 1, "nope")
    assert_one_line_error(cli("room", "dataset", "create", *docs, "-t", "docs", "-c", "id int"), 1, "docs")
    assert_one_line_error(cli("room", "dataset", "insert", *docs, "-t", "docs", "--json", '{"id": 1}'), 2, "--json", "array")
    assert_one_line_error(cli("room", "dataset", "search", *docs, "-t", "docs", "--vector-json", '"x"'), 2, "--vector-json")
    assert_one_line_error(cli("room", "dataset", "create", *docs, "-t", "t", "-c", "id vector(0)"), 2, "--columns")
    assert_one_line_error(cli("room", "dataset", "export", *docs, "-f", str(tmp_path / "x.csv")), 2, "--table")
    assert not (tmp_path / "x.csv").exists()


def test_no_permission(cli: Cli, cli_env, room_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from meshagent_core.tokens import ApiScope

    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope(sqlite={}, memory={})))
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.delenv("MESHAGENT_API_KEY")
    assert_one_line_error(cli("room", "dataset", "table"), 1, "room dataset table: error:")
    assert_one_line_error(cli("room", "dataset", "create", "-t", "x", "-c", "id int"), 1, "room dataset create: error:")


def test_json_values_reach_typed_columns(cli: Cli, room_name: str) -> None:
    where = ("--room", room_name)
    if not hasattr(pa, "json_"):  # pyarrow 18 (the floor) has no JSON type: a clear usage error
        refused = cli("room", "dataset", "create", *where, "-t", "typed", "-c", "id int, j json")
        assert_one_line_error(refused, 2, "'json' type needs a newer pyarrow")
        return
    ok(cli("room", "dataset", "create", *where, "-t", "typed", "-c", "id int, j json, u uuid, ts timestamp, tags list(text)"))
    row = {"id": 1, "j": {"a": [1, 2]}, "u": "12345678-1234-5678-1234-567812345678", "ts": "2024-01-01T00:00:00Z", "tags": ["x"]}
    ok(cli("room", "dataset", "insert", *where, "-t", "typed", "--json", json.dumps([row])))
    assert ok(cli("room", "dataset", "search", *where, "-t", "typed", "-o", "json")).json() == [row]
    assert_one_line_error(cli("room", "dataset", "insert", *where, "-t", "typed", "--json", '[{"nope": 1}]'), 2, "nope")
