"""Collaborative documents (`room.sync`): our client against the official meshagent-api 0.56
client, on our local server (protocol/documents.md §4).

Same harness as `client.py` (`_common.py`): the server is a subprocess, each column a WORKER
subprocess (ours under our interpreter, the official one under `.venv-official`). Rows:

  * relay: one writer and R readers (default 10), each its own room connection in the worker,
    open one document; the writer makes U edits (default 2,000), one transaction each (setting
    an attribute), yielding to the event loop between them; the row is U divided by the time
    from the first edit until every reader's replica shows the last one. Updates queued while a
    reader is busy may travel merged: the row counts edits, not chunks.
  * open: a document of E elements (default 10,000 cells, created on the server by
    `sync.create` from JSON) is opened and closed N times (default 5): median time for
    `open()` to return a synchronised document.
  * memory: Python heap (tracemalloc) held by the open E-element document in the client, and
    the server's resident memory growth (from /proc) while D documents of E/10 elements are
    open at once (default 10), per document.

    python benchmarks/documents.py [--readers R] [--edits U] [--elements E] [--opens N] [--documents D] [--clients ours,official]

A missing official environment makes its column "n/a" and says why. The script exits 1 if a
worker fails (a reader that never converges, a crash), never because a number is low.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
from _common import Client, Row  # noqa: E402

SCRIPT = Path(__file__).resolve()
# By path (not `meshagent_core.testing.vectors`): the official worker may not import our package.
VECTORS = common.SRC / "meshagent_core" / "testing" / "vectors" / "sync_vectors.json"
WAIT_STEP = 0.001


def _schema_json() -> dict[str, Any]:
    return json.loads(VECTORS.read_text())["schema"]


def _document_json(elements: int) -> dict[str, Any]:
    cells = [{"cell": {"kind": "code", "source": f"print({n})", "order": n}} for n in range(elements)]
    return {"notebook": {"cells": cells}}


def _rows(args: argparse.Namespace) -> list[Row]:
    return [
        Row("relay_rate", f"edits/s relayed to {args.readers} readers ({args.edits:,} edits)", common.rate("edits/s")),
        Row("open_median", f"open a {args.elements:,}-element document, median of {args.opens}", common.ms),
        Row("client_heap", f"client heap per open {args.elements:,}-element document", lambda v: f"{v / common.MB:,.1f} MB"),
        Row("server_rss", f"server memory per open {args.elements // 10:,}-element document", lambda v: f"{v / common.MB:,.2f} MB"),
    ]


def _server_rss(api_url: str) -> int | None:
    """Resident bytes of the process listening on `api_url`'s port (Linux /proc), or None."""
    port = int(api_url.rsplit(":", 1)[1].strip("/"))
    try:
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                    inodes.add(fields[9])
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        status = Path(f"/proc/{pid}/status").read_text()
                        kb = next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:"))
                        return kb * 1024
            except OSError:
                continue
    except (OSError, ValueError, IndexError):
        return None
    return None


class Sync:
    """What the measuring loops need from a client, as callables (one set per client)."""

    def __init__(
        self,
        connect: Callable[[str], Any],
        sleep: Callable[[float], Awaitable[None]],
        gather: Callable[[list[Callable[[], Awaitable[Any]]]], Awaitable[list[Any]]],
        now: Callable[[], float],
    ) -> None:
        self.connect = connect  # name -> async context manager yielding a room client
        self.sleep = sleep
        self.gather = gather
        self.now = now


async def _measure(sync: Sync, args: argparse.Namespace, who: str, rooms: list[Any], schema: Any) -> dict[str, Any]:
    writer_room, reader_rooms = rooms[0], rooms[1:]
    results: dict[str, Any] = {}

    # relay
    path = f"bench/{who}-relay.notebook"
    await writer_room.sync.create(path=path, json=_document_json(1), schema=schema)
    writer = await writer_room.sync.open(path=path, create=False)
    readers = [await room.sync.open(path=path, create=False) for room in reader_rooms]
    cell = writer.root.get_children()[0]
    last = f"v{args.edits - 1}"
    started = sync.now()
    for n in range(args.edits):
        cell["source"] = f"v{n}"
        await sync.sleep(0)
    deadline = sync.now() + 120
    while any(r.root.get_children()[0]["source"] != last for r in readers):
        if sync.now() > deadline:
            raise RuntimeError("a reader never received the last edit")
        await sync.sleep(WAIT_STEP)
    results["relay_rate"] = args.edits / (sync.now() - started)
    for room in rooms:
        await room.sync.close(path=path)

    # open
    path = f"bench/{who}-big.notebook"
    await writer_room.sync.create(path=path, json=_document_json(args.elements), schema=schema)
    times = []
    for _ in range(args.opens):
        started = sync.now()
        document = await reader_rooms[0].sync.open(path=path, create=False)
        times.append(sync.now() - started)
        if len(document.root.get_children()) != args.elements:
            raise RuntimeError(f"opened {len(document.root.get_children())} elements, not {args.elements}")
        await reader_rooms[0].sync.close(path=path)
    results["open_median"] = statistics.median(times)

    # client heap
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    document = await reader_rooms[0].sync.open(path=path, create=False)
    results["client_heap"] = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    await reader_rooms[0].sync.close(path=path)
    del document

    # server memory
    paths = [f"bench/{who}-many-{n}.notebook" for n in range(args.documents)]
    for many in paths:
        await writer_room.sync.create(path=many, json=_document_json(args.elements // 10), schema=schema)
    rss_before = _server_rss(os.environ.get("BENCH_API_URL", ""))
    for many in paths:
        await writer_room.sync.open(path=many, create=False)
    rss_after = _server_rss(os.environ.get("BENCH_API_URL", ""))
    if rss_before is not None and rss_after is not None:
        results["server_rss"] = max(0, rss_after - rss_before) / len(paths)
    for many in paths:
        await writer_room.sync.close(path=many)
    return results


# --- our client -------------------------------------------------------------------------------


async def _ours(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import trio

    from meshagent_core.sync import MeshSchema
    from meshagent_core.tokens import ApiScope, ParticipantToken
    from meshagent_trio import RoomClient, WebSocketClientProtocol

    def connect(name: str) -> Any:
        url = api_url.replace("http", "ws", 1).rstrip("/") + f"/rooms/{common.ROOM}"
        return RoomClient(protocol=WebSocketClientProtocol(url=url, token=common.bench_token(ParticipantToken, ApiScope, name)))

    async def gather(thunks: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
        results: list[Any] = [None] * len(thunks)

        async def run(i: int) -> None:
            results[i] = await thunks[i]()

        async with trio.open_nursery() as nursery:
            for i in range(len(thunks)):
                nursery.start_soon(run, i)
        return results

    sync = Sync(connect, trio.sleep, gather, trio.current_time)
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        rooms = [await stack.enter_async_context(connect(f"bench-ours-{n}")) for n in range(args.readers + 1)]
        return await _measure(sync, args, "ours", rooms, MeshSchema.from_json(_schema_json()))


def _ours_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import trio

    os.environ["BENCH_API_URL"] = api_url
    return trio.run(_ours, api_url, args)


# --- the official client ----------------------------------------------------------------------


async def _official(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    from contextlib import AsyncExitStack

    from meshagent.api.schema import MeshSchema

    loop = asyncio.get_running_loop()
    sync = Sync(lambda name: common.official_room(api_url, name), asyncio.sleep, common.asyncio_gather, loop.time)
    async with AsyncExitStack() as stack:
        rooms = [await stack.enter_async_context(common.official_room(api_url, f"bench-official-{n}")) for n in range(args.readers + 1)]
        return await _measure(sync, args, "official", rooms, MeshSchema.from_json(_schema_json()))


def _official_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    os.environ["BENCH_API_URL"] = api_url
    return asyncio.run(_official(api_url, args))


def _ours_python() -> tuple[str | None, str]:
    return common.server_python(), ""


CLIENTS: dict[str, Client] = {
    "ours": Client("meshagent-trio", _ours_python, _ours_worker),
    "official": Client("official meshagent-api 0.56", common.official_python, _official_worker),
}

#: Lower is better for these rows (the ratio's sense is shown in the table).
LOWER_IS_BETTER = {"open_median", "client_heap"}


def _worker_argv(args: argparse.Namespace) -> list[str]:
    return [
        "--readers", str(args.readers), "--edits", str(args.edits), "--elements", str(args.elements),
        "--opens", str(args.opens), "--documents", str(args.documents),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--edits", type=int, default=2_000)
    parser.add_argument("--elements", type=int, default=10_000)
    parser.add_argument("--opens", type=int, default=5)
    parser.add_argument("--documents", type=int, default=10)
    common.add_client_arguments(parser, CLIENTS)
    args = parser.parse_args()
    if common.run_as_worker(args, CLIENTS):
        return 0

    started = time.perf_counter()
    columns, failed = common.run_clients(SCRIPT, args, CLIENTS, _worker_argv(args))
    print()
    rows = _rows(args)
    by_name = {name: result for name, result, _ in columns}
    ours, official = by_name.get(CLIENTS["ours"].name), by_name.get(CLIENTS["official"].name)
    ratios = []
    for row in rows:
        if row.key == "server_rss":
            ratios.append("(same server)")
        elif ours and official and ours.get(row.key) and official.get(row.key):
            ratio = ours[row.key] / official[row.key]
            better = "lower is better" if row.key in LOWER_IS_BETTER else "higher is better"
            ratios.append(f"{ratio:.2f}x ({better})")
        else:
            ratios.append("n/a")
    common.print_table(rows, columns, [("ours/official", ratios)])
    print("\nThe server row is the same server measured under each client's load; the server keeps a")
    print("committed copy and a validating replica of each open document.")
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
