"""The local MeshAgent server inside the test process: `InProcessServer`.

`InProcessServer` runs `meshagent_trio.server.Server` under `trio.run` in a thread of its own
(a daemon thread named `meshagent-server:<port>`), on 127.0.0.1 and a free port, with the data
directory and credentials it is given (fresh credentials by default)::

    with InProcessServer(tmp_path / "data") as server:
        server.api_url                          # "http://127.0.0.1:<port>"
        server.room_url("demo")                 # "ws://127.0.0.1:<port>/rooms/demo"
        server.token("demo", name="alice")      # a participant JWT the server accepts

`start()` returns once the server listens (a readiness handshake: the thread reports the bound
port, or the exception that stopped it). `stop()` cancels the server's Trio run from this
thread (`TrioToken.run_sync_soon`), joins the thread for at most `stop_timeout` seconds, and
raises `ServerError` if the thread is still alive then, or if the server's run ended with an
exception (a crash during the test is reported at teardown, with the server's own exception
as the cause). Exceptions in a single connection's handler do not stop the server: it logs
them (logger `meshagent_trio.server`), and pytest shows those logs with a failing test.

Why a thread of its own, under pytest-trio too
----------------------------------------------

The other choice under pytest-trio is to start the server in the test's own Trio run (what this
repository's `tests/conftest.py` does, with the `nursery` fixture). Measured on the development
machine (2 shared, busy cores; Python 3.11, trio 0.35, pytest 9), medians over 30-test runs of
an otherwise empty `@pytest.mark.trio` test, setup + call + teardown:

* empty test with `tmp_path` only: ≈ 1.3 ms;
* with `meshagent_server` (this thread): ≈ 3.4 ms (fixture setup ≈ 2-2.8 ms, teardown
  ≈ 0.5-0.8 ms; p90 up to ≈ 7 ms when the cores are contended, as a new thread waits for one);
* with the same server started in the test's own run (`nursery.start(server.serve)`, then
  cancelled): ≈ 1.9 ms.
* for scale: joining one participant to a room and leaving takes ≈ 9-12 ms.

The thread costs about 1.5 ms more per test: less than one participant's join, in tests that
join several. In exchange it is one code path that works the same under pytest-trio, under
AnyIO's plugin on asyncio (where the Trio server cannot share the loop) and in synchronous
tests; the server is isolated from what a test does to its own loop (a Trio `MockClock` or
`autojump_clock` does not move the server's timeouts, a test that blocks its loop does not
freeze the server it talks to, a test's cancellation or failure cannot cancel the server
half-way); and a server crash is reported on its own, at teardown, instead of arriving in the
test's nursery inside an exception group. So there is one design: the server always runs in
its thread.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import trio

from meshagent_core.tokens import ApiScope
from meshagent_trio.server import Credentials, Server, ServerConfig

from .tokens import new_credentials, participant_token

__all__ = ["DEFAULT_START_TIMEOUT", "DEFAULT_STOP_TIMEOUT", "InProcessServer", "ServerError"]

#: Seconds `start()` waits for the server to listen.
DEFAULT_START_TIMEOUT = 30.0
#: Seconds `stop()` waits for the server's thread to end after cancelling it.
DEFAULT_STOP_TIMEOUT = 10.0


class ServerError(RuntimeError):
    """The in-process server did not start, crashed, or did not stop in time (the server's
    own exception, if any, is the `__cause__`)."""


class InProcessServer:
    """The local MeshAgent server under `trio.run` in a thread of its own; see the module
    docstring.

    * `data_dir`: the server's data directory (rooms, storage), created if missing, kept.
    * `credentials`: the project and key whose secret signs the tokens it trusts; fresh ones
      (`new_credentials()`) by default.
    * `host`, `port`: where to listen; 127.0.0.1 and a free port (0) by default.
    * `start_timeout`, `stop_timeout`: seconds `start()` and `stop()` wait at most.
    * further keyword arguments are `ServerConfig` settings (`max_upload_size=…`, …).

    `config` is the `ServerConfig` and `server` the `Server` it runs, for tests that look
    inside the server (which runs in another thread meanwhile).
    """

    def __init__(
        self,
        data_dir: Path | str,
        credentials: Credentials | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        **settings: Any,
    ) -> None:
        self.credentials: Credentials = credentials if credentials is not None else new_credentials()
        self.config = ServerConfig(data_dir=Path(data_dir), credentials=self.credentials, host=host, port=port, **settings)
        self.server = Server(self.config)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._thread: threading.Thread | None = None
        self._started = False
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._stop_requested = False
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self._cancel_scope = trio.CancelScope()
        self._error: BaseException | None = None

    # --- where and as whom ----------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        """The port the server listens on (known once `start()` returned)."""
        if self.server.port is None:
            raise RuntimeError("the server has not been started")
        return self.server.port

    @property
    def api_url(self) -> str:
        """`http://127.0.0.1:<port>`, what `MESHAGENT_API_URL` would be."""
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def api_key(self) -> str:
        """The `ma-…` API key string of `credentials`, what `MESHAGENT_API_KEY` would be."""
        return self.credentials.api_key

    def room_url(self, room: str) -> str:
        """`ws://127.0.0.1:<port>/rooms/<room>`."""
        return f"ws://{_url_host(self.host)}:{self.port}/rooms/{room}"

    def token(
        self,
        room: str,
        *,
        name: str = "participant",
        scope: ApiScope | None = None,
        expires: datetime | int | None = None,
        role: str = "agent",
    ) -> str:
        """A participant JWT for `room` this server accepts (see `participant_token`)."""
        return participant_token(self.credentials, room, name=name, scope=scope, expires=expires, role=role)

    def environ(self) -> dict[str, str]:
        """`MESHAGENT_API_URL` and `MESHAGENT_API_KEY` for this server, for
        `monkeypatch.setenv` (nothing is set by the server itself)."""
        return {"MESHAGENT_API_URL": self.api_url, "MESHAGENT_API_KEY": self.api_key}

    # --- running --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server's thread has started and not yet ended."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "InProcessServer":
        """Start the server's thread and return once the server listens; raises `ServerError`
        (the server's exception as its cause) if it fails or does not listen in time."""
        if self._started:
            raise RuntimeError("an InProcessServer is started once")
        self._started = True
        self._thread = threading.Thread(target=self._run, name="meshagent-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            message = f"the in-process MeshAgent server did not start listening within {self.start_timeout} s"
            try:
                self.stop()
            except ServerError as error:
                raise ServerError(message) from error
            raise ServerError(message)
        if self._error is not None:
            self.stop()  # joins the thread, raises ServerError from the server's exception
        self._thread.name = f"meshagent-server:{self.port}"
        return self

    def stop(self) -> None:
        """Cancel the server, wait for its thread to end (at most `stop_timeout` seconds), and
        raise `ServerError` if it did not end, or if the server ended with an exception.
        Calling it again after a timeout waits again; once the thread has ended it is a no-op."""
        thread = self._thread
        if thread is None:
            return
        self._request_stop()
        thread.join(self.stop_timeout)
        if thread.is_alive():
            raise ServerError(
                f"the in-process MeshAgent server did not stop within {self.stop_timeout} s of being "
                f"cancelled; its thread {thread.name!r} is left running (a daemon thread). Something in "
                "the server shields itself from cancellation or blocks its event loop."
            )
        self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise ServerError(f"the in-process MeshAgent server failed: {error!r}") from error

    def __enter__(self) -> "InProcessServer":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- the server's thread --------------------------------------------------------------

    def _request_stop(self) -> None:
        with self._lock:
            self._stop_requested = True
            token = self._trio_token
        if token is not None:
            try:
                token.run_sync_soon(self._cancel_scope.cancel)
            except trio.RunFinishedError:
                pass

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as error:  # reported by stop(), in the thread that asks
            self._error = error
        finally:
            self._ready.set()

    async def _main(self) -> None:
        with self._lock:
            self._trio_token = trio.lowlevel.current_trio_token()
            if self._stop_requested:
                self._cancel_scope.cancel()
        with self._cancel_scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.server.serve)
                self._ready.set()
                await trio.sleep_forever()

    def __repr__(self) -> str:
        where = f"port {self.server.port}" if self.server.port is not None else "not started"
        return f"<InProcessServer {where}, data dir {str(self.data_dir)!r}>"


def _url_host(host: str) -> str:
    """Where a client connects to reach a server listening on `host`, as a URL host."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
