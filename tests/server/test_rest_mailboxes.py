"""Mailboxes and their deliveries (protocol/rest.md §18) over real sockets, with our `Meshagent`
client: CRUD with its errors, the project's (cursor) and a room's (offset) lists, and mail
delivered through the local stand-in for SMTP (`POST /mail/<address>`) arriving in the mapped
room's queue, seen by a participant connected over a WebSocket, and recorded as a delivery
with its events."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import msgspec

import meshagent_trio
from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import ConflictError, NotFoundError, PermissionDeniedError, ValidationErrorResponse
from meshagent_core.rest.mailboxes import Mailbox
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.control import ControlError
from meshagent_trio.server.rest.mailboxes import MAX_MAIL_BYTES, mail_message, parse_mail
from meshagent_trio.server.toolkits.queues import queues_state
from roomtest import mint, room_url

ADDRESS = "inbox@example.com"


def base(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


def api(server: Server, credentials: Credentials) -> Meshagent:
    return Meshagent(base_url=base(server), token=credentials.api_key)


def letter(subject: str = "hello", body: str = "hi there", sender: str = "alice@example.org") -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"], message["Message-ID"] = sender, ADDRESS, subject, f"<{subject}@example.org>"
    message.set_content(body)
    message.add_alternative(f"<p>{body}</p>", subtype="html")
    message.add_attachment(b"\x00\x01\x02", maintype="application", subtype="octet-stream", filename="data.bin")
    return message.as_bytes()


async def mail(server: Server, address: str, data: bytes, *, content_type: str = "message/rfc822", token: str | None = None) -> httpx.Response:
    headers = {"content-type": content_type, **({"authorization": f"Bearer {token}"} if token else {})}
    async with httpx.AsyncClient() as http:
        return await http.post(f"{base(server)}/mail/{address}", content=data, headers=headers)


async def test_mailboxes_crud_and_lists(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials) as client:
        room = await client.create_room(project_id=own, name="desk")
        assert await client.create_mailbox(project_id=own, address="Inbox@Example.com", room="desk", queue="mail", annotations={"k": "v"}) is None
        got = await client.get_mailbox(project_id=own, address=ADDRESS)
        assert got == Mailbox(address=ADDRESS, room="desk", room_id=room.id, queue="mail", public=False, annotations={"k": "v"})
        for name in ("b", "c", "d"):
            await client.create_mailbox(project_id=own, address=f"{name}@example.com", room="other", queue="q", public=True)
        first = await client.list_mailboxes_page(project_id=own, page_size=2)
        assert [m.address for m in first.mailboxes] == ["b@example.com", "c@example.com"] and first.total == 4 and first.continuation_token
        second = await client.list_mailboxes_page(project_id=own, page_size=2, continuation_token=first.continuation_token)
        assert [m.address for m in second.mailboxes] == ["d@example.com", ADDRESS] and second.continuation_token is None
        assert len(await client.list_mailboxes(project_id=own)) == 4
        room_page = await client.list_room_mailboxes_page(project_id=own, room_name="other", count=1, offset=1)
        assert [m.address for m in room_page.mailboxes] == ["c@example.com"] and room_page.total == 3
        assert [m.address for m in await client.list_room_mailboxes(project_id=own, room_name="desk")] == [ADDRESS]
        assert [m.room_id for m in await client.list_room_mailboxes(project_id=own, room_name="other")] == [None] * 3

        await client.update_mailbox(project_id=own, address=ADDRESS, room="other", queue="q2", public=True)
        assert await client.get_mailbox(project_id=own, address=ADDRESS) == Mailbox(address=ADDRESS, room="other", queue="q2", public=True, annotations={"k": "v"})
        await client.delete_mailbox(project_id=own, address=ADDRESS)
        with pytest.raises(NotFoundError, match=f"mailbox '{ADDRESS}' does not exist"):
            await client.get_mailbox(project_id=own, address=ADDRESS)


async def test_mailbox_errors(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials) as client:
        await client.create_mailbox(project_id=own, address=ADDRESS, room="desk", queue="mail")
        with pytest.raises(ConflictError, match="already exists"):
            await client.create_mailbox(project_id=own, address="INBOX@example.com", room="desk", queue="mail")
        other = await client.create_project(name="other")
        with pytest.raises(ConflictError):  # an address is the server's, not a project's
            await client.create_mailbox(project_id=other.id, address=ADDRESS, room="desk", queue="mail")
        with pytest.raises(NotFoundError, match="mailbox"):
            await client.get_mailbox(project_id=other.id, address=ADDRESS)
        with pytest.raises(ValidationErrorResponse, match="address 'nobody' is not an e-mail address"):
            await client.create_mailbox(project_id=own, address="nobody", room="desk", queue="mail")
        with pytest.raises(ValidationErrorResponse, match="invalid room name"):
            await client.create_mailbox(project_id=own, address="x@example.com", room="../up", queue="mail")
        with pytest.raises(ValidationErrorResponse, match="queue"):
            await client.update_mailbox(project_id=own, address=ADDRESS, room="desk", queue="")
        with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
            await client.list_mailboxes(project_id="nope")
        with pytest.raises(NotFoundError, match="delivery 'nope'"):
            await client.get_mailbox_delivery(project_id=own, address=ADDRESS, delivery_id="nope")
        with pytest.raises(NotFoundError, match="mailbox 'none@example.com'"):
            await client.list_mailbox_deliveries(project_id=own, address="none@example.com")
        account = await client.create_service_account(project_id=other.id, name="robot")
        key = await client.create_api_key(project_id=other.id, service_account_id=account.id, name="k", description="")
    async with Meshagent(base_url=base(server), token=key.value) as stranger:
        with pytest.raises(PermissionDeniedError, match="another project"):
            await stranger.get_mailbox(project_id=own, address=ADDRESS)


async def test_mail_arrives_in_the_rooms_queue_and_is_recorded(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials) as client:
        await client.create_mailbox(project_id=own, address=ADDRESS, room="desk", queue="mail", public=True)
        async with meshagent_trio.connect(room_url(server, "desk"), mint(credentials, "desk", name="reader")) as reader:
            async with trio.open_nursery() as nursery:
                received: list[Any] = []

                async def receive() -> None:
                    received.append(await reader.queues.receive(name="mail", wait=True))

                nursery.start_soon(receive)
                answer = await mail(server, ADDRESS, letter())
                assert answer.status_code == 200, answer.text
            delivery = answer.json()["delivery"]
            (message,) = received
            assert isinstance(message, dict)
            assert {k: message[k] for k in ("type", "mailbox", "delivery_id", "message_id", "from", "to", "subject")} == {
                "type": "email",
                "mailbox": ADDRESS,
                "delivery_id": delivery["id"],
                "message_id": "<hello@example.org>",
                "from": "alice@example.org",
                "to": ADDRESS,
                "subject": "hello",
            }
            assert message["text"] == "hi there\n" and message["html"] == "<p>hi there</p>\n"
            assert message["attachments"] == [{"filename": "data.bin", "content_type": "application/octet-stream", "size": 3}]

            assert (await mail(server, ADDRESS, letter("second"))).status_code == 200
            assert await reader.queues.receive(name="mail", wait=False) == {**message, **_changed(message, "second")}

        page = await client.list_mailbox_deliveries(project_id=own, address=ADDRESS)
        assert page.total == 2 and [d.message_id for d in page.deliveries] == ["<hello@example.org>", "<second@example.org>"]
        first = page.deliveries[0]
        assert (first.id, first.status, first.recipient, first.attempt_count) == (delivery["id"], "delivered", ADDRESS, 1)
        assert await client.get_mailbox_delivery(project_id=own, address=ADDRESS, delivery_id=first.id) == first
        filtered = await client.list_mailbox_deliveries(project_id=own, address=ADDRESS, message_id="<second@example.org>", status="delivered")
        assert [d.message_id for d in filtered.deliveries] == ["<second@example.org>"]
        assert (await client.list_mailbox_deliveries(project_id=own, address=ADDRESS, status="failed")).total == 0
        assert [d.id for d in (await client.list_mailbox_deliveries(project_id=own, address=ADDRESS, count=1, offset=1)).deliveries] == [page.deliveries[1].id]
        events = await client.list_mailbox_delivery_events(project_id=own, address=ADDRESS, delivery_id=first.id)
        assert events.total == 2 and [(e.event_type, e.status, e.provider) for e in events.events] == [("accepted", "accepted", "local"), ("delivered", "delivered", "local")]
        one = await client.list_mailbox_delivery_events(project_id=own, address=ADDRESS, delivery_id=first.id, count=1, offset=1)
        assert [e.event_type for e in one.events] == ["delivered"] and one.total == 2


def _changed(message: dict[str, Any], subject: str) -> dict[str, Any]:
    """What differs in the queue message of `letter(subject)` from `message`'s."""
    return {"subject": subject, "message_id": f"<{subject}@example.org>", "delivery_id": _ANY}


class _Any:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


_ANY = _Any()


async def test_mail_that_is_refused(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials) as client:
        await client.create_mailbox(project_id=own, address=ADDRESS, room="desk", queue="mail")
        assert (await mail(server, "nobody@example.com", letter())).status_code == 404
        private = await mail(server, ADDRESS, letter())
        assert private.status_code == 403 and "not public" in private.json()["error"]["message"]
        key = credentials.api_key
        assert (await mail(server, ADDRESS, letter(), token="ma-forged")).status_code == 403
        assert (await mail(server, ADDRESS, letter(), content_type="text/plain", token=key)).status_code == 415
        for malformed in (b"just some text without headers", b"Subject: no sender\r\n\r\nbody", b"\r\n\r\nbody only"):
            answer = await mail(server, ADDRESS, malformed, token=key)
            assert answer.status_code == 400 and "not RFC 5322" in answer.json()["error"]["message"], malformed
        oversized = letter(body="x" * MAX_MAIL_BYTES)
        assert (await mail(server, ADDRESS, oversized, token=key)).status_code == 413
        assert (await client.list_mailbox_deliveries(project_id=own, address=ADDRESS)).total == 0

        queues = await queues_state(server.room("desk", own)).ready()
        assert "mail" not in queues.queues  # nothing refused reached the queue
        assert (await mail(server, ADDRESS, letter(), token=key)).status_code == 200
        queues.queues["mail"].closed = True
        closed = await mail(server, ADDRESS, letter("late"), token=key)
        assert closed.status_code == 503 and "queue mail is closed" in closed.json()["error"]["message"]
        failed = (await client.list_mailbox_deliveries(project_id=own, address=ADDRESS, status="failed")).deliveries
        assert [(d.message_id, d.reason) for d in failed] == [("<late@example.org>", "queue mail is closed")]
        events = await client.list_mailbox_delivery_events(project_id=own, address=ADDRESS, delivery_id=failed[0].id)
        assert [e.event_type for e in events.events] == ["accepted", "permanent_failed"]

        queues.queues["mail"].closed = False
        room = await client.create_room(project_id=own, name="desk")
        await client.update_room(project_id=own, room_id=room.id, name="desk", enabled=False)
        disabled = await mail(server, ADDRESS, letter("disabled"), token=key)
        assert disabled.status_code == 423 and "room desk is disabled" in disabled.json()["error"]["message"]
        failed = (await client.list_mailbox_deliveries(project_id=own, address=ADDRESS, status="failed")).deliveries
        assert [d.reason for d in failed] == ["queue mail is closed", "room desk is disabled"]
        assert len(queues.queues["mail"].messages) == 1  # only the mail delivered before


#: characters a header or a line of text may hold (no controls, surrogates or line breaks); a
#: header value has no leading or trailing space (it is folding whitespace)
LINE = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=st.text(LINE, max_size=40).map(str.strip), lines=st.lists(st.text(LINE, max_size=80), max_size=5))
def test_a_parsed_mail_keeps_its_subject_and_text(subject: str, lines: list[str]) -> None:
    message = EmailMessage()
    message["From"], message["Subject"] = "a@example.org", subject
    text = "".join(line + "\n" for line in lines)
    message.set_content(text)
    parsed = mail_message(parse_mail(message.as_bytes()), ADDRESS, "d")
    assert (parsed["subject"], parsed["text"]) == (subject, text or "\n")  # an empty body is one line break


#: pieces of messages, well- and ill-formed, for the parser to meet in any order
MAIL_PIECES = st.sampled_from(
    [
        b"From: a@example.org\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n",
        b"Content-Type: text/plain; charset=klingon\r\n",
        b"Content-Type: text/html; charset=utf-8\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Subject: =?utf-8?q?=FF=FE?=\r\n",
        b"Subject: caf\xe9 \xff\r\n",
        b"To: <<@>>\r\n",
        b'Content-Disposition: attachment; filename="\xe9.txt"\r\n',
        b"\r\n",
        b"--x\r\n",
        b"--x--\r\n",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.one_of(MAIL_PIECES, st.binary(max_size=30)), max_size=12))
def test_any_bytes_are_a_queue_message_or_a_400(pieces: list[bytes]) -> None:
    try:
        message = mail_message(parse_mail(b"".join(pieces)), ADDRESS, "d")
    except ControlError as refused:
        assert refused.status == 400 and "not RFC 5322" in str(refused)
        return
    assert message["from"] and isinstance(msgspec.json.encode(message), bytes)
