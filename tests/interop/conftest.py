"""Fixtures for the interop tests: the official meshagent-api 0.56 client, run out of process.

The official client needs Python 3.13, so it lives in its own virtualenv
(`make official-env`, i.e. `bash scripts/official-env.sh .venv-official`). Its interpreter is
`$OFFICIAL_PYTHON` when set, else `.venv-official/bin/python` at the repository root. Without a
working one every interop test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CODEC_SCRIPT = Path(__file__).resolve().parent / "_official_codec.py"
DEFAULT_OFFICIAL_PYTHON = REPO / ".venv-official" / "bin" / "python"
SETUP_HINT = "run `make official-env` (needs Python 3.13)"


@pytest.fixture(scope="session")
def official_python() -> str:
    """Path of an interpreter that can import the official client (skips if there is none)."""
    configured = os.environ.get("OFFICIAL_PYTHON")
    python = configured or str(DEFAULT_OFFICIAL_PYTHON)
    where = "$OFFICIAL_PYTHON" if configured else str(DEFAULT_OFFICIAL_PYTHON.relative_to(REPO))
    if not configured and not DEFAULT_OFFICIAL_PYTHON.exists():
        pytest.skip(f"official meshagent-api 0.56 environment not found: {SETUP_HINT}")
    try:
        probe = subprocess.run(
            [python, "-c", "import meshagent.api.messaging, meshagent.api.protocol"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"official meshagent-api 0.56 environment unusable ({where}: {error}): {SETUP_HINT}")
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(
            f"official meshagent-api 0.56 environment cannot import meshagent.api ({where}: {last}): "
            f"{SETUP_HINT}"
        )
    return python


class OfficialCodec:
    """One long-lived official-interpreter process running `_official_codec.py`.

    `call(op, cases)` sends one batch and returns one result per case. The process is shared by
    the whole session, so a test (or a Hypothesis example) costs one pipe round trip, not a
    process start.
    """

    def __init__(self, python: str) -> None:
        # stderr goes to a file: a pipe nobody reads could fill up and stall the process.
        self._errors = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        self._proc = subprocess.Popen(
            [python, str(CODEC_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.info = self.call("ping")

    def call(self, op: str, cases: list | None = None):
        proc = self._proc
        if proc.poll() is not None:
            raise RuntimeError(f"official codec process exited ({proc.returncode}): {self._stderr()}")
        proc.stdin.write(json.dumps({"op": op, "cases": cases or []}) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=10)
            raise RuntimeError(f"official codec process died ({proc.returncode}): {self._stderr()}")
        response = json.loads(line)
        if "error" in response:
            raise RuntimeError(f"official codec failed on {op!r}:\n{response['error']}")
        return response["ok"]

    def _stderr(self) -> str:
        try:
            self._errors.seek(0)
            return self._errors.read()[-4000:]
        except Exception:
            return "?"

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout and not proc.stdout.closed:
            proc.stdout.close()
        self._errors.close()


@pytest.fixture(scope="session")
def official_codec(official_python: str):
    codec = OfficialCodec(official_python)
    try:
        yield codec
    finally:
        codec.close()


def pytest_report_header(config):
    python = os.environ.get("OFFICIAL_PYTHON") or str(DEFAULT_OFFICIAL_PYTHON)
    state = "found" if Path(python).exists() else f"not found ({SETUP_HINT})"
    return f"official meshagent-api interpreter: {python} [{state}]; running under {sys.executable}"
