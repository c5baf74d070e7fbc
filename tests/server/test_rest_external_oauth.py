"""External OAuth registrations over REST (protocol/rest.md §16, the seed's methods), project-wide
and per room, against a real server on a real socket with our `Meshagent` client: stored and
validated, names unique per project or room, the client secret never shown again."""

from __future__ import annotations

import pytest

from meshagent_core.rest import ConflictError, NotFoundError, PermissionDeniedError, ValidationErrorResponse
from meshagent_trio.server import Credentials, Server

from test_rest_domains import api, other_project_key, post_json

REGISTRATION = {
    "name": "github",
    "client_id": "abc",
    "client_secret": "s3cret",
    "authorization_endpoint": "https://github.com/login/oauth/authorize",
    "token_endpoint": "https://github.com/login/oauth/access_token",
    "scopes": ["repo", " read:org ", "repo"],
    "server_url": "https://api.githubcopilot.com/mcp/",
}


async def test_project_and_room_registrations(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    store = server.control.external_oauth
    async with api(server, credentials.api_key) as client:
        made = await client.create_project_external_oauth_registration(project_id=own, **REGISTRATION)
        assert (made.name, made.client_id, made.has_client_secret, made.scopes, made.room_name) == ("github", "abc", True, ["repo", "read:org"], None)
        assert "s3cret" not in repr(made) and await store.client_secret(own, None, made.id) == "s3cret"
        room = await client.create_room_external_oauth_registration(project_id=own, room_name="lobby", **{**REGISTRATION, "client_secret": None})
        assert (room.room_name, room.has_client_secret) == ("lobby", False)
        with pytest.raises(ConflictError, match="'github' already exists"):
            await client.create_project_external_oauth_registration(project_id=own, **REGISTRATION)
        with pytest.raises(ConflictError, match="in room 'lobby'"):
            await client.create_room_external_oauth_registration(project_id=own, room_name="lobby", **REGISTRATION)
        assert [r.id for r in (await client.list_project_external_oauth_registrations(project_id=own)).registrations] == [made.id]
        assert [r.id for r in (await client.list_room_external_oauth_registrations(project_id=own, room_name="lobby")).registrations] == [room.id]
        assert (await client.list_room_external_oauth_registrations(project_id=own, room_name="kitchen")).registrations == []

        fields = {**REGISTRATION, "name": "gh", "no_pkce": True, "client_secret": None}
        updated = await client.update_project_external_oauth_registration(project_id=own, registration_id=made.id, **fields)
        assert (updated.name, updated.no_pkce, updated.has_client_secret, updated.created_at) == ("gh", True, True, made.created_at)  # the secret kept
        with pytest.raises(NotFoundError, match="does not exist in room 'kitchen'"):  # a room's registration is not another room's
            await client.update_room_external_oauth_registration(project_id=own, room_name="kitchen", registration_id=room.id, **REGISTRATION)
        with pytest.raises(NotFoundError):
            await client.delete_project_external_oauth_registration(project_id=own, registration_id=room.id)
        for change, message in (
            ({"name": " "}, "name must not be empty"),
            ({"client_id": ""}, "client_id must not be empty"),
            ({"token_endpoint": "/token"}, "token_endpoint"),
            ({"authorization_endpoint": "ftp://x.test/a"}, "authorization_endpoint"),
            ({"server_url": "nowhere"}, "server_url"),
            ({"scopes": ["two words"]}, "scopes"),
            ({"client_secret": ""}, "client_secret"),
        ):
            with pytest.raises(ValidationErrorResponse, match=message):
                await client.create_project_external_oauth_registration(project_id=own, **{**REGISTRATION, "name": "new", **change})
        with pytest.raises(ValidationErrorResponse, match="invalid room name"):
            await client.list_room_external_oauth_registrations(project_id=own, room_name="..")
        status, body = await post_json(server, credentials, f"/accounts/projects/{own}/external-oauth", {**REGISTRATION, "colour": "red"})
        assert status == 400 and "colour" in body["error"]["message"]

        await client.delete_room_external_oauth_registration(project_id=own, room_name="lobby", registration_id=room.id)
        await client.delete_project_external_oauth_registration(project_id=own, registration_id=made.id)
        with pytest.raises(NotFoundError, match=f"external OAuth registration '{made.id}' does not exist"):
            await client.delete_project_external_oauth_registration(project_id=own, registration_id=made.id)
        with pytest.raises(NotFoundError, match="project 'nope'"):
            await client.list_project_external_oauth_registrations(project_id="nope")
        _, other_key = await other_project_key(client)
    async with api(server, other_key) as stranger:
        with pytest.raises(PermissionDeniedError):
            await stranger.create_project_external_oauth_registration(project_id=own, **REGISTRATION)
