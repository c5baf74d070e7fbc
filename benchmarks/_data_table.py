"""What the data benchmarks (`data.py` for the `dataset` toolkit, `data_sqlite.py` for `sqlite`)
share: the 10-column table they insert, the measuring loop, and the columns' interpreters."""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import _common as common


def schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [("id", pa.int64()), ("n", pa.int32()), ("flag", pa.bool_())]
        + [(f"f{index}", pa.float64()) for index in range(4)]
        + [(f"s{index}", pa.string()) for index in range(3)]
    )


def chunk(start: int, count: int) -> Any:
    import pyarrow as pa

    ids = list(range(start, start + count))
    columns = {"id": ids, "n": [i % 1000 for i in ids], "flag": [i % 2 == 0 for i in ids]}
    columns.update({f"f{index}": [i * 0.5 + index for i in ids] for index in range(4)})
    columns.update({f"s{index}": [f"value {i} of column {index}" for i in ids] for index in range(3)})
    return pa.table(columns, schema=schema())


def chunks(args: argparse.Namespace) -> Iterator[Any]:
    for start in range(0, args.rows, args.chunk_rows):
        yield chunk(start, min(args.chunk_rows, args.rows - start))


async def achunks(args: argparse.Namespace) -> AsyncIterator[Any]:
    for table in chunks(args):
        yield table


async def measure(
    args: argparse.Namespace,
    create_and_insert: Callable[[], Awaitable[None]],
    count: Callable[[], Awaitable[int]],
    index: Callable[[], Awaitable[Any]],
    search: Callable[[int], Awaitable[int]],
    *,
    warm_up: Callable[[], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """The rows of the table: the insert's rate, then the searches' latencies (after `warm_up`,
    e.g. a small table, so no column pays for a first import on the server)."""
    if warm_up is not None:
        await warm_up()
    start = time.perf_counter()
    await create_and_insert()
    elapsed = time.perf_counter() - start
    found = await count()
    if found != args.rows:
        raise RuntimeError(f"the table holds {found} rows, not {args.rows}")
    await index()
    rng = random.Random(7)
    for _ in range(10):
        await search(rng.randrange(args.rows))
    samples = []
    for _ in range(args.searches):
        key = rng.randrange(args.rows)
        started = time.perf_counter()
        hits = await search(key)
        samples.append(time.perf_counter() - started)
        if hits != 1:
            raise RuntimeError(f"search id = {key} found {hits} rows")
    ordered = sorted(samples)
    return {
        "insert_rate": args.rows / elapsed,
        "search_p50": statistics.median(ordered),
        "search_p99": ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))],
    }


def ours_python() -> tuple[str | None, str]:
    python = common.server_python()
    return (python, "") if common.can_import(python, "pyarrow, meshagent_trio") else (None, "pyarrow is not installed")


def official_python() -> tuple[str | None, str]:
    python, why = common.official_python()
    if python is not None and not common.can_import(python, "pyarrow"):
        return None, "the official environment has no pyarrow"
    return python, why


def worker_argv(args: argparse.Namespace) -> list[str]:
    return ["--rows", str(args.rows), "--chunk-rows", str(args.chunk_rows), "--searches", str(args.searches)]


def ratio(key: str, ours: dict | None, other: dict | None) -> str:
    if not ours or not other or key not in ours or key not in other or not other[key]:
        return "n/a"
    return f"{ours[key] / other[key]:.2f}x"
