"""`room.call` on the local server (protocol/webhooks.md §6), over real sockets: a participant
asks the room to call an agent in; the server mints a token and POSTs a signed `room.call`
webhook to a real HTTP receiver, which then joins the room with that token."""

from __future__ import annotations

import json

import pytest
import trio

from meshagent_core import ErrorCode, RoomException
from meshagent_core.client.rest import Meshagent
from meshagent_core.tokens import AgentsGrant, ApiScope, StorageGrant
from meshagent_core.webhooks import SIGNATURE_HEADER, verify
from meshagent_trio import connect
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.auth import verify_token

from roomtest import mint, room_url
from webhook_receiver import webhook_receiver


async def test_room_call_posts_a_signed_webhook_whose_token_joins_the_room(server: Server, credentials: Credentials) -> None:
    secret = await server.control.webhooks.project_secret(credentials.project_id)
    with webhook_receiver() as receiver:
        async with connect(room_url(server), mint(credentials, name="alice")) as room:
            await room.agents.make_call(name="helper-bot", url=receiver.url + "/agent", arguments={"topic": "café", "n": 1})
            [request] = receiver.taken()  # answered only after the receiver's 2xx
            assert request.path == "/agent"
            assert request.headers["content-type"] == "application/json"
            envelope = verify(request.body, request.headers.get(SIGNATURE_HEADER.lower()), secret, now=None)
            assert request.body == json.dumps(envelope).encode()  # the official sender's bytes
            assert envelope["event"] == "room.call"
            data = envelope["data"]
            assert list(data) == ["room_name", "room_url", "token", "arguments"]
            assert data["room_name"] == "test-room"
            assert data["room_url"] == server.config.room_url("test-room")
            assert data["arguments"] == {"topic": "café", "n": 1}
            token, _ = verify_token(server.control.keys.ring, data["token"], now=None)
            assert token.name == "helper-bot" and token.role == "agent"
            assert token.get_api_grant() == ApiScope.agent_default()
            async with connect(room_url(server), data["token"]) as called:
                assert called.local_participant.get_attribute("name") == "helper-bot"
                await called.storage.upload(path="from-the-agent.txt", data=b"hello")
                assert await room.storage.exists(path="from-the-agent.txt")


async def test_room_call_with_a_scope_mints_that_scope(server: Server, credentials: Credentials) -> None:
    narrow = ApiScope(storage=StorageGrant())
    with webhook_receiver() as receiver:
        async with connect(room_url(server), mint(credentials)) as room:
            await room.agents.make_call(name="reader", url=receiver.url, arguments={}, api=narrow)
    token, _ = verify_token(server.control.keys.ring, json.loads(receiver.taken()[0].body)["data"]["token"], now=None)
    assert token.get_api_grant() == narrow


async def test_the_configured_secret_signs_the_servers_own_project(server: Server, credentials: Credentials) -> None:
    server.config.webhook_secret = "a-secret-the-developer-chose"
    server.control.webhooks._secrets.clear()
    with webhook_receiver() as receiver:
        async with connect(room_url(server), mint(credentials)) as room:
            await room.agents.make_call(name="bot", url=receiver.url, arguments={})
    [request] = receiver.taken()
    verify(request.body, request.headers[SIGNATURE_HEADER.lower()], "a-secret-the-developer-chose", now=None)


async def test_the_project_secret_survives_a_restart(server: Server, credentials: Credentials) -> None:
    first = await server.control.webhooks.project_secret(credentials.project_id)
    server.control.webhooks._secrets.clear()
    assert await server.control.webhooks.project_secret(credentials.project_id) == first
    assert len(first) >= 40


@pytest.mark.parametrize("status", [401, 500])
async def test_a_refusing_receiver_fails_the_call_with_its_status(server: Server, credentials: Credentials, status: int) -> None:
    with webhook_receiver() as receiver:
        receiver.status = status
        async with connect(room_url(server), mint(credentials)) as room:
            with pytest.raises(RoomException) as raised:
                await room.agents.make_call(name="bot", url=receiver.url + "/x", arguments={})
            assert raised.value.code == ErrorCode.OPERATION_FAILED
            assert f"http status code: {status}" in str(raised.value)
            assert await room.storage.list(path="") == []  # the connection keeps working


async def test_an_unreachable_receiver_fails_the_call(server: Server, credentials: Credentials) -> None:
    with trio.socket.socket() as sock:  # a port nothing listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with connect(room_url(server), mint(credentials)) as room:
        with pytest.raises(RoomException) as raised:
            await room.agents.make_call(name="bot", url=f"http://127.0.0.1:{port}/", arguments={})
        assert raised.value.code == ErrorCode.OPERATION_FAILED
        assert f"127.0.0.1:{port}" in str(raised.value)


async def test_a_receiver_that_never_answers_fails_the_call_at_the_deadline(server: Server, credentials: Credentials) -> None:
    server.config.webhook_timeout = 0.3
    with webhook_receiver() as receiver:
        receiver.delay = 2.0
        async with connect(room_url(server), mint(credentials)) as room:
            with trio.fail_after(5):
                with pytest.raises(RoomException, match="timed out") as raised:
                    await room.agents.make_call(name="bot", url=receiver.url, arguments={})
            assert raised.value.code == ErrorCode.OPERATION_FAILED


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"name": "", "url": "http://127.0.0.1:1/", "arguments": {}}, "name must not be empty"),
        ({"name": "bot", "url": "ftp://example.test/", "arguments": {}}, "absolute http"),
        ({"name": "bot", "url": "/relative", "arguments": {}}, "absolute http"),
        ({"name": "bot", "url": "http://127.0.0.1:1/", "arguments": "not an object"}, "invalid room.call request"),
        ({"url": "http://127.0.0.1:1/", "arguments": {}}, "invalid room.call request"),
        ({"name": "bot", "url": "http://127.0.0.1:1/", "arguments": {}, "api": {"storage": "yes"}}, "invalid api scope"),
    ],
)
async def test_bad_requests_are_refused_and_nothing_is_sent(server: Server, credentials: Credentials, header: dict, message: str) -> None:
    async with connect(room_url(server), mint(credentials)) as room:
        with pytest.raises(RoomException, match=message) as raised:
            await room.send_request("room.call", header)
        assert raised.value.code == ErrorCode.INVALID_REQUEST


async def test_a_token_without_agents_call_may_not_call(server: Server, credentials: Credentials) -> None:
    scopes = [ApiScope(storage=StorageGrant()), ApiScope(agents=AgentsGrant(call=False), storage=StorageGrant())]
    with webhook_receiver() as receiver:
        for scope in scopes:
            async with connect(room_url(server), mint(credentials, scope=scope)) as room:
                with pytest.raises(RoomException, match="agents.call") as raised:
                    await room.agents.make_call(name="bot", url=receiver.url, arguments={})
                assert raised.value.code == ErrorCode.PERMISSION_DENIED
        assert receiver.taken() == []


async def test_a_call_may_not_grant_more_than_its_caller_holds(server: Server, credentials: Credentials) -> None:
    with webhook_receiver() as receiver:
        async with connect(room_url(server), mint(credentials, scope=ApiScope.agent_default())) as room:
            with pytest.raises(RoomException, match="admin") as raised:
                await room.agents.make_call(name="bot", url=receiver.url, arguments={}, api=ApiScope.full())
            assert raised.value.code == ErrorCode.PERMISSION_DENIED
        assert receiver.taken() == []


async def test_rooms_of_other_projects_are_signed_with_their_own_secret(server: Server, credentials: Credentials) -> None:
    async with Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=credentials.api_key) as api:
        project = await api.create_project(name="second")
        connection = await api.connect_room(project_id=project.id, room="elsewhere")
    theirs = await server.control.webhooks.project_secret(project.id)
    ours = await server.control.webhooks.project_secret(credentials.project_id)
    assert theirs != ours
    with webhook_receiver() as receiver:
        async with connect(connection.room_url, connection.jwt) as room:
            await room.agents.make_call(name="bot", url=receiver.url, arguments={})
    [request] = receiver.taken()
    verify(request.body, request.headers[SIGNATURE_HEADER.lower()], theirs, now=None)
    token, _ = verify_token(server.control.keys.ring, json.loads(request.body)["data"]["token"], now=None)
    assert token.project_id == project.id
