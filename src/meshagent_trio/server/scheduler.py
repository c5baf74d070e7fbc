"""The scheduler of scheduled tasks (protocol/rest.md §20): at each task's due time it sends the
task's queue message into its room's queue, as the queues toolkit's `send` does, so participants
waiting on that queue receive it as any other message.

`Scheduler.run` runs in the server's nursery: at start it marks the runs a stopped server left
unfinished as failed, then it fires what is due (`tick`), sleeps until the next due time, and
looks again. It is woken at once when a task is created, changed or deleted (it listens to
`control.tasks`), and never sleeps more than `max_sleep` seconds, so a clock that jumps (or a
test's clock) is seen soon. Time is the server's `config.clock`; `tick(now)` fires what is due
at `now`, which is how tests drive it without sleeping.

The guarantees are the store's (`control/tasks.py`): a due time fires at most once (the run is
recorded, and the task moved past it, before the message is sent), due times missed while the
server was stopped are coalesced into one run, and every run's outcome is recorded.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

import msgspec
import trio

from .control.tasks import Firing, TasksStore
from .toolkits.queues import QueueRefused, enqueue

if TYPE_CHECKING:
    from .rooms.room import Room

log = logging.getLogger("meshagent_trio.server.scheduler")

#: Longest sleep between two looks at the clock, in seconds.
MAX_SLEEP = 60.0


class Scheduler:
    def __init__(self, tasks: TasksStore, room: Callable[[str, str], "Room"], clock: Callable[[], float], *, max_sleep: float = MAX_SLEEP) -> None:
        self.tasks = tasks
        #: the server's room of (project id, room name), made on first use
        self.room = room
        self.clock = clock
        self.max_sleep = max_sleep
        self._wakeup = trio.Event()
        tasks.listeners.append(self.wake)

    def wake(self) -> None:
        """Look at the tasks again now (something changed, or the clock did)."""
        self._wakeup.set()

    async def tick(self, now: float | None = None) -> list[int]:
        """Fire every task due at `now` (default: the clock); the ids of the runs fired."""
        now = self.clock() if now is None else now
        fired = []
        for task_id in await self.tasks.due_task_ids(now):
            firing = await self.tasks.claim(task_id, now)
            if firing is not None:
                await self._send(firing)
                fired.append(firing.run_id)
        return fired

    async def _send(self, firing: Firing) -> None:
        """Send a claimed run's message and record how it went (not cut short by a cancel: a
        claimed run that is not finished stays `submitting` until the next start fails it)."""
        with trio.CancelScope(shield=True):
            try:
                await enqueue(self.room(firing.project_id, firing.room_name), firing.queue, msgspec.json.encode(firing.payload))
            except QueueRefused as refused:
                await self.tasks.finish_run(firing.run_id, error=str(refused))
            except Exception as error:  # a bug or a broken room database: this run fails, the scheduler goes on
                log.exception("scheduled task %s: could not send run %s", firing.task_id, firing.run_id)
                await self.tasks.finish_run(firing.run_id, error=f"internal error ({type(error).__name__})")
            else:
                await self.tasks.finish_run(firing.run_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        interrupted = await self.tasks.fail_interrupted_runs()
        if interrupted:
            log.warning("%d scheduled run(s) were interrupted by the last stop and are recorded as failed", interrupted)
        task_status.started()
        while True:
            self._wakeup = trio.Event()
            try:
                await self.tick()
                next_due = await self.tasks.next_due()
            except Exception:  # e.g. the database is briefly unavailable: try again later
                log.exception("the scheduler could not look at the scheduled tasks")
                next_due = None
            delay = self.max_sleep if next_due is None else min(max(0.0, next_due - self.clock()), self.max_sleep)
            with trio.move_on_after(delay):
                await self._wakeup.wait()


__all__ = ["MAX_SLEEP", "Scheduler"]
