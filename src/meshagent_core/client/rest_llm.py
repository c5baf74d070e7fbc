"""The official conveniences of `Meshagent` for LLM loggers and LLM delegation (protocol/rest.md §12): methods that are more than one
route call (paging loops, reshaped answers). `Meshagent` inherits them; they call `self.call`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..rest.access import AccessSubject
from ..rest.llm import LlmDelegation


class LlmMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def connect_llm(
        self,
        *,
        project_id: str,
        subject: AccessSubject | dict[str, Any],
        max_budget: Decimal | str,
        providers: list[str] | None = None,
        models: list[str] | None = None,
        expires_in_seconds: int | None = None,
    ) -> LlmDelegation:
        """A delegation to `subject` of up to `max_budget` (a `Decimal` or its text) on LLM calls
        in the project (sent in the `Meshagent-Project-Id` header)."""
        return await self.call(  # type: ignore[no-any-return]
            "connect_llm", project_id=project_id, subject=subject, max_budget=str(max_budget), providers=providers, models=models,
            expires_in_seconds=expires_in_seconds,
        )  # fmt: skip
