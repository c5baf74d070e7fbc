"""Routes of billing and usage (protocol/rest.md §21): pricing, the project's status, balance,
transactions, auto-recharge, checkout URLs and subscription, and usage reports.

Every method of the group has the official client's generic error: any error status raises a
plain `RoomException("Failed to <action>. Status code: N, body: B")` (`Route.failure`), never
the typed errors of the other groups.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from .accounts import PROJECT
from .models import JsonObject, Model
from .routes import Route

#: What `get_usage` reports (`usage_type`), as the local server records it.
PARTICIPANT_MINUTES = "participant_minutes"
STORAGE_BYTES = "storage_bytes"
USAGE_TYPES = (PARTICIPANT_MINUTES, STORAGE_BYTES)
#: `get_usage`'s `interval`: the length of one row's bucket.
USAGE_INTERVALS = {"hour": 3600, "day": 86400}


class ProjectStatus(Model):
    enabled: bool


class Balance(Model):
    balance: float
    auto_recharge_threshold: float | None = None
    auto_recharge_amount: float | None = None
    last_recharge: str | None = None
    monthly_budget: float | None = None
    auto_recharge_paused: bool = False
    auto_recharged_this_month: float | None = None


class Transaction(Model):
    id: str
    amount: float
    description: str
    created_at: str
    reference: str | None = None
    #: camelCase on the wire, as the official model reads it
    reference_type: str | None = msgspec.field(default=None, name="referenceType")


class Transactions(Model):
    transactions: list[Transaction] = msgspec.field(default_factory=list)


class CheckoutUrl(Model):
    checkout_url: str


class UsageReport(Model):
    """`{usage: [row]}`; a row is any JSON object (the local server's rows: see `get_usage` in
    protocol/rest.md §21)."""

    usage: list[JsonObject] = msgspec.field(default_factory=list)


class AutoRechargeBody(msgspec.Struct, kw_only=True):
    enabled: bool
    amount: float
    threshold: float
    monthly_budget: float | None = None


class CheckoutBody(msgspec.Struct, kw_only=True):
    success_url: str
    cancel_url: str


class CreditsCheckoutBody(msgspec.Struct, kw_only=True):
    quantity: float
    success_url: str
    cancel_url: str


class UsageQuery(msgspec.Struct, kw_only=True):
    """Only given filters are sent: `start`/`end` ISO-8601, `users` comma-joined, `annotations`
    JSON text (the official method's `users` list and `annotations` dict become these)."""

    start: str | UnsetType = UNSET
    end: str | UnsetType = UNSET
    interval: str | UnsetType = UNSET
    report: str | UnsetType = UNSET
    users: str | UnsetType = UNSET
    room: str | UnsetType = UNSET
    provider: str | UnsetType = UNSET
    model: str | UnsetType = UNSET
    usage_type: str | UnsetType = UNSET
    annotations: str | UnsetType = UNSET


class LlmProxyUsageQuery(msgspec.Struct, kw_only=True):
    start: str | UnsetType = UNSET
    end: str | UnsetType = UNSET
    interval: str | UnsetType = UNSET
    annotations: str | UnsetType = UNSET


ROUTES = [
    Route("get_pricing", "GET", "/pricing", Any, failure="Failed to fetch pricing data"),
    Route("get_project_status", "GET", PROJECT + "/status", ProjectStatus, failure="Failed to fetch project status", payload_noun="project status"),
    Route("get_balance", "GET", PROJECT + "/balance", Balance, failure="Failed to fetch balance", payload_noun="balance"),
    Route("get_recent_transactions", "GET", PROJECT + "/transactions", Transactions, failure="Failed to fetch transactions", payload_noun="transaction"),
    Route("set_auto_recharge", "POST", PROJECT + "/recharge", Any, body=AutoRechargeBody, failure="Failed to update auto recharge settings"),
    Route("get_checkout_url", "POST", PROJECT + "/subscription", CheckoutUrl, body=CheckoutBody, failure="Failed to create subscription checkout", payload_noun="subscription"),
    Route("get_credits_checkout_url", "POST", PROJECT + "/credits", CheckoutUrl, body=CreditsCheckoutBody, failure="Failed to create credits checkout", payload_noun="credits"),
    Route("get_subscription", "GET", PROJECT + "/subscription", Any, failure="Failed to fetch subscription"),
    Route("get_usage", "GET", PROJECT + "/usage", UsageReport, query=UsageQuery, failure="Failed to retrieve usage", payload_noun="usage"),
    Route(
        "get_current_user_llm_proxy_usage",
        "GET",
        PROJECT + "/llm-proxy/usage",
        UsageReport,
        query=LlmProxyUsageQuery,
        failure="Failed to retrieve current user LLM proxy usage",
        payload_noun="current user LLM proxy usage",
    ),
]
