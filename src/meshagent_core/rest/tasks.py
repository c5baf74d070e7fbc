"""Routes of scheduled tasks and their runs (protocol/rest.md §20), their models, and what a
schedule means (`Schedule`).

A task's `ScheduledTaskSpec` travels as the official client sends it (`exclude_none`: keys that
are None are left out; `metadata.annotations`, `payload`, `active` and `once` always sent). The
Structs only check the spec's shape (unknown keys are refused, as the official models forbid
them); `check_spec` checks what the official model's validator checks (a schedule that parses
and runs no more often than every 15 minutes, exactly one of `queue` and `container`, a
non-empty queue name) and raises `ValueError` naming the field. The server checks it on every
create and update, our client before sending (as the official client does).

A schedule is a cron expression (5 fields, or 6-7 with seconds and years, as `croniter` reads
them, in UTC) or an interval `"<n> seconds|minutes|hours|days"`, whose due times are every n
units from an anchor (the time the task was created or its schedule last changed).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from croniter import croniter
from msgspec import UNSET, UnsetType

from .accounts import PROJECT
from .models import JsonObject, Model
from .routes import Route

TASKS = PROJECT + "/scheduled-tasks"
TASK = TASKS + "/{task_id}"

#: The official `MIN_SCHEDULED_TASK_INTERVAL_SECONDS`.
MIN_INTERVAL_SECONDS = 15 * 60
#: How many successive due times are looked at to find a cron schedule's shortest interval (as
#: the official check does, from 2026-01-01 UTC).
_INTERVAL_PROBES = 100
_PROBE_START = 1767225600.0  # 2026-01-01T00:00:00Z
_INTERVAL = re.compile(r"^\s*(?P<count>\d+)\s+(?P<unit>second|seconds|minute|minutes|hour|hours|day|days)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


# --- the spec ------------------------------------------------------------------------------------


class ScheduledTaskMetadata(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str | UnsetType = UNSET
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class ScheduledTaskQueueSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The queue message a run sends: `payload` to the room queue `name`. `storage_write_path`
    is kept and shown; the local server does not act on it (its meaning is not documented)."""

    name: str
    payload: JsonObject = msgspec.field(default_factory=dict)
    storage_write_path: str | UnsetType = UNSET


class ScheduledTaskSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    version: Literal["v1"] = "v1"
    kind: Literal["ScheduledTask"] = "ScheduledTask"
    metadata: ScheduledTaskMetadata = msgspec.field(default_factory=ScheduledTaskMetadata)
    schedule: str
    active: bool = True
    once: bool = False
    queue: ScheduledTaskQueueSpec | UnsetType = UNSET
    #: an official `ContainerSpec` (the local server runs no containers: refused with 501)
    container: JsonObject | UnsetType = UNSET


# --- schedules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A task's schedule: its due times, in seconds since the epoch."""

    expression: str
    #: seconds between due times for the interval form, None for cron
    interval: float | None

    @classmethod
    def parse(cls, expression: str) -> "Schedule":
        """The schedule of `expression` (`ValueError` saying why it is not one)."""
        if not expression.strip():
            raise ValueError("schedule must not be empty")
        match = _INTERVAL.match(expression)
        if match is not None:
            unit = match.group("unit").lower().rstrip("s")
            seconds = int(match.group("count")) * _UNIT_SECONDS[unit]
            if seconds <= 0:
                raise ValueError(f"unsupported schedule: {expression}")
            return cls(expression, float(seconds))
        try:
            croniter(expression, _PROBE_START).get_next(float)
        except (ValueError, KeyError) as error:  # croniter's errors are ValueErrors
            raise ValueError(f"unsupported schedule: {expression} ({error})") from None
        return cls(expression, None)

    def shortest_interval(self) -> float:
        if self.interval is not None:
            return self.interval
        due = croniter(self.expression, _PROBE_START)
        previous, shortest = due.get_next(float), math.inf
        for _ in range(_INTERVAL_PROBES):
            current = due.get_next(float)
            shortest, previous = min(shortest, current - previous), current
        return shortest

    def next_after(self, moment: float, *, anchor: float) -> float:
        """The first due time strictly after `moment`."""
        if self.interval is None:  # cron due times are whole seconds (croniter rounds fractions)
            return float(croniter(self.expression, math.floor(moment)).get_next(float))
        steps = max(0, math.floor((moment - anchor) / self.interval)) + 1
        return anchor + steps * self.interval

    def latest_at_or_before(self, moment: float, *, anchor: float) -> float | None:
        """The last due time at or before `moment` (None if there is none since `anchor`)."""
        if self.interval is None:
            whole = math.floor(moment)
            previous = float(croniter(self.expression, whole).get_prev(float))
            following = float(croniter(self.expression, previous).get_next(float))
            return following if following <= whole else previous
        if moment < anchor + self.interval:
            return None
        return anchor + math.floor((moment - anchor) / self.interval) * self.interval


def check_spec(spec: ScheduledTaskSpec) -> Schedule:
    """What the official `ScheduledTaskSpec` validator checks; `ValueError` naming the field."""
    try:
        schedule = Schedule.parse(spec.schedule)
        shortest = schedule.shortest_interval()
    except ValueError as error:
        raise ValueError(f"spec.schedule: {error}") from None
    if shortest < MIN_INTERVAL_SECONDS:
        raise ValueError(f"spec.schedule: {spec.schedule!r} runs more often than every 15 minutes")
    if (spec.queue is UNSET) == (spec.container is UNSET):
        raise ValueError("spec: a scheduled task has exactly one of queue and container")
    if spec.queue is not UNSET and not spec.queue.name.strip():
        raise ValueError("spec.queue.name must not be empty")
    return schedule


def read_spec(value: ScheduledTaskSpec | dict[str, Any]) -> ScheduledTaskSpec:
    """A spec (or its JSON, read as the official model reads it), checked (`ValueError`)."""
    spec = value if isinstance(value, ScheduledTaskSpec) else msgspec.convert(value, ScheduledTaskSpec)
    check_spec(spec)
    return spec


# --- answers -------------------------------------------------------------------------------------


class ScheduledTaskCreated(Model):
    task_id: str


class ScheduledTask(Model):
    """A task as listed (the official `ScheduledTask`; the spec's fields repeated at the top,
    the last run's outcome in `last_*`). `next_run_time` is the local server's: when it fires
    next (None while inactive)."""

    id: str
    project_id: str
    room_id: str
    room_name: str
    spec: ScheduledTaskSpec
    schedule: str
    active: bool
    once: bool
    annotations: dict[str, str]
    queue_name: str | None = None
    payload: JsonObject = msgspec.field(default_factory=dict)
    container: JsonObject | None = None
    storage_write_path: str | None = None
    last_run_id: int | None = None
    last_start_time: str | None = None
    last_end_time: str | None = None
    last_status: str | None = None
    last_return_message: str | None = None
    next_run_time: str | None = None


class ScheduledTasksPage(Model):
    tasks: list[ScheduledTask]  # required by the official model, even when empty
    total: int = 0
    continuation_token: str | None = None


RunStatus = Literal["pending", "submitting", "retrying", "submitted", "failed"]


class ScheduledTaskRun(Model):
    """One firing of a task: `scheduled_time` is the due time it is for, `started_at` when the
    server fired it, `completed_at` when the message was in the queue (or sending failed)."""

    id: str
    task_id: str
    project_id: str
    room_id: str
    room_name: str
    target: Literal["queue", "container"]
    status: RunStatus
    scheduled_time: str
    attempt_count: int = 0
    queued_message_id: str | None = None
    error: str | None = None
    container_id: str | None = None
    timeout_at: str | None = None
    started_at: str | None = None
    lease_expires_at: str | None = None
    completed_at: str | None = None


class ScheduledTaskRunsPage(Model):
    runs: list[ScheduledTaskRun]  # required by the official model, even when empty
    total: int = 0


# --- requests ------------------------------------------------------------------------------------


class TaskSpecBody(msgspec.Struct, kw_only=True):
    spec: ScheduledTaskSpec


class ListScheduledTasksQuery(msgspec.Struct, kw_only=True):
    """`page_size`, then either `room_id` with `offset` (offset pages of one room) or
    `continuation_token` (cursor pages of the project); the filters only when given."""

    page_size: int = 100
    room_id: str | UnsetType = UNSET
    offset: int | UnsetType = UNSET
    continuation_token: str | UnsetType = UNSET
    task_id: str | UnsetType = UNSET
    active: bool | UnsetType = UNSET
    filter: str | UnsetType = UNSET


class ListRunsQuery(msgspec.Struct, kw_only=True):
    limit: int = 100
    offset: int = 0


ROUTES = [
    Route("create_scheduled_task", "POST", PROJECT + "/rooms/{room_name}/scheduled-tasks", ScheduledTaskCreated, body=TaskSpecBody),
    Route("update_scheduled_task", "PUT", TASK, Any, body=TaskSpecBody),
    Route("delete_scheduled_task", "DELETE", TASK, Any),
    Route(
        "list_scheduled_tasks_page",
        "GET",
        TASKS,
        ScheduledTasksPage,
        query=ListScheduledTasksQuery,
        aliases=("list_scheduled_tasks",),
        payload_noun="scheduled-tasks",
    ),
    Route(
        "list_scheduled_task_runs_page",
        "GET",
        TASK + "/runs",
        ScheduledTaskRunsPage,
        query=ListRunsQuery,
        aliases=("list_scheduled_task_runs",),
        payload_noun="scheduled-task-runs",
    ),
]

__all__ = [
    "MIN_INTERVAL_SECONDS",
    "ROUTES",
    "RunStatus",
    "Schedule",
    "ScheduledTask",
    "ScheduledTaskCreated",
    "ScheduledTaskMetadata",
    "ScheduledTaskQueueSpec",
    "ScheduledTaskRun",
    "ScheduledTaskRunsPage",
    "ScheduledTaskSpec",
    "ScheduledTasksPage",
    "check_spec",
    "read_spec",
]
