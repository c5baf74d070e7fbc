"""`meshagent-trio conformance`: every check passes against our server, and checks do fail.

Failing targets are real servers over real sockets: a small Trio room server written here that
lets anyone in and implements nothing (it answers every request with an error), and our own
server configured to trust expired tokens (a clock a day behind) and to accept any message size.
The CLI runs as a subprocess against `LocalServerProcess`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
import trio

from meshagent_core import ErrorContent, FramingError, ServerSession, encode_message
from meshagent_core.session import events as ev
from meshagent_trio.conformance import CHECKS, Check, CheckFailed, ConformanceReport, Context, run_conformance, select_checks
from meshagent_trio.conformance.runner import run_check
from meshagent_trio.conformance.target import Target
from meshagent_trio.conformance.wire import StrictReader
from meshagent_trio.server import Credentials, Server, ServerConfig
from meshagent_trio.server.process import LocalServerProcess, new_api_key
from meshagent_trio.websocket import WebSocketClosed, accept_websocket

CLI = str(Path(sys.executable).with_name("meshagent-trio"))
HANDSHAKE_REFUSALS = ["handshake.wrong-secret", "handshake.expired-token", "handshake.other-room", "handshake.missing-token"]


def api_url(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


def failures(report: ConformanceReport) -> str:
    return "\n".join(result.line() for result in report.failures)


# --- our server: every check passes ------------------------------------------------------------


async def test_every_check_passes_against_our_server(server: Server, credentials: Credentials) -> None:
    report = await run_conformance(api_url(server), credentials.api_key, timeout=60)
    assert report.failures == [], failures(report)
    assert [result.name for result in report.results] == list(CHECKS)
    assert len(CHECKS) >= 20 and report.exit_code == 0
    areas = {name.split(".")[0] for name in CHECKS}
    assert areas == {"handshake", "framing", "content", "errors", "storage", "queues", "messaging", "agents", "sync"}
    assert report.summary().startswith(f"{len(CHECKS)} checks against {api_url(server)}: {len(CHECKS)} passed, 0 failed")


# --- a server that lets anyone in and implements nothing ---------------------------------------


class OpenDoor:
    """Upgrades every request to `/rooms/<name>`, whatever its token (or none), sends `room_ready`
    and `connected/init`, then answers every request with `error 1008 not implemented`; packets
    that break framing are dropped, and no message size is refused."""

    def __init__(self) -> None:
        self.upgrades = 0

    async def serve(self, stream: trio.SocketStream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = await stream.receive_some(65536)
            if not data:
                return
            head += data
        path = head.split(b" ", 2)[1].decode()
        room = path.split("?", 1)[0].rsplit("/rooms/", 1)[-1]
        websocket = await accept_websocket(stream, head)
        self.upgrades += 1
        session = ServerSession(max_message_size=1 << 62)
        session.send_room_ready(room, f"ws://127.0.0.1{path}", f"session-{self.upgrades}")
        session.send_connected(f"participant-{self.upgrades}", {})
        try:
            while True:
                await websocket.send_packets(session.packets_to_send())
                for packet in await websocket.receive_packets():
                    try:
                        session.receive_packet(packet)
                    except FramingError:
                        pass  # dropped, as the reference receiver does
                for event in session.events_received():
                    if isinstance(event, (ev.ToolInvoked, ev.RequestReceived)):
                        session.respond(event.request_id, ErrorContent(text="not implemented", code=1008))
        except WebSocketClosed:
            with trio.move_on_after(2):
                await websocket.close()
        except trio.BrokenResourceError:
            pass


async def test_checks_fail_against_a_server_that_lets_anyone_in(nursery: trio.Nursery) -> None:
    door = OpenDoor()
    (listener,) = await nursery.start(partial(trio.serve_tcp, door.serve, 0, host="127.0.0.1"))
    port = listener.socket.getsockname()[1]
    report = await run_conformance(f"http://127.0.0.1:{port}", new_api_key(), timeout=9)

    assert report.exit_code == 1 and not report.passed
    assert report.result("handshake.valid-token").passed, report.result("handshake.valid-token").line()
    for name in HANDSHAKE_REFUSALS:
        result = report.result(name)
        assert not result.passed and "was accepted: the upgrade answered 101" in result.detail, result.line()
    # It answers, but with errors: every other check fails, each with a one-line reason.
    assert [r.name for r in report.failures] == [name for name in CHECKS if name != "handshake.valid-token"]
    for result in report.failures:
        assert result.detail and "\n" not in result.detail, result.line()
    assert "not implemented" in report.result("storage.basics").detail
    assert "error code 1008 OPERATION_FAILED, expected 1002 INVALID_REQUEST" in report.result("errors.bad-arguments").detail
    assert "the connection no longer answers properly" in report.result("framing.malformed-packet").detail
    assert "nothing refused the announced ~4 TiB message" in report.result("framing.oversized-message").detail
    assert door.upgrades >= len(CHECKS)


# --- our server, misconfigured: the specific checks fail ---------------------------------------


async def test_a_server_trusting_expired_tokens_and_any_size_fails_those_checks(
    tmp_path: Path, credentials: Credentials, nursery: trio.Nursery
) -> None:
    config = ServerConfig(
        data_dir=tmp_path / "data",
        credentials=credentials,
        port=0,
        clock=lambda: time.time() - 86400,  # a day behind: a token expired an hour ago is still good
        max_message_size=1 << 62,  # a header announcing 4 TiB is taken at its word
    )
    server = Server(config)
    await nursery.start(server.serve)
    report = await run_conformance(api_url(server), credentials.api_key, select=["handshake", "framing"], timeout=9)

    assert {r.name for r in report.failures} == {"handshake.expired-token", "framing.oversized-message"}, failures(report)
    assert report.result("handshake.expired-token").detail == (
        "a token that expired an hour ago was accepted: the upgrade answered 101 Switching Protocols instead of 403"
    )
    assert report.exit_code == 1
    assert {r.name for r in report.results} == {name for name in CHECKS if name.startswith(("handshake.", "framing."))}


# --- the runner: a check that raises or hangs is a FAIL, not a crash -------------------------


async def test_a_check_that_raises_or_hangs_fails_with_one_line(server: Server, credentials: Credentials) -> None:
    target = Target(api_url(server), credentials.api_key)

    async def raises(ctx: Context) -> str:
        ctx.step = "doing something doomed"
        raise ValueError("first line\nsecond line")

    async def hangs(ctx: Context) -> str:
        async with ctx.connect(ctx.new_room()) as client:
            await client.storage.exists(path="x")
            ctx.step = "waiting for nothing"
            await trio.sleep_forever()
        return "unreachable"

    async def fails(ctx: Context) -> str:
        raise CheckFailed("the reason")

    raised = await run_check(Check("test.raises", "", raises), target, timeout=10)
    assert (raised.passed, raised.detail) == (False, "while doing something doomed: ValueError: first line second line")
    hung = await run_check(Check("test.hangs", "", hangs), target, timeout=2)
    assert not hung.passed and hung.detail.startswith("timed out after 2s while "), hung.line()
    failed = await run_check(Check("test.fails", "", fails), target, timeout=10)
    assert (failed.passed, failed.line()) == (False, "FAIL  test.fails                         the reason")


async def test_a_refused_key_fails_every_check_that_connects(server: Server) -> None:
    report = await run_conformance(api_url(server), new_api_key(), select=["handshake.valid-token", "storage.basics"], timeout=10)
    assert [r.passed for r in report.results] == [False, False]
    assert "a valid token was refused: websocket upgrade refused with HTTP 403" in report.result("handshake.valid-token").detail
    assert "403" in report.result("storage.basics").detail


def test_the_strict_reader_records_what_breaks_framing() -> None:
    """What `framing.*` holds the server's packets to: exact 1,024-byte data packets but the
    last, consecutive indices, no interleaving."""
    good = encode_message(7, "__response__", bytes(range(256)) * 10)  # 2,560 bytes: 1024 + 1024 + 512
    reader = StrictReader()
    assert [reader.feed(p) for p in good][-1] == (7, "__response__", bytes(range(256)) * 10, 3)
    assert reader.violations == []

    short_middle = [good[0], good[1][:-1], *good[2:]]  # a 1,023-byte data packet before the last
    interleaved = [good[0], good[1], *encode_message(8, "x", b"y"), good[2], good[3]]
    skipped = [good[0], good[1], good[3]]
    for packets, violation in [
        (short_middle, "data packet 1/3 of message 7 carries 1023 bytes"),
        (interleaved, "message 8 started while message 7 was incomplete"),
        (skipped, "packet 3 of message 7 while packet 2 of message 7 was expected"),
        ([b"\x00" * 5], "a packet of 5 bytes"),
    ]:
        reader = StrictReader()
        delivered = [m for m in map(reader.feed, packets) if m is not None]
        assert violation in " | ".join(reader.violations)
        assert all(m.id != 7 for m in delivered)  # the broken message is never delivered


def test_selectors_and_bad_arguments() -> None:
    assert [c.name for c in select_checks(["handshake.other-room", "queues"])] == ["handshake.other-room", "queues.basics"]
    assert [c.name for c in select_checks(["*.large-*"])] == ["framing.large-message", "storage.large-file"]
    with pytest.raises(ValueError, match="no conformance check matches 'nope'"):
        select_checks(["nope"])
    with pytest.raises(ValueError, match="API URL must look like"):
        Target("127.0.0.1:8078", new_api_key())
    with pytest.raises(ValueError, match="malformed API key"):
        Target("http://127.0.0.1:8078", "not-a-key")


# --- the command line --------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "conformance", *args], capture_output=True, text=True, timeout=300, env=env)


def test_cli_against_a_server_process(tmp_path: Path) -> None:
    with LocalServerProcess(tmp_path / "data") as server:
        passed = run_cli(server.api_url, "--api-key", server.api_key)
        refused = run_cli(server.api_url, "--api-key", new_api_key(), "--check", "handshake.*", "--check", "storage.basics")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    lines = passed.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [["PASS", name] for name in CHECKS]
    assert lines[-1].startswith(f"{len(CHECKS)} checks against {server.api_url}: {len(CHECKS)} passed, 0 failed")

    assert refused.returncode == 1, refused.stdout + refused.stderr
    verdicts = {line.split()[1]: line.split()[0] for line in refused.stdout.splitlines()[:-1]}
    # Tokens signed with a key the server does not know: nothing gets in, so the refusals pass.
    assert verdicts == {
        "handshake.valid-token": "FAIL",
        **{name: "PASS" for name in HANDSHAKE_REFUSALS},
        "storage.basics": "FAIL",
    }
    assert "5 passed, 1 failed" not in refused.stdout and ": 4 passed, 2 failed (2 FAILED)" in refused.stdout


def test_cli_usage_errors(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    missing_key = run_cli("http://127.0.0.1:9", env=env)
    assert missing_key.returncode == 2 and "no API key" in missing_key.stderr
    missing_url = run_cli(env=env)
    assert missing_url.returncode == 2 and "no API URL" in missing_url.stderr
    unknown = run_cli("http://127.0.0.1:9", "--api-key", new_api_key(), "--check", "nope", env=env)
    assert unknown.returncode == 2 and "no conformance check matches 'nope'" in unknown.stderr
    listed = run_cli("--list", "--check", "storage", env=env)
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [name for name in CHECKS if name.startswith("storage.")]
