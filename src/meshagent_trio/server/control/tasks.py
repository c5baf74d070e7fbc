"""The control plane's store of scheduled tasks and their runs (protocol/rest.md §20).

A task belongs to a room made through REST (it is deleted with the room, its runs with it) and
keeps its spec, whether it is active, and `next_due`: the due time it fires at next (seconds
since the epoch; NULL while inactive). Times come from the server's `config.clock`.

Firing is `claim`: one transaction records the run (`submitting`) and moves the task's
`next_due` past now; the scheduler sends the queue message only after that commit, then records
the outcome (`finish_run`). A run is unique per task and due time (`UNIQUE (task_id, due)`), and
a claim only succeeds for the `next_due` it read, so a due time fires at most once, whoever
ticks. Due times missed while the server was stopped (or the clock jumped) are coalesced: one
run, for the latest of them (see `claim`). A run a stopped server left `submitting` is marked
`failed` at the next start (`fail_interrupted_runs`): its message may or may not have reached
the queue, and it is never sent again.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

import msgspec

from meshagent_core.rest.tasks import Schedule, ScheduledTask, ScheduledTaskRun, ScheduledTaskSpec, check_spec

from .common import ControlError, NotFound, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE scheduled_tasks (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
            spec TEXT NOT NULL,
            active INTEGER NOT NULL,
            anchor REAL NOT NULL,
            next_due REAL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX scheduled_tasks_by_due ON scheduled_tasks (next_due) WHERE next_due IS NOT NULL",
        """CREATE TABLE scheduled_task_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            task_id TEXT NOT NULL REFERENCES scheduled_tasks(id) ON DELETE CASCADE,
            project_id TEXT NOT NULL,
            room_id TEXT NOT NULL,
            room_name TEXT NOT NULL,
            due REAL NOT NULL,
            status TEXT NOT NULL,
            queued_message_id TEXT,
            error TEXT,
            started_at TEXT NOT NULL,
            completed_at TEXT,
            UNIQUE (task_id, due)
        )""",
    ),
]

_TASK_COLUMNS = "t.id, t.project_id, t.room_id, r.name, t.spec, t.active, t.next_due"
_RUN_COLUMNS = "id, task_id, project_id, room_id, room_name, due, status, queued_message_id, error, started_at, completed_at"


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat()


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


@dataclass(frozen=True)
class Firing:
    """A claimed run: what the scheduler sends, and where."""

    run_id: int
    task_id: str
    project_id: str
    room_name: str
    queue: str
    payload: dict[str, Any]


def _task(db: sqlite3.Connection, row: tuple[Any, ...]) -> ScheduledTask:
    id, project_id, room_id, room_name, spec_json, active, next_due = row
    spec = msgspec.json.decode(spec_json, type=ScheduledTaskSpec)
    queue = spec.queue if spec.queue is not msgspec.UNSET else None
    last = db.execute(
        "SELECT id, started_at, completed_at, status, error FROM scheduled_task_runs WHERE task_id = ? ORDER BY id DESC LIMIT 1", (id,)
    ).fetchone()
    return ScheduledTask(
        id=id,
        project_id=project_id,
        room_id=room_id,
        room_name=room_name,
        spec=spec,
        schedule=spec.schedule,
        active=bool(active),
        once=spec.once,
        annotations=spec.metadata.annotations,
        queue_name=queue.name if queue else None,
        payload=queue.payload if queue else {},
        storage_write_path=queue.storage_write_path if queue and queue.storage_write_path is not msgspec.UNSET else None,
        last_run_id=last[0] if last else None,
        last_start_time=last[1] if last else None,
        last_end_time=last[2] if last else None,
        last_status=last[3] if last else None,
        last_return_message=last[4] if last else None,
        next_run_time=iso(next_due) if next_due is not None else None,
    )


def _run(row: tuple[Any, ...]) -> ScheduledTaskRun:
    id, task_id, project_id, room_id, room_name, due, status, queued_message_id, error, started_at, completed_at = row
    return ScheduledTaskRun(
        id=str(id),
        task_id=task_id,
        project_id=project_id,
        room_id=room_id,
        room_name=room_name,
        target="queue",
        status=status,
        scheduled_time=iso(due),
        attempt_count=1,
        queued_message_id=queued_message_id,
        error=error,
        started_at=started_at,
        completed_at=completed_at,
    )


def _require_task(db: sqlite3.Connection, project_id: str, task_id: str) -> None:
    require_project(db, project_id)
    if db.execute("SELECT 1 FROM scheduled_tasks WHERE project_id = ? AND id = ?", (project_id, task_id)).fetchone() is None:
        raise NotFound(f"scheduled task {task_id!r} does not exist")


class TasksStore:
    """Scheduled tasks and their runs in `control.db`. `listeners` are called after every
    committed change of what is scheduled (the scheduler wakes up to look again)."""

    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane
        self.listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        return self.plane.config.clock()

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    # --- REST ------------------------------------------------------------------------------

    async def create(self, project_id: str, room_name: str, spec: ScheduledTaskSpec) -> str:
        schedule = _checked(spec)
        now, task_id = self.now(), str(uuid.uuid4())

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            room = db.execute("SELECT id FROM rooms WHERE project_id = ? AND name = ?", (project_id, room_name)).fetchone()
            if room is None:
                raise NotFound(f"room {room_name!r} does not exist")
            db.execute(
                "INSERT INTO scheduled_tasks (id, project_id, room_id, spec, active, anchor, next_due, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (task_id, project_id, room[0], _json(spec), int(spec.active), now, _first_due(schedule, spec, now), iso(now), iso(now)),
            )

        await self.plane.run(work)
        self._changed()
        return task_id

    async def update(self, project_id: str, task_id: str, spec: ScheduledTaskSpec) -> None:
        """Replace the spec; the schedule counts from now (due times before now are not run)."""
        schedule = _checked(spec)
        now = self.now()

        def work(db: sqlite3.Connection) -> None:
            _require_task(db, project_id, task_id)
            db.execute(
                "UPDATE scheduled_tasks SET spec = ?, active = ?, anchor = ?, next_due = ?, updated_at = ? WHERE id = ?",
                (_json(spec), int(spec.active), now, _first_due(schedule, spec, now), iso(now), task_id),
            )

        await self.plane.run(work)
        self._changed()

    async def delete(self, project_id: str, task_id: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            _require_task(db, project_id, task_id)
            db.execute("DELETE FROM scheduled_tasks WHERE id = ?", (task_id,))

        await self.plane.run(work)
        self._changed()

    async def list_page(
        self, project_id: str, *, page_size: int, room_id: str | None, offset: int, after: str | None, task_id: str | None, active: bool | None
    ) -> tuple[list[ScheduledTask], int, str | None]:
        """One page, in creation order: of a room by `offset` (no token), or of the project
        after the token `after`; (tasks, total, next token or None)."""
        where, parameters = ["t.project_id = ?"], [project_id]
        for clause, value in (("t.room_id = ?", room_id), ("t.id = ?", task_id), ("t.active = ?", None if active is None else int(active))):
            if value is not None:
                where.append(clause)
                parameters.append(value)  # type: ignore[arg-type]
        if after is not None and not after.isdigit():
            raise ControlError(f"list_scheduled_tasks: invalid continuation_token {after!r}")

        def work(db: sqlite3.Connection) -> tuple[list[ScheduledTask], int, str | None]:
            require_project(db, project_id)
            if room_id is not None and db.execute("SELECT 1 FROM rooms WHERE project_id = ? AND id = ?", (project_id, room_id)).fetchone() is None:
                raise NotFound(f"room id {room_id!r} does not exist")
            condition = " AND ".join(where)
            total = db.execute(f"SELECT count(*) FROM scheduled_tasks t WHERE {condition}", parameters).fetchone()[0]
            page_where = condition + (" AND t.rowid > ?" if after is not None else "")
            rows = db.execute(
                f"SELECT {_TASK_COLUMNS}, t.rowid FROM scheduled_tasks t JOIN rooms r ON r.id = t.room_id"
                f" WHERE {page_where} ORDER BY t.rowid LIMIT ? OFFSET ?",
                (*parameters, *([int(after)] if after is not None else []), page_size + 1, offset),
            ).fetchall()
            tasks = [_task(db, row[:-1]) for row in rows[:page_size]]
            more = len(rows) > page_size and room_id is None
            return tasks, total, str(rows[page_size - 1][-1]) if more else None

        return await self.plane.run(work)  # type: ignore[no-any-return]

    async def list_runs(self, project_id: str, task_id: str, *, limit: int, offset: int) -> tuple[list[ScheduledTaskRun], int]:
        """The task's runs, newest first."""

        def work(db: sqlite3.Connection) -> tuple[list[ScheduledTaskRun], int]:
            _require_task(db, project_id, task_id)
            total = db.execute("SELECT count(*) FROM scheduled_task_runs WHERE task_id = ?", (task_id,)).fetchone()[0]
            rows = db.execute(
                f"SELECT {_RUN_COLUMNS} FROM scheduled_task_runs WHERE task_id = ? ORDER BY id DESC LIMIT ? OFFSET ?", (task_id, limit, offset)
            ).fetchall()
            return [_run(row) for row in rows], total

        return await self.plane.run(work)  # type: ignore[no-any-return]

    # --- the scheduler ---------------------------------------------------------------------

    async def next_due(self) -> float | None:
        """The earliest due time of an active task (None: nothing is scheduled)."""
        row = await self.plane.run(lambda db: db.execute("SELECT min(next_due) FROM scheduled_tasks WHERE next_due IS NOT NULL").fetchone())
        return None if row is None or row[0] is None else float(row[0])

    async def due_task_ids(self, now: float) -> list[str]:
        rows = await self.plane.run(
            lambda db: db.execute("SELECT id FROM scheduled_tasks WHERE next_due <= ? ORDER BY next_due, rowid", (now,)).fetchall()
        )
        return [row[0] for row in rows]

    async def claim(self, task_id: str, now: float) -> Firing | None:
        """Record the run of a task that is due at `now` and move it to its next due time, in
        one transaction; None if it is not due (any more). The run is for the latest due time
        at or before `now`: earlier ones missed since `next_due` are not run. A `once` task is
        deactivated by its run."""

        def work(db: sqlite3.Connection) -> Firing | None:
            row = db.execute(
                "SELECT t.project_id, t.room_id, r.name, t.spec, t.anchor, t.next_due FROM scheduled_tasks t JOIN rooms r ON r.id = t.room_id"
                " WHERE t.id = ? AND t.next_due <= ?",
                (task_id, now),
            ).fetchone()
            if row is None:
                return None
            project_id, room_id, room_name, spec_json, anchor, next_due = row
            spec = msgspec.json.decode(spec_json, type=ScheduledTaskSpec)
            schedule = Schedule.parse(spec.schedule)
            due = max(next_due, schedule.latest_at_or_before(now, anchor=anchor) or next_due)
            if spec.once:
                spec.active = False
                db.execute("UPDATE scheduled_tasks SET spec = ?, active = 0, next_due = NULL WHERE id = ?", (_json(spec), task_id))
            else:
                db.execute("UPDATE scheduled_tasks SET next_due = ? WHERE id = ?", (schedule.next_after(now, anchor=anchor), task_id))
            try:
                cursor = db.execute(
                    "INSERT INTO scheduled_task_runs (task_id, project_id, room_id, room_name, due, status, started_at)"
                    " VALUES (?, ?, ?, ?, ?, 'submitting', ?)",
                    (task_id, project_id, room_id, room_name, due, iso(now)),
                )
            except sqlite3.IntegrityError:  # this due time has fired already (the schedule was reset onto it)
                return None
            assert spec.queue is not msgspec.UNSET and cursor.lastrowid is not None
            return Firing(cursor.lastrowid, task_id, project_id, room_name, spec.queue.name, spec.queue.payload)

        return await self.plane.run(work)  # type: ignore[no-any-return]

    async def finish_run(self, run_id: int, *, queued_message_id: str | None = None, error: str | None = None) -> None:
        status = "failed" if error is not None else "submitted"
        await self.plane.run(
            lambda db: db.execute(
                "UPDATE scheduled_task_runs SET status = ?, queued_message_id = ?, error = ?, completed_at = ? WHERE id = ?",
                (status, queued_message_id, error, iso(self.now()), run_id),
            )
        )

    async def fail_interrupted_runs(self) -> int:
        """Runs a stopped server left `submitting` are `failed` (never sent again); how many."""
        message = "the server stopped while sending this run's message; it may or may not be in the queue"
        return await self.plane.run(  # type: ignore[no-any-return]
            lambda db: db.execute(
                "UPDATE scheduled_task_runs SET status = 'failed', error = ?, completed_at = ? WHERE status = 'submitting'",
                (message, iso(self.now())),
            ).rowcount
        )


def _checked(spec: ScheduledTaskSpec) -> Schedule:
    try:
        return check_spec(spec)
    except ValueError as error:
        raise ControlError(str(error)) from None


def _first_due(schedule: Schedule, spec: ScheduledTaskSpec, now: float) -> float | None:
    return schedule.next_after(now, anchor=now) if spec.active else None


__all__ = ["Firing", "MIGRATIONS", "TasksStore", "iso"]
