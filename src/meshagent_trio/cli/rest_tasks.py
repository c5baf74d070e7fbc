"""`meshagent-trio scheduled-task …`: tasks that send a message to a room's queue on a schedule,
and their runs (REST). A task's spec is a `ScheduledTaskSpec` in a YAML or JSON file:

    kind: ScheduledTask
    schedule: "0 * * * *"          # cron (UTC), or "30 minutes"; at most every 15 minutes
    queue: {name: jobs, payload: {do: "report"}}
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from .common import CommandFailed, OutputFormat, OutputOption, ProjectIdOption, example, group, require_room, resolve_project_id, rest_session, run, with_api
from .output import print_data
from .service_specs import load_task_spec

EXTENSIONS = ("scheduled-tasks",)

app = group("Manage scheduled tasks for your project.")

#: `--room/-r`, as the official scheduled-task commands spell it.
TaskRoomOption = Annotated[
    Optional[str], typer.Option("--room", "-r", envvar="MESHAGENT_ROOM", show_envvar=False, help="Room name (default: $MESHAGENT_ROOM).")
]
SpecFileOption = Annotated[str, typer.Option("--file", "-f", help="a ScheduledTaskSpec file (YAML or JSON)")]
TaskArgument = Annotated[str, typer.Argument(help="the scheduled task's id")]
CountOption = Annotated[int, typer.Option("--count", min=0, help="at most this many")]
LimitOption = Annotated[int, typer.Option("--limit", min=0, hidden=True, help="the same as --count")]
OffsetOption = Annotated[int, typer.Option("--offset", min=0, help="skip this many first")]

TASK_COLUMNS = ("id", "room_name", "target", "queue_name", "schedule", "active", "once", "next_run_time", "last_status")
RUN_COLUMNS = ("id", "status", "target", "scheduled_time", "started_at", "completed_at", "attempt_count", "queued_message_id", "error")


def _count(count: int, limit: int) -> int:
    """`--count`, or the hidden `--limit` when only that was changed (the official rule)."""
    return count if count != 100 else limit


def _missing(error: BaseException) -> bool:
    return getattr(error, "http_status", None) == 404


@app.command("add", epilog=example("meshagent-trio scheduled-task add --room lobby --file task.yaml"))
def add(file: SpecFileOption, project_id: ProjectIdOption = None, room: TaskRoomOption = None) -> None:
    """Add a scheduled task to a room; prints its id."""
    name = require_room(room)
    spec = load_task_spec(file)

    async def body() -> str:
        from meshagent_core.rest.answers import ConflictError

        async with rest_session() as api:
            try:
                return await api.create_scheduled_task(project_id=resolve_project_id(project_id), room_name=name, spec=spec)
            except ConflictError:
                raise CommandFailed("the scheduled task already exists") from None
            except Exception as error:
                if _missing(error):
                    raise CommandFailed(f"no room {name!r} in the project (create it with: meshagent-trio rooms create)") from None
                raise

    task_id = run(body)
    print(f"created scheduled task {task_id}", file=sys.stderr)
    print(task_id)


async def _tasks(api: Any, project: str, room: Optional[str], query: dict[str, Any], count: int, offset: int) -> list[Any]:
    """`count` tasks from `offset`: offset pages within a room, cursor pages for the project."""
    tasks: list[Any] = []
    if count <= 0:
        return tasks
    if room is not None:
        try:
            room_id = (await api.get_room(project_id=project, name=room)).id
        except Exception as error:
            if _missing(error):
                raise CommandFailed(f"no room {room!r} in the project") from None
            raise
        while len(tasks) < count:
            size = min(count - len(tasks), 100)
            page = await api.list_scheduled_tasks_page(project_id=project, room_id=room_id, page_size=size, offset=offset + len(tasks), **query)
            tasks.extend(page.tasks)
            if len(page.tasks) < size:
                break
        return tasks[:count]
    token = None
    while len(tasks) < offset + count:
        page = await api.list_scheduled_tasks_page(project_id=project, page_size=min(offset + count - len(tasks), 100), continuation_token=token, **query)
        tasks.extend(page.tasks)
        token = page.continuation_token
        if token is None or not page.tasks:
            break
    return tasks[offset : offset + count]


@app.command(
    "list",
    epilog=example("meshagent-trio scheduled-task list", "meshagent-trio scheduled-task list --room lobby --active -o json"),
)
def list_tasks(
    project_id: ProjectIdOption = None,
    room: TaskRoomOption = None,
    task_id: Annotated[Optional[str], typer.Option("--id", "--task-id", help="only this task")] = None,
    active: Annotated[bool, typer.Option("--active", help="only active tasks")] = False,
    inactive: Annotated[bool, typer.Option("--inactive", help="only inactive tasks")] = False,
    filter: Annotated[Optional[str], typer.Option("--filter", help="only tasks whose text contains this (lower case)")] = None,
    count: CountOption = 100,
    limit: LimitOption = 100,
    offset: OffsetOption = 0,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List scheduled tasks (of a room with --room)."""
    if active and inactive:
        raise typer.BadParameter("pass only one of --active or --inactive", param_hint="--active")
    state = True if active else False if inactive else None

    async def body() -> list[Any]:
        async with rest_session() as api:
            query = {"task_id": task_id, "active": state, "filter": filter}
            return await _tasks(api, resolve_project_id(project_id), room, query, _count(count, limit), offset)

    tasks = run(body)
    if output is OutputFormat.json:
        print_data(tasks, output)
        return
    rows = [{**{key: getattr(task, key, None) for key in TASK_COLUMNS}, "target": "container" if task.container else "queue"} for task in tasks]
    print_data(rows, output, columns=TASK_COLUMNS, empty="no scheduled tasks")


@app.command("update", epilog=example("meshagent-trio scheduled-task update 3f2c… --file task.yaml"))
def update(task_id: TaskArgument, file: SpecFileOption, project_id: ProjectIdOption = None) -> None:
    """Replace a scheduled task's spec."""
    spec = load_task_spec(file)

    with_api(lambda api: api.update_scheduled_task(project_id=resolve_project_id(project_id), task_id=task_id, spec=spec), missing=f"no scheduled task {task_id!r}")
    print(f"updated scheduled task {task_id}", file=sys.stderr)


@app.command("runs", epilog=example("meshagent-trio scheduled-task runs 3f2c…", "meshagent-trio scheduled-task runs 3f2c… --count 10 -o json"))
def runs(
    task_id: TaskArgument,
    project_id: ProjectIdOption = None,
    count: CountOption = 100,
    limit: LimitOption = 100,
    offset: OffsetOption = 0,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the runs of a scheduled task, newest first."""

    print_data(with_api(lambda api: api.list_scheduled_task_runs(project_id=resolve_project_id(project_id), task_id=task_id, limit=_count(count, limit), offset=offset), missing=f"no scheduled task {task_id!r}"), output, columns=None if output is OutputFormat.json else RUN_COLUMNS, empty="no runs yet")


@app.command("delete", epilog=example("meshagent-trio scheduled-task delete 3f2c…"))
def delete(task_id: TaskArgument, project_id: ProjectIdOption = None) -> None:
    """Delete a scheduled task."""

    with_api(lambda api: api.delete_scheduled_task(project_id=resolve_project_id(project_id), task_id=task_id), missing=f"no scheduled task {task_id!r}")
    print(f"deleted scheduled task {task_id}", file=sys.stderr)
