"""The official conveniences of `Meshagent` for billing and usage (protocol/rest.md §21): the list
inside an answer (transactions, usage rows), the checkout URL as a string, and `get_usage`'s
arguments as the official method takes them (datetimes, a list of users, a dict of
annotations). `Meshagent` inherits them; they call `self.call`.

Every error is the official generic one: `RoomException("Failed to <action>. Status code: N,
body: B")` (a `RestError` here, with the real status in `http_status`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..rest.billing import Transaction


def _usage_query(start: datetime | None, end: datetime | None, interval: str | None, annotations: dict[str, str] | None) -> dict[str, Any]:
    return {
        "start": start.isoformat() if start is not None else None,
        "end": end.isoformat() if end is not None else None,
        "interval": interval,
        "annotations": json.dumps(annotations) if annotations else None,
    }


def _given(value: str | None) -> str | None:
    """A filter the official client sends only when it is not blank (trimmed)."""
    return value.strip() if value is not None and value.strip() else None


class BillingMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def get_pricing(self) -> dict[str, Any]:
        return await self.call("get_pricing")

    async def get_subscription(self, project_id: str) -> dict[str, Any]:
        return await self.call("get_subscription", project_id=project_id)

    async def get_recent_transactions(self, project_id: str) -> list[Transaction]:
        return list((await self.call("get_recent_transactions", project_id=project_id)).transactions)

    async def set_auto_recharge(self, *, project_id: str, enabled: bool, amount: float, threshold: float, monthly_budget: float | None = None) -> None:
        await self.call("set_auto_recharge", project_id=project_id, enabled=enabled, amount=amount, threshold=threshold, monthly_budget=monthly_budget)

    async def get_checkout_url(self, project_id: str, *, success_url: str, cancel_url: str) -> str:
        answer = await self.call("get_checkout_url", project_id=project_id, success_url=success_url, cancel_url=cancel_url)
        return answer.checkout_url

    async def get_credits_checkout_url(self, project_id: str, *, success_url: str, cancel_url: str, quantity: float) -> str:
        answer = await self.call("get_credits_checkout_url", project_id=project_id, success_url=success_url, cancel_url=cancel_url, quantity=quantity)
        return answer.checkout_url

    async def get_usage(
        self,
        project_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        interval: str | None = None,
        report: str | None = None,
        users: list[str] | None = None,
        room: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        usage_type: str | None = None,
        annotations: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Usage rows (see protocol/rest.md §21 for the local server's)."""
        answer = await self.call(
            "get_usage",
            project_id=project_id,
            **_usage_query(start, end, interval, annotations),
            report=report,
            users=",".join(users) if users else None,
            room=_given(room),
            provider=_given(provider),
            model=_given(model),
            usage_type=_given(usage_type),
        )
        return list(answer.usage)

    async def get_current_user_llm_proxy_usage(
        self,
        project_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        interval: str | None = None,
        annotations: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        answer = await self.call("get_current_user_llm_proxy_usage", project_id=project_id, **_usage_query(start, end, interval, annotations))
        return list(answer.usage)
