"""What the benchmarks against a real local server share (`server.py`, `client.py`).

The server runs as a subprocess (`meshagent_trio.server.process.LocalServerProcess`). Each
table column is measured by a WORKER: the benchmark script run again as `--worker NAME` under the
interpreter that client needs, which prints its numbers as one JSON line; the parent collects
them and prints the table. So the client never shares a process (or a GIL) with the server.

Here: the table rows and their formats; finding the interpreters (ours, the official client's
`.venv-official`); starting the server; running a worker; the workloads' measuring loops, written
once and driven by each client through a few callables; the official client's side of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

if TYPE_CHECKING:
    from meshagent_trio.server.process import LocalServerProcess

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
OFFICIAL_VENV_PYTHON = REPO / ".venv-official" / "bin" / "python"
DEV_VENV_PYTHON = REPO / ".venv" / "bin" / "python"
ROOM = "bench"
MB = 1024 * 1024
WARMUP_CALLS = 200
CONCURRENT_BATCHES = 3
WORKER_TIMEOUT = 240.0

#: One column: (heading, the worker's numbers or None, why there are none).
Column = tuple[str, "dict | None", str]


# --- what is measured, and how it is shown ----------------------------------------------------


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    format: Callable[[float], str]


def ms(value: float) -> str:
    return f"{value * 1000:.3f} ms"


def rate(unit: str) -> Callable[[float], str]:
    return lambda value: f"{value:,.0f} {unit}"


def mb_s(value: float) -> str:
    return f"{value:,.1f} MB/s"


def us(value: float) -> str:
    return f"{value * 1e6:,.0f} us"


def count(value: float) -> str:
    return f"{value:,.0f}"


def storage_rows(args: argparse.Namespace) -> list[Row]:
    return [
        Row("exists_p50", f"storage.exists x{args.sequential:,} sequential, p50", ms),
        Row("exists_p99", f"storage.exists x{args.sequential:,} sequential, p99", ms),
        Row("exists_concurrent_rate", f"storage.exists x{args.concurrent:,} concurrent, answered", rate("calls/s")),
        Row("exists_concurrent_errors", "  calls of the batch that failed", count),
        Row("upload_mb_s", f"storage.upload {args.size_mb} MB", mb_s),
        Row("download_mb_s", f"storage.download {args.size_mb} MB", mb_s),
    ]


def latencies(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "exists_p50": statistics.median(ordered),
        "exists_p99": ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))],
    }


def add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sequential", type=int, default=5000, help="sequential storage.exists calls")
    parser.add_argument("--concurrent", type=int, default=1000, help="storage.exists calls issued at once")
    parser.add_argument("--size-mb", type=int, default=50, help="size of the uploaded/downloaded file, MB")


def storage_worker_argv(args: argparse.Namespace) -> list[str]:
    return ["--sequential", str(args.sequential), "--concurrent", str(args.concurrent), "--size-mb", str(args.size_mb)]


# --- the workloads, written once --------------------------------------------------------------
# Each client hands in its own calls; the loops and the clocks are the same for every column.

#: Runs the thunks at once; returns each one's result, or the exception it raised, in order.
Gather = Callable[[list[Callable[[], Awaitable[Any]]]], Awaitable[list[Any]]]


@dataclass(frozen=True)
class StorageCalls:
    exists: Callable[[str], Awaitable[Any]]  # path -> (anything)
    upload: Callable[[str, bytes], Awaitable[Any]]  # path, data (overwrite)
    download: Callable[[str], Awaitable[bytes]]  # path -> the file's bytes
    gather: Gather


async def measure_storage(calls: StorageCalls, args: argparse.Namespace) -> dict[str, Any]:
    """The storage rows: `storage.exists` sequential latency and concurrent rate, then a bulk
    upload and download (checked byte for byte). Also the worker's own CPU time per call
    (`exists_cpu`, `exists_concurrent_cpu`): what the client costs, the server's share excluded."""
    results: dict[str, Any] = {}
    for _ in range(WARMUP_CALLS):
        await calls.exists("bench/missing.bin")

    samples = []
    clock = time.perf_counter
    cpu_start = time.process_time()
    for _ in range(args.sequential):
        start = clock()
        await calls.exists("bench/missing.bin")
        samples.append(clock() - start)
    results["exists_cpu"] = (time.process_time() - cpu_start) / args.sequential
    results.update(latencies(samples))

    best = None
    cpu_start = time.process_time()
    for _ in range(CONCURRENT_BATCHES):
        thunks = [(lambda path=f"bench/missing-{i}.bin": calls.exists(path)) for i in range(args.concurrent)]
        start = clock()
        outcomes = await calls.gather(thunks)
        elapsed = clock() - start
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        calls_per_s = (args.concurrent - len(failed)) / elapsed
        if best is None or calls_per_s > best[0]:
            best = (calls_per_s, failed)
    assert best is not None
    results["exists_concurrent_cpu"] = (time.process_time() - cpu_start) / (CONCURRENT_BATCHES * args.concurrent)
    results["exists_concurrent_rate"] = best[0]
    results["exists_concurrent_errors"] = len(best[1])
    if best[1]:
        results["exists_concurrent_first_error"] = str(best[1][0])

    data = os.urandom(args.size_mb * MB)
    start = clock()
    await calls.upload("bench/big.bin", data)
    results["upload_mb_s"] = args.size_mb / (clock() - start)
    start = clock()
    back = await calls.download("bench/big.bin")
    results["download_mb_s"] = args.size_mb / (clock() - start)
    if back != data:
        raise RuntimeError(f"download returned {len(back)} bytes that differ from the {len(data)} uploaded")
    return results


@dataclass(frozen=True)
class MessagingCalls:
    send: Callable[[int], Awaitable[Any]]  # A sends message number i to B
    all_received: Callable[[], Awaitable[set[int]]]  # waits until B has every message; their numbers
    gather: Gather


async def measure_messaging(calls: MessagingCalls, args: argparse.Namespace) -> dict[str, Any]:
    """`args.messages` messages from A to B, at most `args.window` sends in flight: messages per
    second from the first send until B has received the last, and the worker's CPU time per
    message (A and B together)."""
    numbers = iter(range(args.messages))

    async def sender() -> None:
        for i in numbers:
            await calls.send(i)

    start, cpu_start = time.perf_counter(), time.process_time()
    outcomes = await calls.gather([sender] * min(args.window, args.messages))
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    if failed:
        raise RuntimeError(f"messaging.send failed: {failed[0]!r}")
    received = await calls.all_received()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if received != set(range(args.messages)):
        raise RuntimeError(f"B received {len(received)} distinct messages instead of {args.messages}")
    return {"messages_rate": args.messages / elapsed, "messages_cpu": cpu / args.messages}


async def asyncio_gather(thunks: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    return await asyncio.gather(*(thunk() for thunk in thunks), return_exceptions=True)


# --- the official client ----------------------------------------------------------------------


def official_python() -> tuple[str | None, str]:
    """(interpreter, why not) for the official client."""
    candidates = [os.environ.get("OFFICIAL_PYTHON"), str(OFFICIAL_VENV_PYTHON), sys.executable]
    for python in candidates:
        if python and Path(python).exists() and can_import(python, "meshagent.api, meshagent.api.urls"):
            return python, ""
    return None, "official meshagent-api 0.56 environment not found (run `make official-env`, needs Python 3.13)"


def bench_token(token_class: Any, scope_class: Any, name: str) -> str:
    """A full-scope participant token for ROOM, signed with MESHAGENT_API_KEY. The official
    `ParticipantToken`/`ApiScope` and ours have the same API: pass either pair."""
    token = token_class(name=name)
    token.add_role_grant("agent")
    token.add_room_grant(ROOM)
    token.add_api_grant(scope_class.full())
    return token.to_jwt()


def official_room(api_url: str, name: str) -> Any:
    """An official `RoomClient` for ROOM (enter it with `async with`)."""
    from meshagent.api import ApiScope, ParticipantToken, RoomClient, WebSocketClientProtocol
    from meshagent.api.urls import websocket_room_url

    os.environ["MESHAGENT_API_URL"] = api_url  # the official client derives the room URL from it
    url = websocket_room_url(room_name=ROOM)
    jwt = bench_token(ParticipantToken, ApiScope, name)
    return RoomClient(protocol_factory=WebSocketClientProtocol(url=url, token=jwt).create_factory())


def official_storage_calls(room: Any) -> StorageCalls:
    storage = room.storage

    async def download(path: str) -> bytes:
        return (await storage.download(path=path)).data

    return StorageCalls(
        exists=lambda path: storage.exists(path=path),
        upload=lambda path, data: storage.upload(path=path, data=data, overwrite=True),
        download=download,
        gather=asyncio_gather,
    )


async def official_storage_workloads(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    async with official_room(api_url, "bench-official") as room:
        return await measure_storage(official_storage_calls(room), args)


# --- the server and the workers ---------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    name: str  # column heading
    find_python: Callable[[], tuple[str | None, str]]
    worker: Callable[[str, argparse.Namespace], dict[str, Any]]  # (api_url, args) -> numbers


def can_import(python: str, modules: str) -> bool:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC)
    probe = subprocess.run([python, "-c", f"import {modules}"], env=env, capture_output=True, timeout=60)
    return probe.returncode == 0


def server_python() -> str:
    candidates = [os.environ.get("MESHAGENT_SERVER_PYTHON"), sys.executable, str(DEV_VENV_PYTHON)]
    for python in candidates:
        if python and Path(python).exists() and can_import(python, "trio, h11, websockets, meshagent_trio.server"):
            return python
    raise SystemExit("no interpreter can run our server (needs trio, h11, websockets): run `make test` once, or set MESHAGENT_SERVER_PYTHON")


def server_process_module(script: Path, server_python: str) -> ModuleType:
    """`meshagent_trio.server.process` (LocalServerProcess) from src/. It needs our server's
    dependencies in this process: when this interpreter lacks them, `script` re-executes itself
    under `server_python`, which has them."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    try:
        from meshagent_trio.server import process
    except ImportError:
        if os.environ.get("MESHAGENT_BENCH_REEXEC"):
            raise
        env = {**os.environ, "MESHAGENT_BENCH_REEXEC": "1", "MESHAGENT_SERVER_PYTHON": server_python}
        os.execve(server_python, [server_python, str(script), *sys.argv[1:]], env)
    return process


#: `--pin` placements: (the server's CPUs, each worker's CPUs), or None: wherever the OS puts them.
PLACEMENTS: dict[str, tuple[set[int], set[int]] | None] = {
    "none": None,
    "one-cpu": ({0}, {0}),
    "split": ({0}, {1}),
}


def add_client_arguments(parser: argparse.ArgumentParser, clients: dict[str, Client]) -> None:
    """`--clients` (the columns), `--pin`, and the hidden options a worker subprocess is started
    with."""
    parser.add_argument("--clients", default=",".join(clients), help=f"columns, of: {', '.join(clients)}")
    parser.add_argument(
        "--pin",
        choices=sorted(PLACEMENTS),
        default="none",
        help="CPU placement: none (the OS decides, the default), one-cpu (server and client share CPU 0: "
        "no cross-CPU wake-ups, latency is the sum of both processes' work) or split (server on CPU 0, "
        "client on CPU 1). Small-call latency on a VM depends on where the OS happens to put the two "
        "processes; pinning makes rounds comparable",
    )
    parser.add_argument("--worker", choices=sorted(clients), help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)


def run_as_worker(args: argparse.Namespace, clients: dict[str, Client]) -> bool:
    """In a worker subprocess (`--worker NAME`): measure, print the numbers as one JSON line
    and return True; else False."""
    if not args.worker:
        return False
    print(json.dumps(clients[args.worker].worker(args.api_url, args)), flush=True)
    return True


def run_worker(
    script: Path, client_key: str, python: str, server: LocalServerProcess, argv: list[str], cpus: set[int] | None = None
) -> tuple[dict | None, str]:
    command = [python, str(script), "--worker", client_key, "--api-url", server.api_url, *argv]
    env = {**os.environ, "MESHAGENT_API_KEY": server.api_key}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=WORKER_TIMEOUT, preexec_fn=pin)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {WORKER_TIMEOUT:.0f} s"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return None, f"exit {done.returncode}: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
    return json.loads(lines[-1]), ""


def run_clients(script: Path, args: argparse.Namespace, clients: dict[str, Client], worker_argv: list[str]) -> tuple[list[Column], bool]:
    """Start the server, run each chosen client's worker against it, stop the server. Prints
    what ran where; returns the columns and whether a worker failed."""
    python_for_server = server_python()
    helper = server_process_module(script, python_for_server)
    server = helper.LocalServerProcess(python=python_for_server)  # a free port, a fresh data dir and API key
    try:
        server.start()
    except BaseException as error:
        server.close()
        if isinstance(error, helper.ServerStartError):  # says why, with the server's output
            raise SystemExit(str(error)) from None
        raise
    columns: list[Column] = []
    failed = False
    placement = PLACEMENTS[getattr(args, "pin", "none")]
    try:
        if placement is not None:
            _pin_process(server.process.pid, placement[0], also_needed=placement[1])
        where = "" if placement is None else f", pinned to CPU {','.join(map(str, sorted(placement[0])))}"
        print(f"server: meshagent-trio local server, subprocess on 127.0.0.1:{server.port} ({python_for_server}){where}")
        for key in [k.strip() for k in args.clients.split(",") if k.strip()]:
            client = clients[key]
            python, why = client.find_python()
            if python is None:
                columns.append((client.name, None, why))
                continue
            version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True).stdout.strip()
            where = "" if placement is None else f", pinned to CPU {','.join(map(str, sorted(placement[1])))}"
            print(f"client: {client.name}, subprocess ({python}, Python {version}){where}")
            result, why = run_worker(script, key, python, server, worker_argv, None if placement is None else placement[1])
            failed |= result is None
            columns.append((client.name, result, why))
    finally:
        server.close()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}")
    return columns, failed


def _pin_process(pid: int, cpus: set[int], also_needed: set[int] = frozenset()) -> None:
    """Pin every thread of `pid` (threads it starts later inherit the placement)."""
    missing = (cpus | also_needed) - os.sched_getaffinity(0)
    if missing:
        raise SystemExit(f"--pin needs CPU {','.join(map(str, sorted(missing)))}, which this process may not use")
    for thread in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(thread), cpus)


# --- the table --------------------------------------------------------------------------------


def cell(row: Row, result: dict | None) -> str:
    return row.format(result[row.key]) if result is not None and row.key in result else "n/a"


def print_table(rows: list[Row], columns: Sequence[Column], extra: Sequence[tuple[str, list[str]]] = ()) -> None:
    """One line per row, one right-aligned column per client, then the `extra` columns
    (heading, one preformatted cell per row); then why a column is n/a, and first errors."""
    label_width = max(len(row.label) for row in rows)
    names = [name for name, _, _ in columns] + [name for name, _ in extra]
    cells = [[cell(row, result) for _, result, _ in columns] + [cells[i] for _, cells in extra] for i, row in enumerate(rows)]
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(names)]
    header = "workload".ljust(label_width) + "".join(f"  {name:>{w}}" for name, w in zip(names, widths))
    print(header)
    print("-" * len(header))
    for row, line in zip(rows, cells):
        print(row.label.ljust(label_width) + "".join(f"  {text:>{w}}" for text, w in zip(line, widths)))
    for name, result, why in columns:
        if result is None:
            print(f"{name}: n/a ({why})")
        elif "exists_concurrent_first_error" in result:
            print(f"{name}: first failed concurrent call: {result['exists_concurrent_first_error']}")
