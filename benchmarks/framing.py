"""Throughput of our protocol core against the official meshagent-api 0.56 client.

Rows:
  * packet framing, encode and decode, for 100 B, 10 KB and 1 MB messages (messages per second);
    ours: `encode_message` / `PacketReader.receive_packets` (a message's packets in one batch, as read from the socket); official: `Protocol._send_message`
    into a collecting `send_packet` / `Protocol.receive_packet` + draining its receive channel.
  * envelope pack/unpack of a realistic `room.invoke_tool` header (envelopes per second);
    ours in both JSON styles (COMPACT, and PYTHON which is byte-identical to the official bytes);
    official: `meshagent.api.messaging.pack_message` / `unpack_message`.
  * typed content: `pack_content` / `unpack_content` of a JsonContent.

Both implementations run in the same process and interpreter. The official client needs
Python 3.13: when `meshagent.api` is not importable here but `.venv-official/bin/python` exists
(`make official-env`), the script re-executes itself with that interpreter and PYTHONPATH=src.
Without it, only our numbers are printed.

Each rate is the best of several timed runs (time.perf_counter), each run long enough to
dwarf timer overhead. Before timing, both sides are checked to produce and accept each
other's bytes, so every row compares the same work. The target is ours >= 3x theirs on every
row; the table says which rows meet it, and the script does not fail on it. It exits 1 only if
the two implementations disagree on the wire format.

    python benchmarks/framing.py [--runs N] [--run-time SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
OFFICIAL_VENV_PYTHON = REPO / ".venv-official" / "bin" / "python"
_REEXEC_MARK = "MESHAGENT_BENCH_REEXECED"
TARGET_RATIO = 3.0


def _official_importable() -> bool:
    try:
        import meshagent.api.messaging  # noqa: F401
        import meshagent.api.protocol  # noqa: F401
    except Exception:
        return False
    return True


def _maybe_reexec() -> None:
    """Switch to the official client's interpreter when this one cannot import it."""
    if _official_importable() or os.environ.get(_REEXEC_MARK):
        return
    if not OFFICIAL_VENV_PYTHON.exists():
        return
    env = dict(os.environ)
    env[_REEXEC_MARK] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(SRC)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    python = str(OFFICIAL_VENV_PYTHON)
    sys.stdout.flush()
    os.execve(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]], env)


_maybe_reexec()
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

from meshagent_core.content import JsonContent, pack_content, unpack_content  # noqa: E402
from meshagent_core.envelope import JsonStyle, pack_message, unpack_message  # noqa: E402
from meshagent_core.framing import PacketReader, encode_message  # noqa: E402

HAVE_OFFICIAL = _official_importable()

HEADER = {
    "toolkit": "storage",
    "tool": "exists",
    "participant_id": None,
    "on_behalf_of_id": None,
    "arguments": {"type": "json", "json": {"path": "a.txt"}},
    "tool_call_id": "0123456789abcdef0123456789abcdef",
}
CONTENT_JSON = {"path": "a.txt", "exists": True, "size": 1234, "tags": ["x", "y"]}
SIZES = [("100 B", 100), ("10 KB", 10 * 1024), ("1 MB", 1024 * 1024)]
MESSAGE_TYPE = "room.invoke_tool"
MESSAGE_ID = 42

Case = Callable[[int], None]  # runs the operation n times


class InteropMismatch(Exception):
    pass


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise InteropMismatch(what)


# --- timing ------------------------------------------------------------------------------


def _calibrate(case: Case, run_time: float) -> int:
    """How many operations make one run of about `run_time` seconds."""
    n = 1
    while True:  # grow n until one run takes a tenth of run_time
        start = time.perf_counter()
        case(n)
        elapsed = time.perf_counter() - start
        if elapsed >= run_time / 10 or n >= 1 << 30:
            break
        n *= 2 if elapsed < run_time / 100 else 4
    return max(1, int(n * run_time / max(elapsed, 1e-9)))


def measure(cases: list[Case], runs: int, run_time: float) -> list[float]:
    """Operations per second of each case: the best of `runs` runs of about `run_time` s.

    The cases' runs are interleaved (A B A B ...) so that both implementations see the same
    machine and allocator conditions.
    """
    counts = [_calibrate(case, run_time) for case in cases]
    best = [float("inf")] * len(cases)
    for _ in range(runs):
        for i, (case, n) in enumerate(zip(cases, counts)):
            start = time.perf_counter()
            case(n)
            best[i] = min(best[i], time.perf_counter() - start)
    return [n / t for n, t in zip(counts, best)]


# --- our side ----------------------------------------------------------------------------


def ours_encode(data: bytes) -> Case:
    def run(n: int) -> None:
        for _ in range(n):
            encode_message(MESSAGE_ID, MESSAGE_TYPE, data)

    return run


def ours_decode(packets: list[bytes]) -> Case:
    def run(n: int) -> None:
        reader = PacketReader()
        receive = reader.receive_packets  # the batch API our sessions use
        message = None
        for _ in range(n):
            # Like the official case below, keep the previous message alive until the next
            # one is complete (freeing a 1 MB result first changes what malloc does).
            (message,) = receive(packets)
        assert message is not None

    return run


def ours_pack(style: JsonStyle) -> Case:
    def run(n: int) -> None:
        for _ in range(n):
            pack_message(HEADER, b"", style=style)

    return run


def ours_unpack(data: bytes) -> Case:
    def run(n: int) -> None:
        for _ in range(n):
            unpack_message(data)

    return run


def ours_pack_content(content: JsonContent) -> Case:
    def run(n: int) -> None:
        for _ in range(n):
            pack_content(content)

    return run


def ours_unpack_content(data: bytes) -> Case:
    def run(n: int) -> None:
        for _ in range(n):
            unpack_content(data)

    return run


# --- official side -----------------------------------------------------------------------
# The official Protocol is asyncio-based: its constructor wants an event loop and sending is a
# coroutine. Everything official is therefore set up and timed inside one running loop
# (`asyncio.run(main_async())`); the send coroutine is stepped directly by `_sync`.


class Official:
    def __init__(self) -> None:
        from meshagent.api import messaging
        from meshagent.api.protocol import Protocol

        class CollectingProtocol(Protocol):
            """Keeps sent packets in `sent` instead of writing them to a socket."""

            def __init__(self) -> None:
                super().__init__()
                self.sent: list[bytes] = []
                self._open = True  # _send_message stops after the header packet otherwise

            async def send_packet(self, data: bytes) -> None:
                self.sent.append(data)

        self.messaging = messaging
        self.Protocol = CollectingProtocol

    def make_protocol(self):
        return self.Protocol()

    async def encode(self, data: bytes) -> list[bytes]:
        proto = self.make_protocol()
        await proto._send_message(message_id=MESSAGE_ID, type=MESSAGE_TYPE, data=data)
        return [bytes(packet) for packet in proto.sent]

    def decode(self, packets: list[bytes]):
        proto = self.make_protocol()
        messages = []
        for packet in packets:
            proto.receive_packet(packet)
            while not proto._recv_ch.empty():
                messages.append(proto._recv_ch.recv_nowait())
        return messages

    def encode_case(self, data: bytes):
        proto = self.make_protocol()
        sent = proto.sent
        send = proto._send_message

        async def run(n: int) -> None:
            for _ in range(n):
                await send(message_id=MESSAGE_ID, type=MESSAGE_TYPE, data=data)
                sent.clear()

        return run

    def round_trip_case(self, data: bytes):
        proto = self.make_protocol()
        sent = proto.sent
        send = proto._send_message
        receive = proto.receive_packet
        recv_ch = proto._recv_ch

        async def run(n: int) -> None:
            for _ in range(n):
                await send(message_id=MESSAGE_ID, type=MESSAGE_TYPE, data=data)
                for packet in sent:
                    receive(packet)
                sent.clear()
                message = recv_ch.recv_nowait()
            assert message.data == data

        return run

    def decode_case(self, packets: list[bytes]):
        proto = self.make_protocol()
        receive = proto.receive_packet
        recv_ch = proto._recv_ch

        def run(n: int) -> None:
            for _ in range(n):
                for packet in packets:
                    receive(packet)
                message = recv_ch.recv_nowait()
            assert message is not None

        return run

    def pack_case(self) -> Case:
        pack = self.messaging.pack_message

        def run(n: int) -> None:
            for _ in range(n):
                pack(HEADER)

        return run

    def unpack_case(self, data: bytes) -> Case:
        unpack = self.messaging.unpack_message

        def run(n: int) -> None:
            for _ in range(n):
                unpack(data)

        return run

    def pack_content_case(self, content) -> Case:
        pack = self.messaging.pack_content

        def run(n: int) -> None:
            for _ in range(n):
                pack(content)

        return run

    def unpack_content_case(self, data: bytes) -> Case:
        unpack = self.messaging.unpack_content

        def run(n: int) -> None:
            for _ in range(n):
                unpack(data)

        return run


def _sync(coro_fn) -> Case:
    """A coroutine-function case as a plain callable, driven without scheduling.

    The official `_send_message` into a collecting `send_packet` never suspends, so stepping
    the coroutine once runs it to completion; this measures the official code, not the loop.
    """

    def run(n: int) -> None:
        coro = coro_fn(n)
        try:
            coro.send(None)
        except StopIteration:
            return
        coro.close()
        raise RuntimeError("official send suspended unexpectedly")

    return run


# --- cross-checks ------------------------------------------------------------------------


async def cross_check(official: Official) -> None:
    """Both sides produce and accept each other's bytes (outside any timed loop)."""
    for label, size in SIZES:
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        ours = encode_message(MESSAGE_ID, MESSAGE_TYPE, data)
        theirs = await official.encode(data)
        _check(ours == theirs, f"framing {label}: our packets differ from the official sender's")
        got = official.decode(ours)
        _check(
            len(got) == 1 and (got[0].id, got[0].type, got[0].data) == (MESSAGE_ID, MESSAGE_TYPE, data),
            f"framing {label}: the official receiver did not reassemble our packets",
        )
        back = PacketReader().receive_packets(theirs)
        _check(
            back == [(MESSAGE_ID, MESSAGE_TYPE, data)],
            f"framing {label}: our reader did not reassemble the official packets",
        )

    m = official.messaging
    theirs = m.pack_message(HEADER)
    _check(
        pack_message(HEADER, style=JsonStyle.PYTHON) == theirs,
        "envelope: PYTHON style is not byte-identical to the official pack_message",
    )
    for style in JsonStyle:
        _check(
            m.unpack_message(pack_message(HEADER, style=style)) == (HEADER, b""),
            f"envelope: official unpack_message disagrees on our {style.name} bytes",
        )
    _check(unpack_message(theirs) == (HEADER, b""), "envelope: our unpack_message disagrees")

    ours_content = pack_content(JsonContent(json=CONTENT_JSON))
    their_content = m.pack_content(m.JsonContent(json=CONTENT_JSON))
    decoded = m.unpack_content(ours_content)
    _check(
        isinstance(decoded, m.JsonContent) and decoded.json == CONTENT_JSON,
        "content: official unpack_content disagrees on our JsonContent",
    )
    mine = unpack_content(their_content)
    _check(
        isinstance(mine, JsonContent) and mine.json == CONTENT_JSON,
        "content: our unpack_content disagrees on the official JsonContent",
    )
    _check(
        pack_content(JsonContent(json=CONTENT_JSON), style=JsonStyle.PYTHON) == their_content,
        "content: PYTHON style JsonContent is not byte-identical to the official pack_content",
    )


# --- table -------------------------------------------------------------------------------


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}/s"
    return f"{value:.1f}/s"


def ours_round_trip(data: bytes) -> Case:
    """One message encoded and decoded per iteration (the issue's encode+decode row)."""

    def run(n: int) -> None:
        receive = PacketReader().receive_packets
        for _ in range(n):
            (message,) = receive(encode_message(MESSAGE_ID, MESSAGE_TYPE, data))
        assert message.data == data

    return run


def build_rows(official: Official | None):
    """(label, our case, official case or None) for every row."""
    rows = []
    for label, size in SIZES:
        data = os.urandom(size)
        packets = encode_message(MESSAGE_ID, MESSAGE_TYPE, data)
        rows.append(
            (
                f"framing encode {label}",
                ours_encode(data),
                _sync(official.encode_case(data)) if official else None,
            )
        )
        rows.append(
            (
                f"framing decode {label}",
                ours_decode(packets),
                official.decode_case(packets) if official else None,
            )
        )
        rows.append(
            (
                f"framing encode+decode {label}",
                ours_round_trip(data),
                _sync(official.round_trip_case(data)) if official else None,
            )
        )
    official_bytes = pack_message(HEADER, style=JsonStyle.PYTHON)
    their_pack = official.pack_case() if official else None
    rows.append(("envelope pack (COMPACT)", ours_pack(JsonStyle.COMPACT), their_pack))
    rows.append(("envelope pack (PYTHON)", ours_pack(JsonStyle.PYTHON), their_pack))
    rows.append(
        (
            "envelope unpack",
            ours_unpack(official_bytes),
            official.unpack_case(official_bytes) if official else None,
        )
    )
    content = JsonContent(json=CONTENT_JSON)
    content_bytes = pack_content(content, style=JsonStyle.PYTHON)
    rows.append(
        (
            "content pack (JsonContent)",
            ours_pack_content(content),
            official.pack_content_case(official.messaging.JsonContent(json=CONTENT_JSON))
            if official
            else None,
        )
    )
    rows.append(
        (
            "content unpack (JsonContent)",
            ours_unpack_content(content_bytes),
            official.unpack_content_case(content_bytes) if official else None,
        )
    )
    return rows


async def main_async(args: argparse.Namespace) -> int:
    official = Official() if HAVE_OFFICIAL else None
    print(f"Python {platform.python_version()} ({sys.executable})")
    if official is not None:
        from importlib.metadata import version

        print(f"official client: meshagent-api {version('meshagent-api')}, same process")
        try:
            await cross_check(official)
        except InteropMismatch as error:
            print(f"INTEROP CHECK FAILED: {error}", file=sys.stderr)
            return 1
        print("interop checks: ok (each side decodes the other's bytes; framing bytes identical)")
    else:
        venv = OFFICIAL_VENV_PYTHON.relative_to(REPO)
        why = "cannot import it either" if OFFICIAL_VENV_PYTHON.exists() else "does not exist"
        print(
            "official client not found: meshagent.api is not importable here and "
            f"{venv} {why} (run `make official-env`, needs Python 3.13); showing our numbers only"
        )
    print(f"best of {args.runs} runs of ~{args.run_time:.2f} s each; target ours/official >= {TARGET_RATIO:g}x")
    print("rates: framing rows in messages/s, envelope and content rows in envelopes/s")
    print()

    header = f"{'row':<30} {'ours':>12} {'official':>12} {'ratio':>8}  target"
    print(header)
    print("-" * len(header))
    met = total = 0
    for label, our_case, their_case in build_rows(official):
        if their_case is not None:
            ours, theirs = measure([our_case, their_case], args.runs, args.run_time)
        else:
            (ours,), theirs = measure([our_case], args.runs, args.run_time), None
        if theirs:
            ratio = ours / theirs
            ok = ratio >= TARGET_RATIO
            met += ok
            total += 1
            verdict = "ok" if ok else "MISSED"
            ratio_s = f"{ratio:.2f}x"
        else:
            ratio_s, verdict = "-", "-"
        print(f"{label:<30} {_rate(ours):>12} {_rate(theirs):>12} {ratio_s:>8}  {verdict}", flush=True)
    if total:
        print()
        print(f"{met}/{total} rows meet the {TARGET_RATIO:g}x target")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (best is kept)")
    parser.add_argument("--run-time", type=float, default=0.12, help="seconds per timed run")
    args = parser.parse_args()
    # The official Protocol and Chan need a running event loop at construction.
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
