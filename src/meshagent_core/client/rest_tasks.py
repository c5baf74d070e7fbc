"""The official conveniences of `Meshagent` for scheduled tasks and their runs (protocol/rest.md
§20): a spec is given as a `ScheduledTaskSpec` or its JSON and checked before it is sent, as the
official model checks it (`ValueError` naming the field); `create_scheduled_task` answers the
new task's id; the list methods send `offset` only with `room_id` and `continuation_token` only
without it, as the official client does, and the short forms answer the list. `Meshagent`
inherits them; they call `self.call`."""

from __future__ import annotations

from typing import Any

from ..rest.tasks import ScheduledTask, ScheduledTaskRun, ScheduledTaskSpec, ScheduledTasksPage, read_spec


class TasksMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def create_scheduled_task(self, *, project_id: str, room_name: str, spec: ScheduledTaskSpec | dict[str, Any]) -> str:
        """A task that sends `spec.queue` to the room's queue on `spec.schedule`; its id."""
        answer = await self.call("create_scheduled_task", project_id=project_id, room_name=room_name, spec=read_spec(spec))
        return answer.task_id  # type: ignore[no-any-return]

    async def update_scheduled_task(self, *, project_id: str, task_id: str, spec: ScheduledTaskSpec | dict[str, Any]) -> None:
        """Replace the task's spec (its next due time is counted from now)."""
        await self.call("update_scheduled_task", project_id=project_id, task_id=task_id, spec=read_spec(spec))

    async def list_scheduled_tasks_page(
        self,
        *,
        project_id: str,
        room_id: str | None = None,
        task_id: str | None = None,
        active: bool | None = None,
        page_size: int = 100,
        offset: int = 0,
        continuation_token: str | None = None,
        filter: str | None = None,
    ) -> ScheduledTasksPage:
        query: dict[str, Any] = {"page_size": page_size, "task_id": task_id, "active": active}
        if room_id is not None:
            query.update(room_id=room_id, offset=offset)
        elif continuation_token is not None:
            query["continuation_token"] = continuation_token
        if filter is not None and filter.strip():
            query["filter"] = filter
        return await self.call("list_scheduled_tasks_page", project_id=project_id, **query)  # type: ignore[no-any-return]

    async def list_scheduled_tasks(self, *, project_id: str, **query: Any) -> list[ScheduledTask]:
        return (await self.list_scheduled_tasks_page(project_id=project_id, **query)).tasks

    async def list_scheduled_task_runs(self, *, project_id: str, task_id: str, limit: int = 100, offset: int = 0) -> list[ScheduledTaskRun]:
        page = await self.call("list_scheduled_task_runs_page", project_id=project_id, task_id=task_id, limit=limit, offset=offset)
        return page.runs  # type: ignore[no-any-return]
