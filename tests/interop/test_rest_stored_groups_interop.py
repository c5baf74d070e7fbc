"""The official `Meshagent` client (0.56, out of process) against our server's stored groups:
routes and custom domains, LLM loggers and delegation, registries (protocol/rest.md §10, §12,
§13). It calls every method with a service account's API key, reads every answer into its own
models, and gets the typed errors (400 naming the field, 404, 409, 403 for another project).
Its `RouteSpec` model and ours judge a set of specs alike."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest.domains import read_route_spec

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).parent / "official_scripts" / "rest_calls.py"


def route_spec(domain: str, room: str, port: int) -> dict:
    return {"metadata": {"name": domain}, "domain": domain, "backend": {"room": {"name": room}}, "paths": [{"path": "/", "targetPort": port}]}


CONTENT = {"subpath": "site/", "notFound": "404.html", "cors": [{"allowedOrigins": [" https://a.test "], "allowedMethods": ["get"]}], "index": True}
#: changes to a valid spec that the official `RouteSpec` and our `read_route_spec` must judge alike
SPEC_CHANGES = [
    {},
    {"paths": [{"path": "/a", "pathType": "exact", "stripPrefix": True, "targetPort": "http", "unavailable": "down.html"}]},
    {"paths": [{"path": "/", "targetContent": CONTENT}]},
    {"backend": {"agent": {"name": "helper"}}, "paths": [{"targetContent": CONTENT}]},
    {"backend": {"agent": {"name": "helper"}}, "paths": []},
    {"backend": {"room": {"name": "r"}, "agent": {"name": "a"}}},
    {"backend": {}},
    {"paths": []},
    {"paths": [{"path": "x", "targetPort": 1}]},
    {"paths": [{"path": "/"}]},
    {"paths": [{"targetPort": 1, "targetContent": {}}]},
    {"paths": [{"targetPort": " "}]},
    {"paths": [{"targetContent": {"subpath": "a/../b"}}]},
    {"paths": [{"targetContent": {"notFound": " / "}}]},
    {"paths": [{"targetContent": {}, "stripPrefix": True}]},
    {"paths": [{"targetContent": {}, "unavailable": "x"}]},
    {"paths": [{"targetContent": {"cors": [{"allowedOrigins": ["*"], "allowCredentials": True}]}}]},
    {"paths": [{"targetContent": {"cors": [{"allowedOrigins": []}]}}]},
    {"paths": [{"targetContent": {"cors": [{"allowedOrigins": ["o"], "maxAgeSeconds": -1}]}}]},
    {"backend": {"agent": {"name": "a"}}, "paths": [{"targetPort": 1}]},
    {"backend": {"agent": {"name": "a"}}, "paths": [{"targetContent": {"iap": True}}]},
    {"paths": [{"targetPort": 1, "pathType": "glob"}]},
    {"paths": [{"targetPort": 1, "colour": "red"}]},
    {"kind": "Service"},
]


def judged_by_us(spec: dict) -> dict | None:
    """Our reading of a spec, as the official client writes it; None when we refuse it."""
    try:
        return msgspec.to_builtins(read_route_spec(spec))
    except (ValueError, msgspec.ValidationError):
        return None


async def test_the_official_client_on_routes_llm_and_registries(official_python: str, server_process) -> None:
    own = server_process.credentials.project_id
    async with Meshagent(base_url=server_process.api_url, token=server_process.api_key) as client:
        account = await client.create_service_account(project_id=own, name="interop-stored")
        key = (await client.create_api_key(project_id=own, service_account_id=account.id, name="k", description="")).value
        feed = await client.create_feed(project_id=own, name="interop-llm-log")
        other = await client.create_project(name="interop-other")
    p = {"project_id": own}
    calls = [
        ("create_route", {**p, "domain": "app.interop.test", "room_name": "lobby", "port": "3000"}, {}),  # 0
        ("create_route", {**p, "spec": route_spec("api.interop.test", "lobby", 8080)}, {"spec": "RouteSpec"}),
        ("get_route", {**p, "domain": "app.interop.test"}, {}),
        ("update_route", {**p, "domain": "api.interop.test", "room_name": "kitchen", "port": "9000"}, {}),
        ("list_routes_page", {**p, "page_size": 1}, {}),
        ("list_routes", {**p}, {}),  # 5
        ("list_room_routes_page", {**p, "room_name": "lobby"}, {}),
        ("list_room_routes", {**p, "room_name": "kitchen"}, {}),
        ("delete_route", {**p, "domain": "api.interop.test"}, {}),
        ("create_custom_domain", {**p, "domain": "*.shop.interop.test"}, {}),
        ("get_custom_domain", {**p, "domain": "*.shop.interop.test"}, {}),  # 10
        ("list_custom_domains", {**p, "count": 10, "view": "all"}, {}),
        ("delete_custom_domain", {**p, "domain": "*.shop.interop.test"}, {}),
        ("create_llm_logger", {**p, "destination_feed_id": feed.id, "filter_expression": "true"}, {}),
        ("update_llm_logger", {**p, "logger_id": "$13.id", "destination_feed_id": feed.id, "filter_expression": "false", "paused": True}, {}),
        ("get_llm_logger", {**p, "logger_id": "$13.id"}, {}),  # 15
        ("list_llm_loggers", {**p}, {}),
        ("delete_llm_logger", {**p, "logger_id": "$13.id"}, {}),
        ("connect_llm", {**p, "subject": {"type": "service_account", "id": account.id}, "max_budget": "2.5", "models": ["gpt-x"]}, {"subject": "AccessSubject"}),
        ("create_repository", {**p, "repository": {"name": "Team/Web"}}, {"repository": "CreateProjectRepositoryRequest"}),
        ("update_repository", {**p, "repository_id": "$19.id", "repository": {"name": "team/web", "description": "d"}}, {"repository": "UpdateProjectRepositoryRequest"}),  # 20
        ("get_repository", {**p, "repository_id": "$19.id"}, {}),
        ("get_repository_by_name", {**p, "name": "team/web"}, {}),
        ("list_repositories_page", {**p, "page_size": 5}, {}),
        ("list_repositories", {**p}, {}),
        ("create_repository_token", {**p, "repository_id": "$19.id", "request": {"actions": ["pull", "push"], "expires_in_seconds": 60}}, {"request": "CreateRepositoryTokenRequest"}),  # 25
        ("delete_repository", {**p, "repository_id": "$19.id"}, {}),
        # the errors
        ("create_route", {**p, "domain": "app.interop.test", "room_name": "x", "port": "1"}, {}),
        ("create_route", {**p, "domain": "localhost", "room_name": "x", "port": "1"}, {}),
        ("get_route", {**p, "domain": "gone.interop.test"}, {}),
        ("create_custom_domain", {**p, "domain": "not a domain"}, {}),  # 30
        ("get_llm_logger", {**p, "logger_id": "$13.id"}, {}),
        ("create_llm_logger", {**p, "destination_feed_id": "no-feed", "filter_expression": ""}, {}),
        ("connect_llm", {**p, "subject": {"type": "service_account", "id": account.id}, "max_budget": "lots"}, {"subject": "AccessSubject"}),
        ("get_repository", {**p, "repository_id": "$19.id"}, {}),
        ("create_repository", {**p, "repository": {"name": "dup"}}, {"repository": "CreateProjectRepositoryRequest"}),  # 35
        ("create_repository", {**p, "repository": {"name": "dup"}}, {"repository": "CreateProjectRepositoryRequest"}),
        ("list_routes", {"project_id": other.id}, {}),
        ("list_repositories", {"project_id": other.id}, {}),
    ]
    specs = [{**route_spec("spec.interop.test", "lobby", 80), **change} for change in SPEC_CHANGES]
    validations = len(calls)
    calls += [("validate:RouteSpec", {"value": spec}, {}) for spec in specs]
    with trio.fail_after(120):
        result = await trio.run_process(
            [official_python, str(SCRIPT), server_process.api_url, key],
            stdin=json.dumps([{"method": m, "kwargs": k, "models": models} for m, k, models in calls]).encode(),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    answers = json.loads(result.stdout)
    returned = [answer.get("returned") for answer in answers]
    for index in range(27):
        assert "raised" not in answers[index], (index, calls[index][0], answers[index])
    assert returned[2]["domain"] == "app.interop.test" and returned[2]["spec"]["paths"][0]["targetPort"] == "3000"
    assert [r["domain"] for r in returned[4]["routes"]] == ["api.interop.test"] and returned[4]["continuation_token"] == "api.interop.test"
    assert returned[4]["total"] == 2 and [r["domain"] for r in returned[5]] == ["api.interop.test", "app.interop.test"]
    assert [r["domain"] for r in returned[6]["routes"]] == ["app.interop.test"] and [r["domain"] for r in returned[7]] == ["api.interop.test"]
    assert returned[9]["phase"] == "pending_dns" and returned[10]["domain"] == "*.shop.interop.test"
    assert [d["domain"] for d in returned[11]["custom_domains"]] == ["*.shop.interop.test"]
    assert returned[15]["paused"] is True and returned[15]["filter_expression"] == "false" and len(returned[16]) == 1
    assert returned[18]["subject"]["id"] == account.id and returned[18]["delegator"]["type"] == "service_account"
    assert returned[18]["max_budget"] == "2.5" and returned[18]["models"] == ["gpt-x"]
    assert returned[19]["name"] == "team/web" and returned[20]["description"] == "d" and returned[22]["id"] == returned[19]["id"]
    assert returned[23]["total"] == 1 and [r["name"] for r in returned[24]] == ["team/web"]
    assert returned[25]["token"].count(".") == 2 and returned[25]["expires_at"]
    errors = {index: (answers[index]["raised"], answers[index]["message"]) for index in range(27, validations) if "raised" in answers[index]}
    assert errors[27][0] == "ConflictError" and "already exists" in errors[27][1]
    assert errors[28][0] == "ValidationErrorResponse" and "reserved" in errors[28][1]
    assert errors[29][0] == "NotFoundError" and "gone.interop.test" in errors[29][1]
    assert errors[30][0] == "ValidationErrorResponse" and "domain" in errors[30][1]
    assert errors[31][0] == "NotFoundError" and "LLM logger" in errors[31][1]
    assert errors[32][0] == "NotFoundError" and "destination_feed_id" in errors[32][1]
    assert errors[33][0] == "ValidationErrorResponse" and "max_budget" in errors[33][1]
    assert errors[34][0] == "NotFoundError"
    assert 35 not in errors and errors[36][0] == "ConflictError"
    assert errors[37][0] == errors[38][0] == "PermissionDeniedError"
    # the official RouteSpec and ours accept and refuse the same specs, and write them alike
    official = [answer.get("returned") for answer in answers[validations:]]
    assert [judged_by_us(spec) for spec in specs] == official
    assert sum(judgement is not None for judgement in official) == 5
