"""REST handlers of mailboxes and their deliveries (protocol/rest.md §18), and the local stand-in
for SMTP (`serve_mail`, called by the server's router for paths under `/mail/`).

`POST /mail/<address>` with `Content-Type: message/rfc822` and an RFC 5322 message of at most
`MAX_MAIL_BYTES` delivers it to the mailbox: the message is recorded as a delivery (`accepted`),
put in the mapped room's queue as a JSON message (`mail_message`: headers, text and HTML bodies,
attachments' names, types and sizes) the way the queues toolkit's `send` puts one (waiting
receivers get it at once), and the delivery becomes `delivered` (or `failed` with the queue's
reason). A mailbox that is not `public` takes mail only with an API key of its project (or the
owner's) as `Authorization: Bearer`. Answers 200 `{"delivery": MailboxDelivery}`; 400 a message
that is not RFC 5322 (no `From`, or headers that do not parse), 404 an unknown mailbox, 413 a
message over the limit, 415 another content type, 423 a disabled room, 503 a queue that refused
the message (the last two recorded as `failed` deliveries).
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import unquote

import msgspec
import trio

from meshagent_core.rest.mailboxes import MAIL_PREFIX, RFC822, DeliveryAnswer, MailboxDeliveriesPage, MailboxDeliveryEventsPage, MailboxAnswer, MailboxesPage

from ..auth import Refused, verify_api_key
from ..control import ControlError, Forbidden
from ..http import BodyTooLarge, Request, read_body, respond_json
from ..toolkits.queues import QueueRefused, enqueue
from .context import Caller, Handler, NotImplementedHere, RestContext, RoomDisabled

#: Largest message the mail endpoint takes, in bytes (its JSON form must fit a queue message).
MAX_MAIL_BYTES = 256 * 1024


def _no_filter(method: str, a: dict[str, Any]) -> None:
    if a.get("filter", "").strip():
        raise NotImplementedHere(f"{method}: filter is not implemented by the local server")


def _page_bounds(a: dict[str, Any]) -> tuple[int, int]:
    if a["count"] < 0 or a["offset"] < 0:
        raise ControlError("count and offset must not be negative")
    return min(a["count"], 1000), a["offset"]


# --- mailboxes -------------------------------------------------------------------------------


async def create_mailbox(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.mailboxes.create(a["project_id"], address=a["address"], room=a["room"], queue=a["queue"], public=a["public"], annotations=a["annotations"])


async def update_mailbox(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.mailboxes.update(a["project_id"], a["address"], room=a["room"], queue=a["queue"], public=a["public"], annotations=a["annotations"])


async def get_mailbox(context: RestContext, a: dict[str, Any], caller: Caller) -> MailboxAnswer:
    return MailboxAnswer(mailbox=await context.control.mailboxes.get(a["project_id"], a["address"]))


async def delete_mailbox(context: RestContext, a: dict[str, Any], caller: Caller) -> None:
    await context.control.mailboxes.delete(a["project_id"], a["address"])


async def list_mailboxes_page(context: RestContext, a: dict[str, Any], caller: Caller) -> MailboxesPage:
    _no_filter("list_mailboxes", a)
    limit = max(1, min(a["page_size"], 1000))
    page, total, token = await context.control.mailboxes.list(a["project_id"], after=a.get("continuation_token", ""), limit=limit)
    return MailboxesPage(mailboxes=page, total=total, continuation_token=token)


async def list_room_mailboxes_page(context: RestContext, a: dict[str, Any], caller: Caller) -> MailboxesPage:
    _no_filter("list_room_mailboxes", a)
    count, offset = _page_bounds(a)
    page, total, _ = await context.control.mailboxes.list(a["project_id"], room=a["room_name"], limit=count, offset=offset)
    return MailboxesPage(mailboxes=page, total=total)


async def list_mailbox_deliveries(context: RestContext, a: dict[str, Any], caller: Caller) -> MailboxDeliveriesPage:
    count, offset = _page_bounds(a)
    filters = {name: a[name] for name in ("status", "recipient", "message_id") if name in a}
    deliveries, total = await context.control.mailboxes.list_deliveries(a["project_id"], a["address"], count=count, offset=offset, filters=filters)
    return MailboxDeliveriesPage(deliveries=deliveries, total=total)


async def get_mailbox_delivery(context: RestContext, a: dict[str, Any], caller: Caller) -> DeliveryAnswer:
    return DeliveryAnswer(delivery=await context.control.mailboxes.get_delivery(a["project_id"], a["address"], a["delivery_id"]))


async def list_mailbox_delivery_events(context: RestContext, a: dict[str, Any], caller: Caller) -> MailboxDeliveryEventsPage:
    count, offset = _page_bounds(a)
    events, total = await context.control.mailboxes.list_events(a["project_id"], a["address"], a["delivery_id"], count=count, offset=offset)
    return MailboxDeliveryEventsPage(events=events, total=total)


HANDLERS: dict[str, Handler] = {
    "create_mailbox": create_mailbox,
    "update_mailbox": update_mailbox,
    "get_mailbox": get_mailbox,
    "delete_mailbox": delete_mailbox,
    "list_mailboxes_page": list_mailboxes_page,
    "list_room_mailboxes_page": list_room_mailboxes_page,
    "list_mailbox_deliveries": list_mailbox_deliveries,
    "get_mailbox_delivery": get_mailbox_delivery,
    "list_mailbox_delivery_events": list_mailbox_delivery_events,
}


# --- the mail endpoint -----------------------------------------------------------------------


class Unsupported(ControlError):
    status = 415
    code = "unsupported_media_type"


class QueueUnavailable(ControlError):
    status = 503
    code = "queue_refused"


def is_mail_endpoint(path: str) -> bool:
    return path.startswith(MAIL_PREFIX)


async def serve_mail(request: Request, context: RestContext) -> bool:
    """Answer `POST /mail/<address>`; whether the connection may go on."""
    stream, connection = request.stream, request.connection
    try:
        if request.method != "POST":
            await _refuse(request, 405, "method_not_allowed", f"{request.path} takes POST", [("allow", "POST")])
            return True
        address = unquote(request.path[len(MAIL_PREFIX) :])
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != RFC822:
            raise Unsupported(f"the body must be {RFC822}, not {content_type or 'missing'}")
        project_id, mailbox, room_enabled = await context.control.mailboxes.mailbox_by_address(address)
        if not mailbox.public:
            _check_sender(request, context, project_id, address)
        with trio.fail_after(context.config.request_head_timeout):
            raw = await read_body(request, MAX_MAIL_BYTES)
        message = parse_mail(raw)
        mailboxes = context.control.mailboxes
        delivery_id = await mailboxes.accept(mailbox.address, message_id=str(message.get("message-id") or make_msgid(domain="local")).strip())
        try:
            if not room_enabled:
                raise RoomDisabled(f"room {mailbox.room} is disabled")
            body = msgspec.json.encode(mail_message(message, mailbox.address, delivery_id))
            await enqueue(context.room(project_id, mailbox.room), mailbox.queue, body)
        except (QueueRefused, RoomDisabled) as refused:
            await mailboxes.settle(delivery_id, delivered=False, reason=str(refused))
            if isinstance(refused, QueueRefused):
                raise QueueUnavailable(str(refused)) from None
            raise
        delivery = await mailboxes.settle(delivery_id, delivered=True)
    except BodyTooLarge:
        await _refuse(request, 413, "too_large", f"the message is over {MAX_MAIL_BYTES} bytes", [("connection", "close")])
        return False
    except trio.TooSlowError:
        return False
    except ControlError as refused:
        # the body may be unread: close rather than read what a refused sender sends
        await _refuse(request, refused.status, refused.code, str(refused), [("connection", "close")])
        return False
    await respond_json(stream, connection, 200, msgspec.json.encode(DeliveryAnswer(delivery=delivery)))
    return True


async def _refuse(request: Request, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None) -> None:
    await respond_json(request.stream, request.connection, status, msgspec.json.encode({"error": {"code": code, "message": message}}), headers)


def _check_sender(request: Request, context: RestContext, project_id: str, address: str) -> None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise Forbidden(f"mailbox {address!r} is not public: send with Authorization: Bearer <API key of its project>")
    try:
        key = verify_api_key(header[7:].strip(), context.control.keys.ring)
    except Refused as refused:
        raise Forbidden(refused.message) from None
    if not key.is_owner and key.project_id != project_id:
        raise Forbidden(f"the API key belongs to another project than mailbox {address!r}'s")


def parse_mail(raw: bytes) -> EmailMessage:
    """The message, or 400 saying why it is not RFC 5322."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    if message.defects:
        raise ControlError(f"the message is not RFC 5322: {type(message.defects[0]).__name__}")
    if not message.keys():
        raise ControlError("the message is not RFC 5322: it has no header fields")
    try:
        sender = message.get("from")
        for name in message.keys():  # a header that does not parse raises here
            message.get_all(name)
    except (ValueError, IndexError) as error:
        raise ControlError(f"the message is not RFC 5322: {error}") from None
    if not sender:
        raise ControlError("the message is not RFC 5322: it has no From field")
    return message


def mail_message(message: EmailMessage, address: str, delivery_id: str) -> dict[str, Any]:
    """The queue message of a mail: what a participant reads from the mailbox's queue."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    attachments = [
        {"filename": part.get_filename(), "content_type": part.get_content_type(), "size": len(part.get_payload(decode=True) or b"")}
        for part in message.iter_attachments()
    ]

    def header(name: str) -> str | None:
        value = message.get(name)
        return None if value is None else str(value)

    return {
        "type": "email",
        "mailbox": address,
        "delivery_id": delivery_id,
        "message_id": header("message-id"),
        "from": header("from"),
        "to": header("to"),
        "cc": header("cc"),
        "subject": header("subject"),
        "date": header("date"),
        "text": _decoded(text),
        "html": _decoded(html),
        "attachments": attachments,
    }


def _decoded(part: EmailMessage | None) -> str | None:
    """A text part's content; one in a charset Python does not know, as UTF-8 with
    replacement characters."""
    if part is None:
        return None
    try:
        return part.get_content(errors="replace")  # type: ignore[no-any-return]
    except LookupError:
        return (part.get_payload(decode=True) or b"").decode("utf-8", "replace")


__all__ = ["HANDLERS", "MAX_MAIL_BYTES", "is_mail_endpoint", "mail_message", "parse_mail", "serve_mail"]
