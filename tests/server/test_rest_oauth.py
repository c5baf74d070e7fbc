"""OAuth clients and the token endpoint (protocol/rest.md §15) over real sockets, with our
`Meshagent` client: the clients' CRUD and its errors, secrets kept hashed and shown once, the
grant types (`client_credentials`, `authorization_code` with PKCE through the authorization
endpoint, `refresh_token`), and access tokens as REST bearers of the client's project, refused
once revoked, expired, or their client deleted."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_core.errors import RoomException
from meshagent_core.rest import NotFoundError, PermissionDeniedError, RestError, ValidationErrorResponse
from meshagent_core.rest import ROUTES
from meshagent_core.rest.oauth import SCOPES, OAuthClient, required_scope, scope_allows
from meshagent_trio.server import Credentials, Server, ServerConfig
from meshagent_core.testing import vectors
from meshagent_trio.server.control.oauth import ACCESS_LIFETIME
from httptest import QuietHandler, serve_http

REDIRECT = "http://localhost:8765/callback"
ALL_GRANTS = ["authorization_code", "refresh_token", "client_credentials"]


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def server(tmp_path: Path, credentials: Credentials, clock: Clock, nursery: trio.Nursery) -> AsyncIterator[Server]:
    server = Server(ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, clock=clock))
    await nursery.start(server.serve)
    yield server


def base(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
async def api(server: Server, credentials: Credentials) -> AsyncIterator[Meshagent]:
    async with Meshagent(base_url=base(server), token=credentials.api_key) as client:
        yield client


async def new_client(api: Meshagent, project_id: str, **fields: object) -> OAuthClient:
    arguments = {"grant_types": ALL_GRANTS, "response_types": ["code"], "redirect_uris": [REDIRECT], "scope": "rooms:read rooms:create", **fields}
    return await api.create_oauth_client(project_id=project_id, **arguments)


async def token_error(api: Meshagent, form: dict[str, str], status: int, error: str) -> None:
    with pytest.raises(RoomException, match=f"^Token endpoint error {status}: .*\"error\":\"{error}\""):
        await api.exchange_oauth_token(form=form)


async def test_clients_crud(api: Meshagent, credentials: Credentials) -> None:
    own = credentials.project_id
    created = await new_client(api, own, metadata={"app": "cli"}, official=True)
    assert created.client_secret and created.project_id == own and created.metadata == {"app": "cli"} and created.official
    assert created.grant_types == ALL_GRANTS and created.scope == "rooms:read rooms:create"
    got = await api.get_oauth_client(project_id=own, client_id=created.client_id)
    assert got.client_secret is None and got == OAuthClient(**{**{f: getattr(created, f) for f in created.__struct_fields__}, "client_secret": None})

    others = [await new_client(api, own) for _ in range(3)]
    page = await api.list_oauth_clients_page(project_id=own, count=2, offset=1)
    assert page.total == 4 and [c.client_id for c in page.clients] == [c.client_id for c in others[:2]]
    assert all(c.client_secret is None for c in page.clients)
    assert len(await api.list_oauth_clients(project_id=own)) == 4

    assert await api.update_oauth_client(project_id=own, client_id=created.client_id, scope="rooms:read", redirect_uris=["http://x/cb"]) == {"ok": True}
    updated = await api.get_oauth_client(project_id=own, client_id=created.client_id)
    assert (updated.scope, updated.redirect_uris, updated.grant_types, updated.metadata) == ("rooms:read", ["http://x/cb"], ALL_GRANTS, {"app": "cli"})

    await api.delete_oauth_client(project_id=own, client_id=created.client_id)
    with pytest.raises(RestError, match="^oauth client not found$"):
        await api.get_oauth_client(project_id=own, client_id=created.client_id)
    with pytest.raises(NotFoundError, match=f"oauth client '{created.client_id}' does not exist"):
        await api.delete_oauth_client(project_id=own, client_id=created.client_id)
    with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
        await new_client(api, "nope")


async def test_bad_client_fields_and_other_projects(api: Meshagent, server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    with pytest.raises(ValidationErrorResponse, match="grant_types: 'password'"):
        await new_client(api, own, grant_types=["password"])
    with pytest.raises(ValidationErrorResponse, match="scope: 'rooms:fly' is not an OAuth scope"):
        await new_client(api, own, scope="rooms:read rooms:fly")
    with pytest.raises(ValidationErrorResponse, match="metadata: the values must be strings"):
        await new_client(api, own, metadata={"n": 1})
    async with httpx.AsyncClient() as http:  # what our client would not send
        answer = await http.post(f"{base(server)}/accounts/projects/{own}/oauth/clients", json={"grant_types": [], "response_types": [], "redirect_uris": [], "scope": 5}, headers={"authorization": f"Bearer {credentials.api_key}"})
    assert answer.status_code == 400 and "$.scope" in answer.json()["error"]["message"]
    client = await new_client(api, own)
    with pytest.raises(ValidationErrorResponse, match="grant_types"):
        await api.update_oauth_client(project_id=own, client_id=client.client_id, grant_types=["implicit"])
    other = await api.create_project(name="other")
    with pytest.raises(RestError, match="oauth client not found"):  # a client is found in its own project only
        await api.get_oauth_client(project_id=other.id, client_id=client.client_id)
    account = await api.create_service_account(project_id=other.id, name="robot")
    key = await api.create_api_key(project_id=other.id, service_account_id=account.id, name="k", description="")
    async with Meshagent(base_url=base(server), token=key.value) as stranger:
        with pytest.raises(PermissionDeniedError, match="another project"):
            await stranger.list_oauth_clients_page(project_id=own)


async def test_the_secret_is_stored_hashed(api: Meshagent, server: Server, credentials: Credentials) -> None:
    client = await new_client(api, credentials.project_id)
    assert client.client_secret
    data = b"".join(path.read_bytes() for path in server.config.data_dir.glob("control.db*"))
    assert client.client_id.encode() in data and client.client_secret.encode() not in data


async def test_client_credentials_token_acts_in_the_clients_project(api: Meshagent, server: Server, credentials: Credentials, clock: Clock) -> None:
    own = credentials.project_id
    client = await new_client(api, own)
    assert client.client_secret is not None
    form = {"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": client.client_secret}
    issued = await api.exchange_oauth_token(form=form)
    assert (issued.token_type, issued.expires_in, issued.scope, issued.refresh_token) == ("Bearer", ACCESS_LIFETIME, "rooms:read rooms:create", None)
    narrowed = await api.exchange_oauth_token(form={**form, "scope": "rooms:read"})
    assert narrowed.scope == "rooms:read"
    async with Meshagent(base_url=base(server), token=narrowed.access_token) as reader:
        assert await reader.list_rooms(project_id=own) == []
        with pytest.raises(PermissionDeniedError, match="create_room: the OAuth access token's scope does not include 'rooms:create'"):
            await reader.create_room(project_id=own, name="refused")
    async with Meshagent(base_url=base(server), token=issued.access_token) as bearer:
        await bearer.create_room(project_id=own, name="made-by-oauth")
        assert [room.name for room in await bearer.list_rooms(project_id=own)] == ["made-by-oauth"]
        other = await api.create_project(name="other")
        with pytest.raises(PermissionDeniedError, match="another project"):
            await bearer.list_rooms(project_id=other.id)
        clock.now += ACCESS_LIFETIME + 1
        with pytest.raises(PermissionDeniedError, match="OAuth access token is not known"):
            await bearer.list_rooms(project_id=own)


async def test_wrong_secrets_grants_and_scopes_are_refused(api: Meshagent, credentials: Credentials) -> None:
    client = await new_client(api, credentials.project_id, grant_types=["client_credentials"])
    form = {"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": client.client_secret or ""}
    await token_error(api, {**form, "client_secret": "wrong"}, 401, "invalid_client")
    await token_error(api, {"grant_type": "client_credentials", "client_id": client.client_id}, 401, "invalid_client")
    await token_error(api, {**form, "client_id": "nobody"}, 401, "invalid_client")
    await token_error(api, {**form, "scope": "secrets:read"}, 400, "invalid_scope")
    await token_error(api, {**form, "grant_type": "password"}, 400, "unsupported_grant_type")
    await token_error(api, {**form, "grant_type": "refresh_token", "refresh_token": "x"}, 400, "unauthorized_client")
    await token_error(api, {"client_id": client.client_id}, 400, "invalid_request")


async def authorize(server: Server, token: str | None, **query: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as http:
        return await http.get(base(server) + "/oauth/authorize", params={"response_type": "code", **query}, headers=headers)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def test_authorization_code_with_pkce_and_refresh(api: Meshagent, server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    client = await new_client(api, own)
    verifier, challenge = pkce()
    answer = await authorize(server, credentials.api_key, client_id=client.client_id, redirect_uri=REDIRECT, scope="rooms:read", state="s1", code_challenge=challenge, code_challenge_method="S256")
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert query["state"] == "s1"
    code_form = {"grant_type": "authorization_code", "code": query["code"], "client_id": client.client_id, "redirect_uri": REDIRECT}
    await token_error(api, {**code_form, "code_verifier": "wrong"}, 400, "invalid_grant")  # a refused attempt uses the code up
    answer = await authorize(server, credentials.api_key, client_id=client.client_id, scope="rooms:read", code_challenge=challenge, code_challenge_method="S256")
    code_form["code"] = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    issued = await api.exchange_oauth_token(form={**code_form, "code_verifier": verifier})  # a public client: no secret
    assert issued.scope == "rooms:read" and issued.refresh_token and issued.access_token.startswith("mat-")
    await token_error(api, {**code_form, "code_verifier": verifier}, 400, "invalid_grant")  # used once

    refresh_form = {"grant_type": "refresh_token", "refresh_token": issued.refresh_token, "client_id": client.client_id}
    refreshed = await api.exchange_oauth_token(form=refresh_form)
    assert refreshed.refresh_token and refreshed.refresh_token != issued.refresh_token and refreshed.scope == "rooms:read"
    await token_error(api, refresh_form, 400, "invalid_grant")  # rotated
    async with Meshagent(base_url=base(server), token=refreshed.access_token) as bearer:
        assert await bearer.list_rooms(project_id=own) == []


async def test_the_authorization_endpoint_refuses(api: Meshagent, server: Server, credentials: Credentials) -> None:
    client = await new_client(api, credentials.project_id)
    assert (await authorize(server, None, client_id=client.client_id)).status_code == 401
    assert (await authorize(server, "ma-nonsense", client_id=client.client_id)).status_code == 403
    wrong_uri = await authorize(server, credentials.api_key, client_id=client.client_id, redirect_uri="http://evil/cb")
    assert wrong_uri.status_code == 400 and "redirect_uri" in wrong_uri.json()["error_description"]
    assert (await authorize(server, credentials.api_key, client_id="nobody")).status_code == 404
    other = await api.create_project(name="other")
    account = await api.create_service_account(project_id=other.id, name="robot")
    key = await api.create_api_key(project_id=other.id, service_account_id=account.id, name="k", description="")
    stranger = await authorize(server, key.value, client_id=client.client_id)
    assert stranger.status_code == 403 and "another project" in stranger.json()["error_description"]
    scope = await authorize(server, credentials.api_key, client_id=client.client_id, scope="secrets:read")
    assert scope.status_code == 400 and scope.json()["error"] == "invalid_scope"
    # without PKCE a code needs the client's secret
    answer = await authorize(server, credentials.api_key, client_id=client.client_id)
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    await token_error(api, {"grant_type": "authorization_code", "code": code, "client_id": client.client_id}, 401, "invalid_client")


async def test_basic_authentication_revocation_and_deleted_clients(api: Meshagent, server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    client = await new_client(api, own)
    basic = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
    async with httpx.AsyncClient() as http:
        answer = await http.post(base(server) + "/oauth/token", data={"grant_type": "client_credentials"}, headers={"authorization": f"Basic {basic}"})
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        revoked = answer.json()["access_token"]
        assert (await http.post(base(server) + "/oauth/token", json={"grant_type": "client_credentials"})).status_code == 400
        revoke = await http.post(base(server) + "/oauth/revoke", data={"token": revoked, "client_id": client.client_id, "client_secret": client.client_secret})
        assert revoke.status_code == 200
        assert (await http.get(base(server) + "/oauth/token")).status_code == 405
    async with Meshagent(base_url=base(server), token=revoked) as bearer:
        with pytest.raises(PermissionDeniedError, match="OAuth access token"):
            await bearer.list_rooms(project_id=own)
    issued = await api.exchange_oauth_token(form={"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": client.client_secret or ""})
    async with Meshagent(base_url=base(server), token=issued.access_token) as bearer:
        assert await bearer.list_rooms(project_id=own) == []
        await api.delete_oauth_client(project_id=own, client_id=client.client_id)
        with pytest.raises(PermissionDeniedError, match="OAuth access token"):
            await bearer.list_rooms(project_id=own)


async def test_tokens_survive_a_restart(tmp_path: Path, credentials: Credentials, clock: Clock) -> None:
    config = ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, clock=clock)
    own = credentials.project_id
    for round in range(2):
        async with trio.open_nursery() as nursery:
            server = Server(config)
            await nursery.start(server.serve)
            async with Meshagent(base_url=base(server), token=credentials.api_key) as api:
                if round == 0:
                    client = await new_client(api, own)
                    issued = await api.exchange_oauth_token(form={"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": client.client_secret or ""})
            async with Meshagent(base_url=base(server), token=issued.access_token) as bearer:
                assert await bearer.list_rooms(project_id=own) == []
            nursery.cancel_scope.cancel()


class TokenRecorder(QuietHandler):
    seen: list[dict[str, object]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        TokenRecorder.seen.append({"path": self.path, "form": dict(parse_qsl(body.decode())), "headers": headers})
        self.send_json(400, b'{"error": "invalid_grant"}')


async def test_our_token_request_is_the_official_clients() -> None:
    official = next(r for r in vectors.load("rest_requests")["requests"] if r["method"] == "exchange_oauth_token")
    TokenRecorder.seen.clear()
    with serve_http(TokenRecorder) as url:
        async with Meshagent(base_url=url, token="ma-token") as client:
            with pytest.raises(RoomException, match='^Token endpoint error 400: {"error": "invalid_grant"}$'):
                await client.exchange_oauth_token(form=official["body"])
    (seen,) = TokenRecorder.seen
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert (official["verb"], seen["path"], seen["form"]) == ("POST", official["url"], official["body"])
    assert headers["content-type"] == "application/x-www-form-urlencoded" and headers["accept"] == official["headers_extra"]["Accept"]
    assert "authorization" not in headers and not official["auth"] and headers["consistency"] == "fast"


def test_every_route_needs_a_scope_of_the_vocabulary() -> None:
    assert all(required_scope(route) in SCOPES for route in ROUTES.unique())
    needs = {name: required_scope(ROUTES[name]) for name in ("list_rooms_page", "connect_room", "list_room_mailboxes_page", "list_mailbox_delivery_events", "create_api_key", "get_project", "update_oauth_client", "grant_resource_policy", "create_feed")}
    assert needs == {
        "list_rooms_page": "rooms:read",
        "connect_room": "rooms:connect",
        "list_room_mailboxes_page": "mailboxes:read",  # the room's mailboxes: the last resource of the path
        "list_mailbox_delivery_events": "mailboxes:read",
        "create_api_key": "apiKeys:create",
        "get_project": "projects:read",
        "update_oauth_client": "oauthClients:update",
        "grant_resource_policy": "projects:iam.write",
        "create_feed": "project/*",  # no narrower scope in the vocabulary
    }
    assert scope_allows("project/*", "secrets:read") and scope_allows("project/*", "project/*") and scope_allows("room/*", "rooms:delete") and scope_allows("agent/*", "agents:run")
    assert not scope_allows("room/*", "mailboxes:read") and not scope_allows("rooms:read", "rooms:create") and not scope_allows("", "project/*")
