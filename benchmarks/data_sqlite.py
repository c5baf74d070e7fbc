"""The `sqlite` toolkit: our client and the official 0.56 client on our local server, and stdlib
`sqlite3` in-process (no server, no network: the limit the other two approach).

Workload (the same for every column, measured by the same loop):
  * a table of 10 columns (int64 id, int32, bool, 4 float64, 3 strings) is created, then N rows
    (default 100,000; `--full`: 1,000,000) are inserted as one streamed insert of chunks of C rows
    (default 20,000), produced as they are asked for: rows per second, creation included;
  * an index on `id` is made (not timed), then S searches (default 200) `id = k` (k random):
    p50 and p99 latency of one search as the caller sees it.
The workers check that the table holds N rows and that every search found its row.

Columns: `ours` (meshagent_trio, `room.sqlite` insert of an async iterable / `search`),
`official` (the official client's `insert` of an async iterable / `search`, in
`.venv-official`), `sqlite3` (stdlib, a WAL database with `synchronous=FULL` like the server's:
one transaction of `executemany` per insert, `SELECT … WHERE id = ?`), each a worker subprocess
(`benchmarks/_common.py`); then the ratios ours/official and ours/sqlite3.

    python benchmarks/data_sqlite.py [--rows N | --full] [--chunk-rows C] [--searches S] [--clients ours,official,sqlite3] [--pin none|one-cpu|split]

`benchmarks/data.py` runs it after the dataset rows (`run_sqlite_benchmarks(rows)`). Never run
in CI: it takes a while and its numbers depend on the machine. Exits 1 if a worker fails (a
wrong count, a search that missed), never because a number is low.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as common
import _data_table as bench
from _common import Client, Row

SCRIPT = Path(__file__).resolve()
DATABASE = "bench"
TABLE = "bench_rows"
DEFAULT_ROWS = 100_000
FULL_ROWS = 1_000_000


def _rows(args: argparse.Namespace) -> list[Row]:
    return [
        Row("insert_rate", f"sqlite insert {args.rows:,} rows x 10 columns, streamed (chunks of {args.chunk_rows:,})", common.rate("rows/s")),
        Row("search_p50", f"sqlite search id = k, x{args.searches:,} sequential, p50", common.ms),
        Row("search_p99", f"sqlite search id = k, x{args.searches:,} sequential, p99", common.ms),
    ]


# --- the data and the measuring loop, written once -----------------------------------------------


INDEX = f"CREATE INDEX IF NOT EXISTS bench_rows_id ON {TABLE} (id)"


async def _on_room(sqlite: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The workload through a `room.sqlite` (ours and the official one have the same methods).
    A small table first, so no column pays for the server's first import of pyarrow."""
    await sqlite.create_database(name=DATABASE, mode="overwrite")
    db = sqlite.database(DATABASE)
    await db.create_table_with_schema(name="warm_up", schema=bench.schema(), data=bench.chunk(0, 1000))
    await db.search(table="warm_up", where="id = ?", params=[1])

    async def create_and_insert() -> None:
        await db.create_table_with_schema(name=TABLE, schema=bench.schema())
        await db.insert(table=TABLE, records=bench.achunks(args))

    async def search(key: int) -> int:
        return (await db.search(table=TABLE, where="id = ?", params=[key])).num_rows

    return await bench.measure(args, create_and_insert, lambda: db.count(table=TABLE), lambda: db.execute_sql_statement(query=INDEX), search)


# --- the columns ---------------------------------------------------------------------------------


async def _ours(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import meshagent_trio
    from meshagent_core.tokens import ApiScope, ParticipantToken

    url = meshagent_trio.websocket_room_url(room_name=common.ROOM, environ={"MESHAGENT_API_URL": api_url})
    async with meshagent_trio.connect(url, common.bench_token(ParticipantToken, ApiScope, "bench-ours")) as room:
        return await _on_room(room.sqlite, args)


def _ours_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import trio

    return trio.run(_ours, api_url, args)


async def _official(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    async with common.official_room(api_url, "bench-official") as room:
        return await _on_room(room.sqlite, args)


def _official_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_official(api_url, args))


def _sqlite3_python() -> tuple[str | None, str]:
    python = common.server_python()
    return (python, "") if common.can_import(python, "sqlite3, pyarrow") else (None, "pyarrow is not installed")


async def _sqlite3(args: argparse.Namespace, folder: str) -> dict[str, Any]:
    import sqlite3

    connection = sqlite3.connect(Path(folder) / "bench.sqlite", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    names = bench.schema().names
    insert = f"INSERT INTO {TABLE} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"

    async def create_and_insert() -> None:
        columns = "id INTEGER, n INT32, flag BOOLEAN, " + ", ".join(f"f{i} REAL" for i in range(4)) + ", " + ", ".join(f"s{i} TEXT" for i in range(3))
        connection.execute(f"CREATE TABLE {TABLE} ({columns})")
        connection.execute("BEGIN IMMEDIATE")
        for table in bench.chunks(args):
            connection.executemany(insert, zip(*(table.column(name).to_pylist() for name in names)))
        connection.execute("COMMIT")

    async def count() -> int:
        return int(connection.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])

    async def index() -> None:
        connection.execute(INDEX)

    async def search(key: int) -> int:
        return len(connection.execute(f"SELECT * FROM {TABLE} WHERE id = ?", (key,)).fetchall())

    try:
        return await bench.measure(args, create_and_insert, count, index, search)
    finally:
        connection.close()


def _sqlite3_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-sqlite3-") as folder:
        return asyncio.run(_sqlite3(args, folder))


CLIENTS = {
    "ours": Client("meshagent_trio", bench.ours_python, _ours_worker),
    "official": Client("official 0.56", bench.official_python, _official_worker),
    "sqlite3": Client("sqlite3 in-process", _sqlite3_python, _sqlite3_worker),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"rows inserted (default {DEFAULT_ROWS:,})")
    parser.add_argument("--full", action="store_true", help=f"{FULL_ROWS:,} rows")
    parser.add_argument("--chunk-rows", type=int, default=20_000, help="rows per streamed chunk")
    parser.add_argument("--searches", type=int, default=200, help="sequential searches timed")
    common.add_client_arguments(parser, CLIENTS)
    return parser


def run(args: argparse.Namespace) -> bool:
    """Run the columns and print the table; True when a worker failed."""
    started = time.perf_counter()
    rows = _rows(args)
    columns, failed = common.run_clients(SCRIPT, args, CLIENTS, bench.worker_argv(args))
    by_name = {name: result for name, result, _ in columns}
    ours = by_name.get(CLIENTS["ours"].name)
    extra = [
        ("ours/official", [bench.ratio(row.key, ours, by_name.get(CLIENTS["official"].name)) for row in rows]),
        ("ours/sqlite3", [bench.ratio(row.key, ours, by_name.get(CLIENTS["sqlite3"].name)) for row in rows]),
    ]
    print()
    common.print_table(rows, columns, extra)
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    return failed


def run_sqlite_benchmarks(rows: int | None = None) -> bool:
    """The sqlite rows for `benchmarks/data.py`: `rows` rows (default 100,000); True when a worker
    failed."""
    args = _parser().parse_args(["--rows", str(rows or DEFAULT_ROWS)])
    return run(args)


def main() -> int:
    args = _parser().parse_args()
    if args.full:
        args.rows = FULL_ROWS
    if common.run_as_worker(args, CLIENTS):
        return 0
    return 1 if run(args) else 0


if __name__ == "__main__":
    sys.exit(main())
