"""Routes and custom domains over REST (protocol/rest.md §10), against a real server on a real
socket with our `Meshagent` client: specs stored as validated, one route per domain on the whole
server, the server's own host names refused, both pagination styles, and the errors."""

from __future__ import annotations

import re

import httpx
import pytest

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import ConflictError, RouteError, NotFoundError, PermissionDeniedError, ValidationErrorResponse
from meshagent_core.rest.domains import RouteContentSpec, RouteCorsRule, RoutePathSpec, read_route_spec, simple_route_spec
from meshagent_trio.server import Credentials, Server, ServerConfig
from meshagent_trio.server.control.domains import reserved_route_domains


async def post_json(server: Server, credentials: Credentials, path: str, body: object) -> tuple[int, dict]:
    """A request our client would not send."""
    async with httpx.AsyncClient() as http:
        response = await http.post(f"http://127.0.0.1:{server.port}{path}", json=body, headers={"Authorization": f"Bearer {credentials.api_key}"})
    return response.status_code, response.json()


def api(server: Server, token: str) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=token)


async def other_project_key(client: Meshagent) -> tuple[str, str]:
    """A new project and an API key of it."""
    project = await client.create_project(name="elsewhere")
    account = await client.create_service_account(project_id=project.id, name="robot")
    key = await client.create_api_key(project_id=project.id, service_account_id=account.id, name="k", description="")
    return project.id, key.value


def content_spec(domain: str, agent: str) -> dict:
    return {
        "metadata": {"name": "site", "annotations": {"a": "b"}},
        "domain": domain,
        "backend": {"agent": {"name": agent}},
        "paths": [{"path": "/docs", "pathType": "exact", "targetContent": {"subpath": "public/", "cors": [{"allowedOrigins": ["https://x.test"]}]}}],
    }


async def test_routes(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        await client.create_route(project_id=own, domain="App.Example.test", room_name="lobby", port=3000, annotations={"team": "a"})
        route = await client.get_route(project_id=own, domain="app.example.test")
        assert route.route.domain == "app.example.test"
        spec = route.route.spec
        assert (spec.backend.room.name, spec.backend.agent, spec.paths[0].targetPort, spec.metadata.annotations) == ("lobby", None, 3000, {"team": "a"})
        with pytest.raises(NotFoundError, match="spec.backend.agent.name: agent 'helper' does not exist"):
            await client.create_route(project_id=own, spec=content_spec("docs.example.test", "helper"))
        await client.create_agent(project_id=own, configuration={"metadata": {"name": "helper"}, "allowed_models": [{"provider": "openai", "model": "gpt-x"}]})
        await client.create_route(project_id=own, spec=content_spec("docs.example.test", "helper"))
        stored = (await client.get_route(project_id=own, domain="docs.example.test")).route.spec
        assert stored.paths[0].targetContent.subpath == "public" and stored.paths[0].targetContent.cors[0].allowedMethods == ["GET", "HEAD"]
        for index in range(3):
            await client.create_route(project_id=own, domain=f"r{index}.example.test", room_name="lobby", port="http")
        await client.create_route(project_id=own, domain="other.example.test", room_name="kitchen", port=80)

        first = await client.list_routes_page(project_id=own, page_size=2)
        assert [r.domain for r in first.routes] == ["app.example.test", "docs.example.test"] and first.total == 6
        second = await client.list_routes_page(project_id=own, page_size=4, continuation_token=first.continuation_token)
        assert [r.domain for r in second.routes] == ["other.example.test", "r0.example.test", "r1.example.test", "r2.example.test"]
        assert second.continuation_token is None
        assert [r.domain for r in await client.list_routes(project_id=own, filter="R1")] == ["r1.example.test"]
        room = await client.list_room_routes_page(project_id=own, room_name="lobby", count=2, offset=1)
        assert [r.domain for r in room.routes] == ["r0.example.test", "r1.example.test"] and room.total == 4
        assert [r.domain for r in await client.list_room_routes(project_id=own, room_name="kitchen")] == ["other.example.test"]

        await client.update_route(project_id=own, domain="other.example.test", room_name="pantry", port=81)
        assert (await client.list_room_routes(project_id=own, room_name="kitchen")) == []
        assert (await client.get_route(project_id=own, domain="other.example.test")).route.spec.backend.room.name == "pantry"
        await client.delete_route(project_id=own, domain="other.example.test")
        with pytest.raises(NotFoundError, match="route 'other.example.test' does not exist"):
            await client.get_route(project_id=own, domain="other.example.test")
        with pytest.raises(NotFoundError, match="does not exist"):
            await client.delete_route(project_id=own, domain="other.example.test")
        with pytest.raises(NotFoundError):
            await client.update_route(project_id=own, domain="nowhere.example.test", room_name="r", port=1)
        with pytest.raises(ConflictError, match="a route for 'app.example.test' already exists"):
            await client.create_route(project_id=own, domain="app.example.test", room_name="x", port=1)

        other, other_key = await other_project_key(client)
        with pytest.raises(ConflictError):  # a domain is routed once on the whole server
            await client.create_route(project_id=other, domain="app.example.test", room_name="x", port=1)
        with pytest.raises(NotFoundError):  # and is not another project's to read
            await client.get_route(project_id=other, domain="app.example.test")
    async with api(server, other_key) as stranger:
        with pytest.raises(PermissionDeniedError, match="another project"):
            await stranger.list_routes(project_id=own)
        with pytest.raises(PermissionDeniedError):
            await stranger.delete_route(project_id=own, domain="app.example.test")


BAD_SPECS = [
    ({"backend": {"room": {"name": "r"}, "agent": {"name": "a"}}}, "exactly one of room or agent"),
    ({"backend": {}}, "exactly one of room or agent"),
    ({"paths": []}, "at least one path"),
    ({"paths": [{"path": "x", "targetPort": 1}]}, r"spec.paths\[0\].path must start with /"),
    ({"paths": [{"path": "/"}]}, "exactly one of targetPort or targetContent"),
    ({"paths": [{"targetPort": 1, "targetContent": {}}]}, "exactly one of targetPort or targetContent"),
    ({"paths": [{"targetPort": 70000}]}, "port number"),
    ({"paths": [{"targetPort": " "}]}, "targetPort must not be empty"),
    ({"paths": [{"targetContent": {"subpath": "a/../b"}}]}, "dot segments"),
    ({"paths": [{"targetContent": {}, "stripPrefix": True}]}, "stripPrefix"),
    ({"paths": [{"targetContent": {"cors": [{"allowedOrigins": ["*"], "allowCredentials": True}]}}]}, "wildcard origin"),
    ({"paths": [{"targetPort": 1, "pathType": "glob"}]}, r"pathType"),
    ({"paths": [{"targetPort": 1, "colour": "red"}]}, r"unknown field `colour`"),
    ({"domain": "not a domain"}, "spec.domain"),
    ({"domain": "localhost"}, "reserved"),
    ({"domain": "api.localhost"}, "reserved"),
    ({"backend": {"room": {"name": "../up"}}}, "spec.backend.room.name"),
    ({"metadata": {"name": " "}}, "metadata.name"),
]


@pytest.mark.parametrize("change, message", BAD_SPECS)
async def test_bad_route_specs_are_refused_naming_the_field(server: Server, credentials: Credentials, change: dict, message: str) -> None:
    spec = {"metadata": {"name": "n"}, "domain": "ok.example.test", "backend": {"room": {"name": "lobby"}}, "paths": [{"path": "/", "targetPort": 8080}]}
    spec.update(change)
    async with api(server, credentials.api_key) as client:
        try:
            await client.create_route(project_id=credentials.project_id, spec=spec)
        except ValidationErrorResponse as error:
            assert re.search(message, str(error))
        except RouteError as error:  # a type error our client finds before sending: the server too
            assert re.search(message, str(error))
            status, body = await post_json(server, credentials, f"/accounts/projects/{credentials.project_id}/routes", {"spec": spec})
            assert status == 400 and re.search(message, body["error"]["message"]), body
        else:
            pytest.fail("not refused")
        assert await client.list_routes(project_id=credentials.project_id) == []


async def test_an_update_keeps_the_domain_of_the_path(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        await client.create_route(project_id=own, domain="a.example.test", room_name="lobby", port=1)
        with pytest.raises(ValidationErrorResponse, match="differs from the route's domain"):
            await client.update_route(project_id=own, domain="a.example.test", spec=simple_route_spec(domain="b.example.test", room_name="r", port=1))


def test_the_spec_rules_hold_without_a_server() -> None:
    spec = read_route_spec(content_spec("x.example.test", "helper"))
    assert spec.paths[0].targetContent == RouteContentSpec(subpath="public", cors=[RouteCorsRule(allowedOrigins=["https://x.test"])])
    with pytest.raises(ValueError, match="agent route's paths need targetContent"):
        read_route_spec({**content_spec("x.example.test", "a"), "paths": [{"targetPort": 1}]})
    assert RoutePathSpec(targetPort=1).stripPrefix is not True


async def test_custom_domains(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        made = (await client.create_custom_domain(project_id=own, domain="Shop.Example.test")).custom_domain
        assert (made.domain, made.project_id, made.phase, made.available) == ("shop.example.test", own, "pending_dns", False)
        assert made.conditions[0].status == "false" and "provisions no DNS" in made.conditions[0].message
        await client.create_custom_domain(project_id=own, domain="*.apps.example.test")
        await client.create_custom_domain(project_id=own, domain="blog.example.test")
        assert (await client.get_custom_domain(project_id=own, domain="*.apps.example.test")).custom_domain.domain == "*.apps.example.test"
        first = await client.list_custom_domains(project_id=own, count=2)
        assert [d.domain for d in first.custom_domains] == ["*.apps.example.test", "blog.example.test"] and first.continuation_token
        rest = await client.list_custom_domains(project_id=own, count=2, continuation_token=first.continuation_token, view="all")
        assert [d.domain for d in rest.custom_domains] == ["shop.example.test"] and rest.continuation_token is None
        assert [d.domain for d in (await client.list_custom_domains(project_id=own, filter="BLOG")).custom_domains] == ["blog.example.test"]
        with pytest.raises(ValidationErrorResponse, match="view must be one of my, all"):
            await client.list_custom_domains(project_id=own, view="theirs")
        with pytest.raises(ConflictError, match="custom domain 'shop.example.test' already exists"):
            await client.create_custom_domain(project_id=own, domain="shop.example.test")
        for bad, message in (("localhost", "reserved"), ("*.localhost", "reserved"), ("no_underscores.test", "domain"), ("single", "domain"), ("a.*.test", "domain")):
            with pytest.raises(ValidationErrorResponse, match=message):
                await client.create_custom_domain(project_id=own, domain=bad)
        await client.delete_custom_domain(project_id=own, domain="*.apps.example.test")
        with pytest.raises(NotFoundError, match=r"custom domain '\*.apps.example.test' does not exist"):
            await client.get_custom_domain(project_id=own, domain="*.apps.example.test")
        with pytest.raises(NotFoundError):
            await client.delete_custom_domain(project_id=own, domain="*.apps.example.test")
        with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
            await client.list_custom_domains(project_id="nope")
        other, other_key = await other_project_key(client)
        with pytest.raises(ConflictError):
            await client.create_custom_domain(project_id=other, domain="blog.example.test")
    async with api(server, other_key) as stranger:
        with pytest.raises(PermissionDeniedError):
            await stranger.create_custom_domain(project_id=own, domain="mine.example.test")


def test_the_reserved_domains_are_the_servers_host_names(credentials: Credentials, tmp_path) -> None:
    config = ServerConfig(data_dir=tmp_path, credentials=credentials, host="0.0.0.0", public_url="wss://rooms.example.test/base")
    assert reserved_route_domains(config) == ["localhost", "rooms.example.test"]
    assert reserved_route_domains(ServerConfig(data_dir=tmp_path, credentials=credentials, host="devbox")) == ["localhost", "devbox"]


async def test_get_config_names_the_reserved_domains(server: Server, credentials: Credentials) -> None:
    async with api(server, credentials.api_key) as client:
        config = await client.get_config()
        assert config.reserved_route_domains == reserved_route_domains(server.config) == ["localhost"]
        for domain in config.reserved_route_domains:
            with pytest.raises(ValidationErrorResponse, match="reserved"):
                await client.create_route(project_id=credentials.project_id, domain=f"x.{domain}", room_name="r", port=1)
