"""The local MeshAgent server as a subprocess, for test suites, benchmarks and scripts.

`LocalServerProcess` runs `python -m meshagent_trio serve --host H --port P --data-dir D` and
hands out what a client needs to reach it::

    from meshagent_trio.server.process import LocalServerProcess

    with LocalServerProcess() as server:      # a free port, a fresh data dir and API key
        server.api_url                         # "http://127.0.0.1:<port>" (MESHAGENT_API_URL)
        server.api_key                         # "ma-..." (MESHAGENT_API_KEY)
        server.room_url("my-room")             # "ws://127.0.0.1:<port>/rooms/my-room"
        server.credentials                     # Credentials, e.g. to sign participant tokens
    # stopped (SIGTERM, then SIGKILL if it lingers); a data dir it created itself is removed

In a pytest suite::

    @pytest.fixture
    def meshagent_server(tmp_path):
        with LocalServerProcess(tmp_path / "data") as server:
            yield server

`start()` returns once `GET /` answers 200 (or raises `ServerStartError` with the server's
output). `kill()` is SIGKILL, for crash tests; `restart()` starts a new process on the same
port, data directory and credentials. Every call blocks; from Trio or asyncio code run them in
a worker thread (`await trio.to_thread.run_sync(server.restart)`).

The server's stdout and stderr go to a log file (`<data dir>/server.log` unless `log_path` is
given), appended to across restarts; `log()` is its tail, for failure messages.

Environment of the server: the caller's, without any `MESHAGENT_*` variable (so the server's
credentials are exactly those given here), plus `MESHAGENT_API_KEY`, plus `env`. The directory
the caller's `meshagent_trio` was imported from is put first on `PYTHONPATH` (unless it is a
`site-packages` directory), so the server runs the same code as the caller, from a source
checkout too.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Mapping, Sequence

from meshagent_core.tokens import ApiKey, encode_api_key, parse_api_key

from .config import Credentials

__all__ = ["LocalServerProcess", "ServerStartError", "free_port", "new_api_key"]

#: How long `start()` waits for `GET /` to answer 200, in seconds.
DEFAULT_START_TIMEOUT = 30.0
#: How long `stop()` waits after SIGTERM before it sends SIGKILL, in seconds.
DEFAULT_STOP_TIMEOUT = 10.0
#: How many characters of the log `log()` returns by default.
DEFAULT_LOG_TAIL = 6000

# The variables the server reads its credentials from (`load_credentials`).
_CREDENTIAL_VARIABLES = ("MESHAGENT_API_KEY", "MESHAGENT_PROJECT_ID", "MESHAGENT_KEY_ID", "MESHAGENT_SECRET")


class ServerStartError(RuntimeError):
    """The server exited, or did not answer `GET /` in time; the message ends with its output."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def new_api_key() -> str:
    """A fresh `ma-...` API key string: new key id, new project id, a random secret."""
    return encode_api_key(ApiKey(id=str(uuid.uuid4()), project_id=str(uuid.uuid4()), secret=secrets.token_urlsafe(32)))


def _package_root() -> Path | None:
    """The sys.path entry this `meshagent_trio` was imported from, if it must be passed on."""
    import meshagent_trio

    root = Path(meshagent_trio.__file__).resolve().parent.parent
    return None if root.name in ("site-packages", "dist-packages") else root


def _client_host(host: str) -> str:
    """Where a client on this machine connects to reach a server listening on `host`."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


class LocalServerProcess:
    """`python -m meshagent_trio serve` as a subprocess; see the module docstring.

    Arguments (all optional):

    * `data_dir`: the server's data directory (created if missing, kept afterwards). Without
      one, a fresh temporary directory is used and removed by `close()`.
    * `port`: the port to listen on; a free one by default. It is kept across `restart()`.
    * `host`: the address to listen on, `127.0.0.1` by default.
    * `api_key`: the API key the server trusts, an `ma-...` string or a `Credentials`; a fresh
      one (`new_api_key()`) by default.
    * `use_stored_credentials`: start without `MESHAGENT_API_KEY`, as a plain
      `meshagent-trio serve` would: the server uses the credentials stored in the data
      directory, creating them on its first start (and prints them). `credentials` and
      `api_key` are then read from `<data_dir>/credentials.json` once the server is ready.
    * `python`: the interpreter to run the server with; this one (`sys.executable`) by default.
    * `env`: extra environment variables for the server (not its credentials: use `api_key`).
    * `server_args`: extra arguments for `serve`, e.g. `["--log-level", "INFO"]`.
    * `log_path`: where the server's output goes; `<data_dir>/server.log` by default.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        api_key: str | Credentials | None = None,
        use_stored_credentials: bool = False,
        python: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        server_args: Sequence[str] = (),
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if use_stored_credentials and api_key is not None:
            raise ValueError("give either api_key or use_stored_credentials, not both")
        refused = [name for name in (env or {}) if name in _CREDENTIAL_VARIABLES]
        if refused:
            raise ValueError(f"pass the server's credentials as api_key=, not in env ({', '.join(refused)})")
        self._owns_data_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="meshagent-server-")) if data_dir is None else Path(data_dir)
        self.host = host
        self._port = port
        self.python = str(python) if python is not None else sys.executable
        self.extra_env = dict(env or {})
        self.server_args = list(server_args)
        self.log_path = Path(log_path) if log_path is not None else self.data_dir / "server.log"
        self.use_stored_credentials = use_stored_credentials
        self._credentials: Credentials | None
        if use_stored_credentials:
            self._credentials = None
        elif isinstance(api_key, Credentials):
            self._credentials = api_key
        else:
            key = parse_api_key(api_key if api_key is not None else new_api_key())
            self._credentials = Credentials(key.project_id, key.id, key.secret)
        #: The current (or last) server process; None before the first `start()`.
        self.process: subprocess.Popen[bytes] | None = None
        #: How many times a server process was started.
        self.starts = 0
        self._run_log_offset = 0

    # --- where to reach it ----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on (picked when first needed, kept across restarts)."""
        if self._port is None:
            self._port = free_port(self.host or "127.0.0.1")
        return self._port

    @property
    def api_url(self) -> str:
        """`http://127.0.0.1:<port>`: what clients take as `MESHAGENT_API_URL`."""
        host = _client_host(self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def room_url(self, room: str) -> str:
        """The WebSocket URL of `room`: `ws://127.0.0.1:<port>/rooms/<room>`."""
        return "ws" + self.api_url[len("http") :] + f"/rooms/{room}"

    @property
    def credentials(self) -> Credentials:
        """The project and API key the server trusts (signs participant tokens)."""
        if self._credentials is None:
            path = self.data_dir / "credentials.json"
            try:
                stored = json.loads(path.read_text())
            except FileNotFoundError:
                raise RuntimeError(f"no credentials yet: the server creates {path} on its first start") from None
            self._credentials = Credentials(stored["project_id"], stored["key_id"], stored["secret"])
        return self._credentials

    @property
    def api_key(self) -> str:
        """The `ma-...` API key string: what clients take as `MESHAGENT_API_KEY`."""
        return self.credentials.api_key

    # --- the process ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit status of the last process (negative: killed by that signal); None while it runs."""
        return self.process.poll() if self.process is not None else None

    def command(self) -> list[str]:
        """The command line that `start()` runs."""
        return [
            self.python, "-m", "meshagent_trio", "serve",
            "--host", self.host, "--port", str(self.port), "--data-dir", str(self.data_dir),
            *self.server_args,
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        """The environment that `start()` gives the server."""
        env = {name: value for name, value in os.environ.items() if not name.startswith("MESHAGENT_")}
        root = _package_root()
        if root is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        if not self.use_stored_credentials:
            env["MESHAGENT_API_KEY"] = self.api_key
        env.update(self.extra_env)
        return env

    def start(self, timeout: float | None = DEFAULT_START_TIMEOUT) -> LocalServerProcess:
        """Start the server and wait until it answers `GET /` (`timeout=None`: do not wait).

        On `ServerStartError` the process is killed. Returns self.
        """
        if self.running:
            raise RuntimeError(f"the server is already running (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts}: {' '.join(self.command())} ---\n".encode())
            log.flush()
            self._run_log_offset = log.tell()
            # The child gets its own copy of the file descriptor; ours is closed right away.
            self.process = subprocess.Popen(self.command(), env=self.environment(), stdout=log, stderr=subprocess.STDOUT)
        if timeout is not None:
            try:
                self.wait_ready(timeout)
            except BaseException:
                self.kill()
                raise
        return self

    def wait_ready(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Block until `GET /` answers 200; `ServerStartError` if the process exits first or
        `timeout` seconds pass (the process is left as it is)."""
        process = self._require_process()
        deadline = time.monotonic() + timeout
        host = _client_host(self.host)
        while True:
            if process.poll() is not None:
                raise ServerStartError(f"the server exited ({process.returncode}) before it was ready:\n{self.log()}")
            if _answers_200(host, self.port, timeout=max(0.1, min(2.0, deadline - time.monotonic()))):
                return
            if time.monotonic() >= deadline:
                raise ServerStartError(f"the server did not answer GET / within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def send_signal(self, signum: int) -> None:
        """Send `signum` to the server (SIGTERM and SIGINT shut it down cleanly)."""
        process = self._require_process()
        if process.poll() is None:
            process.send_signal(signum)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the server to exit; its exit status (`subprocess.TimeoutExpired` on timeout)."""
        return self._require_process().wait(timeout)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait up to `timeout` seconds, then SIGKILL. The exit status (None if never started)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill(self) -> int | None:
        """SIGKILL and wait: no cleanup, no close frames. The exit status (None if never started)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.kill()  # SIGKILL
        return process.wait()

    def restart(self, timeout: float | None = DEFAULT_START_TIMEOUT) -> LocalServerProcess:
        """`stop()` (if running), then `start()` on the same port, data dir and credentials."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """`stop()`, and remove the data directory if it is a temporary one made by this object."""
        self.stop()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def log(self, limit: int | None = DEFAULT_LOG_TAIL, *, current_run: bool = False) -> str:
        """The server's output: the last `limit` characters (None: all) of the log of every start
        (with a `--- start N ---` line before each), or of the latest start only."""
        try:
            with open(self.log_path, "rb") as log:
                if current_run:
                    log.seek(self._run_log_offset)
                text = log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        return text if limit is None else text[-limit:]

    def __enter__(self) -> LocalServerProcess:
        if not self.running:
            try:
                self.start()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "not running" if self.process is None else f"exited {self.returncode}"
        return f"<LocalServerProcess {self.api_url} data_dir={str(self.data_dir)!r} {state}>"

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError("the server was not started (call start())")
        return self.process


def _answers_200(host: str, port: int, timeout: float) -> bool:
    """Whether `GET /` on host:port answers 200 (a plain connection: no proxy is consulted)."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
