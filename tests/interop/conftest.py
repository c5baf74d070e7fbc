"""Fixtures for the interop tests: the official meshagent-api 0.56 client, run out of process.

The official client needs Python 3.13, so it lives in its own virtualenv
(`make official-env`, i.e. `bash scripts/official-env.sh .venv-official`). Its interpreter is
`$OFFICIAL_PYTHON` when set, else `.venv-official/bin/python` at the repository root. Without a
working one every interop test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from meshagent_core.tokens import ApiKey, encode_api_key
from meshagent_trio.server.process import LocalServerProcess

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


# --- our server as a subprocess, and the official scenario scripts against it ------------------

SCENARIO_DIR = Path(__file__).resolve().parent / "official_scripts"
SERVER_START_TIMEOUT = 30.0
SCENARIO_TIMEOUT = 120.0


def wrong_api_key(server: LocalServerProcess) -> str:
    """The server's key id and project with another secret: tokens signed with it must be refused."""
    credentials = server.credentials
    return encode_api_key(ApiKey(id=credentials.key_id, project_id=credentials.project_id, secret=secrets.token_urlsafe(32)))


@dataclass
class ScenarioResult:
    name: str
    returncode: int
    stdout: str
    stderr: str
    server_log: str

    @property
    def observed(self) -> dict:
        """The script's JSON observations; fails the test (with everything known) otherwise."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        try:
            data = json.loads(lines[-1]) if lines else None
        except ValueError:
            data = None
        if self.returncode != 0 or not isinstance(data, dict):
            failure = json.dumps(data, indent=1)[:6000] if isinstance(data, dict) else self.stdout[-3000:]
            pytest.fail(
                f"official scenario {self.name} failed (exit {self.returncode}):\n{failure}\n"
                f"--- official client stderr ---\n{self.stderr[-4000:]}\n--- server log ---\n{self.server_log}",
                pytrace=False,
            )
        return data


class Scenarios:
    """The `scenario_*.py` scripts under the official interpreter, all started at once (each in
    its own room), so the module costs about as long as its slowest script."""

    def __init__(self, python: str, server: LocalServerProcess) -> None:
        self.python = python
        self.server = server
        self.wrong_api_key = wrong_api_key(server)
        self._running: dict[str, tuple[subprocess.Popen, Any, Any]] = {}
        self._results: dict[str, ScenarioResult] = {}

    def start(self, name: str) -> None:
        if name in self._running or name in self._results:
            return
        script = SCENARIO_DIR / f"scenario_{name}.py"
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)  # the official interpreter must not see our src/
        env.update(
            {
                "MESHAGENT_API_URL": self.server.api_url,
                "MESHAGENT_API_KEY": self.server.api_key,
                "SCENARIO_WRONG_API_KEY": self.wrong_api_key,
                "SCENARIO_ROOM": f"interop-{name.replace('_', '-')}",
            }
        )
        for variable in ("MESHAGENT_ROOM_URL", "MESHAGENT_PROFILE_API_URL", "MESHAGENT_ROOM", "MESHAGENT_TOKEN"):
            env.pop(variable, None)
        out = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        err = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        proc = subprocess.Popen([self.python, str(script)], env=env, stdout=out, stderr=err, cwd=str(SCENARIO_DIR))
        self._running[name] = (proc, out, err)

    def result(self, name: str) -> ScenarioResult:
        self.start(name)
        if name not in self._results:
            proc, out, err = self._running.pop(name)
            try:
                proc.wait(timeout=SCENARIO_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out.seek(0)
            err.seek(0)
            self._results[name] = ScenarioResult(name, proc.returncode, out.read(), err.read(), self.server.log())
            out.close()
            err.close()
        return self._results[name]

    def close(self) -> None:
        for proc, out, err in self._running.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            out.close()
            err.close()
        self._running.clear()


@pytest.fixture(scope="module")
def server_process(tmp_path_factory) -> Iterator[LocalServerProcess]:
    """Our server as a subprocess (one per test module), on a fresh data directory, with a fresh
    API key (`api_key` signs the official client's tokens; `api_url` is what the official client
    derives the room URL from, MESHAGENT_API_URL; `log()` is what the server printed)."""
    directory = tmp_path_factory.mktemp("server")
    server = LocalServerProcess(directory / "data", log_path=directory / "server.log")
    server.start(SERVER_START_TIMEOUT)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def official_scenarios(official_python: str, server_process: LocalServerProcess) -> Iterator[Scenarios]:
    scenarios = Scenarios(official_python, server_process)
    for script in sorted(SCENARIO_DIR.glob("scenario_*.py")):
        scenarios.start(script.stem[len("scenario_") :])
    try:
        yield scenarios
    finally:
        scenarios.close()


def pytest_report_header(config):
    python = os.environ.get("OFFICIAL_PYTHON") or str(DEFAULT_OFFICIAL_PYTHON)
    state = "found" if Path(python).exists() else f"not found ({SETUP_HINT})"
    return f"official meshagent-api interpreter: {python} [{state}]; running under {sys.executable}"
