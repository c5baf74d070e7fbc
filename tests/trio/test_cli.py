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
