"""The REST API of our local server under a real client: `connect_room` and `list_rooms`.

The server runs as a subprocess (`LocalServerProcess`: a free port, a fresh data directory and
API key); each client column is a worker subprocess (see `_common.py`), so client and server
never share a process. Both clients do the same work against the same server:

  * `create_room` x R rooms first (default 50), so `list_rooms` returns a page of R rooms;
  * `connect_room`, N sequential calls (default 1,000, after 50 warm-up calls): p50 and p99
    latency as the caller sees it, and calls per second of the whole sequence;
  * `list_rooms` (one page of R rooms), the same;
  * `connect_room`, M calls issued at once (default 200): calls per second of the batch's wall
    time (best of 3), and how many failed;
  * `publish_feed_message` into a feed with subscriptions into 10 rooms (each message is
    written as one file in each room's storage), N sequential calls after 50 warm-up calls:
    p50 latency and messages per second.

Our column is `Meshagent` on Trio (its lean HTTP/1.1 client for plain HTTP); the official column is the
official 0.56 `Meshagent` (aiohttp) on asyncio, from `.venv-official` (`make official-env`).
The last columns are ours/official: above 1 means we answer more calls per second, below 1 a
lower latency.

    python benchmarks/rest.py [--calls N] [--concurrent M] [--rooms R] [--rounds K] [--clients ours,official]

Each round starts a fresh server and runs the clients one after the other, in alternating
order (which one goes first changes its numbers by up to 15% on a small VM); the table shows
the medians over the rounds (3 by default).

Exits 1 if a worker fails (an error answer, a crash), never because a number is low.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import _common as common
from _common import Client, Row

SCRIPT = Path(__file__).resolve()
WARMUP = 50
BATCHES = 3
#: The rooms a feed's subscriptions write into.
FEED_ROOMS = 10


def _rows(args: argparse.Namespace) -> list[Row]:
    rows = []
    for key, label in (("connect", "connect_room"), ("list", f"list_rooms ({args.rooms} rooms)")):
        rows += [
            Row(f"{key}_p50", f"{label} x{args.calls:,} sequential, p50", common.ms),
            Row(f"{key}_p99", f"{label} x{args.calls:,} sequential, p99", common.ms),
            Row(f"{key}_rate", f"{label} x{args.calls:,} sequential", common.rate("calls/s")),
        ]
    rows += [
        Row("connect_concurrent_rate", f"connect_room x{args.concurrent:,} concurrent", common.rate("calls/s")),
        Row("connect_concurrent_errors", "  calls of the batch that failed", common.count),
        Row("feed_p50", f"publish_feed_message into {FEED_ROOMS} subscribed rooms x{args.calls:,} sequential, p50", common.ms),
        Row("feed_rate", f"publish_feed_message into {FEED_ROOMS} subscribed rooms x{args.calls:,} sequential", common.rate("messages/s")),
    ]
    return rows


def _worker_argv(args: argparse.Namespace) -> list[str]:
    return ["--calls", str(args.calls), "--concurrent", str(args.concurrent), "--rooms", str(args.rooms)]


# --- the workload, written once -----------------------------------------------------------------


@dataclass(frozen=True)
class RestCalls:
    project_id: Callable[[], Awaitable[str]]
    create_room: Callable[[str, str], Awaitable[Any]]  # project, name
    connect_room: Callable[[str, str], Awaitable[Any]]  # project, room -> has .jwt
    list_rooms: Callable[[str], Awaitable[list[Any]]]  # project -> rooms
    gather: common.Gather
    create_feed: Callable[[str, str], Awaitable[Any]]  # project, name -> has .id
    subscribe: Callable[[str, str, str], Awaitable[Any]]  # project, feed id, room
    publish: Callable[[str, str, Any], Awaitable[Any]]  # project, feed id, message


def rest_calls(api: Any, gather: common.Gather) -> RestCalls:
    """The calls, on either client: ours and the official one have the same methods."""

    async def project_id() -> str:
        return (await api.list_projects()).projects[0].id

    return RestCalls(
        project_id=project_id,
        create_room=lambda project, name: api.create_room(project_id=project, name=name),
        connect_room=lambda project, room: api.connect_room(project_id=project, room=room),
        list_rooms=lambda project: api.list_rooms(project_id=project),
        gather=gather,
        create_feed=lambda project, name: api.create_feed(project_id=project, name=name),
        subscribe=lambda project, feed, room: api.create_feed_subscription(project_id=project, feed_id=feed, room=room, path="feed"),
        publish=lambda project, feed, message: api.publish_feed_message(project_id=project, feed_id=feed, message=message),
    )


def _percentiles(prefix: str, samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        f"{prefix}_p50": statistics.median(ordered),
        f"{prefix}_p99": ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))],
        f"{prefix}_rate": len(ordered) / sum(ordered),
    }


async def measure_rest(calls: RestCalls, args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    project = await calls.project_id()
    for i in range(args.rooms):
        await calls.create_room(project, f"{prefix}-{i:04d}")
    room = f"{prefix}-0000"
    rooms = await calls.list_rooms(project)
    if len([r for r in rooms if r.name.startswith(prefix)]) != args.rooms:
        raise RuntimeError(f"list_rooms returned {len(rooms)} rooms, not the {args.rooms} created")
    for _ in range(WARMUP):
        await calls.connect_room(project, room)
        await calls.list_rooms(project)

    results: dict[str, Any] = {}
    clock = time.perf_counter
    for key, call in (("connect", lambda: calls.connect_room(project, room)), ("list", lambda: calls.list_rooms(project))):
        samples = []
        for _ in range(args.calls):
            start = clock()
            await call()
            samples.append(clock() - start)
        results.update(_percentiles(key, samples))

    best: tuple[float, list[BaseException]] | None = None
    for _ in range(BATCHES):
        start = clock()
        outcomes = await calls.gather([lambda: calls.connect_room(project, room)] * args.concurrent)
        elapsed = clock() - start
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if not all(isinstance(o, BaseException) or o.jwt for o in outcomes):
            raise RuntimeError("connect_room answered without a token")
        rate = (args.concurrent - len(failed)) / elapsed
        if best is None or rate > best[0]:
            best = (rate, failed)
    assert best is not None
    results["connect_concurrent_rate"], results["connect_concurrent_errors"] = best[0], len(best[1])
    if best[1]:
        results["first_error"] = repr(best[1][0])
    results.update(await measure_feed(calls, args, project, prefix))
    return results


async def measure_feed(calls: RestCalls, args: argparse.Namespace, project: str, prefix: str) -> dict[str, float]:
    feed = await calls.create_feed(project, f"{prefix}-feed")
    for i in range(FEED_ROOMS):
        await calls.subscribe(project, feed.id, f"{prefix}-feed-{i:02d}")
    for n in range(WARMUP):
        await calls.publish(project, feed.id, {"n": n, "text": "warm-up"})
    samples = []
    clock = time.perf_counter
    for n in range(args.calls):
        start = clock()
        await calls.publish(project, feed.id, {"n": n, "text": "a feed message"})
        samples.append(clock() - start)
    measured = _percentiles("feed", samples)
    return {"feed_p50": measured["feed_p50"], "feed_rate": measured["feed_rate"]}


# --- our client -----------------------------------------------------------------------------------


async def _trio_gather(thunks: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    import trio

    outcomes: list[Any] = [None] * len(thunks)

    async def run(i: int, thunk: Callable[[], Awaitable[Any]]) -> None:
        try:
            outcomes[i] = await thunk()
        except Exception as error:  # reported in the table
            outcomes[i] = error

    async with trio.open_nursery() as nursery:
        for i, thunk in enumerate(thunks):
            nursery.start_soon(run, i, thunk)
    return outcomes


async def _ours(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    from meshagent_trio import Meshagent

    async with Meshagent(base_url=api_url) as api:
        return await measure_rest(rest_calls(api, _trio_gather), args, "ours")


def _ours_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import trio

    return trio.run(_ours, api_url, args)


def _ours_python() -> tuple[str | None, str]:
    return common.server_python(), ""


# --- the official client ------------------------------------------------------------------------


async def _official(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import os

    from meshagent.api import Meshagent

    async with Meshagent(base_url=api_url, token=os.environ["MESHAGENT_API_KEY"]) as api:
        return await measure_rest(rest_calls(api, common.asyncio_gather), args, "official")


def _official_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_official(api_url, args))


#: The table's columns, ours first; the ratio is the first column over the second.
CLIENTS: dict[str, Client] = {
    "ours": Client("meshagent-trio", _ours_python, _ours_worker),
    "official": Client("official meshagent-api 0.56", common.official_python, _official_worker),
}


def _ratio(key: str, ours: dict | None, official: dict | None) -> float | None:
    if key.endswith("_errors") or not ours or not official or not official.get(key) or key not in ours:
        return None
    return ours[key] / official[key]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="sequential calls of each method")
    parser.add_argument("--concurrent", type=int, default=200, help="connect_room calls issued at once")
    parser.add_argument("--rooms", type=int, default=50, help="rooms created first (the page list_rooms returns)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh server each round, clients in alternating order; medians")
    common.add_client_arguments(parser, CLIENTS)
    args = parser.parse_args()
    if common.run_as_worker(args, CLIENTS):
        return 0

    started = time.perf_counter()
    rows = _rows(args)
    chosen = [key.strip() for key in args.clients.split(",") if key.strip()]
    results: dict[str, list[dict]] = {}
    why: dict[str, str] = {}
    ratios: dict[str, list[float]] = {}
    failed = False
    for number in range(args.rounds):
        args.clients = ",".join(chosen if number % 2 == 0 else reversed(chosen))  # neither always goes first
        columns, round_failed = common.run_clients(SCRIPT, args, CLIENTS, _worker_argv(args))
        failed |= round_failed
        by_name = {name: result for name, result, _ in columns}
        for name, result, reason in columns:
            if result is None:
                why[name] = reason
            else:
                results.setdefault(name, []).append(result)
        for row in rows:
            ratio = _ratio(row.key, by_name.get(CLIENTS["ours"].name), by_name.get(CLIENTS["official"].name))
            if ratio is not None:
                ratios.setdefault(row.key, []).append(ratio)
    print()
    names = [CLIENTS[key].name for key in chosen]
    medians = [
        (name, {key: statistics.median(r[key] for r in results[name]) for key in results[name][0]} if name in results else None, why.get(name, ""))
        for name in names
    ]
    ratio_cells = [f"{statistics.median(ratios[row.key]):.2f}x" if ratios.get(row.key) else "" for row in rows]
    print(f"medians over {args.rounds} rounds (each on a fresh server); ratio: the median of the rounds' ratios")
    common.print_table(rows, medians, [("ours/official", ratio_cells)])
    for name, runs in results.items():
        errors = [r["first_error"] for r in runs if "first_error" in r]
        if errors:
            print(f"{name}: first failed concurrent call: {errors[0]}")
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
