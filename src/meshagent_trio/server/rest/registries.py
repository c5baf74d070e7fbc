"""REST handlers of registries (protocol/rest.md §13): repositories are records and their
tokens are real (see `control.registries`); the local server stores no images and serves no
OCI registry API."""

from __future__ import annotations

from typing import Any

from meshagent_core.rest.registries import ProjectRepositoriesPage, ProjectRepository, RepositoryToken

from ..control import ControlError, Forbidden
from .context import Caller, Handler, NotImplementedHere, RestContext


def _fields(a: dict[str, Any]) -> dict[str, Any]:
    return {"name": a["name"], "description": a["description"], "annotations": a["annotations"]}


async def create_repository(context: RestContext, a: dict[str, Any], caller: Caller) -> ProjectRepository:
    return await context.control.registries.create_repository(a["project_id"], **_fields(a))


async def update_repository(context: RestContext, a: dict[str, Any], caller: Caller) -> ProjectRepository:
    return await context.control.registries.update_repository(a["project_id"], a["repository_id"], **_fields(a))


async def get_repository(context: RestContext, a: dict[str, Any], caller: Caller) -> ProjectRepository:
    return await context.control.registries.get_repository(a["project_id"], a["repository_id"])


async def get_repository_by_name(context: RestContext, a: dict[str, Any], caller: Caller) -> ProjectRepository:
    return await context.control.registries.get_repository_by_name(a["project_id"], a["name"])


async def list_repositories_page(context: RestContext, a: dict[str, Any], caller: Caller) -> ProjectRepositoriesPage:
    if a.get("view"):
        raise NotImplementedHere("list_repositories: view is not implemented by the local server")
    if a["page_size"] < 1:
        raise ControlError("page_size must be 1 or more")
    repositories, total, token = await context.control.registries.list_repositories(
        a["project_id"], page_size=min(a["page_size"], 1000), after=a.get("continuation_token")
    )
    return ProjectRepositoriesPage(repositories=repositories, total=total, continuation_token=token)


async def delete_repository(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.registries.delete_repository(a["project_id"], a["repository_id"])


async def create_repository_token(context: RestContext, a: dict[str, Any], caller: Caller) -> RepositoryToken:
    if caller.kind not in ("owner", "service_account"):
        raise Forbidden("create_repository_token needs an API key")
    subject = caller.subject_id if caller.kind == "service_account" else context.control.accounts.owner_user().id
    return await context.control.registries.create_token(
        a["project_id"], a["repository_id"], actions=a["actions"], expires_in_seconds=a["expires_in_seconds"], subject=subject or ""
    )


HANDLERS: dict[str, Handler] = {
    "create_repository": create_repository,
    "update_repository": update_repository,
    "get_repository": get_repository,
    "get_repository_by_name": get_repository_by_name,
    "list_repositories_page": list_repositories_page,
    "delete_repository": delete_repository,
    "create_repository_token": create_repository_token,
}
