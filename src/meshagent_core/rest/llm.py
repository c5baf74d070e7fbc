"""Routes of LLM loggers and LLM delegation (protocol/rest.md §12) and their models.

An LLM logger sends the LLM calls of a project that match its filter to a feed; a delegation
(`connect_llm`) lets a subject spend up to a budget on LLM calls on the caller's behalf, with a
token. `connect_llm` names its project in the `Meshagent-Project-Id` header, not in the path
(a header argument of its route).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from .access import AccessSubject
from .accounts import PROJECT
from .models import Model
from .routes import Route

LOGGERS = PROJECT + "/llm-loggers"
PROJECT_HEADER = "Meshagent-Project-Id"
LlmProvider = Literal["openai", "anthropic", "grok"]


class LLMLogger(Model, kw_only=True):
    id: str
    project_id: str
    destination_feed_id: str
    filter_expression: str
    created_at: str
    paused: bool = False
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class LLMLoggerAnswer(Model, kw_only=True):
    logger: LLMLogger


class LLMLoggers(Model, kw_only=True):
    loggers: list[LLMLogger]


class LLMLoggerBody(msgspec.Struct, kw_only=True):
    destination_feed_id: str
    filter_expression: str
    paused: bool = False
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class ConnectLlmBody(msgspec.Struct, kw_only=True):
    """`max_budget` is a decimal number as a string ("12.50"); the rest is sent only when given."""

    subject: AccessSubject
    max_budget: str
    providers: list[LlmProvider] | UnsetType = UNSET
    models: list[str] | UnsetType = UNSET
    expires_in_seconds: int | UnsetType = UNSET


class LlmDelegation(Model, kw_only=True):
    id: str
    token: str
    expires_at: str
    project_id: str
    delegator: AccessSubject
    subject: AccessSubject
    max_budget: str
    providers: list[LlmProvider] | None = None
    models: list[str] | None = None


ROUTES = [
    Route("create_llm_logger", "POST", LOGGERS, LLMLoggerAnswer, body=LLMLoggerBody, payload_noun="LLM logger"),
    Route("update_llm_logger", "PUT", LOGGERS + "/{logger_id}", Any, body=LLMLoggerBody),
    Route("get_llm_logger", "GET", LOGGERS + "/{logger_id}", LLMLoggerAnswer, payload_noun="LLM logger"),
    Route("list_llm_loggers", "GET", LOGGERS, LLMLoggers, payload_noun="LLM loggers"),
    Route("delete_llm_logger", "DELETE", LOGGERS + "/{logger_id}", Any),
    Route(
        "connect_llm", "POST", "/llm/connect", LlmDelegation, body=ConnectLlmBody, payload_noun="LLM delegation",
        header_arguments=((PROJECT_HEADER, "project_id"),),
    ),  # fmt: skip
]

__all__ = ["ConnectLlmBody", "LLMLogger", "LLMLoggerAnswer", "LLMLoggerBody", "LLMLoggers", "LlmDelegation", "LlmProvider", "PROJECT_HEADER", "ROUTES"]
