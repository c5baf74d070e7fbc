"""The official conveniences of `Meshagent` for registries (protocol/rest.md §13): methods that are more than one
route call (paging loops, reshaped answers). `Meshagent` inherits them; they call `self.call`."""

from __future__ import annotations

from typing import Any

from ..rest.registries import ProjectRepository


class RegistriesMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def list_repositories(
        self, *, project_id: str, page_size: int = 100, continuation_token: str | None = None, view: str | None = None
    ) -> list[ProjectRepository]:
        """The repositories of one page (`list_repositories_page(...).repositories`)."""
        page = await self.call("list_repositories_page", project_id=project_id, page_size=page_size, continuation_token=continuation_token, view=view)
        return page.repositories  # type: ignore[no-any-return]
