"""Our client (meshagent_trio) against the official meshagent-api 0.56 client, on our local server.

Same server, same work, two columns and their ratio. The server runs as a subprocess
(`LocalServerProcess`: a free port, a fresh data directory and API key); each client runs as a
WORKER subprocess (this script with `--worker NAME`), ours under our server's interpreter, the
official one under `.venv-official` (`make official-env`, Python 3.13), exactly as
`benchmarks/server.py` does (the shared parts are in `benchmarks/_common.py`).

Rows (each client does the same work, with the same measuring loop):
  * `storage.exists`, N sequential calls (default 5,000, after 200 warm-up calls): p50 and p99
    latency of one call as the caller sees it;
  * `storage.exists`, M calls issued at once on one connection (default 1,000): answered calls
    per second of the batch's wall time (best of 3 batches), and how many failed;
  * `storage.upload` of one S MB file (default 50) from memory, and `storage.download` of it back
    (checked byte for byte): MB/s, MB = 2**20 bytes;
  * messaging: participant A sends K messages (default 10,000) to participant B, at most W sends in
    flight (default 100); messages per second from A's first send until B has received all K
    (B checks it got every one).

Our column uses the `room.storage` / `room.messaging` sub-client methods where they exist, else
the raw protocol through `room.invoke` / `room.stream_call` (protocol/room-apis.md §2.4, §2.5, §3); the
table's footer says which. Targets: concurrent throughput >= 2x official, p50 latency <= 0.7x.

    python benchmarks/client.py [--sequential N] [--concurrent M] [--size-mb S] [--messages K] [--window W] [--clients ours,official] [--rounds R] [--pin none|one-cpu|split]

On a shared or noisy machine use `--rounds R`: the whole comparison (a fresh server, our worker,
then the official one) runs R times; each cell is the median over the rounds, and each ratio is
the median of the R ratios, each taken within one round (both clients measured minutes apart at
most, against the same server). The per-round ratios of the target rows are printed below.

Small-call latency depends on where the OS puts the server and the client: on a VM whose idle
virtual CPUs halt, a call across two CPUs pays two wake-ups, which vary from run to run, while
on one CPU it pays none. `--pin one-cpu` or `--pin split` fixes the placement (for both columns).

Our worker runs under our server's interpreter unless `MESHAGENT_CLIENT_PYTHON` names another
one (with our dependencies), e.g. a Python 3.13 one, to compare both clients on one interpreter.

A missing official environment makes its column "n/a" and says why. The script exits 1 if a
worker fails (a wrong download, a lost message, a crash), never because a number is low.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import _common as common
from _common import Client, MessagingCalls, Row, StorageCalls

SCRIPT = Path(__file__).resolve()
MESSAGE_TYPE = "bench"

#: Row key -> (comparison, factor): the ratio ours/official the target asks for.
TARGETS: dict[str, tuple[str, float]] = {
    "exists_p50": ("<=", 0.7),
    "exists_concurrent_rate": (">=", 2.0),
}


def _rows(args: argparse.Namespace) -> list[Row]:
    """The storage rows of `server.py`, each group followed by the client's own CPU time per call
    (the worker process's CPU time: the server's share of the latency excluded), then messaging."""
    rows = common.storage_rows(args)
    cpu = lambda key: Row(key, "  client CPU time per call", common.us)  # noqa: E731
    rows.insert(2, cpu("exists_cpu"))
    rows.insert(5, cpu("exists_concurrent_cpu"))
    return [
        *rows,
        Row("messages_rate", f"messaging.send x{args.messages:,} A to B, all received", common.rate("msgs/s")),
        Row("messages_cpu", "  client CPU time per message (A and B)", common.us),
    ]


def _worker_argv(args: argparse.Namespace) -> list[str]:
    return [*common.storage_worker_argv(args), "--messages", str(args.messages), "--window", str(args.window)]


# --- our client -------------------------------------------------------------------------------


def _ours_python() -> tuple[str | None, str]:
    """`MESHAGENT_CLIENT_PYTHON` if set (e.g. a Python 3.13 environment with our dependencies, to
    compare on the official client's interpreter), else where our server runs (it has them)."""
    python = os.environ.get("MESHAGENT_CLIENT_PYTHON")
    if python:
        if common.can_import(python, "trio, msgspec, websockets, meshagent_trio"):
            return python, ""
        return None, f"MESHAGENT_CLIENT_PYTHON={python} cannot import meshagent_trio's dependencies"
    return common.server_python(), ""


async def _trio_gather(thunks: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    import trio

    results: list[Any] = [None] * len(thunks)

    async def run(i: int, thunk: Callable[[], Awaitable[Any]]) -> None:
        try:
            results[i] = await thunk()
        except Exception as error:
            results[i] = error

    async with trio.open_nursery() as nursery:
        for i, thunk in enumerate(thunks):
            nursery.start_soon(run, i, thunk)
    return results


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _raw_upload(room: Any, path: str, data: bytes) -> None:
    """`storage.upload`, pull-driven (protocol/room-apis.md §2.4): start; for each pull one data chunk of
    the pulled size; on the pull after the last byte, close the input; the server commits and
    closes the stream."""
    import msgspec
    from meshagent_core import BinaryContent, ControlContent, ErrorContent, RoomException
    from meshagent_core.toolkits import storage as contract

    start = contract.UploadStart(
        path=path, overwrite=True, name=path.rsplit("/", 1)[-1], mime_type="application/octet-stream", size=len(data)
    )
    data_headers = msgspec.to_builtins(contract.UploadData())
    async with room.stream_call("storage", "upload", input_stream=True) as call:
        call.send(BinaryContent(headers=msgspec.to_builtins(start), data=b""))
        response = await call.response()
        if not (isinstance(response, ControlContent) and response.is_open):
            raise RoomException(f"storage.upload answered {response!r} instead of a stream")
        offset = 0
        while True:
            chunk = await call.next_chunk()
            if isinstance(chunk, ErrorContent):
                raise chunk.to_exception()
            if chunk is None or not isinstance(chunk, BinaryContent):
                raise RoomException(f"storage.upload: expected a pull, got {chunk!r}")
            pull = msgspec.convert(chunk.headers, type=contract.UploadPull)
            if offset >= len(data):
                call.close_input()
                break
            size = pull.chunk_size if pull.chunk_size and pull.chunk_size > 0 else contract.DEFAULT_CHUNK_SIZE
            call.send(BinaryContent(headers=data_headers, data=data[offset : offset + size]))
            offset += size
        last = await call.next_chunk()  # None: committed and closed normally
        if isinstance(last, ErrorContent):
            raise last.to_exception()
        if last is not None:
            raise RoomException(f"storage.upload: unexpected chunk after the input close: {last!r}")


async def _raw_download(room: Any, path: str) -> bytes:
    """`storage.download`, pull-driven (protocol/room-apis.md §2.5), 64 KiB chunks as the official client."""
    import msgspec
    from meshagent_core import BinaryContent, ControlContent, ErrorContent, RoomException
    from meshagent_core.toolkits import storage as contract

    pull = BinaryContent(headers=msgspec.to_builtins(contract.DownloadPull()), data=b"")
    async with room.stream_call("storage", "download", input_stream=True) as call:
        call.send(BinaryContent(headers=msgspec.to_builtins(contract.DownloadStart(path=path)), data=b""))
        response = await call.response()
        if not (isinstance(response, ControlContent) and response.is_open):
            raise RoomException(f"storage.download answered {response!r} instead of a stream")
        first = await call.next_chunk()
        if isinstance(first, ErrorContent):
            raise first.to_exception()
        if not isinstance(first, BinaryContent):
            raise RoomException(f"storage.download: expected the start chunk, got {first!r}")
        size = msgspec.convert(first.headers, type=contract.DownloadStarted).size
        received = bytearray()
        while len(received) < size:
            call.send(pull)
            chunk = await call.next_chunk()
            if isinstance(chunk, ErrorContent):
                raise chunk.to_exception()
            if not isinstance(chunk, BinaryContent):
                raise RoomException(f"storage.download: expected data, got {chunk!r}")
            msgspec.convert(chunk.headers, type=contract.DownloadData)
            received += chunk.data
        if await call.next_chunk() is not None:
            raise RoomException("storage.download: more data than the announced size")
        return bytes(received)


def _ours_storage_calls(room: Any) -> tuple[StorageCalls, str]:
    """Our storage calls, and how they are made (the sub-client's methods where they exist)."""
    storage = room.storage
    used: list[str] = []

    if hasattr(storage, "exists"):
        exists: Callable[[str], Awaitable[Any]] = lambda path: storage.exists(path=path)  # noqa: E731
        used.append("room.storage.exists")
    else:
        exists = lambda path: room.invoke("storage", "exists", {"path": path})  # noqa: E731
        used.append('room.invoke("storage", "exists")')

    if hasattr(storage, "upload"):
        upload: Callable[[str, bytes], Awaitable[Any]] = lambda path, data: storage.upload(path=path, data=data, overwrite=True)  # noqa: E731
        used.append("room.storage.upload")
    else:
        upload = lambda path, data: _raw_upload(room, path, data)  # noqa: E731
        used.append("raw upload stream")

    if hasattr(storage, "download"):

        async def download(path: str) -> bytes:
            return (await storage.download(path=path)).data

        used.append("room.storage.download")
    else:
        download = lambda path: _raw_download(room, path)  # noqa: E731
        used.append("raw download stream")
    return StorageCalls(exists=exists, upload=upload, download=download, gather=_trio_gather), ", ".join(used)


async def _ours_messaging(connect: Callable[[str], Any], args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """A sends to B; B counts what it receives (through `room.subscribe`, our client's event
    iterator, whatever the messaging sub-client offers on top)."""
    import msgspec
    import trio
    from meshagent_core.client.room import RemoteParticipant
    from meshagent_core.session import events as ev
    from meshagent_core.toolkits import messaging as contract

    async with connect("bench-a") as a, connect("bench-b") as b, trio.open_nursery() as nursery:
        received: set[int] = set()
        all_in = trio.Event()
        inbox = b.subscribe(ev.MessageReceived)

        async def receive() -> None:
            async for event in inbox:
                if event.type == contract.MESSAGING_ENABLED:
                    enabled.set()
                elif event.type == MESSAGE_TYPE:
                    received.add(event.message["i"])
                    if len(received) == args.messages:
                        all_in.set()
                        return

        enabled = trio.Event()
        nursery.start_soon(receive)
        messaging_a, messaging_b = a.messaging, b.messaging
        via_sub_client = all(hasattr(m, name) for m in (messaging_a, messaging_b) for name in ("enable", "send_message"))
        b_id = b.local_participant.id
        if via_sub_client:
            await _maybe_await(messaging_b.enable())
            await _maybe_await(messaging_a.enable())
            with trio.fail_after(10):
                await enabled.wait()
                to = None
                while to is None:  # A knows B once B's `participant.enabled` reached it
                    to = messaging_a.get_participant(b_id) if hasattr(messaging_a, "get_participant") else RemoteParticipant(id=b_id, role="agent", attributes={})
                    if to is None:
                        await trio.sleep(0.01)

            def send(i: int) -> Awaitable[Any]:
                return messaging_a.send_message(to=to, type=MESSAGE_TYPE, message={"i": i})

            how = "room.messaging.send_message"
        else:
            await b.invoke("messaging", "enable", {})  # A need not be enabled to send (protocol/room-apis.md §3.4)
            with trio.fail_after(10):
                await enabled.wait()

            def send(i: int) -> Awaitable[Any]:
                request = contract.SendInput(to_participant_id=b_id, type=MESSAGE_TYPE, message_json=contract.encode_message({"i": i}))
                return a.invoke("messaging", "send", msgspec.to_builtins(request))

            how = 'room.invoke("messaging", "send")'

        async def all_received() -> set[int]:
            await all_in.wait()
            return received

        with trio.fail_after(common.WORKER_TIMEOUT / 2):
            results = await common.measure_messaging(MessagingCalls(send=send, all_received=all_received, gather=_trio_gather), args)
        inbox.close()
        nursery.cancel_scope.cancel()
    return results, how


async def _ours_workloads(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import meshagent_trio
    from meshagent_core.tokens import ApiScope, ParticipantToken

    url = meshagent_trio.websocket_room_url(room_name=common.ROOM, environ={"MESHAGENT_API_URL": api_url})

    def connect(name: str) -> Any:
        return meshagent_trio.connect(url, common.bench_token(ParticipantToken, ApiScope, name))

    async with connect("bench-ours") as room:
        calls, storage_how = _ours_storage_calls(room)
        results = await common.measure_storage(calls, args)
    messaging, messaging_how = await _ours_messaging(connect, args)
    results.update(messaging)
    results["how"] = f"storage via {storage_how}; messaging via {messaging_how}"
    return results


def _ours_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import trio

    return trio.run(_ours_workloads, api_url, args)


# --- the official client ----------------------------------------------------------------------


async def _official_messaging(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    async with common.official_room(api_url, "bench-a") as a, common.official_room(api_url, "bench-b") as b:
        received: set[int] = set()
        all_in = asyncio.Event()

        def on_message(message: Any) -> None:
            if message.type == MESSAGE_TYPE:
                received.add(message.message["i"])
                if len(received) == args.messages:
                    all_in.set()

        b.messaging.on("message", on_message)
        await b.messaging.enable()
        await a.messaging.enable()
        b_id = b.local_participant.id
        async with asyncio.timeout(10):
            while (to := a.messaging.get_participant(b_id)) is None:  # B is enabled and A knows it
                await asyncio.sleep(0.01)

        async def all_received() -> set[int]:
            await all_in.wait()
            return received

        calls = MessagingCalls(
            send=lambda i: a.messaging.send_message(to=to, type=MESSAGE_TYPE, message={"i": i}),
            all_received=all_received,
            gather=common.asyncio_gather,
        )
        async with asyncio.timeout(common.WORKER_TIMEOUT / 2):
            return await common.measure_messaging(calls, args)


async def _official_workloads(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    results = await common.official_storage_workloads(api_url, args)
    results.update(await _official_messaging(api_url, args))
    return results


def _official_worker(api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_official_workloads(api_url, args))


#: The table's columns, ours first; the ratio is the first column over the second.
CLIENTS: dict[str, Client] = {
    "ours": Client("meshagent-trio", _ours_python, _ours_worker),
    "official": Client("official meshagent-api 0.56", common.official_python, _official_worker),
}


# --- parent: run the workers, print the table --------------------------------------------------


def _ratio(key: str, ours: dict | None, official: dict | None) -> float | None:
    if key != "exists_concurrent_errors" and ours and official and official.get(key) and key in ours:
        return ours[key] / official[key]
    return None


def _median_column(results: list[dict | None]) -> dict | None:
    """Each number's median over the rounds that produced one (None when no round did)."""
    measured = [result for result in results if result is not None]
    if not measured:
        return None
    merged: dict[str, Any] = dict(measured[-1])
    for key, value in measured[-1].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = statistics.median(result[key] for result in measured if key in result)
    return merged


def _ratio_and_targets(rows: list[Row], ours: dict | None, official: dict | None, round_ratios: dict[str, list[float]] | None = None) -> list[tuple[str, list[str]]]:
    ratios, targets = [], []
    for row in rows:
        ratio = _ratio(row.key, ours, official)
        if round_ratios and round_ratios.get(row.key):
            ratio = statistics.median(round_ratios[row.key])
        ratios.append("" if row.key == "exists_concurrent_errors" else f"{ratio:.2f}x" if ratio is not None else "n/a")
        if row.key in TARGETS:
            comparison, factor = TARGETS[row.key]
            verdict = "" if ratio is None else (" met" if (ratio <= factor if comparison == "<=" else ratio >= factor) else " MISSED")
            targets.append(f"{comparison} {factor:.2f}x{verdict}")
        else:
            targets.append("")
    return [("ours/official", ratios), ("target", targets)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_storage_arguments(parser)
    parser.add_argument("--messages", type=int, default=10_000, help="messages sent from A to B")
    parser.add_argument("--window", type=int, default=100, help="messaging sends in flight at once")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the comparison; medians are shown")
    common.add_client_arguments(parser, CLIENTS)
    args = parser.parse_args()
    if common.run_as_worker(args, CLIENTS):
        return 0

    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    started = time.perf_counter()
    rows = _rows(args)
    rounds: list[list[common.Column]] = []
    failed = False
    for number in range(args.rounds):
        if args.rounds > 1:
            print(f"--- round {number + 1} of {args.rounds}")
        columns, round_failed = common.run_clients(SCRIPT, args, CLIENTS, _worker_argv(args))
        rounds.append(columns)
        failed |= round_failed
    print()
    columns = [
        (name, _median_column([round_columns[i][1] for round_columns in rounds]), why)
        for i, (name, _, why) in enumerate(rounds[-1])
    ]
    round_ratios: dict[str, list[float]] = {}
    for round_columns in rounds:
        by_name = {name: result for name, result, _ in round_columns}
        for row in rows:
            ratio = _ratio(row.key, by_name.get(CLIENTS["ours"].name), by_name.get(CLIENTS["official"].name))
            if ratio is not None:
                round_ratios.setdefault(row.key, []).append(ratio)
    by_name = {name: result for name, result, _ in columns}
    extra = _ratio_and_targets(rows, by_name.get(CLIENTS["ours"].name), by_name.get(CLIENTS["official"].name), round_ratios)
    if args.rounds > 1:
        print(f"medians over {args.rounds} rounds; ratios: the median of the per-round ratios")
    common.print_table(rows, columns, extra)
    if args.rounds > 1:
        for key in TARGETS:
            if round_ratios.get(key):
                print(f"{key} per round: " + ", ".join(f"{ratio:.2f}x" for ratio in round_ratios[key]))
    for name, result, _ in columns:
        if result is not None and "how" in result:
            print(f"{name}: {result['how']}")
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
