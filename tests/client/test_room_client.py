"""RoomClient: joining, identity, attributes, events, requests and errors — on Trio and on AnyIO
(asyncio and Trio), against the real local server."""

from __future__ import annotations

import pytest

from meshagent_core import JsonContent, RoomException
from meshagent_core.session import events as ev
from roomtest import mint

pytestmark = pytest.mark.anyio


async def test_connect_identity_and_attributes(client_module, local_server) -> None:
    url = local_server.room_url("clients")
    async with client_module.connect(url, mint(local_server.credentials, "clients", name="alice")) as room:
        assert room.room_name == "clients" and room.session_id
        assert room.local_participant.get_attribute("name") == "alice"
        async with client_module.RoomClient(
            protocol=client_module.WebSocketClientProtocol(url=url, token=mint(local_server.credentials, "clients", name="bob"))
        ) as bob:
            await bob.invoke("messaging", "enable", {})
            await room.invoke("messaging", "enable", {})
            room.local_participant.set_attribute("color", "blue")
            async for event in bob.events(ev.MessageReceived):
                if event.type == "participant.attributes":
                    assert event.message == {"attributes": {"color": "blue"}}
                    assert event.from_participant_id == room.local_participant.id
                    break
        assert room.local_participant.attributes == {"name": "alice", "color": "blue"}


async def test_requests_and_errors(client_module, local_server) -> None:
    url = local_server.room_url("clients")
    async with client_module.connect(url, mint(local_server.credentials, "clients")) as room:
        assert await room.send_request("room.list_toolkits", {}) == JsonContent(json={"tools": {}})
        with pytest.raises(RoomException) as info:
            await room.send_request("room.ping", {})
        assert info.value.code == 1002
    with pytest.raises(RoomException):
        room.local_participant.set_attribute("late", True)


def test_protocol_needs_a_token() -> None:
    from meshagent_core.client.room import WebSocketClientProtocol

    with pytest.raises(RoomException):
        WebSocketClientProtocol(url="ws://x/rooms/r", token=None)


def test_room_url_derivation() -> None:
    from meshagent_core.client.room import websocket_room_url

    assert websocket_room_url(room_name="r", environ={}) == "wss://api.meshagent.com/rooms/r"
    assert websocket_room_url(room_name="r", environ={"MESHAGENT_API_URL": "http://127.0.0.1:8078"}) == "ws://127.0.0.1:8078/rooms/r"
    assert websocket_room_url(room_name="r", environ={"MESHAGENT_ROOM_URL": "https://h", "MESHAGENT_API_URL": "http://x"}) == "wss://h/rooms/r"
    assert websocket_room_url(room_name="r", base_url="http://keep") == "http://keep/rooms/r"


async def test_runs_on_the_intended_event_loop(client_module, client_variant) -> None:
    import sniffio

    assert sniffio.current_async_library() == client_variant[1]
    assert client_module.__name__ == client_variant[0]


async def test_an_error_in_the_block_comes_out_unwrapped(client_module, local_server) -> None:
    url = local_server.room_url("clients")
    with pytest.raises(KeyError, match="mine"):
        async with client_module.connect(url, mint(local_server.credentials, "clients")):
            raise KeyError("mine")


def test_resolve_protocol_from_the_environment() -> None:
    from meshagent_core.client.room import resolve_protocol
    from meshagent_core.tokens import ParticipantToken, parse_api_key

    key = "ma-AAAAAAAAAAAAAAAAAAAAAA-_____________________w-resolve-secret"
    environ = {"MESHAGENT_API_URL": "http://127.0.0.1:9", "MESHAGENT_API_KEY": key, "MESHAGENT_PARTICIPANT_NAME": "bot"}
    protocol = resolve_protocol("my-room", environ=environ)
    assert protocol.url == "ws://127.0.0.1:9/rooms/my-room"
    token = ParticipantToken.from_jwt(protocol.token, token=parse_api_key(key).secret)
    assert token.name == "bot" and token.grant_scope("room") == "my-room"
    assert token.api_key_id == parse_api_key(key).id and token.get_api_grant() is not None
    explicit = resolve_protocol("ws://h/rooms/r", "given-token", environ={})
    assert (explicit.url, explicit.token) == ("ws://h/rooms/r", "given-token")
    with pytest.raises(RoomException, match="MESHAGENT_API_KEY"):
        resolve_protocol("r", environ={})


async def test_connect_with_a_minted_token(client_module, local_server, monkeypatch) -> None:
    monkeypatch.setenv("MESHAGENT_API_KEY", local_server.api_key)
    monkeypatch.setenv("MESHAGENT_API_URL", local_server.api_url)
    async with client_module.connect("minted-room", participant_name="minted") as room:
        assert room.room_name == "minted-room"
        assert room.local_participant.get_attribute("name") == "minted"
