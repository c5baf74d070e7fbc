"""REST handlers of scheduled tasks and their runs (protocol/rest.md §20). The store
(`control.tasks`) keeps them; the server's scheduler (`scheduler.py`) fires them. Tasks with a
`container` target are refused (501): the local server runs no containers."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from meshagent_core.rest.tasks import ScheduledTaskCreated, ScheduledTaskRunsPage, ScheduledTaskSpec, ScheduledTasksPage

from .context import Caller, Handler, NotImplementedHere, RestContext

MAX_PAGE_SIZE = 1000


def _queue_only(method: str, spec: ScheduledTaskSpec) -> ScheduledTaskSpec:
    """The spec, unless it is a container task (one with both targets is a 400 of the store)."""
    if spec.container is not UNSET and spec.queue is UNSET:
        raise NotImplementedHere(f"{method}: spec.container: the local server runs no containers; its scheduled tasks send a queue message (spec.queue)")
    return spec


async def create_scheduled_task(context: RestContext, a: dict[str, Any], caller: Caller) -> ScheduledTaskCreated:
    spec = _queue_only("create_scheduled_task", a["spec"])
    return ScheduledTaskCreated(task_id=await context.control.tasks.create(a["project_id"], a["room_name"], spec))


async def update_scheduled_task(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.tasks.update(a["project_id"], a["task_id"], _queue_only("update_scheduled_task", a["spec"]))


async def delete_scheduled_task(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.tasks.delete(a["project_id"], a["task_id"])


async def list_scheduled_tasks_page(context: RestContext, a: dict[str, Any], caller: Caller) -> ScheduledTasksPage:
    if a.get("filter"):
        raise NotImplementedHere("list_scheduled_tasks: filter is not implemented by the local server (list by room_id, task_id or active)")
    tasks, total, token = await context.control.tasks.list_page(
        a["project_id"],
        page_size=max(1, min(a["page_size"], MAX_PAGE_SIZE)),
        room_id=a.get("room_id"),
        offset=max(0, a.get("offset", 0)),
        after=a.get("continuation_token"),
        task_id=a.get("task_id"),
        active=a.get("active"),
    )
    return ScheduledTasksPage(tasks=tasks, total=total, continuation_token=token)


async def list_scheduled_task_runs_page(context: RestContext, a: dict[str, Any], caller: Caller) -> ScheduledTaskRunsPage:
    limit = max(1, min(a["limit"], MAX_PAGE_SIZE))
    runs, total = await context.control.tasks.list_runs(a["project_id"], a["task_id"], limit=limit, offset=max(0, a["offset"]))
    return ScheduledTaskRunsPage(runs=runs, total=total)


HANDLERS: dict[str, Handler] = {
    "create_scheduled_task": create_scheduled_task,
    "update_scheduled_task": update_scheduled_task,
    "delete_scheduled_task": delete_scheduled_task,
    "list_scheduled_tasks_page": list_scheduled_tasks_page,
    "list_scheduled_task_runs_page": list_scheduled_task_runs_page,
}
