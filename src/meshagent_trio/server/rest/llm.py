"""REST handlers of LLM loggers and LLM delegation (protocol/rest.md §12)."""

from __future__ import annotations

from typing import Any

from meshagent_core.rest.access import AccessSubject
from meshagent_core.rest.llm import LLMLoggerAnswer, LLMLoggers, LlmDelegation

from ..control import Forbidden
from .context import Caller, Handler, RestContext


def _logger_fields(a: dict[str, Any]) -> dict[str, Any]:
    return {name: a[name] for name in ("destination_feed_id", "filter_expression", "paused", "annotations")}


async def create_llm_logger(context: RestContext, a: dict[str, Any], caller: Caller) -> LLMLoggerAnswer:
    return LLMLoggerAnswer(logger=await context.control.llm.create_logger(a["project_id"], **_logger_fields(a)))


async def update_llm_logger(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.llm.update_logger(a["project_id"], a["logger_id"], **_logger_fields(a))


async def get_llm_logger(context: RestContext, a: dict[str, Any], caller: Caller) -> LLMLoggerAnswer:
    return LLMLoggerAnswer(logger=await context.control.llm.get_logger(a["project_id"], a["logger_id"]))


async def list_llm_loggers(context: RestContext, a: dict[str, Any], caller: Caller) -> LLMLoggers:
    return LLMLoggers(loggers=await context.control.llm.list_loggers(a["project_id"]))


async def delete_llm_logger(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.llm.delete_logger(a["project_id"], a["logger_id"])


async def _delegator(context: RestContext, caller: Caller) -> AccessSubject:
    if caller.kind == "service_account":
        account = await context.control.keys.get_service_account(caller.project_id or "", caller.subject_id or "")
        return AccessSubject(type="service_account", id=account.id, name=account.name, email=account.email)
    if caller.kind == "owner":
        owner = context.control.accounts.owner_user()
        return AccessSubject(type="user", id=owner.id, email=owner.email, first_name=owner.first_name, last_name=owner.last_name)
    raise Forbidden("connect_llm needs an API key")


async def connect_llm(context: RestContext, a: dict[str, Any], caller: Caller) -> LlmDelegation:
    """The project is the `Meshagent-Project-Id` header's (`project_id`)."""
    project_id = a["project_id"]
    return await context.control.llm.delegate(
        project_id,
        delegator=await _delegator(context, caller),
        subject=a["subject"],
        max_budget=a["max_budget"],
        providers=a.get("providers"),
        models=a.get("models"),
        expires_in_seconds=a.get("expires_in_seconds"),
    )


HANDLERS: dict[str, Handler] = {
    "create_llm_logger": create_llm_logger,
    "update_llm_logger": update_llm_logger,
    "get_llm_logger": get_llm_logger,
    "list_llm_loggers": list_llm_loggers,
    "delete_llm_logger": delete_llm_logger,
    "connect_llm": connect_llm,
}
