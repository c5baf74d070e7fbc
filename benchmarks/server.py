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
import sys
import time
from pathlib import Path
from typing import Any

import _common as common
from _common import Client, Row

SCRIPT = Path(__file__).resolve()


def _rows(args: argparse.Namespace) -> list[Row]:
    return common.storage_rows(args)


# --- the official client column ---------------------------------------------------------------


def _official_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(common.official_storage_workloads(api_url, args))


#: The table's columns. A client is added here: how to find its interpreter and its workloads.
CLIENTS: dict[str, Client] = {
    "official": Client("official meshagent-api 0.56", common.official_python, _official_worker),
}


# --- parent: run the workers, print the table --------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_storage_arguments(parser)
    common.add_client_arguments(parser, CLIENTS)
    args = parser.parse_args()
    if common.run_as_worker(args, CLIENTS):
        return 0

    started = time.perf_counter()
    columns, failed = common.run_clients(SCRIPT, args, CLIENTS, common.storage_worker_argv(args))
    print()
    common.print_table(_rows(args), columns)
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
