"""The local server's REST front, over real sockets: routes from the table, JSON answers and
errors, the generated OpenAPI document, and bounds on what a request may send."""

from __future__ import annotations

import httpx
import msgspec
import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import ROUTES, RestError, ValidationErrorResponse, read_answer
from meshagent_trio.server import Server, ServerConfig


def base(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


async def test_get_config_through_our_client(server: Server) -> None:
    async with Meshagent(base_url=base(server), token="t") as api:
        config = await api.get_config()
        assert config.domains.api == base(server) and config.version


async def test_a_route_not_implemented_yet_says_so(server: Server) -> None:
    async with Meshagent(base_url=base(server), token="t") as api:
        with pytest.raises(RestError) as info:
            await api.list_projects()
    assert info.value.http_status == 501
    assert "list_projects (GET /accounts/projects) is not implemented by the local server yet" in info.value.body


async def test_errors_are_json_and_name_the_problem(server: Server) -> None:
    async with httpx.AsyncClient(base_url=base(server)) as http:
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


async def test_a_body_over_the_limit_is_refused(tmp_path, credentials, nursery) -> None:
    config = ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, max_request_body=1024)
    small = Server(config)
    await nursery.start(small.serve)
    async with httpx.AsyncClient(base_url=base(small)) as http:
        answer = await http.post("/accounts/projects", content=b'{"name": "' + b"x" * 4096 + b'"}')
        assert answer.status_code == 413 and "over 1024 bytes" in answer.json()["error"]["message"]
        # the server is fine afterwards
        assert (await http.get("/config")).status_code == 200


async def test_a_body_that_never_arrives_ends_only_its_connection(tmp_path, credentials, nursery) -> None:
    config = ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, request_head_timeout=0.5)
    slow = Server(config)
    await nursery.start(slow.serve)
    stream = await trio.open_tcp_stream("127.0.0.1", slow.port)
    await stream.send_all(b"POST /accounts/projects HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
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
    msgspec.json.encode(document)  # plain JSON


async def test_a_refused_request_reads_as_the_typed_error(server: Server) -> None:
    async with httpx.AsyncClient(base_url=base(server)) as http:
        response = await http.post("/accounts/projects/p/rooms", content=b'{"name": []}')
    with pytest.raises(ValidationErrorResponse) as info:
        read_answer(ROUTES["create_room"], response.status_code, response.content)
    assert info.value.http_status == 400 and "Expected `str`" in str(info.value)
