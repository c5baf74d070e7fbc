"""The official `Meshagent` client (0.56, out of process) against our server for project members,
profiles, settings documents, sysadmin users, `get_project_by_key` and managed agents: every
method of these groups, what it returns as the official client reads it, and its errors. And the
official `ManagedAgentSpec` against ours: the same configurations accepted, read the same way.
One official run serves the module (`official`)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from agent_specs import mutated_specs
from meshagent_core.rest.agents import read_agent_spec

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).parent / "official_scripts" / "rest_calls.py"
ADA = "ada@example.com"


class Calls:
    """The calls of one official run, by label; `ref(label, key)` is a value a call returned."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.labels: list[str] = []

    def add(self, label: str, method: str, models: dict[str, str] | None = None, **kwargs: Any) -> None:
        self.labels.append(label)
        self.calls.append({"method": method, "kwargs": kwargs, "models": models or {}})

    def ref(self, label: str, key: str) -> str:
        return f"${self.labels.index(label)}.{key}"


def add_user(data_dir: Path, email: str) -> str:
    """A user as the server makes one (from a grant by e-mail; people sign up in the cloud)."""
    user_id = str(uuid.uuid4())
    with sqlite3.connect(data_dir / "control.db", timeout=10) as db:
        db.execute("INSERT INTO users (id, email, invited, created_at) VALUES (?, ?, 1, '2026-01-01T00:00:00+00:00')", (user_id, email))
    return user_id


def spec(name: str, **fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "allowed_models": [{"provider": "openai", "model": "gpt-4.1"}], **fields}


def run(official_python: str, server_process, calls: Calls) -> dict[str, dict[str, Any]]:
    result = subprocess.run(
        [official_python, str(SCRIPT), server_process.api_url, server_process.api_key],
        input=json.dumps(calls.calls),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return dict(zip(calls.labels, json.loads(result.stdout), strict=True))


SPECS = mutated_specs(seed=12, count=300)


@pytest.fixture(scope="module")
def official(official_python: str, server_process) -> dict[str, Any]:
    """What each official call returned or raised (`results`, by label), and the ids the calls used."""
    project = server_process.credentials.project_id
    headers = {"Authorization": f"Bearer {server_process.api_key}"}
    first = httpx.get(f"{server_process.api_url}/accounts/projects/{project}/users", headers=headers)  # the schema exists
    assert first.status_code == 200, first.text
    owner_id = first.json()["users"][0]["user"]["id"]
    ada = add_user(server_process.data_dir, ADA)

    c = Calls()
    # members
    c.add("members", "get_users_in_project", project_id=project)
    c.add("add", "add_user_to_project", project_id=project, user_id=ada, roles=["member"])
    c.add("add ghost", "add_user_to_project", project_id=project, user_id="ghost", roles=["member"])
    c.add("add again", "add_user_to_project", project_id=project, user_id=ada, roles=["member"])
    c.add("add bad role", "add_user_to_project", project_id=project, user_id=ada, roles=["emperor"])
    c.add("update roles", "update_project_user", project_id=project, user_id=ada, roles=["developer", "room_creator"])
    c.add("page 1", "get_users_in_project_page", project_id=project, page_size=1)
    c.add("page 2", "get_users_in_project_page", project_id=project, page_size=1, continuation_token=c.ref("page 1", "continuation_token"))
    c.add("filtered", "get_users_in_project_page", project_id=project, filter="ADA", view="user")
    # profiles
    c.add("me", "get_user_profile", user_id="me")
    c.add("update me", "update_user_profile", user_id="me", first_name="Grace", metadata={"team": "core"})
    c.add("me again", "get_user_profile", user_id=owner_id)
    c.add("override", "update_user_profile", user_id=ada, last_name="Lovelace", annotations={"a": "b"}, project_id=project)
    c.add("project view", "get_user_profile", user_id=ada, project_id=project, view="project")
    c.add("merged view", "get_user_profile", user_id=ada, project_id=project)
    c.add("project list", "get_users_in_project", project_id=project, view="project")
    c.add("inherit", "update_user_profile", user_id=ada, project_id=project, inherit=["last_name"])
    c.add("after inherit", "get_user_profile", user_id=ada, project_id=project, view="project")
    c.add("ghost profile", "get_user_profile", user_id="ghost")
    # settings documents
    c.add("no document", "get_project_settings_document", project_id=project, name="room_roles")
    c.add("set document", "set_project_settings_document", project_id=project, name="room_roles", document={"roles": ["x"]})
    c.add("document", "get_project_settings_document", project_id=project, name="room_roles")
    c.add("delete document", "delete_project_settings_document", project_id=project, name="room_roles")
    c.add("deleted document", "get_project_settings_document", project_id=project, name="room_roles")
    c.add("delete again", "delete_project_settings_document", project_id=project, name="room_roles")
    # sysadmin users, projects by key
    c.add("search", "search_sysadmin_users", filter="ada")
    c.add("search page", "search_sysadmin_users", page_size=1)
    c.add("sysadmin update", "update_sysadmin_user_profile", {"update": "UpdateUserProfileRequest"}, user_id=ada, update={"first_name": "Ada"})
    c.add("sysadmin get", "get_sysadmin_user_profile", user_id=ada)
    c.add("sysadmin ghost", "get_sysadmin_user_profile", user_id="ghost")
    c.add("by key", "get_project_by_key", project_key=project)
    c.add("by unknown key", "get_project_by_key", project_key="no such key")
    c.add("remove", "remove_user_from_project", project_id=project, user_id=ada)
    c.add("remove again", "remove_user_from_project", project_id=project, user_id=ada)
    # managed agents
    agent_spec = {"configuration": "ManagedAgentSpec"}
    c.add("create agent", "create_agent", agent_spec, project_id=project, configuration=spec(" Planner ", instructions="plan"))
    c.add("create again", "create_agent", agent_spec, project_id=project, configuration=spec("planner"), if_not_exists=True)
    c.add("create taken", "create_agent", agent_spec, project_id=project, configuration=spec("planner"))
    c.add("get agent", "get_agent", project_id=project, name="planner")
    c.add("get ghost agent", "get_agent", project_id=project, name="ghost")
    c.add("update agent", "update_agent", agent_spec, project_id=project, agent_id=c.ref("create agent", "id"), configuration=spec("writer"))
    c.add("second agent", "create_agent", agent_spec, project_id=project, configuration=spec("alpha"))
    c.add("list agents", "list_agents", project_id=project)
    c.add("agents page", "list_agents_page", project_id=project, page_size=1)
    c.add("connect agent", "connect_agent", project_id=project, agent="writer")
    c.add("connect ghost", "connect_agent", project_id=project, agent="ghost")
    c.add("delete agent", "delete_agent", project_id=project, agent_id=c.ref("create agent", "id"))
    c.add("delete agent again", "delete_agent", project_id=project, agent_id=c.ref("create agent", "id"))

    for index, configuration in enumerate(SPECS):
        c.add(f"spec {index}", "validate:ManagedAgentSpec", value=configuration)
    return {"results": run(official_python, server_process, c), "project": project, "owner": owner_id, "ada": ada}


def test_the_official_client_against_our_accounts_and_agents(official: dict[str, Any], server_process) -> None:
    r = {label: result for label, result in official["results"].items() if not label.startswith("spec ")}
    project, owner_id, ada = official["project"], official["owner"], official["ada"]
    returned = {label: result.get("returned") for label, result in r.items()}
    raised = {label: (result["raised"], result["message"]) for label, result in r.items() if "raised" in result}

    assert returned["members"] == {"users": [{"user": {"id": owner_id, "first_name": "Local", "last_name": "Owner", "email": "owner@localhost", "metadata": {}, "annotations": {}}, "direct_roles": ["admin"]}], "continuation_token": None}  # fmt: skip
    assert returned["add"] == returned["update roles"] == returned["remove"] == {"ok": True}
    assert raised["add ghost"][0] == "NotFoundError" and "user 'ghost' does not exist" in raised["add ghost"][1]
    assert raised["add again"][0] == "ConflictError"
    assert raised["add bad role"][0] == "ValidationErrorResponse" and "roles[0]" in raised["add bad role"][1]
    assert [u["user"]["email"] for u in returned["page 1"]["users"]] == [ADA] and returned["page 1"]["continuation_token"] == ADA
    assert [(u["user"]["email"], u["direct_roles"]) for u in returned["page 2"]["users"]] == [("owner@localhost", ["admin"])]
    assert [(u["user"]["email"], u["direct_roles"]) for u in returned["filtered"]["users"]] == [(ADA, ["developer", "room_creator"])]

    assert returned["me"]["id"] == owner_id and returned["me"]["first_name"] == "Local"
    assert (returned["me again"]["first_name"], returned["me again"]["last_name"], returned["me again"]["metadata"]) == ("Grace", "Owner", {"team": "core"})
    assert returned["project view"] == {"id": ada, "email": ADA, "last_name": "Lovelace", "annotations": {"a": "b"}}
    assert (returned["merged view"]["last_name"], returned["merged view"]["first_name"]) == ("Lovelace", None)
    listed = {u["user"]["email"]: u["user"] for u in returned["project list"]["users"]}
    assert listed[ADA] == {"id": ada, "email": ADA, "last_name": "Lovelace", "annotations": {"a": "b"}}  # omitted keys stay omitted
    assert returned["after inherit"] == {"id": ada, "email": ADA, "annotations": {"a": "b"}}
    assert raised["ghost profile"][0] == "NotFoundError"

    assert returned["no document"] is None and returned["deleted document"] is None
    assert returned["document"] == {"roles": ["x"]} and returned["set document"] == returned["delete document"] == {"ok": True}
    assert raised["delete again"][0] == "NotFoundError"

    assert [u["email"] for u in returned["search"]["users"]] == [ADA]
    assert len(returned["search page"]["users"]) == 1 and returned["search page"]["continuation_token"] == ADA
    assert returned["sysadmin update"] == {"ok": True} and returned["sysadmin get"]["first_name"] == "Ada"
    assert raised["sysadmin ghost"][0] == "NotFoundError"
    assert returned["by key"]["id"] == project and returned["by key"]["project_key"] == project
    assert raised["by unknown key"][0] == "NotFoundError"
    assert raised["remove again"][0] == "NotFoundError"

    created = returned["create agent"]
    assert created["name"] == "planner" and created["configuration"]["metadata"]["name"] == "planner"
    assert created["configuration"]["instructions"] == "plan"
    assert returned["create again"] == created == returned["get agent"]
    assert raised["create taken"][0] == "ConflictError"
    assert r["get ghost agent"] == {"raised": "RoomException", "message": "agent not found", "status_code": 400, "code": 1002}
    assert "update agent" in returned and returned["update agent"] is None and "update agent" not in raised
    assert [a["name"] for a in returned["list agents"]] == ["alpha", "writer"]
    assert [a["name"] for a in returned["agents page"]["agents"]] == ["alpha"] and returned["agents page"]["total"] == 2
    connected = returned["connect agent"]
    assert (connected["agent_name"], connected["project_id"]) == ("writer", project) and connected["jwt"]
    assert connected["agent_url"] == server_process.api_url.replace("http", "ws", 1) + f"/agents/{project}/writer/messages"
    assert raised["connect ghost"][0] == "NotFoundError"
    assert returned["delete agent"] is None and raised["delete agent again"][0] == "NotFoundError"
    assert not set(raised) - {label for label in raised if "ghost" in label or "again" in label or label in ("add bad role", "create taken", "by unknown key")}


def test_our_spec_accepts_and_reads_what_the_official_model_does(official: dict[str, Any]) -> None:
    """Over a rich configuration and its mutations (~2600), the official model and ours accept the
    same ones and read them to the same JSON. The one known difference: pydantic reads a
    boolean where a number is expected (as 0 or 1); we refuse it."""
    accepted = 0
    for index, configuration in enumerate(SPECS):
        theirs = official["results"][f"spec {index}"]
        try:
            ours: dict[str, Any] = {"returned": msgspec.to_builtins(read_agent_spec(configuration))}
        except msgspec.ValidationError as error:
            ours = {"raised": str(error)}
        if "raised" in ours and "returned" in theirs and "got `bool`" in ours["raised"]:
            continue
        assert ("returned" in ours) == ("returned" in theirs), (index, configuration, ours, theirs)
        if "returned" in ours:
            accepted += 1
            assert ours["returned"] == theirs["returned"], (index, configuration)
    assert 50 < accepted < len(SPECS) - 50  # both kinds are well represented
