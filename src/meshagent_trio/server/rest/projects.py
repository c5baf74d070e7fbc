"""REST handlers of the deployment config and projects (protocol/rest.md §2–3)."""

from __future__ import annotations

from typing import Any

from meshagent_core.rest.files import FILES_PREFIX
from meshagent_core.rest.models import DeploymentConfig, DeploymentDomains, ProjectsPage

from ..control import Forbidden, NotFound
from .context import Caller, Handler, RestContext, server_version


async def get_config(context: RestContext, a: dict[str, Any], caller: Caller) -> DeploymentConfig:
    return DeploymentConfig(domains=DeploymentDomains(api=context.api_url, files=context.api_url + FILES_PREFIX), reserved_route_domains=context.control.domains.reserved, version=server_version())


async def create_project(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    if caller.project_id is not None:
        raise Forbidden("create_project: the credentials belong to a project; only the owner's key makes projects")
    return await context.control.create_project(a["name"])


async def list_projects(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    """Every project for the owner; the caller's own for credentials of a project."""
    projects = await context.control.list_projects()
    return ProjectsPage(projects=[p for p in projects if caller.project_id in (None, p.id)])


async def get_project(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.get_project(a["project_id"])


async def get_project_by_key(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    """A project's key is the `project_key` set for it, else its id (the local server sets no
    keys, so the key of a project is its id); an unknown key answers 404."""
    project = await context.control.accounts.project_by_key(a["project_key"])
    if caller.project_id is not None and project.id != caller.project_id:
        raise NotFound(f"no project has the key {a['project_key']!r}")  # another project's: not disclosed
    return project


HANDLERS: dict[str, Handler] = {
    "get_config": get_config,
    "create_project": create_project,
    "list_projects": list_projects,
    "get_project": get_project,
    "get_project_by_key": get_project_by_key,
}
