"""Routes of registries: a project's OCI repositories and their tokens (protocol/rest.md §13),
their models, and the official rule of a repository name (`normalize_repository_name`)."""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from .accounts import PROJECT
from .models import Model
from .routes import Route

REPOSITORIES = PROJECT + "/repositories"
REPOSITORY = REPOSITORIES + "/{repository_id}"
RepositoryAction = Literal["pull", "push"]

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


def normalize_repository_name(value: str) -> str:
    """Lower-cased and trimmed; `/`-separated OCI path components (`team/app`). ValueError
    otherwise (the official client's rule)."""
    normalized = value.strip().lower()
    if not normalized:
        raise ValueError("name: a repository name must not be empty")
    if any(not _COMPONENT.fullmatch(part) for part in normalized.split("/")):
        raise ValueError(f"name: {value!r} is not an OCI repository path (lower-case components like team/app-1)")
    return normalized


class ProjectRepository(Model, kw_only=True):
    id: str
    project_id: str
    name: str
    created_at: str
    description: str = ""
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class ProjectRepositoriesPage(Model, kw_only=True):
    repositories: list[ProjectRepository]
    total: int = 0
    continuation_token: str | None = None


class RepositoryBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    description: str = ""
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class RepositoriesQuery(msgspec.Struct, kw_only=True):
    page_size: int = 100
    continuation_token: str | UnsetType = UNSET
    view: str | UnsetType = UNSET


class RepositoryTokenBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`actions`: non-empty; `expires_in_seconds`: over 0, or None for the server's default."""

    actions: list[RepositoryAction] = msgspec.field(default_factory=lambda: ["pull"])
    expires_in_seconds: int | None = None


class RepositoryToken(Model, kw_only=True):
    token: str
    expires_at: str


ROUTES = [
    Route("create_repository", "POST", REPOSITORIES, ProjectRepository, body=RepositoryBody),
    Route("update_repository", "PUT", REPOSITORY, ProjectRepository, body=RepositoryBody),
    Route("get_repository", "GET", REPOSITORY, ProjectRepository),
    Route("get_repository_by_name", "GET", REPOSITORIES + "/by-name/{name}", ProjectRepository),
    Route(
        "list_repositories_page", "GET", REPOSITORIES, ProjectRepositoriesPage, query=RepositoriesQuery,
        aliases=("list_repositories",), payload_noun="repositories",
    ),
    Route("delete_repository", "DELETE", REPOSITORY, Any),
    Route("create_repository_token", "POST", REPOSITORY + "/token", RepositoryToken, body=RepositoryTokenBody),
]  # fmt: skip

__all__ = [
    "ProjectRepositoriesPage",
    "ProjectRepository",
    "ROUTES",
    "RepositoriesQuery",
    "RepositoryAction",
    "RepositoryBody",
    "RepositoryToken",
    "RepositoryTokenBody",
    "normalize_repository_name",
]
