"""REST handlers of the deployment config and projects (REST_API §2–3)."""

from __future__ import annotations

from typing import Any

from meshagent_core.rest.models import DeploymentConfig, DeploymentDomains, ProjectList

from .context import Caller, Handler, RestContext, server_version


async def get_config(context: RestContext, a: dict[str, Any], caller: Caller) -> DeploymentConfig:
    return DeploymentConfig(domains=DeploymentDomains(api=context.api_url), version=server_version())


async def create_project(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.create_project(a["name"])


async def list_projects(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return ProjectList(projects=await context.control.list_projects())


async def get_project(context: RestContext, a: dict[str, Any], caller: Caller) -> Any:
    return await context.control.get_project(a["project_id"])


HANDLERS: dict[str, Handler] = {
    "get_config": get_config,
    "create_project": create_project,
    "list_projects": list_projects,
    "get_project": get_project,
}
