"""The backends' worker threads (`run_sync_in_thread`), on Trio and on AnyIO (asyncio and Trio)."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

pytestmark = pytest.mark.anyio


def _backend(client_module):
    return client_module.RoomClient.connection_class.backend


async def test_run_sync_in_thread_runs_elsewhere_and_returns(client_module) -> None:
    backend = _backend(client_module)
    loop_thread = threading.get_ident()
    assert await backend.run_sync_in_thread(threading.get_ident) != loop_thread
    assert await backend.run_sync_in_thread(divmod, 17, 5) == (3, 2)
    with pytest.raises(ZeroDivisionError):
        await backend.run_sync_in_thread(divmod, 1, 0)


async def test_run_sync_in_thread_is_not_abandoned_when_cancelled(client_module) -> None:
    """A cancelled caller still waits for the function: nothing keeps running behind its back."""
    backend = _backend(client_module)
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.3)
        finished.set()

    started = anyio.current_time()
    with anyio.move_on_after(0.05) as scope:
        await backend.run_sync_in_thread(slow)
        await anyio.sleep(0)  # the cancellation lands at the next checkpoint
    assert scope.cancelled_caught
    assert finished.is_set()
    assert anyio.current_time() - started >= 0.25
