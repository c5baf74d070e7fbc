"""The local server's REST front, over real sockets: routes from the table, the control plane
(projects and rooms in SQLite), authentication, JSON answers and errors, the generated OpenAPI
document, and bounds on what a request may send."""

from __future__ import annotations

import httpx
import msgspec
import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import (
    ROUTES,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RestError,
    RoomDisabledError,
    ValidationErrorResponse,
    read_answer,
)
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server, ServerConfig
from meshagent_trio.websocket import HandshakeRejected


def base(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


def api(server: Server, credentials: Credentials) -> Meshagent:
    return Meshagent(base_url=base(server), token=credentials.api_key)


async def test_get_config_needs_no_key(server: Server) -> None:
    async with Meshagent(base_url=base(server), token=None) as anonymous:
        config = await anonymous.get_config()
    assert config.domains.api == base(server) and config.version


async def test_projects_and_rooms(server: Server, credentials: Credentials) -> None:
    async with api(server, credentials) as client:
        own = credentials.project_id
        assert [p.id for p in (await client.list_projects()).projects] == [own]
        other = await client.create_project(name="second")
        assert (await client.get_project(project_id=other.id)).name == "second"

        lobby = await client.create_room(project_id=own, name="lobby", metadata={"topic": "x"}, annotations={"a": "b"})
        assert (lobby.name, lobby.metadata, lobby.annotations, lobby.enabled) == ("lobby", {"topic": "x"}, {"a": "b"}, True)
        assert await client.create_room(project_id=own, name="lobby", if_not_exists=True) == lobby
        with pytest.raises(ConflictError):
            await client.create_room(project_id=own, name="lobby")
        assert await client.get_room(project_id=own, name="lobby") == lobby

        for name in ("a", "b", "c", "d"):
            await client.create_room(project_id=own, name=name)
        first = await client.list_rooms_page(project_id=own, page_size=2)
        assert [r.name for r in first.rooms] == ["a", "b"] and first.total == 5 and first.continuation_token
        second = await client.list_rooms_page(project_id=own, page_size=2, continuation_token=first.continuation_token)
        third = await client.list_rooms_page(project_id=own, page_size=2, continuation_token=second.continuation_token)
        assert [r.name for r in second.rooms + third.rooms] == ["c", "d", "lobby"] and third.continuation_token is None
        assert [r.name for r in await client.list_rooms(project_id=own)] == ["a", "b", "c", "d", "lobby"]
        assert (await client.list_rooms_page(project_id=other.id)).rooms == []

        await client.update_room(project_id=own, room_id=lobby.id, name="hall", metadata={"topic": "y"})
        hall = await client.get_room(project_id=own, name="hall")
        assert (hall.id, hall.metadata, hall.annotations) == (lobby.id, {"topic": "y"}, {"a": "b"})
        with pytest.raises(ConflictError):
            await client.update_room(project_id=own, room_id=hall.id, name="a")
        await client.delete_room(project_id=own, room_id=hall.id)
        with pytest.raises(RestError, match="room not found"):
            await client.get_room(project_id=own, name="hall")
        with pytest.raises(NotFoundError, match="does not exist"):
            await client.delete_room(project_id=own, room_id=hall.id)
        with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
            await client.create_room(project_id="nope", name="x")


async def test_the_control_plane_survives_a_restart(tmp_path, credentials: Credentials) -> None:
    for round in range(2):
        server = Server(ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0))
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            async with api(server, credentials) as client:
                if round == 0:
                    await client.create_room(project_id=credentials.project_id, name="kept")
                else:
                    assert (await client.get_room(project_id=credentials.project_id, name="kept")).name == "kept"
            nursery.cancel_scope.cancel()


async def test_connect_room_gives_a_token_the_room_accepts_and_a_disabled_room_refuses(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials) as client:
        room = await client.create_room(project_id=own, name="studio")
        info = await client.connect_room(project_id=own, room="studio")
        assert (info.room_name, info.project_id, info.room_url) == ("studio", own, f"ws://127.0.0.1:{server.port}/rooms/studio")
        with trio.fail_after(10):
            async with RoomConnection.open(info.room_url, info.jwt) as joined:
                assert joined.participant_id
        await client.update_room(project_id=own, room_id=room.id, name="studio", enabled=False)
        with pytest.raises(RoomDisabledError, match="This room is currently disabled."):
            await client.connect_room(project_id=own, room="studio")
        with pytest.raises(HandshakeRejected) as refused:
            async with RoomConnection.open(info.room_url, info.jwt):
                pass
        assert refused.value.status == 423


async def test_keys_are_checked(server: Server, credentials: Credentials) -> None:
    async with Meshagent(base_url=base(server), token=None) as anonymous:
        with pytest.raises(RestError) as info:
            await anonymous.list_projects()
        assert info.value.http_status == 401
    wrong = Credentials(credentials.project_id, credentials.key_id, "not-the-secret")
    async with Meshagent(base_url=base(server), token=wrong.api_key) as impostor:
        with pytest.raises(PermissionDeniedError, match="not known"):
            await impostor.list_projects()
    async with Meshagent(base_url=base(server), token="eyJhbGciOiJIUzI1NiJ9.e30.x") as jwt_holder:
        with pytest.raises(PermissionDeniedError):
            await jwt_holder.list_projects()


async def test_a_route_not_implemented_yet_says_so(server: Server, credentials: Credentials, monkeypatch) -> None:
    from meshagent_trio.server.rest import handlers

    monkeypatch.delitem(handlers.HANDLERS, "list_service_accounts")  # as if it had no handler yet
    async with api(server, credentials) as client:
        with pytest.raises(RestError) as info:
            await client.list_service_accounts(project_id=credentials.project_id)
    assert info.value.http_status == 501
    assert "list_service_accounts (GET /accounts/projects/{project_id}/service-accounts) is not implemented" in info.value.body


async def test_errors_are_json_and_name_the_problem(server: Server, credentials: Credentials) -> None:
    headers = {"authorization": f"Bearer {credentials.api_key}"}
    async with httpx.AsyncClient(base_url=base(server), headers=headers) as http:
        bad = await http.post("/accounts/projects/p/rooms", content=b'{"name": 5}')
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/json"
        assert "create_room" in bad.json()["error"]["message"] and "name" in bad.json()["error"]["message"]
        wrong_verb = await http.patch("/accounts/projects/p/rooms")
        assert wrong_verb.status_code == 405 and wrong_verb.headers["allow"] == "GET, POST"
        unknown = await http.get("/accounts/nothing")
        assert unknown.status_code == 404
        not_json = await http.post("/accounts/projects/p/rooms", content=b"{")
        assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]["message"]
        # the connection served all of these, one after the other
        assert (await http.get("/config")).status_code == 200
        response = await http.post("/accounts/projects/p/rooms", content=b'{"name": []}')
    with pytest.raises(ValidationErrorResponse) as info:
        read_answer(ROUTES["create_room"], response.status_code, response.content)
    assert info.value.http_status == 400 and "Expected `str`" in str(info.value)


async def test_a_body_over_the_limit_is_refused(tmp_path, credentials, nursery) -> None:
    config = ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, max_request_body=1024)
    small = Server(config)
    await nursery.start(small.serve)
    headers = {"authorization": f"Bearer {credentials.api_key}"}
    async with httpx.AsyncClient(base_url=base(small), headers=headers) as http:
        answer = await http.post("/accounts/projects", content=b'{"name": "' + b"x" * 4096 + b'"}')
        assert answer.status_code == 413 and "over 1024 bytes" in answer.json()["error"]["message"]
        # the server is fine afterwards
        assert (await http.get("/config")).status_code == 200


async def test_a_body_that_never_arrives_ends_only_its_connection(tmp_path, credentials, nursery) -> None:
    config = ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, request_head_timeout=0.5)
    slow = Server(config)
    await nursery.start(slow.serve)
    stream = await trio.open_tcp_stream("127.0.0.1", slow.port)
    head = f"POST /accounts/projects HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {credentials.api_key}\r\ncontent-length: 100\r\n\r\n"
    await stream.send_all(head.encode() + b"{")
    with trio.fail_after(10):
        assert await stream.receive_some(1024) == b""  # closed once the body did not come in time
    async with httpx.AsyncClient(base_url=base(slow)) as http:
        assert (await http.get("/config")).status_code == 200


async def test_the_openapi_document_covers_the_route_table(server: Server) -> None:
    async with httpx.AsyncClient(base_url=base(server)) as http:
        document = (await http.get("/openapi.json")).json()
    operations = {operation["operationId"]: (verb.upper(), path) for path, item in document["paths"].items() for verb, operation in item.items()}
    assert operations == {route.name: (route.verb, route.path) for route in ROUTES.unique()}
    create_room = document["paths"]["/accounts/projects/{project_id}/rooms"]["post"]
    schema = create_room["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/CreateRoomBody")
    assert set(document["components"]["schemas"]["CreateRoomBody"]["properties"]) == {"name", "if_not_exists", "metadata", "annotations", "permissions"}
    upload = document["paths"]["/projects/{project_id}/storage/upload"]["post"]
    assert list(upload["requestBody"]["content"]) == ["application/octet-stream"]
    download = document["paths"]["/projects/{project_id}/storage/download"]["get"]
    assert list(download["responses"]["200"]["content"]) == ["application/octet-stream"]
    msgspec.json.encode(document)  # plain JSON


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "-lead", "x" * 129, "sp ace", ""])
async def test_room_names_that_could_escape_or_not_be_joined_are_refused(server: Server, credentials: Credentials, name: str) -> None:
    async with api(server, credentials) as client:
        with pytest.raises(ValidationErrorResponse, match="invalid room name|name must be a non-empty string|Expected"):
            await client.create_room(project_id=credentials.project_id, name=name)
        room = await client.create_room(project_id=credentials.project_id, name="fine", if_not_exists=True)
        with pytest.raises(ValidationErrorResponse, match="invalid room name"):
            await client.update_room(project_id=credentials.project_id, room_id=room.id, name=name or "..")
        assert [r.name for r in await client.list_rooms(project_id=credentials.project_id)] == ["fine"]
    assert not (server.config.data_dir / "escape").exists()


async def test_a_stranger_is_refused_before_its_body_is_read(tmp_path, credentials, nursery) -> None:
    config = ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, max_request_body=1024)
    small = Server(config)
    await nursery.start(small.serve)
    async with httpx.AsyncClient(base_url=base(small)) as http:
        answer = await http.post("/accounts/projects", content=b"x" * 4096)
    assert answer.status_code == 401  # not 413: nothing of the body was looked at


async def test_a_failing_handler_answers_500_without_internals(server: Server, credentials: Credentials, monkeypatch) -> None:
    from meshagent_trio.server.rest import handlers

    async def broken(context, arguments, caller):
        open(server.config.data_dir / "no" / "such" / "file")

    monkeypatch.setitem(handlers.HANDLERS, "list_projects", broken)
    async with api(server, credentials) as client:
        with pytest.raises(RestError) as info:
            await client.list_projects()
        assert info.value.http_status == 500
        assert "list_projects failed: No such file or directory" in info.value.body
        assert str(server.config.data_dir) not in info.value.body
        assert (await client.get_project(project_id=credentials.project_id)).id == credentials.project_id
