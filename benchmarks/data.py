"""The `dataset` toolkit: our client and the official 0.56 client on our local server, and LanceDB
in-process (no server, no network: the limit the other two approach).

Workload (the same for every column, measured by the same loop):
  * a table of 10 columns (int64 id, int32, bool, 4 float64, 3 strings) is created empty, then
    N rows (default 200,000; `--full`: 1,000,000) are inserted as one streamed insert of chunks of
    C rows (default 50,000), produced as they are asked for: rows per second, creation included;
  * a BTREE index on `id` is built (not timed), then S searches (default 200) `id = k` (k random,
    10 rows at most): p50 latency of one search as the caller sees it.
The workers check that the table holds N rows and that every search found its row.

Columns: `ours` (meshagent_trio, `room.datasets.insert_stream` / `search`), `official` (the
official client's `insert_stream` / `search`, in `.venv-official`), `lancedb` (the `lancedb`
package on a local directory: `create_table` + `add` of a batch reader, `search().where()`), each a
worker subprocess (`benchmarks/_common.py`); then the ratios ours/official and ours/lancedb.
Afterwards, when `benchmarks/data_sqlite.py` is there, its `run_sqlite_benchmarks(rows)` runs the
sqlite toolkit's workloads.

    python benchmarks/data.py [--rows N | --full] [--chunk-rows C] [--searches S] [--clients ours,official,lancedb] [--pin none|one-cpu|split]

Never run in CI: it takes minutes and its numbers depend on the machine. Exits 1 if a worker
fails (a wrong count, a search that missed), never because a number is low.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as common
import _data_table as bench
from _common import Client, Row

SCRIPT = Path(__file__).resolve()
TABLE = "bench_rows"


def _rows(args: argparse.Namespace) -> list[Row]:
    return [
        Row("insert_rate", f"insert_stream {args.rows:,} rows x 10 columns (chunks of {args.chunk_rows:,})", common.rate("rows/s")),
        Row("search_p50", f"search id = k, x{args.searches:,} sequential, p50", common.ms),
        Row("search_p99", f"search id = k, x{args.searches:,} sequential, p99", common.ms),
    ]


# --- the data and the measuring loop, written once -----------------------------------------------


# --- the columns ---------------------------------------------------------------------------------


async def _measure_datasets(datasets: Any, args: argparse.Namespace, index_config: Any) -> dict[str, Any]:
    """The workload on a `room.datasets` (ours or the official one: the same names)."""

    async def create_and_insert() -> None:
        await datasets.create_table_with_schema(name=TABLE, schema=bench.schema(), mode="overwrite")
        await datasets.insert_stream(table=TABLE, chunks=bench.achunks(args))

    async def search(key: int) -> int:
        return (await datasets.search(table=TABLE, where=f"id = {key}", limit=10)).num_rows

    async def warm_up() -> None:
        await datasets.create_table_with_schema(name="warm_up", schema=bench.schema(), data=bench.chunk(0, 1000), mode="overwrite")
        await datasets.search(table="warm_up", where="id = 1")

    return await bench.measure(
        args,
        create_and_insert,
        lambda: datasets.count(table=TABLE),
        lambda: datasets.create_index(table=TABLE, config=index_config(column="id", index_type="BTREE")),
        search,
        warm_up=warm_up,
    )


async def _ours(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import meshagent_trio
    from meshagent_core.client.datasets_models import DatasetIndexConfig
    from meshagent_core.tokens import ApiScope, ParticipantToken

    url = meshagent_trio.websocket_room_url(room_name=common.ROOM, environ={"MESHAGENT_API_URL": api_url})
    async with meshagent_trio.connect(url, common.bench_token(ParticipantToken, ApiScope, "bench-ours")) as room:
        return await _measure_datasets(room.datasets, args, DatasetIndexConfig)


def _ours_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import trio

    return trio.run(_ours, api_url, args)


async def _official(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    from meshagent.api.room_server_client import DatasetIndexConfig

    async with common.official_room(api_url, "bench-official") as room:
        return await _measure_datasets(room.datasets, args, DatasetIndexConfig)


def _official_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_official(api_url, args))


def _lancedb_python() -> tuple[str | None, str]:
    python = common.server_python()
    return (python, "") if common.can_import(python, "lancedb, pyarrow") else (None, "lancedb is not installed")


async def _lancedb(args: argparse.Namespace, folder: str) -> dict[str, Any]:
    import lancedb
    import pyarrow as pa

    db = lancedb.connect(folder)
    table: Any = None

    async def create_and_insert() -> None:
        nonlocal table
        table = db.create_table(TABLE, schema=bench.schema(), mode="overwrite")
        table.add(pa.RecordBatchReader.from_batches(bench.schema(), (batch for part in bench.chunks(args) for batch in part.to_batches())))

    async def count() -> int:
        return int(table.count_rows())

    async def index() -> None:
        table.create_scalar_index("id", index_type="BTREE")

    async def search(key: int) -> int:
        return table.search().where(f"id = {key}").limit(10).to_arrow().num_rows

    async def warm_up() -> None:
        db.create_table("warm_up", data=bench.chunk(0, 1000), mode="overwrite").search().where("id = 1").to_arrow()

    return await bench.measure(args, create_and_insert, count, index, search, warm_up=warm_up)


def _lancedb_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-lancedb-") as folder:
        return asyncio.run(_lancedb(args, folder))


CLIENTS = {
    "ours": Client("meshagent_trio", bench.ours_python, _ours_worker),
    "official": Client("official 0.56", bench.official_python, _official_worker),
    "lancedb": Client("lancedb in-process", _lancedb_python, _lancedb_worker),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows inserted (default 200,000)")
    parser.add_argument("--full", action="store_true", help="1,000,000 rows")
    parser.add_argument("--chunk-rows", type=int, default=50_000, help="rows per streamed chunk")
    parser.add_argument("--searches", type=int, default=200, help="sequential searches timed")
    common.add_client_arguments(parser, CLIENTS)
    args = parser.parse_args()
    if args.full:
        args.rows = 1_000_000
    if common.run_as_worker(args, CLIENTS):
        return 0
    started = time.perf_counter()
    rows = _rows(args)
    columns, failed = common.run_clients(SCRIPT, args, CLIENTS, bench.worker_argv(args))
    by_name = {name: result for name, result, _ in columns}
    ours = by_name.get(CLIENTS["ours"].name)
    extra = [
        ("ours/official", [bench.ratio(row.key, ours, by_name.get(CLIENTS["official"].name)) for row in rows]),
        ("ours/lancedb", [bench.ratio(row.key, ours, by_name.get(CLIENTS["lancedb"].name)) for row in rows]),
    ]
    print()
    common.print_table(rows, columns, extra)
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    try:
        sqlite = importlib.import_module("data_sqlite")
    except ImportError:
        print("benchmarks/data_sqlite.py is not there: the sqlite rows are skipped")
    else:
        runner = getattr(sqlite, "run_sqlite_benchmarks", None)
        if runner is None:
            print("benchmarks/data_sqlite.py has no run_sqlite_benchmarks(rows): the sqlite rows are skipped")
        else:
            print()
            failed |= bool(runner(args.rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
