"""The seed's webhooks and shares over REST (protocol/rest.md §17) against a real server on a
real socket, with our `Meshagent` client (the official 0.56 client has none of these methods):
webhooks are stored and checked; a share's `connect_share` token, asked for without credentials,
joins the share's room over a real WebSocket with the name, role and scope of its settings."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest
import trio

from meshagent_core import RoomException
from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import ROUTES, ConflictError, NotFoundError, PermissionDeniedError, RoomDisabledError, ValidationErrorResponse, read_answer
from meshagent_core.tokens import ApiScope
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.auth import verify_token


def api(server: Server, token: str | None = None) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=token)


def hook(**fields: Any) -> dict[str, Any]:
    return {"name": "rooms", "url": "https://example.test/hook", "events": ["room.started", "room.ended"], **fields}


async def send_as_is(server: Server, route_name: str, path_arguments: dict[str, str], body: Any) -> Any:
    """`body` sent as it is (past our client's Structs) to a route; its answer."""
    route = ROUTES[route_name]
    path = route.path.format(**path_arguments)
    async with httpx.AsyncClient() as http:
        response = await http.request(
            route.verb,
            f"http://127.0.0.1:{server.port}{path}",
            content=msgspec.json.encode(body),
            headers={"Authorization": f"Bearer {server.config.credentials.api_key}", "Content-Type": "application/json"},
        )
    return read_answer(route, response.status_code, response.content)


# --- webhooks --------------------------------------------------------------------------------------


async def test_webhooks_are_stored(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        created = await client.create_webhook(project_id=own, **hook(description="lifecycle", action="notify", payload="{room}"))
        assert (created.project_id, created.name, created.url, created.events) == (own, "rooms", "https://example.test/hook", ["room.started", "room.ended"])
        assert (created.description, created.action, created.payload) == ("lifecycle", "notify", "{room}") and created.created_at
        second = await client.create_webhook(project_id=own, **hook(name="calls", events=["room.call"]))
        assert (second.description, second.action, second.payload) == ("", "", "")
        assert await client.list_webhooks(project_id=own) == [created, second]

        updated = await client.update_webhook(project_id=own, webhook_id=created.id, **hook(name="renamed", url="http://127.0.0.1:9/x", events=["room.ended"]))
        assert (updated.id, updated.name, updated.url, updated.events, updated.description) == (created.id, "renamed", "http://127.0.0.1:9/x", ["room.ended"], "")
        assert await client.list_webhooks(project_id=own) == [updated, second]

        with pytest.raises(ConflictError, match="webhook 'calls' already exists"):
            await client.create_webhook(project_id=own, **hook(name="calls"))
        with pytest.raises(ConflictError, match="webhook 'calls' already exists"):
            await client.update_webhook(project_id=own, webhook_id=created.id, **hook(name="calls"))
        for bad, field in (
            (hook(url="ftp://example.test/x"), "url must be an absolute http"),
            (hook(url="/relative"), "url must be an absolute http"),
            (hook(events=[]), "events must name at least one event"),
            (hook(events=["room.started", " "]), "events must name at least one event"),
            (hook(name=" "), "name must be 1 to 256 characters"),
        ):
            with pytest.raises(ValidationErrorResponse, match=field):
                await client.create_webhook(project_id=own, **bad)
            with pytest.raises(ValidationErrorResponse, match=field):
                await client.update_webhook(project_id=own, webhook_id=second.id, **bad)
        with pytest.raises(ValidationErrorResponse, match="missing required field `url`"):
            await send_as_is(server, "create_webhook", {"project_id": own}, {"name": "x", "events": ["room.call"]})

        await client.delete_webhook(project_id=own, webhook_id=created.id)
        assert await client.list_webhooks(project_id=own) == [second]
        with pytest.raises(NotFoundError, match=f"webhook '{created.id}' does not exist"):
            await client.delete_webhook(project_id=own, webhook_id=created.id)
        with pytest.raises(NotFoundError, match=f"webhook '{created.id}' does not exist"):
            await client.update_webhook(project_id=own, webhook_id=created.id, **hook())
        with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
            await client.list_webhooks(project_id="nope")
        other = await client.create_project(name="other")
        with pytest.raises(NotFoundError, match=f"webhook '{second.id}' does not exist"):  # not in that project
            await client.delete_webhook(project_id=other.id, webhook_id=second.id)


# --- shares -----------------------------------------------------------------------------------------


async def test_shares_are_stored_and_checked(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        share = await client.create_share(project_id=own, settings={"room": "lobby", "theme": "dark"})
        assert (share.project_id, share.settings) == (own, {"room": "lobby", "theme": "dark"}) and len(share.id) >= 32
        second = await client.create_share(project_id=own, settings={"room": "hall", "name": "visitor", "role": "guest"})
        assert await client.list_shares(project_id=own) == [share, second]
        updated = await client.update_share(project_id=own, share_id=share.id, settings={"room": "hall", "api": {"queues": {}}})
        assert (updated.id, updated.settings) == (share.id, {"room": "hall", "api": {"queues": {}}})
        assert await client.list_shares(project_id=own) == [updated, second]

        for bad, field in (
            (None, "settings is required: an object naming the shared room"),
            ({"name": "x"}, "settings: Object missing required field `room`"),
            ({"room": "no/slash"}, "settings.room: invalid room name 'no/slash'"),
            ({"room": "lobby", "api": {"queues": "all"}}, "settings.api: Expected `object | null`, got `str` - at `\\$.queues`"),
            ({"room": "lobby", "role": 7}, "settings: Expected `str`, got `int` - at `\\$.role`"),
            ({"room": "lobby", "role": " "}, "settings.role and settings.name must not be empty"),
        ):
            with pytest.raises(ValidationErrorResponse, match=field):
                await client.create_share(project_id=own, settings=bad)
            with pytest.raises(ValidationErrorResponse, match=field):
                await client.update_share(project_id=own, share_id=second.id, settings=bad)
        with pytest.raises(ValidationErrorResponse, match="body: Expected `object`, got `str` - at `\\$.settings`"):
            await send_as_is(server, "create_share", {"project_id": own}, {"settings": "lobby"})

        await client.delete_share(project_id=own, share_id=share.id)
        assert await client.list_shares(project_id=own) == [second]
        for call, arguments in ((client.delete_share, {}), (client.update_share, {"settings": {"room": "x"}})):
            with pytest.raises(NotFoundError, match=f"share '{share.id}' does not exist"):
                await call(project_id=own, share_id=share.id, **arguments)
        async with api(server) as anyone:
            with pytest.raises(NotFoundError, match=f"share '{share.id}' does not exist"):
                await anyone.connect_share(share_id=share.id)


async def test_a_share_connects_anyone_holding_its_id_to_its_room(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    settings = {"room": "lobby", "name": "visitor", "role": "guest", "api": {"queues": {"send": ["inbox"], "receive": [], "list": False}}}
    async with api(server, credentials.api_key) as client:
        share = await client.create_share(project_id=own, settings=settings)
    async with api(server) as anyone:  # no credentials at all
        info = await anyone.connect_share(share_id=share.id)
    assert (info.room_name, info.project_id, info.settings, info.room_url) == ("lobby", own, settings, server.config.room_url("lobby"))
    token, _ = verify_token(server.control.keys.ring, info.jwt, server.config.clock())
    assert (token.name, token.role, token.project_id, token.grant_scope("room")) == ("visitor", "guest", own, "lobby")

    with trio.fail_after(10):
        async with RoomConnection.open(info.room_url, info.jwt) as room:
            [participant] = server.room("lobby").participants.values()
            assert (participant.name, participant.role) == ("visitor", "guest")
            await room.invoke("queues", "send", {"name": "inbox", "message": {"hello": 1}, "create": True})
            with pytest.raises(RoomException, match="sending to queue 'other'"):
                await room.invoke("queues", "send", {"name": "other", "message": {}, "create": True})
            with pytest.raises(RoomException, match="listing queues"):
                await room.invoke("queues", "list", {})


async def test_a_share_without_a_scope_gets_the_user_default_and_a_disabled_room_is_423(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        room = await client.create_room(project_id=own, name="hall")
        share = await client.create_share(project_id=own, settings={"room": "hall"})
        async with api(server) as anyone:
            info = await anyone.connect_share(share_id=share.id)
            token, _ = verify_token(server.control.keys.ring, info.jwt, server.config.clock())
            assert (token.name, token.role) == ("guest", "user")
            assert token.get_api_grant() == ApiScope.user_default()
            await client.update_room(project_id=own, room_id=room.id, name="hall", enabled=False)
            with pytest.raises(RoomDisabledError):
                await anyone.connect_share(share_id=share.id)


async def test_another_projects_key_is_403(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as owner:
        other = await owner.create_project(name="other")
        account = await owner.create_service_account(project_id=other.id, name="bot")
        key = await owner.create_api_key(project_id=other.id, service_account_id=account.id, name="k", description="")
        webhook = await owner.create_webhook(project_id=own, **hook())
        share = await owner.create_share(project_id=own, settings={"room": "lobby"})
    async with api(server, key.value) as stranger:
        for call, arguments in (
            (stranger.create_webhook, hook()),
            (stranger.list_webhooks, {}),
            (stranger.update_webhook, {"webhook_id": webhook.id, **hook()}),
            (stranger.delete_webhook, {"webhook_id": webhook.id}),
            (stranger.create_share, {"settings": {"room": "x"}}),
            (stranger.list_shares, {}),
            (stranger.update_share, {"share_id": share.id, "settings": {"room": "x"}}),
            (stranger.delete_share, {"share_id": share.id}),
        ):
            with pytest.raises(PermissionDeniedError, match="another project"):
                await call(project_id=own, **arguments)
        assert await stranger.list_shares(project_id=other.id) == []
