"""Services, room services, service templates and MCP discovery (protocol/rest.md §8) with the
official `Meshagent` 0.56 client against our server (a subprocess): every method of the group,
the official models reading every answer, the errors as the official client raises them, and
templates rendered by our server compared with what the official client's own rendering
(`ServiceTemplateSpec.from_yaml`, `to_service_spec`) makes of the same input. One run of
`official_scripts/rest_calls.py` for the module; each test reads its part."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshagent_trio.server.process import LocalServerProcess

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).parent / "official_scripts" / "rest_calls.py"

SERVICE = {
    "version": "v1",
    "kind": "Service",
    "metadata": {"name": "worker", "description": "works", "annotations": {"meshagent.agent.type": "Worker"}},
    "agents": [{"name": "worker", "channels": {"queue": [{"queue": "jobs"}]}, "heartbeat": {"queue": "jobs", "prompt": [{"type": "text", "text": "tick"}], "minutes": 5}}],
    "ports": [{"num": 8080, "endpoints": [{"path": "/agent", "meshagent": {"identity": "worker", "api": {"messaging": {}, "queues": {}}}}]}],
    "files": [{"path": "README.md", "text": "hello"}],
    "container": {
        "image": "registry.example/worker:1",
        "run_as": {"email": "Bot@Example.com"},
        "environment": [{"name": "KEY", "secret": {"id": "s1"}}, {"name": "MODE", "value": "fast"}],
        "storage": {"room": [{"path": "/data"}], "empty_dirs": [{"path": "/tmp/x"}]},
    },
}

TEMPLATE = """version: v1
kind: ServiceTemplate
metadata:
  name: {{ name }}
  description: !template "{% raw %}{{ name | upper }}{% endraw %} serves {{ model | default('gpt') }} in {{ room }}"
  annotations:
    meshagent.agent.type: ChatBot
variables:
  - name: name
    title: Name
  - name: room
  - name: model
    optional: true
    enum: [gpt, claude]
agents:
  - name: {{ name }}
    channels:
      messaging:
        - prompts: [{name: hi, prompt: "say hi to {{ room }}"}]
ports:
  - num: 8080
    endpoints:
      - path: /agent
        meshagent:
          identity: {{ name }}
      - path: /mcp
        mcp:
          label: {{ name }}-tools
          require_approval: never
files:
  - path: notes/{{ name }}.md
    text: "# {{ name | upper }}"
container:
  image: registry.example/agent:{{ tag | default('1.0') }}
  command: run --model {{ model }}
  environment:
    - name: ROOM
      value: "{{ room }}"
    - name: TOKEN
      token: {identity: {{ name }}, role: agent}
  storage:
    room: [{path: /data, read_only: true}]
    images: [{image: registry.example/models:1, path: /models}]
"""
VALUES = {"name": "helper", "room": "lab", "model": "claude"}
CHANGED = {"name": "helper2", "room": "hall"}


@pytest.fixture(scope="module")
def observed(official_python: str, server_process: LocalServerProcess) -> dict[str, Any]:
    own = server_process.credentials.project_id
    project = {"project_id": own}
    room = {"project_id": own, "room_name": "lab"}
    updated = {**SERVICE, "id": "$0.id", "enabled": False, "metadata": {**SERVICE["metadata"], "name": "builder"}}
    calls: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
        ("created", "create_service", {**project, "service": SERVICE}, {"service": "ServiceSpec"}),
        ("got", "get_service", {**project, "service_id": "$0.id"}, {}),
        ("got_by_name", "get_service_by_name", {**project, "service_name": "worker"}, {}),
        ("listed", "list_services", project, {}),
        ("updated", "update_service", {**project, "service_id": "$0.id", "service": updated}, {"service": "ServiceSpec"}),
        ("duplicate", "create_service", {**project, "service": {**SERVICE, "metadata": {"name": "builder"}}}, {"service": "ServiceSpec"}),
        ("unknown", "get_service", {**project, "service_id": "nope"}, {}),
        ("from_template", "create_service_from_template", {**project, "template": TEMPLATE, "values": VALUES}, {}),
        ("official_service", "render_locally", {"template": TEMPLATE, "values": VALUES, "to_service_spec": True}, {}),
        ("rendered", "render_template", {"template": TEMPLATE, "values": VALUES}, {}),
        ("official_rendered", "render_locally", {"template": TEMPLATE, "values": VALUES}, {}),
        ("updated_from_template", "update_service_from_template", {**project, "service_id": "$7.id", "template": TEMPLATE, "values": CHANGED}, {}),
        ("official_changed", "render_locally", {"template": TEMPLATE, "values": CHANGED, "to_service_spec": True}, {}),
        ("room_created", "create_room_service", {**room, "service": SERVICE}, {"service": "ServiceSpec"}),
        ("room_by_name", "get_room_service_by_name", {**room, "service_name": "worker"}, {}),
        ("room_got", "get_room_service", {**room, "service_id": "$14.id"}, {}),
        ("room_listed", "list_room_services", room, {}),
        ("room_updated", "update_room_service", {**room, "service_id": "$14.id", "service": {**SERVICE, "id": "$14.id", "enabled": False}}, {"service": "ServiceSpec"}),
        ("room_got_after_update", "get_room_service", {**room, "service_id": "$14.id"}, {}),
        ("room_from_template", "create_room_service_from_template", {**room, "template": TEMPLATE, "values": VALUES}, {}),
        ("room_updated_from_template", "update_room_service_from_template", {**room, "service_id": "$19.id", "template": TEMPLATE, "values": CHANGED}, {}),
        ("room_duplicate", "create_room_service", {**room, "service": SERVICE}, {"service": "ServiceSpec"}),
        ("room_unknown", "get_room_service_by_name", {**room, "service_name": "nope"}, {}),
        ("room_deleted", "delete_room_service", {**room, "service_id": "$14.id"}, {}),
        ("room_deleted_again", "delete_room_service", {**room, "service_id": "$14.id"}, {}),
        ("deleted", "delete_service", {**project, "service_id": "$0.id"}, {}),
        ("got_deleted", "get_service", {**project, "service_id": "$0.id"}, {}),
        ("missing_values", "render_template", {"template": TEMPLATE, "values": {"name": "x"}}, {}),
        ("bad_template", "create_service_from_template", {**project, "template": "version: v1\nkind: ServiceTemplate\nmetadata: {name: x, colour: red}", "values": {}}, {}),
        ("broken_template", "render_template", {"template": "a: 1\nb: {% if %}", "values": {}}, {}),
        ("discover_service", "discover_mcp_service", {"url": "http://127.0.0.1:9/mcp"}, {}),
        ("discover_template", "discover_mcp_service_template", {"url": "http://127.0.0.1:9/mcp"}, {}),
        ("discover_spec", "discover_mcp_spec", {"url": "http://127.0.0.1:9/mcp", "format": "template"}, {}),
        ("services_at_end", "list_services", project, {}),
        ("official_model", "validate:ServiceSpec", {"value": SERVICE}, {}),
    ]
    requests = [{"method": method, "kwargs": kwargs, "models": models} for _, method, kwargs, models in calls]
    done = subprocess.run(
        [official_python, str(SCRIPT), server_process.api_url, server_process.api_key],
        input=json.dumps(requests), capture_output=True, text=True, timeout=180,
    )
    if done.returncode != 0:
        pytest.fail(f"{SCRIPT.name} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}\n{server_process.log()}", pytrace=False)
    return {name: result for (name, *_), result in zip(calls, json.loads(done.stdout))}


def returned(observed: dict[str, Any], name: str) -> Any:
    assert "returned" in observed[name], observed[name]
    return observed[name]["returned"]


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def raised(observed: dict[str, Any], name: str, kind: str, *words: str) -> bool:
    error = observed[name]
    return error.get("raised") == kind and all(word in error["message"] for word in words)


def test_project_services(observed: dict[str, Any]) -> None:
    created = returned(observed, "created")
    assert created["id"] and created["enabled"] is True and created["container"]["run_as"] == {"email": "bot@example.com", "scopes": ["secrets:proxy"]}
    assert {**created, "id": None} == {**without_nulls(returned(observed, "official_model")), "id": None}  # the spec as the official model reads it
    assert returned(observed, "got") == returned(observed, "got_by_name") == created
    assert returned(observed, "listed") == [created]
    updated = returned(observed, "updated")
    assert (updated["id"], updated["metadata"]["name"], updated["enabled"]) == (created["id"], "builder", False)
    assert raised(observed, "duplicate", "ConflictError", "Status=409", "service 'builder' already exists")
    assert raised(observed, "unknown", "NotFoundError", "Status=404", "service id 'nope' does not exist")
    assert returned(observed, "deleted") is None
    assert raised(observed, "got_deleted", "NotFoundError", created["id"])


def test_room_services(observed: dict[str, Any]) -> None:
    service_id = returned(observed, "room_created")
    assert isinstance(service_id, str)
    by_name = returned(observed, "room_by_name")
    assert by_name["id"] == service_id and returned(observed, "room_got") == by_name
    assert returned(observed, "room_listed") == [by_name]
    assert returned(observed, "room_updated") is None and returned(observed, "room_got_after_update")["enabled"] is False
    assert returned(observed, "room_from_template")["metadata"]["name"] == "helper"
    assert returned(observed, "room_updated_from_template")["metadata"]["name"] == "helper2"
    assert raised(observed, "room_duplicate", "ConflictError", "Status=409", "service 'worker' of room 'lab' already exists")
    assert raised(observed, "room_unknown", "NotFoundError", "Status=404", "service 'nope' of room 'lab' does not exist")
    assert returned(observed, "room_deleted") is None
    assert raised(observed, "room_deleted_again", "NotFoundError", service_id)


def test_templates_render_as_the_official_client_renders_them(observed: dict[str, Any]) -> None:
    assert returned(observed, "rendered") == returned(observed, "official_rendered")
    assert returned(observed, "rendered")["metadata"]["description"] == "HELPER serves claude in lab"  # `!template`: rendered twice
    made = returned(observed, "from_template")
    assert made["id"] and {**made, "id": None} == {**returned(observed, "official_service"), "id": None}
    changed = returned(observed, "updated_from_template")
    assert changed["id"] == made["id"] and {**changed, "id": None} == {**returned(observed, "official_changed"), "id": None}
    assert returned(observed, "services_at_end") == [changed]


def test_bad_templates_and_mcp_discovery_are_refused(observed: dict[str, Any]) -> None:
    assert raised(observed, "missing_values", "ValidationErrorResponse", "Status=400", "missing for the required template variables room")
    assert raised(observed, "bad_template", "ValidationErrorResponse", "Status=400", "unknown field `colour` - at `$.metadata`")
    assert raised(observed, "broken_template", "ValidationErrorResponse", "Status=400", "template, line 2")
    for name in ("discover_service", "discover_template", "discover_spec"):
        assert raised(observed, name, "ServerError", "Status=501", "does not discover MCP servers")
