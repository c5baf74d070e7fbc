"""Routes of the deployment config, projects, members, profiles and settings documents
(`get_config`, `create_project`, …, `whoami`)."""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec
from msgspec import UNSET, UnsetType

from .models import DeploymentConfig, JsonObject, ProjectInfo, ProjectsPage, ProjectUsersPage, User, UsersPage, WhoAmI
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


ProjectRole = Literal[
    "member", "admin", "developer", "room_creator", "room_inventory", "room_manager", "session_inventory",
    "agent_creator", "agent_inventory", "agent_manager", "repository_creator", "repository_inventory",
    "repository_manager", "feed_creator", "feed_inventory", "feed_manager", "oauth_client_creator",
    "oauth_client_inventory", "oauth_client_manager", "api_key_creator", "api_key_inventory", "api_key_manager",
    "service_creator", "service_inventory", "service_manager", "service_account_creator",
    "service_account_inventory", "service_account_manager", "participant_token_creator", "mailbox_creator",
    "mailbox_inventory", "mailbox_manager", "route_creator", "route_inventory", "route_manager",
    "custom_domain_creator", "custom_domain_inventory", "custom_domain_manager", "scheduled_task_creator",
    "scheduled_task_inventory", "scheduled_task_manager", "feed_subscription_creator",
    "feed_subscription_inventory", "feed_subscription_manager", "llm_logger_creator", "llm_logger_inventory",
    "llm_logger_manager", "llm_proxy_user", "llm_quota_manager", "usage_reporter", "billing_manager",
    "group_manager", "user_profile_editor",
]  # fmt: skip


class CreateProjectBody(msgspec.Struct, kw_only=True):
    name: str


class AddProjectUserBody(msgspec.Struct, kw_only=True):
    project_id: str
    user_id: str
    roles: list[ProjectRole]


class ProjectUserRolesBody(msgspec.Struct, kw_only=True):
    roles: list[ProjectRole]


class ProjectUsersQuery(msgspec.Struct, kw_only=True):
    page_size: int = 100
    view: ProfileView = "merged"
    continuation_token: str | None = None
    filter: str | None = None


class ProfileViewQuery(msgspec.Struct, kw_only=True):
    view: ProfileView = "merged"


class ProfileBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Only the fields given are sent (and changed); unknown keys are refused, as the official
    model does (`extra="forbid"`). A null is refused too (naming the field)."""

    first_name: str | UnsetType = UNSET
    last_name: str | UnsetType = UNSET
    metadata: JsonObject | UnsetType = UNSET
    annotations: dict[str, str] | UnsetType = UNSET


ProfileField = Literal["first_name", "last_name", "metadata", "annotations"]
PROFILE_FIELDS: tuple[ProfileField, ...] = get_args(ProfileField)


class ProjectProfileBody(ProfileBody, kw_only=True):
    """The project's overrides of a user's profile; `inherit` names fields that go back to the
    user's own (a field may not be both given and inherited)."""

    inherit: list[ProfileField] | UnsetType = UNSET


class SysadminUsersQuery(msgspec.Struct, kw_only=True):
    page_size: int = 100
    filter: str | None = None
    continuation_token: str | None = None


ROUTES = [
    Route("get_config", "GET", "/config", DeploymentConfig),
    Route("create_project", "POST", "/accounts/projects", ProjectInfo, body=CreateProjectBody),
    Route("list_projects", "GET", "/accounts/projects", ProjectsPage),
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
