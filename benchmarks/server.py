"""Our local MeshAgent server under a real client: storage latency, concurrency and bulk transfer.

The server runs as a subprocess (`python -m meshagent_trio serve` on a free port, fresh data
directory, fresh API key), started by `meshagent_trio.server.process.LocalServerProcess`. Each
client column is measured by a WORKER: this same script run as `server.py --worker NAME` under
the interpreter that client needs (the official meshagent-api 0.56 client needs Python 3.13 and
lives in `.venv-official`, `make official-env`), which prints its numbers as one JSON line. So
the parent runs under any interpreter (without our server's dependencies it re-executes itself
under the server's interpreter), the client never shares a process (or a GIL) with the server,
and a new column is one entry in `CLIENTS`.

Rows (each client does the same work on its own connection):
  * `storage.exists`, N sequential calls (default 5,000, after 200 warm-up calls): p50 and p99
    latency of one call, as the caller sees it (time.perf_counter around each await);
  * `storage.exists`, M calls issued at once on one connection (default 1,000): successful
    calls per second of the whole batch's wall time (best of 3 batches), and how many calls of
    that batch failed (the server limits the calls one connection may have in progress,
    ServerConfig.max_pending_calls, 256 by default, and answers the excess with an error);
  * `storage.upload` of one S MB file (default 50) from memory, and `storage.download` of it
    back (checked byte for byte): MB/s, MB = 2**20 bytes.

    python benchmarks/server.py [--sequential N] [--concurrent M] [--size-mb S] [--clients official]

Without an official environment the official column reads "n/a" and says why. The script exits
1 if a worker fails (a wrong download, a crash), never because a number is low.
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
from typing import TYPE_CHECKING, Callable

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


# --- what is measured, and how it is shown ----------------------------------------------------


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    format: Callable[[float], str]


def _ms(value: float) -> str:
    return f"{value * 1000:.3f} ms"


def _rate(unit: str) -> Callable[[float], str]:
    return lambda value: f"{value:,.0f} {unit}"


def _mb_s(value: float) -> str:
    return f"{value:,.1f} MB/s"


def _rows(args: argparse.Namespace) -> list[Row]:
    return [
        Row("exists_p50", f"storage.exists x{args.sequential:,} sequential, p50", _ms),
        Row("exists_p99", f"storage.exists x{args.sequential:,} sequential, p99", _ms),
        Row("exists_concurrent_rate", f"storage.exists x{args.concurrent:,} concurrent, answered", _rate("calls/s")),
        Row("exists_concurrent_errors", "  calls of the batch that failed", lambda v: f"{v:,.0f}"),
        Row("upload_mb_s", f"storage.upload {args.size_mb} MB", _mb_s),
        Row("download_mb_s", f"storage.download {args.size_mb} MB", _mb_s),
    ]


def _latencies(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "exists_p50": statistics.median(ordered),
        "exists_p99": ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))],
    }


# --- the official client column ---------------------------------------------------------------


def _official_python() -> tuple[str | None, str]:
    """(interpreter, why not) for the official client."""
    candidates = [os.environ.get("OFFICIAL_PYTHON"), str(OFFICIAL_VENV_PYTHON), sys.executable]
    for python in candidates:
        if python and Path(python).exists() and _can_import(python, "meshagent.api, meshagent.api.urls"):
            return python, ""
    return None, "official meshagent-api 0.56 environment not found (run `make official-env`, needs Python 3.13)"


async def _official_workloads(url: str, args: argparse.Namespace) -> dict[str, float]:
    from meshagent.api import ApiScope, ParticipantToken, RoomClient, WebSocketClientProtocol

    token = ParticipantToken(name="bench-official")
    token.add_role_grant("agent")
    token.add_room_grant(ROOM)
    token.add_api_grant(ApiScope.full())
    jwt = token.to_jwt()  # signed with MESHAGENT_API_KEY
    results: dict[str, float] = {}
    async with RoomClient(protocol_factory=WebSocketClientProtocol(url=url, token=jwt).create_factory()) as room:
        storage = room.storage
        for _ in range(WARMUP_CALLS):
            await storage.exists(path="bench/missing.bin")

        samples = []
        clock = time.perf_counter
        for _ in range(args.sequential):
            start = clock()
            await storage.exists(path="bench/missing.bin")
            samples.append(clock() - start)
        results.update(_latencies(samples))

        best = None
        for _ in range(CONCURRENT_BATCHES):
            start = clock()
            outcomes = await asyncio.gather(
                *(storage.exists(path=f"bench/missing-{i}.bin") for i in range(args.concurrent)), return_exceptions=True
            )
            elapsed = clock() - start
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            rate = (args.concurrent - len(failed)) / elapsed
            if best is None or rate > best[0]:
                best = (rate, failed)
        assert best is not None
        results["exists_concurrent_rate"] = best[0]
        results["exists_concurrent_errors"] = len(best[1])
        if best[1]:
            results["exists_concurrent_first_error"] = str(best[1][0])  # type: ignore[assignment]

        data = os.urandom(args.size_mb * MB)
        start = clock()
        await storage.upload(path="bench/big.bin", data=data, overwrite=True)
        results["upload_mb_s"] = args.size_mb / (clock() - start)
        start = clock()
        file = await storage.download(path="bench/big.bin")
        results["download_mb_s"] = args.size_mb / (clock() - start)
        if file.data != data:
            raise RuntimeError(f"download returned {len(file.data)} bytes that differ from the {len(data)} uploaded")
    return results


def _official_worker(api_url: str, args: argparse.Namespace) -> dict[str, float]:
    from meshagent.api.urls import websocket_room_url

    os.environ["MESHAGENT_API_URL"] = api_url  # the official client derives the room URL from it
    return asyncio.run(_official_workloads(websocket_room_url(room_name=ROOM), args))


@dataclass(frozen=True)
class Client:
    name: str  # column heading
    find_python: Callable[[], tuple[str | None, str]]
    worker: Callable[[str, argparse.Namespace], dict[str, float]]  # (api_url, args) -> numbers


#: The table's columns. A client is added here: how to find its interpreter and its workloads.
CLIENTS: dict[str, Client] = {
    "official": Client("official meshagent-api 0.56", _official_python, _official_worker),
}


# --- the server -------------------------------------------------------------------------------


def _can_import(python: str, modules: str) -> bool:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC)
    probe = subprocess.run([python, "-c", f"import {modules}"], env=env, capture_output=True, timeout=60)
    return probe.returncode == 0


def _server_python() -> str:
    candidates = [os.environ.get("MESHAGENT_SERVER_PYTHON"), sys.executable, str(DEV_VENV_PYTHON)]
    for python in candidates:
        if python and Path(python).exists() and _can_import(python, "trio, h11, websockets, meshagent_trio.server"):
            return python
    raise SystemExit("no interpreter can run our server (needs trio, h11, websockets): run `make test` once, or set MESHAGENT_SERVER_PYTHON")


def _server_process_module(server_python: str) -> ModuleType:
    """`meshagent_trio.server.process` (LocalServerProcess) from src/. It needs our server's
    dependencies in this process: when this interpreter lacks them, the script re-executes
    itself under `server_python`, which has them."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    try:
        from meshagent_trio.server import process
    except ImportError:
        if os.environ.get("MESHAGENT_BENCH_REEXEC"):
            raise
        env = {**os.environ, "MESHAGENT_BENCH_REEXEC": "1", "MESHAGENT_SERVER_PYTHON": server_python}
        os.execve(server_python, [server_python, str(Path(__file__).resolve()), *sys.argv[1:]], env)
    return process


# --- parent: run the workers, print the table --------------------------------------------------


def _run_worker(client_key: str, python: str, server: LocalServerProcess, args: argparse.Namespace) -> tuple[dict | None, str]:
    command = [
        python,
        str(Path(__file__).resolve()),
        "--worker",
        client_key,
        "--api-url",
        server.api_url,
        "--sequential",
        str(args.sequential),
        "--concurrent",
        str(args.concurrent),
        "--size-mb",
        str(args.size_mb),
    ]
    env = {**os.environ, "MESHAGENT_API_KEY": server.api_key}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {WORKER_TIMEOUT:.0f} s"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return None, f"exit {done.returncode}: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
    return json.loads(lines[-1]), ""


def _print_table(rows: list[Row], columns: list[tuple[str, dict | None, str]]) -> None:
    label_width = max(len(row.label) for row in rows)
    cells = [[(row.format(result[row.key]) if result is not None and row.key in result else "n/a") for _, result, _ in columns] for row in rows]
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, (name, _, _) in enumerate(columns)]
    header = "workload".ljust(label_width) + "".join(f"  {name:>{w}}" for (name, _, _), w in zip(columns, widths))
    print(header)
    print("-" * len(header))
    for row, line in zip(rows, cells):
        print(row.label.ljust(label_width) + "".join(f"  {cell:>{w}}" for cell, w in zip(line, widths)))
    for name, result, why in columns:
        if result is None:
            print(f"{name}: n/a ({why})")
        elif "exists_concurrent_first_error" in result:
            print(f"{name}: first failed concurrent call: {result['exists_concurrent_first_error']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=5000, help="sequential storage.exists calls")
    parser.add_argument("--concurrent", type=int, default=1000, help="storage.exists calls issued at once")
    parser.add_argument("--size-mb", type=int, default=50, help="size of the uploaded/downloaded file, MB")
    parser.add_argument("--clients", default=",".join(CLIENTS), help=f"columns, of: {', '.join(CLIENTS)}")
    parser.add_argument("--worker", choices=sorted(CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(CLIENTS[args.worker].worker(args.api_url, args)), flush=True)
        return 0

    started = time.perf_counter()
    server_python = _server_python()
    helper = _server_process_module(server_python)
    server = helper.LocalServerProcess(python=server_python)  # a free port, a fresh data dir and API key
    try:
        server.start()
    except BaseException as error:
        server.close()
        if isinstance(error, helper.ServerStartError):  # says why, with the server's output
            raise SystemExit(str(error)) from None
        raise
    columns: list[tuple[str, dict | None, str]] = []
    failed = False
    try:
        print(f"server: meshagent-trio local server, subprocess on 127.0.0.1:{server.port} ({server_python})")
        for key in [k.strip() for k in args.clients.split(",") if k.strip()]:
            client = CLIENTS[key]
            python, why = client.find_python()
            if python is None:
                columns.append((client.name, None, why))
                continue
            version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True).stdout.strip()
            print(f"client: {client.name}, subprocess ({python}, Python {version})")
            result, why = _run_worker(key, python, server, args)
            failed |= result is None
            columns.append((client.name, result, why))
    finally:
        server.close()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}")
    print()
    _print_table(_rows(args), columns)
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
