import subprocess
import sys

from meshagent_trio.demo import run_transcript


def test_demo_transcript_runs_every_step() -> None:
    lines: list[str] = []
    counts = run_transcript(lines.append)
    assert counts == {"failed_on_close": 1}
    text = "\n".join(lines)
    for expected in ("SessionReady", "ResponseReceived", "ResponseStreamClosed", "ToolCallReceived", "HostResponse"):
        assert expected in text


def test_cli_demo_command() -> None:
    result = subprocess.run([sys.executable, "-m", "meshagent_trio", "demo"], capture_output=True, text=True, check=True)
    assert "room connection closed before request completed" in result.stdout
