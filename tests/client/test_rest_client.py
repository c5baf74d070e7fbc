"""`Meshagent`, the REST client: over a real socket it sends, for every official method of the
route table, the request the official 0.56 client sends (the captured `rest_requests`
vectors: verb, path, query, body and headers), on Trio and on asyncio."""

from __future__ import annotations

import json
from typing import Any, Iterator
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import pytest

from meshagent_core.client.rest import Meshagent
from meshagent_core.errors import ConnectionLost
from meshagent_core.rest import ROUTES, NotFoundError, RestError
from meshagent_core.testing import vectors
from httptest import QuietHandler, serve_http

pytestmark = pytest.mark.anyio

OFFICIAL = {request["method"]: request for request in vectors.load("rest_requests")["requests"]}
#: how the official methods that are conveniences were called in the capture
CONVENIENCE_ARGUMENTS = {
    "get_project_settings_document": {"project_id": "{project_id}", "name": "room_roles"},
    "set_project_settings_document": {"project_id": "{project_id}", "name": "room_roles", "document": {"doc": 1}},
    "delete_project_settings_document": {"project_id": "{project_id}", "name": "room_roles"},
    "get_users_in_project": {"project_id": "{project_id}"},
    "list_rooms": {"project_id": "{project_id}"},
    "get_user_profile": {"user_id": "{user_id}"},
    "update_user_profile": {"user_id": "{user_id}"},
    "connect_llm": {"project_id": "{project_id}", **OFFICIAL["connect_llm"]["body"]},
    "delete_group_member": {"project_id": "{project_id}", "group_id": "{group_id}", "subject_type": "user", "subject_id": "{subject_id}"},
    **{
        name: {"project_id": "{project_id}", "resource_type": "room", "resource_id": "{resource_id}", **(OFFICIAL[name]["body"] or {})}
        for name in ("get_resource_policy", "get_resource_policy_page", "grant_resource_policy", "revoke_resource_policy")
    },
    # services (§8): aliases of a route whose body they fix ({template, values}; a format)
    **{
        name: {**{p: "{" + p + "}" for p in ROUTES[name].path_parameters}, **OFFICIAL[name]["body"]}
        for name in ("create_service_from_template", "update_service_from_template", "create_room_service_from_template", "update_room_service_from_template")
    },
    "discover_mcp_service": {"url": "{url}"},
    "discover_mcp_service_template": {"url": "{url}"},
}


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


class Recorder(QuietHandler):
    seen: list[dict[str, Any]] = []

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        Recorder.seen.append(
            {
                "verb": self.command,
                "path": unquote(parts.path),
                "query": dict(parse_qsl(parts.query)),
                # a raw bytes body as the capture writes it
                "body": (json.loads(body) if self.headers.get("Content-Type") == "application/json" else "<bytes>") if body else None,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
        )
        self.send_json(404, b'{"error": "recorded"}')

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record


@pytest.fixture(scope="module")
def recorder() -> Iterator[str]:
    with serve_http(Recorder) as url:
        yield url


def official_arguments(name: str) -> dict[str, Any]:
    if name in CONVENIENCE_ARGUMENTS:
        return CONVENIENCE_ARGUMENTS[name]
    route, captured = ROUTES[name], OFFICIAL[name]
    arguments: dict[str, Any] = {parameter: "{" + parameter + "}" for parameter in route.path_parameters}
    if route.raw_body == "bytes":
        arguments[route.raw_body_argument] = b"\x00raw"  # the capture writes it "<bytes>"
    elif route.raw_body_argument is not None:  # any JSON value as the body (a feed message)
        arguments[route.raw_body_argument] = captured["body"]
    else:
        arguments.update(captured["body"] or {})
    if route.query is not None:  # the capture gave required query arguments as placeholders
        arguments.update({name: value for name, value in (captured["params"] or {}).items() if value == "{" + name + "}"})
    return arguments


METHODS = sorted(name for name in OFFICIAL if name in ROUTES.routes or name in CONVENIENCE_ARGUMENTS)


async def test_every_method_sends_what_the_official_client_sends(recorder: str) -> None:
    Recorder.seen.clear()
    async with Meshagent(base_url=recorder, token="ma-token", retries=0) as api:
        for name in METHODS:
            try:
                await getattr(api, name)(**official_arguments(name))
            except RestError:
                pass
    assert len(Recorder.seen) == len(METHODS) >= 45
    for name, seen in zip(METHODS, Recorder.seen):
        official = OFFICIAL[name]
        assert (seen["verb"], seen["path"]) == (official["verb"], official["url"]), name
        assert seen["query"] == {k: str(v) for k, v in (official["params"] or {}).items()}, name
        assert seen["body"] == official["body"], name
        headers = seen["headers"]
        content_type = "application/octet-stream" if official["body"] == "<bytes>" else "application/json"
        assert headers["content-type"] == content_type and headers["consistency"] == "fast", name
        assert ("authorization" in headers) == official["auth"], name
        if official["auth"]:
            assert headers["authorization"] == "Bearer ma-token"
        for header, value in (official["headers_extra"] or {}).items():
            assert headers.get(header.lower()) == value, (name, header)


async def test_errors_are_typed_and_keep_the_status(recorder: str) -> None:
    async with Meshagent(base_url=recorder, token="t") as api:
        with pytest.raises(NotFoundError) as info:
            await api.get_project(project_id="p")
        assert info.value.http_status == 404 and info.value.status_code == 400
        assert await api.get_project_settings_document("p", "openai") is None
        with pytest.raises(ValueError, match="unknown settings document"):
            await api.get_project_settings_document("p", "colours")


async def test_the_environment_is_read_when_the_client_is_made(monkeypatch: pytest.MonkeyPatch, recorder: str) -> None:
    monkeypatch.setenv("MESHAGENT_API_URL", recorder)
    monkeypatch.setenv("MESHAGENT_API_KEY", "ma-from-env")
    async with Meshagent() as api:
        assert (api.base_url, api.token) == (recorder, "ma-from-env")
    with pytest.raises(ValueError, match="consistency"):
        Meshagent(consistency="eventual")


async def test_a_server_that_is_not_there_fails_after_the_retries() -> None:
    attempts = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request.method)
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    async with Meshagent(base_url="http://127.0.0.1:9", token="t", retries=2, http=http) as api:
        with pytest.raises(ConnectionLost, match="GET http://127.0.0.1:9/accounts/projects"):
            await api.list_projects()
        assert attempts == ["GET"] * 3  # a GET is retried
        attempts.clear()
        with pytest.raises(ConnectionLost):
            await api.create_project(name="x")
        assert attempts == ["POST"]  # a POST is not: it may have been done
    await http.aclose()
