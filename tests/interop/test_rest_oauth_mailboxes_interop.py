"""The official `Meshagent` client (0.56, out of process) against our server's OAuth clients, token
endpoint and mailboxes (protocol/rest.md §15, §18): every method of both groups, the answers
its models accept, its errors; the access token it obtained works as a REST bearer, and the
deliveries it reads are of a mail delivered to our server's mail endpoint."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import PermissionDeniedError

from official_rest import official_rest

pytestmark = pytest.mark.interop

ADDRESS = "desk@example.com"
MAIL = b"From: alice@example.org\r\nTo: desk@example.com\r\nSubject: hi\r\nMessage-ID: <m1@example.org>\r\n\r\nhello\r\n"


async def test_the_official_client_with_oauth_clients_and_mailboxes(official_python: str, server_process: Any) -> None:
    own = server_process.credentials.project_id
    async with Meshagent(base_url=server_process.api_url, token=server_process.api_key) as client:
        await client.create_mailbox(project_id=own, address=ADDRESS, room="desk", queue="mail", public=True)
        async with httpx.AsyncClient() as http:
            delivered = await http.post(f"{server_process.api_url}/mail/{ADDRESS}", content=MAIL, headers={"content-type": "message/rfc822"})
        assert delivered.status_code == 200, delivered.text
        on_client = {"project_id": own, "client_id": "$0.client_id"}
        on_mailbox = {"project_id": own, "address": ADDRESS}
        grants = ["client_credentials", "authorization_code", "refresh_token"]
        calls: list[tuple[str, dict[str, Any]]] = [
            # 0-9: OAuth clients and the token endpoint
            ("create_oauth_client", {"project_id": own, "grant_types": grants, "response_types": ["code"], "redirect_uris": ["http://localhost:8765/callback"], "scope": "rooms:read", "metadata": {"app": "x"}}),
            ("update_oauth_client", {**on_client, "scope": "rooms:read rooms:create", "official": True}),
            ("get_oauth_client", on_client),
            ("list_oauth_clients_page", {"project_id": own, "count": 10, "offset": 0}),
            ("list_oauth_clients", {"project_id": own}),
            ("exchange_oauth_token", {"form": {"grant_type": "client_credentials", "client_id": "$0.client_id", "client_secret": "$0.client_secret"}}),
            ("exchange_oauth_token", {"form": {"grant_type": "client_credentials", "client_id": "$0.client_id", "client_secret": "wrong"}}),
            ("exchange_oauth_token", {"form": {"grant_type": "authorization_code", "code": "nope", "client_id": "$0.client_id", "code_verifier": "v"}}),
            ("get_oauth_client", {"project_id": own, "client_id": "nobody"}),
            ("create_oauth_client", {"project_id": own, "grant_types": ["password"], "response_types": [], "redirect_uris": [], "scope": ""}),
            # 10-26: mailboxes
            ("create_mailbox", {"project_id": own, "address": "b@example.com", "room": "desk", "queue": "other", "annotations": {"k": "v"}}),
            ("update_mailbox", {"project_id": own, "address": "b@example.com", "room": "hall", "queue": "q", "public": True}),
            ("get_mailbox", {"project_id": own, "address": "b@example.com"}),
            ("list_mailboxes_page", {"project_id": own, "page_size": 1}),
            ("list_mailboxes", {"project_id": own, "page_size": 1, "continuation_token": "$13.continuation_token"}),
            ("list_room_mailboxes_page", {"project_id": own, "room_name": "desk"}),
            ("list_room_mailboxes", {"project_id": own, "room_name": "hall", "count": 5, "offset": 0}),
            ("list_mailbox_deliveries", {**on_mailbox, "status": "delivered"}),
            ("get_mailbox_delivery", {**on_mailbox, "delivery_id": "$17.deliveries.0.id"}),
            ("list_mailbox_delivery_events", {**on_mailbox, "delivery_id": "$17.deliveries.0.id"}),
            ("create_mailbox", {"project_id": own, "address": ADDRESS, "room": "desk", "queue": "mail"}),
            ("get_mailbox", {"project_id": own, "address": "none@example.com"}),
            ("create_mailbox", {"project_id": own, "address": "not-an-address", "room": "desk", "queue": "mail"}),
            ("get_mailbox_delivery", {**on_mailbox, "delivery_id": "nope"}),
            ("delete_mailbox", {"project_id": own, "address": "b@example.com"}),
            ("get_mailbox", {"project_id": own, "address": "b@example.com"}),
            ("delete_oauth_client", on_client),
            # 27-28: a second client, whose token outlives the first's
            ("create_oauth_client", {"project_id": own, "grant_types": grants, "response_types": [], "redirect_uris": [], "scope": "rooms:read"}),
            ("exchange_oauth_token", {"form": {"grant_type": "client_credentials", "client_id": "$27.client_id", "client_secret": "$27.client_secret"}}),
        ]
        answers = await official_rest(official_python, server_process.api_url, server_process.api_key, calls)

        created, updated, got, page, listed, issued = (answers[i].get("returned") for i in range(6))
        assert created["client_secret"] and created["project_id"] == own and created["metadata"] == {"app": "x"}, answers[0]
        assert updated == {"ok": True}
        assert "client_secret" not in got and got["scope"] == "rooms:read rooms:create" and got["official"] is True
        assert page["total"] == 1 and page["clients"] == [got] and listed == [got]
        assert issued["token_type"] == "Bearer" and issued["scope"] == "rooms:read rooms:create" and issued["access_token"].startswith("mat-")
        for index in (6, 7):
            assert answers[index]["raised"] == "RoomException" and "Token endpoint error" in answers[index]["message"], answers[index]
        assert answers[6]["message"].startswith("Token endpoint error 401:") and "invalid_client" in answers[6]["message"]
        assert answers[7]["message"].startswith("Token endpoint error 400:") and "invalid_grant" in answers[7]["message"]
        assert answers[8]["raised"] == "RoomException" and answers[8]["message"] == "oauth client not found"
        assert answers[9]["raised"] == "ValidationErrorResponse" and "grant_types" in answers[9]["message"]

        assert answers[10] == {"returned": None} and answers[11] == {"returned": None}
        assert answers[12]["returned"] == {"address": "b@example.com", "room": "hall", "queue": "q", "public": True, "annotations": {"k": "v"}}
        assert [m["address"] for m in answers[13]["returned"]["mailboxes"]] == ["b@example.com"] and answers[13]["returned"]["total"] == 2
        assert [m["address"] for m in answers[14]["returned"]] == [ADDRESS]
        assert [m["address"] for m in answers[15]["returned"]["mailboxes"]] == [ADDRESS] and answers[15]["returned"]["total"] == 1
        assert [m["address"] for m in answers[16]["returned"]] == ["b@example.com"]
        deliveries = answers[17]["returned"]
        assert deliveries["total"] == 1 and answers[18]["returned"] == deliveries["deliveries"][0]
        assert (answers[18]["returned"]["message_id"], answers[18]["returned"]["status"], answers[18]["returned"]["recipient"]) == ("<m1@example.org>", "delivered", ADDRESS)
        events = answers[19]["returned"]
        assert events["total"] == 2 and [e["event_type"] for e in events["events"]] == ["accepted", "delivered"]
        assert answers[20]["raised"] == "ConflictError" and answers[21]["raised"] == "NotFoundError"
        assert answers[22]["raised"] == "ValidationErrorResponse" and "not-an-address" in answers[22]["message"]
        assert answers[23]["raised"] == "NotFoundError" and "delivery 'nope'" in answers[23]["message"]
        assert answers[24] == {"returned": None} and answers[25]["raised"] == "NotFoundError"
        assert answers[26] == {"returned": None}

        # the tokens the official client got are bearers of the project until their client is deleted
        async with Meshagent(base_url=server_process.api_url, token=answers[28]["returned"]["access_token"]) as bearer:
            assert [room.name for room in await bearer.list_rooms(project_id=own)] == []
        async with Meshagent(base_url=server_process.api_url, token=issued["access_token"]) as bearer:
            with pytest.raises(PermissionDeniedError, match="OAuth access token is not known"):
                await bearer.list_rooms(project_id=own)
