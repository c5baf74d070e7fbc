"""Joining rooms over real sockets: handshake, HTTP routes, refusals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import h11
import pytest
import trio

from meshagent_core import RoomException
from meshagent_trio.connection import RoomConnection
from meshagent_trio.websocket import HandshakeRejected, connect_websocket

from roomtest import mint, room_url


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    connection = h11.Connection(h11.CLIENT)
    await stream.send_all(connection.send(h11.Request(method="GET", target=path, headers=[("host", "x")])) + connection.send(h11.EndOfMessage()))
    status, body = 0, b""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            await stream.aclose()
            return status, body


async def test_readiness_probe(server) -> None:
    assert await http_get(server.port, "/") == (200, b"ok\n")
    status, _ = await http_get(server.port, "/nope")
    assert status == 404


async def test_join_reaches_ready_and_names_the_room(server, credentials) -> None:
    async with RoomConnection.open(room_url(server), mint(credentials)) as room:
        ready = room.ready_event
        assert ready.room_name == "test-room"
        assert ready.room_url.endswith("/rooms/test-room")
        assert ready.attributes == {"name": "alice"}
        assert "test-room" in server.rooms and ready.participant_id in server.rooms["test-room"].participants
    await trio.sleep(0.05)
    assert server.rooms["test-room"].participants == {}


async def test_unknown_request_type_gets_an_error(server, credentials) -> None:
    async with RoomConnection.open(room_url(server), mint(credentials)) as room:
        with pytest.raises(RoomException, match="unknown request type 'room.ping'") as info:
            await room.request("room.ping", {})
        assert info.value.code == 1002


async def test_unavailable_builtin_toolkit_says_so(server, credentials) -> None:
    async with RoomConnection.open(room_url(server), mint(credentials)) as room:
        with pytest.raises(RoomException, match="the containers toolkit is not available on this server") as info:
            await room.invoke("containers", "list_images", {})
        assert info.value.code == 1007


async def test_unknown_toolkit_is_not_found(server, credentials) -> None:
    async with RoomConnection.open(room_url(server), mint(credentials)) as room:
        with pytest.raises(RoomException, match="toolkit 'nobody' is not available in this room") as info:
            await room.invoke("nobody", "x")
        assert info.value.code == 1003


# --- refusals ----------------------------------------------------------------------------------


async def refused(server, token: str | None, room: str = "test-room", *, query: str = "") -> HandshakeRejected:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with pytest.raises(HandshakeRejected) as info:
        await connect_websocket(room_url(server, room) + query, headers=headers)
    assert info.value.status == 403
    return info.value


async def test_missing_token(server) -> None:
    assert "missing participant token" in (await refused(server, None)).body


async def test_bad_signature(server, credentials) -> None:
    token = mint(credentials)
    header, payload, signature = token.split(".")
    forged = ".".join([header, payload, ("A" if signature[0] != "A" else "B") + signature[1:]])
    assert "Signature verification failed" in (await refused(server, forged)).body


async def test_wrong_secret(server, credentials) -> None:
    from dataclasses import replace

    other = replace(credentials, secret="not-the-secret")
    assert "Signature verification failed" in (await refused(server, mint(other))).body


async def test_unknown_key_id(server, credentials) -> None:
    from dataclasses import replace

    other = replace(credentials, key_id="00000000-0000-0000-0000-000000000000")
    assert "invalid participant token" in (await refused(server, mint(other))).body


async def test_expired_token(server, credentials) -> None:
    token = mint(credentials, expires=datetime.now(timezone.utc) - timedelta(seconds=5))
    assert "expired" in (await refused(server, token)).body


async def test_token_for_another_room(server, credentials) -> None:
    assert "does not grant access to room 'test-room'" in (await refused(server, mint(credentials, "other-room"))).body


async def test_token_of_another_project(server, credentials) -> None:
    from dataclasses import replace

    other = replace(credentials, project_id="11111111-1111-1111-1111-111111111111")
    assert "another project" in (await refused(server, mint(other))).body


async def test_alg_none(server, credentials) -> None:
    import base64
    import json

    def b64(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"name": "mallory", "grants": [{"name": "room", "scope": "test-room"}], "kid": credentials.key_id}
    unsigned = b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims) + "."
    assert "invalid participant token" in (await refused(server, unsigned)).body


async def test_legacy_query_token_is_accepted(server, credentials) -> None:
    websocket = await connect_websocket(room_url(server) + "?token=" + mint(credentials))
    packets = await websocket.receive_packets()
    assert packets
    await websocket.close()


async def test_invalid_room_name(server, credentials) -> None:
    with pytest.raises(HandshakeRejected) as info:
        await connect_websocket(room_url(server, "..%2F..") , headers={"Authorization": "Bearer " + mint(credentials, "..%2F..")})
    assert info.value.status == 404


async def test_the_server_answers_a_clients_close_frame(server, credentials) -> None:
    """A client that leaves sends a close frame and waits for the reply; the server must send
    it (a missing reply costs every client its close timeout)."""
    async with RoomConnection.open(room_url(server), mint(credentials)) as room:
        assert (await room.invoke("storage", "exists", {"path": "x"})).json == {"exists": False}
    received = room.websocket._protocol.close_rcvd
    assert received is not None and received.code == 1000
