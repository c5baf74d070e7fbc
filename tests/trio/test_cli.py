import os
import subprocess
import sys
from pathlib import Path

from meshagent_trio.demo import run_demo, run_transcript


def test_transcript_runs_every_step() -> None:
    lines: list[str] = []
    counts = run_transcript(lines.append)
    assert counts == {"failed_on_close": 1}
    text = "\n".join(lines)
    for expected in ("SessionReady", "ResponseReceived", "ResponseStreamClosed", "ToolCallReceived", "HostResponse"):
        assert expected in text


async def test_demo_session_against_the_local_server(tmp_path: Path) -> None:
    lines: list[str] = []
    results = await run_demo(tmp_path, lines.append)
    assert results["shout"] == "HELLO, ROOM"
    assert results["log"] == {"message": "echo-agent is here"}
    assert results["file"] == b"written by alice"
    assert results["unavailable"] == 1007
    assert results["document"] == {"todo": {"items": [{"item": {"title": "write the demo", "done": True}}, {"item": {"title": "ship it", "done": True}}]}}
    assert results["job"] == {"job": "tidy"}
    assert results["chat"] == {"text": "thanks!"}
    assert results["service"] == b"hello from the greeter service"
    assert results["orders"] == [{"item": "scones", "qty": 4}, {"item": "tea", "qty": 2}]
    assert results["session_roles"] == {"agent": 2, "user": 1}  # echo-agent's and the greeter's tokens, and alice's from connect_room
    assert (tmp_path / "credentials.json").exists()


async def test_the_demo_runs_again_on_the_same_data_dir(tmp_path: Path) -> None:
    """`make demo` twice: the second run meets the first one's files and must still pass."""
    for _ in range(2):
        results = await run_demo(tmp_path, [].append)
        assert results["file"] == b"written by alice" and results["job"] == {"job": "tidy"}


def test_cli_demo_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "meshagent_trio", "demo", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, check=True, timeout=60,
    )
    assert "alice called echo.shout -> 'HELLO, ROOM'" in result.stdout


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "COLUMNS": "200"}  # help text unwrapped
    return subprocess.run(
        [sys.executable, "-m", "meshagent_trio", *args], capture_output=True, text=True, timeout=timeout, env=environ
    )


def test_version_and_help_with_defaults() -> None:
    from meshagent_trio import __version__

    assert cli("--version").stdout.strip() == f"meshagent-trio {__version__}"
    help_text = " ".join(cli("serve", "--help").stdout.split())
    for option, default in (("--host", "127.0.0.1"), ("--port", "8078"), ("--data-dir", ".meshagent-data"), ("--log-level", "warning")):
        assert option in help_text and f"default: {default}" in help_text


def test_serve_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--port", str(port), "--data-dir", str(tmp_path), "--log-level", "info")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"meshagent-trio serve: error: cannot listen on 127.0.0.1:{port}: the address is already in use"
    ]


def test_option_errors_are_one_line(tmp_path: Path) -> None:
    for args, expected in (
        (("serve", "--log-level", "verbose"), ("'--log-level'", "'verbose'", "debug")),
        (("serve", "--port", "http"), ("'--port'",)),
        (("serve", "--port", "70000"), ("'--port'", "65535")),
        (("serve", "--colour"), ("No such option", "--colour")),
    ):
        result = cli(*args)
        assert result.returncode == 2, args
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("meshagent-trio serve: error: "), (args, result.stderr)
        assert all(fragment in lines[0] for fragment in expected) and "--help" in lines[0], (args, result.stderr)


def test_a_data_dir_that_cannot_be_used_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = cli("serve", "--port", "0", "--data-dir", str(blocker / "data"))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("meshagent-trio serve: error: ") and "a-file" in lines[0], result.stderr
