"""Registries over REST (protocol/rest.md §13), against a real server on a real socket with our
`Meshagent` client: repositories stored under normalized OCI names, and repository tokens that
the server verifies (signature, kind, expiry, repository still there). No image storage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core.rest import ConflictError, NotFoundError, PermissionDeniedError, ValidationErrorResponse
from meshagent_core.tokens.jws import decode_jwt
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.control import signed_tokens
from meshagent_trio.server.control.signed_tokens import TokenRefused

from test_rest_domains import api, other_project_key, post_json


async def test_repositories(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        app = await client.create_repository(project_id=own, name=" Team/App-1 ", description="the app", annotations={"a": "b"})
        assert (app.name, app.description, app.annotations, app.project_id) == ("team/app-1", "the app", {"a": "b"}, own)
        assert await client.get_repository(project_id=own, repository_id=app.id) == app
        assert await client.get_repository_by_name(project_id=own, name="TEAM/app-1") == app
        for name in ("b", "c", "d"):
            await client.create_repository(project_id=own, name=name)
        first = await client.list_repositories_page(project_id=own, page_size=2)
        assert [r.name for r in first.repositories] == ["b", "c"] and first.total == 4 and first.continuation_token == "c"
        assert [r.name for r in await client.list_repositories(project_id=own, continuation_token="c")] == ["d", "team/app-1"]
        renamed = await client.update_repository(project_id=own, repository_id=app.id, name="team/app", description="")
        assert (renamed.id, renamed.name, renamed.description, renamed.annotations) == (app.id, "team/app", "", {})
        with pytest.raises(ConflictError, match="repository 'b' already exists"):
            await client.update_repository(project_id=own, repository_id=app.id, name="B")
        with pytest.raises(ConflictError):
            await client.create_repository(project_id=own, name="team/app")
        for bad in ("", "a//b", "-x", "a b", "a/B_"):
            with pytest.raises(ValidationErrorResponse, match="name"):
                await client.create_repository(project_id=own, name=bad)
        status, body = await post_json(server, credentials, f"/accounts/projects/{own}/repositories", {"name": "x", "colour": "red"})
        assert status == 400 and "colour" in body["error"]["message"]
        await client.delete_repository(project_id=own, repository_id=app.id)
        for call in (client.get_repository(project_id=own, repository_id=app.id), client.delete_repository(project_id=own, repository_id=app.id)):
            with pytest.raises(NotFoundError, match=f"repository '{app.id}' does not exist"):
                await call
        with pytest.raises(NotFoundError, match="repository 'team/app' does not exist"):
            await client.get_repository_by_name(project_id=own, name="team/app")
        _, other_key = await other_project_key(client)
    async with api(server, other_key) as stranger:
        with pytest.raises(PermissionDeniedError):
            await stranger.list_repositories(project_id=own)


async def test_repository_tokens_are_verifiable(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    registries = server.control.registries
    async with api(server, credentials.api_key) as client:
        repository = await client.create_repository(project_id=own, name="images/web")
        pull = await client.create_repository_token(project_id=own, repository_id=repository.id, actions=["pull"], expires_in_seconds=None)
        grant = await registries.verify_token(pull.token)
        assert (grant.project_id, grant.repository_id, grant.repository, grant.actions) == (own, repository.id, "images/web", ("pull",))
        push = await client.create_repository_token(project_id=own, repository_id=repository.id, actions=["push", "pull", "push"], expires_in_seconds=30)
        grant = await registries.verify_token(push.token)
        assert grant.actions == ("push", "pull") and grant.expires_at - (await registries.verify_token(pull.token)).expires_at <= 30 - 3600 + 5
        claims = decode_jwt(push.token, None, verify=False)
        assert claims["access"] == [{"type": "repository", "name": f"{own}/images/web", "actions": ["push", "pull"]}]
        with pytest.raises(TokenRefused, match="not a valid repository token"):  # signed with another key
            await registries.verify_token(push.token[:-3] + "abc")
        with pytest.raises(TokenRefused, match="not a valid repository token"):  # a participant token is not one
            await registries.verify_token(credentials_token(credentials))
        for arguments, message in (({"actions": []}, "actions"), ({"expires_in_seconds": 0}, "expires_in_seconds"), ({"expires_in_seconds": 10**9}, "expires_in_seconds")):
            with pytest.raises(ValidationErrorResponse, match=message):
                await client.create_repository_token(project_id=own, repository_id=repository.id, **{"actions": ["pull"], "expires_in_seconds": None, **arguments})
        status, body = await post_json(server, credentials, f"/accounts/projects/{own}/repositories/{repository.id}/token", {"actions": ["delete"]})
        assert status == 400 and "$.actions[0]" in body["error"]["message"]
        with pytest.raises(NotFoundError):
            await client.create_repository_token(project_id=own, repository_id="nope", actions=["pull"])
        await client.delete_repository(project_id=own, repository_id=repository.id)
        with pytest.raises(TokenRefused, match="no longer exists"):
            await registries.verify_token(pull.token)


async def test_an_expired_token_is_refused(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    now = [1_000_000.0]
    server.control.config.clock = lambda: now[0]
    async with api(server, credentials.api_key) as client:
        repository = await client.create_repository(project_id=own, name="short")
        token = (await client.create_repository_token(project_id=own, repository_id=repository.id, actions=["pull"], expires_in_seconds=10)).token
    assert (await server.control.registries.verify_token(token)).expires_at == 1_000_010
    now[0] += 10
    with pytest.raises(TokenRefused, match="expired"):
        await server.control.registries.verify_token(token)


def credentials_token(credentials: Credentials) -> str:
    from meshagent_core.tokens import ParticipantToken

    token = ParticipantToken(name="p")
    token.add_room_grant("r")
    return token.to_jwt(api_key=credentials.api_key)


@settings(max_examples=60, deadline=None)
@given(
    claims=st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k not in ("iss", "kind", "iat", "exp")), st.text(max_size=12) | st.integers(), max_size=4),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_a_signed_token_round_trips_and_any_change_is_refused(claims: dict, position: int, flip: int) -> None:
    token = signed_tokens.mint("secret", "repository", claims, issued_at=100, expires_at=200)
    verified = signed_tokens.verify("secret", "repository", token, now=150)
    assert {key: verified[key] for key in claims} == claims and (verified["kind"], verified["exp"]) == ("repository", 200)
    for secret, kind, now in (("other", "repository", 150), ("secret", "llm", 150), ("secret", "repository", 200)):
        with pytest.raises(TokenRefused):
            signed_tokens.verify(secret, kind, token, now=now)
    raw = bytearray(token.encode())
    index = position % len(raw)
    raw[index] = (raw[index] + flip) % 128 or 1
    changed = raw.decode("ascii", "replace")
    if changed != token:
        try:
            altered = signed_tokens.verify("secret", "repository", changed, now=150)
        except TokenRefused:
            pass
        else:  # base64url has spare bits in a segment's last character: the same bytes decoded
            assert altered == verified
