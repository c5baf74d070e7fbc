"""Routes of mailboxes and their deliveries (protocol/rest.md §18).

Note the official client's encoding asymmetry: get, update and delete put the address in the
path as it is (`a@b.c`), the delivery routes percent-encode it (`a%40b.c`); the server decodes
both. `MAIL_PREFIX` is the local server's stand-in for SMTP: `POST /mail/<address>` with an
RFC 5322 message (`Content-Type: message/rfc822`) delivers it to the mailbox.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from .accounts import PROJECT
from .routes import Route
from .models import Model

MAILBOXES = PROJECT + "/mailboxes"
MAILBOX = MAILBOXES + "/{address}"
DELIVERIES = MAILBOX + "/deliveries"
DELIVERY = DELIVERIES + "/{delivery_id}"
MAIL_PREFIX = "/mail/"
RFC822 = "message/rfc822"

DeliveryStatus = Literal["accepted", "deferred", "delivered", "failed"]
DeliveryEventType = Literal["accepted", "temporary_failed", "delivered", "permanent_failed"]


class Mailbox(Model, kw_only=True):
    address: str
    room: str
    room_id: str | None = None
    queue: str
    public: bool
    annotations: dict[str, str]


class MailboxAnswer(Model, kw_only=True):
    mailbox: Mailbox


class MailboxesPage(Model, kw_only=True):
    mailboxes: list[Mailbox]
    total: int
    continuation_token: str | None = None


class SmtpDetails(Model, kw_only=True):
    """The SMTP outcome fields a delivery and its events share (unset for a local delivery)."""

    smtp_code: int | None = None
    enhanced_smtp_code: str | None = None
    reason: str | None = None
    description: str | None = None
    mx_host: str | None = None
    tls: bool | None = None
    certificate_verified: bool | None = None


class MailboxDelivery(SmtpDetails, kw_only=True):
    id: str
    submission_id: str
    recipient: str
    message_id: str
    status: DeliveryStatus
    submitted_at: str
    status_at: str
    attempt_count: int = 0


class DeliveryAnswer(Model, kw_only=True):
    delivery: MailboxDelivery


class MailboxDeliveriesPage(Model, kw_only=True):
    deliveries: list[MailboxDelivery]
    total: int


class MailboxDeliveryEvent(SmtpDetails, kw_only=True):
    id: str
    delivery_id: str
    provider: str
    provider_event_id: str
    event_type: DeliveryEventType
    status: DeliveryStatus
    occurred_at: str
    received_at: str
    attempt_no: int | None = None


class MailboxDeliveryEventsPage(Model, kw_only=True):
    events: list[MailboxDeliveryEvent]
    total: int


class CreateMailboxBody(msgspec.Struct, kw_only=True):
    room: str
    queue: str
    address: str
    public: bool = False
    annotations: dict[str, str] | None = None


class UpdateMailboxBody(msgspec.Struct, kw_only=True):
    room: str
    queue: str
    public: bool = False
    annotations: dict[str, str] | None = None


class MailboxesQuery(msgspec.Struct, kw_only=True):
    page_size: int = 100
    continuation_token: str | UnsetType = UNSET
    filter: str | UnsetType = UNSET


class RoomMailboxesQuery(msgspec.Struct, kw_only=True):
    count: int = 100
    offset: int = 0
    filter: str | UnsetType = UNSET


class DeliveriesQuery(msgspec.Struct, kw_only=True):
    count: int = 100
    offset: int = 0
    status: DeliveryStatus | UnsetType = UNSET
    recipient: str | UnsetType = UNSET
    message_id: str | UnsetType = UNSET


class DeliveryEventsQuery(msgspec.Struct, kw_only=True):
    count: int = 100
    offset: int = 0


ROUTES = [
    Route("create_mailbox", "POST", MAILBOXES, None, body=CreateMailboxBody),
    Route("update_mailbox", "PUT", MAILBOX, None, body=UpdateMailboxBody),
    Route("get_mailbox", "GET", MAILBOX, MailboxAnswer, payload_noun="mailbox"),
    Route("delete_mailbox", "DELETE", MAILBOX, None),
    Route("list_mailboxes_page", "GET", MAILBOXES, MailboxesPage, query=MailboxesQuery, aliases=("list_mailboxes",), payload_noun="mailboxes"),
    Route(
        "list_room_mailboxes_page",
        "GET",
        PROJECT + "/rooms/{room_name}/mailboxes",
        MailboxesPage,
        query=RoomMailboxesQuery,
        aliases=("list_room_mailboxes",),
        payload_noun="mailboxes",
    ),
    Route("list_mailbox_deliveries", "GET", DELIVERIES, MailboxDeliveriesPage, query=DeliveriesQuery),
    Route("get_mailbox_delivery", "GET", DELIVERY, DeliveryAnswer),
    Route("list_mailbox_delivery_events", "GET", DELIVERY + "/events", MailboxDeliveryEventsPage, query=DeliveryEventsQuery),
]

__all__ = [
    "MAIL_PREFIX",
    "RFC822",
    "ROUTES",
    "DeliveryAnswer",
    "Mailbox",
    "MailboxAnswer",
    "MailboxDeliveriesPage",
    "MailboxDelivery",
    "MailboxDeliveryEvent",
    "MailboxDeliveryEventsPage",
    "MailboxesPage",
]
