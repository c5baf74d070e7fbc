"""What the command-line tests run beside the command: the command in a child process (to
follow a stream and interrupt it), Trio work in a thread of its own (a participant hosting a
toolkit, a session held open), and the REST client as the server's owner."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Awaitable, Callable, Iterator

import trio

from meshagent_trio import Meshagent
from meshagent_trio.testing import InProcessServer


class Child:
    """`meshagent-trio ARGS…` in a child process (the test's environment), to follow a stream."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "meshagent_trio", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ), bufsize=0
        )

    def stderr_line(self, timeout: float = 30.0) -> str:
        """The next line the child writes to stderr."""
        assert self.process.stderr is not None
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([self.process.stderr], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                self.process.kill()
                raise AssertionError(f"no line on stderr within {timeout} s (so far {line!r})")
            byte = self.process.stderr.read(1)
            if not byte:
                raise AssertionError(f"stderr ended: {line!r}, exit {self.process.wait()}")
            line += byte
        return line.decode()

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        """(exit status, stdout, the rest of stderr) once the child has ended."""
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return self.process.returncode, out.decode(), err.decode()


@contextmanager
def in_background(work: Callable[..., Awaitable[None]], timeout: float = 30) -> Iterator[None]:
    """Runs `work(task_status=…)` under Trio in a thread of its own; the block starts once it
    called `task_status.started()`, and the work is cancelled when the block ends."""
    started = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        state["token"] = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            state["scope"] = nursery.cancel_scope
            await nursery.start(work)
            started.set()

    def thread_main() -> None:
        try:
            trio.run(main)
        except BaseException as error:  # reported in the test's thread
            state["error"] = error
        finally:
            started.set()

    thread = threading.Thread(target=thread_main, daemon=True)
    thread.start()
    assert started.wait(timeout), "the background work did not start"
    if "error" in state:
        raise state["error"]
    try:
        yield
    finally:
        if thread.is_alive() and "scope" in state:
            try:
                state["token"].run_sync_soon(state["scope"].cancel)
            except trio.RunFinishedError:
                pass
        thread.join(15)
        assert not thread.is_alive(), "the background work did not stop"
        if "error" in state:
            raise state["error"]


def sdk(server: InProcessServer, work: Callable[[Meshagent], Any], token: str | None = None) -> Any:
    """`work(api)` with our REST client, as the owner (or with `token`)."""

    async def main() -> Any:
        async with Meshagent(base_url=server.api_url, token=token or server.api_key) as api:
            return await work(api)

    return trio.run(main)


def own_project(server: InProcessServer) -> str:
    return server.credentials.project_id


def visit(cli: Callable[..., Any], room: str, timeout: float = 15.0) -> None:
    """Join `room` through the command line and leave, then wait until the server has recorded
    the session's end (it does so as the connection closes, just after the command returns)."""
    assert cli("room", "mounts", "list", "--room", room).exit_code == 0
    deadline = time.monotonic() + timeout
    while True:
        events = cli("rooms", "events", room, "--limit", "1", "-o", "json").json()
        if [event["type"] for event in events] == ["room.lifecycle.stop"]:
            return
        assert time.monotonic() < deadline, f"the session in {room} did not end within {timeout} s: {events}"
        time.sleep(0.05)
