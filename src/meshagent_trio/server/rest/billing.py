"""REST handlers of billing and usage (protocol/rest.md §21).

The local server has no billing: there is no card to charge, no balance and no subscription.
Pricing, balance, transactions, auto-recharge, both checkout URLs and the subscription answer
501 (`not_implemented`, naming the method; the official client raises `Failed to <action>.
Status code: 501, …`), after an unknown project's 404. The project's status is real: an
existing project is enabled (the local server disables rooms, not projects).

`get_usage` reports what the server recorded (see `control/billing.py`): participant minutes
per room per `interval` (`day`, default, or `hour`) and the bytes each room's storage holds
now (one row per room, dated now, only when `[start, end)` contains now). Filters: `start` and
`end` (ISO-8601; a time without a zone is UTC), `room`, `users` (participant names; storage is
nobody's, so its rows are left out), `usage_type` (`participant_minutes` or `storage_bytes`).
`provider` and `model` filter LLM usage, which the local server does not record: given, they
match no row. `report` and `annotations` are 501. Room messages are not counted. The LLM proxy
usage is 501: the local server has no LLM proxy.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import trio

from meshagent_core.rest.billing import PARTICIPANT_MINUTES, STORAGE_BYTES, USAGE_INTERVALS, USAGE_TYPES, ProjectStatus, UsageReport

from ..control import ControlError
from ..control.billing import minutes_by_bucket, storage_by_room
from .context import Caller, Handler, NotImplementedHere, RestContext

NO_BILLING = "the local server has no billing (no pricing, balance, payments or subscriptions)"


def _no_billing(name: str) -> Handler:
    async def refuse(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
        if "project_id" in a:
            await context.control.get_project(a["project_id"])  # 404 naming an unknown project first
        raise NotImplementedHere(f"{name}: {NO_BILLING}")

    refuse.__name__ = name
    return refuse


async def get_project_status(context: RestContext, a: dict[str, Any], caller: Caller) -> ProjectStatus:
    await context.control.get_project(a["project_id"])
    return ProjectStatus(enabled=True)


def _instant(name: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ControlError(f"get_usage: {name} {text[:100]!r} is not an ISO-8601 date and time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


async def get_usage(context: RestContext, a: dict[str, Any], caller: Caller) -> UsageReport:
    for option in ("report", "annotations"):
        if a.get(option) is not None:
            raise NotImplementedHere(f"get_usage: the {option} filter is not implemented by the local server")
    interval = a.get("interval") or "day"
    if interval not in USAGE_INTERVALS:
        raise ControlError(f"get_usage: interval {interval[:50]!r} is not one of {', '.join(USAGE_INTERVALS)}")
    usage_type = a.get("usage_type")
    if usage_type is not None and usage_type not in USAGE_TYPES:
        raise ControlError(f"get_usage: usage_type {usage_type[:50]!r} is not one of {', '.join(USAGE_TYPES)}")
    start, end = _instant("start", a.get("start")), _instant("end", a.get("end"))
    if start is not None and end is not None and end < start:
        raise ControlError("get_usage: end is before start")
    project_id, room = a["project_id"], a.get("room")
    users = [user.strip() for user in a["users"].split(",") if user.strip()] if a.get("users") else None
    now = context.config.clock()
    stretches = await context.control.billing.participant_stretches(project_id, room=room, users=users, now=now)
    if a.get("provider") is not None or a.get("model") is not None:
        return UsageReport(usage=[])  # only LLM usage has a provider or model: none is recorded here
    rows: list[dict[str, Any]] = []
    if usage_type in (None, PARTICIPANT_MINUTES):
        rows += minutes_by_bucket(stretches, bucket=USAGE_INTERVALS[interval], start=start, end=end)
    in_range = (start is None or start <= now) and (end is None or now < end)
    if usage_type in (None, STORAGE_BYTES) and users is None and in_range:
        measured = await trio.to_thread.run_sync(storage_by_room, context.config, project_id, room)
        date = datetime.fromtimestamp(now, tz=timezone.utc).isoformat()
        rows += [{"usage_type": STORAGE_BYTES, "room": name, "date": date, "total": size} for name, size in measured.items()]
    return UsageReport(usage=rows)


async def get_current_user_llm_proxy_usage(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.get_project(a["project_id"])
    raise NotImplementedHere("get_current_user_llm_proxy_usage: the local server has no LLM proxy, so it records no LLM usage")


HANDLERS: dict[str, Handler] = {
    **{
        name: _no_billing(name)
        for name in (
            "get_pricing",
            "get_balance",
            "get_recent_transactions",
            "set_auto_recharge",
            "get_checkout_url",
            "get_credits_checkout_url",
            "get_subscription",
        )
    },
    "get_project_status": get_project_status,
    "get_usage": get_usage,
    "get_current_user_llm_proxy_usage": get_current_user_llm_proxy_usage,
}
