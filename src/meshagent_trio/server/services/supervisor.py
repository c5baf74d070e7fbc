"""Child processes of local room services (protocol/webhooks.md §8): one run of a command, its
output read line by line, and a stop that leaves nothing behind.

A child starts in a process group (session) of its own, so that stopping it reaches whatever it
started (a shell and the program it runs, a server's workers): SIGTERM to the group, then
SIGKILL to the group after `STOP_GRACE` seconds. When the child exits on its own, what is left
of its group is killed too. Its stdout and stderr are read as they come; each line (at most
`MAX_LINE` bytes kept, the rest of a longer line dropped) goes to `on_output`, so a chatty or
binary child costs bounded memory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Callable, Mapping, Sequence

import trio

#: Bytes of one output line that are kept.
MAX_LINE = 4096
#: Seconds a child has to exit after SIGTERM before its group gets SIGKILL.
STOP_GRACE = 5.0
#: Seconds the output of an exited child is still read (a descendant may hold its pipes).
OUTPUT_DRAIN = 1.0

#: Receives (stream name, line): "stdout" or "stderr", the line without its end.
OutputSink = Callable[[str, str], None]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def exit_status(returncode: int) -> int:
    """A process's exit status as a shell reports it: a death by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


async def stop_process(process: trio.Process, grace: float = STOP_GRACE) -> None:
    """SIGTERM to the process's group, SIGKILL after `grace` seconds; returns once it is reaped.
    Shielded: it finishes also when its caller is cancelled."""
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            with trio.move_on_after(grace):
                await process.wait()
            if process.returncode is None:
                _signal_group(process.pid, signal.SIGKILL)
                await process.wait()
        _signal_group(process.pid, signal.SIGKILL)  # what is left of its group


async def _pump(stream: trio.abc.ReceiveStream, name: str, sink: OutputSink) -> None:
    line = bytearray()
    cut = False

    def emit() -> None:
        nonlocal cut
        text = line.decode("utf-8", errors="replace").rstrip("\r")
        sink(name, text + (" […]" if cut else ""))
        line.clear()
        cut = False

    def keep(piece: bytes) -> None:
        nonlocal cut
        room = MAX_LINE - len(line)
        if len(piece) > room:
            cut = True
        line.extend(piece[: max(room, 0)])

    async with stream:
        while chunk := await stream.receive_some(65536):
            start = 0
            while (end := chunk.find(b"\n", start)) != -1:
                keep(chunk[start:end])
                emit()
                start = end + 1
            keep(chunk[start:])
    if line or cut:
        emit()


async def run_child(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_output: OutputSink,
    stop_grace: float = STOP_GRACE,
    task_status: trio.TaskStatus[trio.Process] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Run `argv` until it exits and return its exit status (`exit_status`);
    `task_status.started(process)` once it runs. `OSError` when it cannot be started. Cancelled,
    it stops the child (`stop_process`) before it returns."""
    process = await trio.lowlevel.open_process(
        list(argv),
        cwd=str(cwd),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with trio.open_nursery() as nursery:
            assert process.stdout is not None and process.stderr is not None
            nursery.start_soon(_pump, process.stdout, "stdout", on_output)
            nursery.start_soon(_pump, process.stderr, "stderr", on_output)
            task_status.started(process)
            await process.wait()
            _signal_group(process.pid, signal.SIGKILL)  # descendants it left behind
            nursery.cancel_scope.deadline = trio.current_time() + OUTPUT_DRAIN
    finally:
        await stop_process(process, stop_grace)
    assert process.returncode is not None
    return exit_status(process.returncode)


__all__ = ["MAX_LINE", "OUTPUT_DRAIN", "STOP_GRACE", "OutputSink", "exit_status", "free_port", "run_child", "stop_process"]
