"""Routes of the deployment config, projects, members, profiles and settings documents
(`get_config`, `create_project`, …, `whoami`)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from .models import DeploymentConfig, JsonObject, ProjectInfo, ProjectList, ProjectUsersPage, User, UsersPage, WhoAmI
from .routes import Route

PROJECT = "/accounts/projects/{project_id}"
ProfileView = Literal["project", "user", "merged"]
#: Settings documents and their path names (an official name not listed here is refused).
SETTINGS_DOCUMENTS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "grok": "grok",
    "otel": "otel",
    "admission": "admission",
    "room": "room",
    "room_roles": "room-roles",
    "router": "router",
}


class CreateProjectBody(msgspec.Struct, kw_only=True):
    name: str


class AddProjectUserBody(msgspec.Struct, kw_only=True):
    project_id: str
    user_id: str
    roles: list[str]


class ProjectUserRolesBody(msgspec.Struct, kw_only=True):
    roles: list[str]


class ProjectUsersQuery(msgspec.Struct, kw_only=True):
    page_size: int = 100
    view: ProfileView = "merged"
    continuation_token: str | None = None
    filter: str | None = None


class ProfileViewQuery(msgspec.Struct, kw_only=True):
    view: ProfileView = "merged"


class ProfileBody(msgspec.Struct, kw_only=True):
    """Only the fields given are sent (and changed)."""

    first_name: str | UnsetType = UNSET
    last_name: str | UnsetType = UNSET
    metadata: JsonObject | UnsetType = UNSET
    annotations: dict[str, str] | UnsetType = UNSET


class ProjectProfileBody(ProfileBody, kw_only=True):
    inherit: list[Literal["first_name", "last_name", "metadata", "annotations"]] | UnsetType = UNSET


class SysadminUsersQuery(msgspec.Struct, kw_only=True):
    page_size: int = 100
    filter: str | None = None
    continuation_token: str | None = None


ROUTES = [
    Route("get_config", "GET", "/config", DeploymentConfig),
    Route("create_project", "POST", "/accounts/projects", ProjectInfo, body=CreateProjectBody),
    Route("list_projects", "GET", "/accounts/projects", ProjectList),
    Route("get_project", "GET", PROJECT, ProjectInfo, aliases=("get_project_info",)),
    Route("get_project_by_key", "GET", "/accounts/projects/by-key/{project_key}", ProjectInfo),
    Route("add_user_to_project", "POST", PROJECT + "/users", Any, body=AddProjectUserBody),
    Route("remove_user_from_project", "DELETE", PROJECT + "/users/{user_id}", Any),
    Route("update_project_user", "PUT", PROJECT + "/users/{user_id}", Any, body=ProjectUserRolesBody),
    Route(
        "get_users_in_project_page",
        "GET",
        PROJECT + "/users",
        ProjectUsersPage,
        query=ProjectUsersQuery,
        aliases=("get_users_in_project",),
    ),
    Route("get_project_settings_document", "GET", PROJECT + "/settings/{document}", Any, none_when_missing=True),
    Route("set_project_settings_document", "PUT", PROJECT + "/settings/{document}", Any, raw_body_argument="document_body"),
    Route("delete_project_settings_document", "DELETE", PROJECT + "/settings/{document}", Any),
    Route("get_user_profile", "GET", "/accounts/profiles/{user_id}", Any),
    #: `get_user_profile(user_id, project_id=…)` in the official client
    Route("get_project_user_profile", "GET", PROJECT + "/users/{user_id}/profile", Any, query=ProfileViewQuery),
    Route("update_user_profile", "PUT", "/accounts/profiles/{user_id}", Any, body=ProfileBody),
    #: `update_user_profile(user_id, …, project_id=…)` in the official client
    Route("update_project_user_profile", "PUT", PROJECT + "/users/{user_id}/profile", Any, body=ProjectProfileBody),
    Route("whoami", "GET", "/accounts/whoami", WhoAmI),
    Route("search_sysadmin_users", "GET", "/accounts/sysadmin/users", UsersPage, query=SysadminUsersQuery),
    Route("get_sysadmin_user_profile", "GET", "/accounts/sysadmin/users/{user_id}", User),
    Route("update_sysadmin_user_profile", "PUT", "/accounts/sysadmin/users/{user_id}", Any, body=ProfileBody),
]
