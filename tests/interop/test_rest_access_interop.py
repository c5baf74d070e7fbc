"""The official `Meshagent` client (0.56, out of process) against our server for every access-control
method of protocol/rest.md §6: groups and members, IAM resource policies, `test_access`,
`get_effective_access`, access bindings, and the grants it makes carried by the token
`connect_room(email=…)` mints; the refusals raise the official exceptions. (The seed's room,
agent and agent-room grants exist only on our client: tests/server/test_rest_access.py.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshagent_core.client.rest import Meshagent
from meshagent_core.tokens import ApiScope, ParticipantToken

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).parent / "official_scripts" / "rest_calls.py"
#: the official models these arguments are made of
MODELS = {"subject": "AccessSubject", "resource": "AccessResource", "permissions": "dict:ApiScope"}
ANN = {"type": "user", "email": "ann@example.com"}


def run_official(official_python: str, server_process: Any, calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    payload = json.dumps([{"method": method, "kwargs": kwargs, "models": MODELS} for method, kwargs in calls])
    result = subprocess.run(
        [official_python, str(SCRIPT), server_process.api_url, server_process.api_key], input=payload, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_the_official_client_manages_access(official_python: str, server_process: Any) -> None:
    project = server_process.credentials.project_id
    async with Meshagent(base_url=server_process.api_url, token=server_process.api_key) as ours:
        lab = await ours.create_room(project_id=project, name="lab")
    in_project = {"project_id": project}
    on_lab = {**in_project, "resource_type": "room", "resource_id": lab.id}
    lab_resource = {"type": "room", "id": lab.id}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("create_group", {**in_project, "name": "crew", "metadata": {"k": 1}}),  # 0
        ("get_group", {**in_project, "group_id": "$0.id"}),
        ("get_group_by_name", {**in_project, "name": "crew"}),
        ("update_group", {**in_project, "group_id": "$0.id", "name": "crew", "annotations": {"a": "b"}}),
        ("list_groups_page", {**in_project, "page_size": 1}),
        ("list_groups", in_project),  # 5
        ("set_group_member", {**in_project, "group_id": "$0.id", "subject": ANN, "role": "manager"}),
        ("list_group_members_page", {**in_project, "group_id": "$0.id"}),
        ("list_group_members", {**in_project, "group_id": "$0.id"}),
        ("grant_resource_policy", {**on_lab, "subject": {"type": "group", "id": "$0.id"}, "roles": ["developer"]}),
        ("get_resource_policy_page", on_lab),  # 10
        ("get_resource_policy", on_lab),
        ("test_access", {**in_project, "subject": ANN, "resource": lab_resource, "relation": "can_use"}),
        ("test_access", {**in_project, "subject": ANN, "resource": lab_resource, "relation": "can_manage"}),
        ("get_effective_access", {**in_project, "subject": ANN, "resource": lab_resource, "relations": ["can_use", "can_manage"]}),
        ("list_access_bindings_page", {**in_project, "subject": {"type": "group", "id": "$0.id"}}),  # 15
        ("list_access_bindings", {**in_project, "subject": {"type": "group", "id": "$0.id"}}),
        ("connect_room", {**in_project, "room": "lab", "email": "ann@example.com"}),
        ("revoke_resource_policy", {**on_lab, "subject": {"type": "group", "id": "$0.id"}}),
        ("test_access", {**in_project, "subject": ANN, "resource": lab_resource, "relation": "can_use"}),
        ("connect_room", {**in_project, "room": "lab", "email": "ann@example.com"}),  # 20: no grant left
        ("delete_group_member", {**in_project, "group_id": "$0.id", "subject_type": "user", "subject_id": "$7.members.0.subject.id"}),
        ("list_group_members", {**in_project, "group_id": "$0.id"}),
        ("delete_group", {**in_project, "group_id": "$0.id"}),
        ("get_group", {**in_project, "group_id": "$0.id"}),
        ("create_group", {**in_project, "name": "twice"}),  # 25
        ("create_group", {**in_project, "name": "twice"}),
        ("revoke_resource_policy", {**on_lab, "subject": {"type": "group", "id": "$25.id"}}),
        ("grant_resource_policy", {**on_lab, "subject": ANN, "roles": ["feed_manager"]}),
        ("get_resource_policy_page", {**in_project, "resource_type": "feed", "resource_id": "news"}),
        ("create_room", {**in_project, "name": "annex", "permissions": {"$7.members.0.subject.id": ApiScope.user_default().model_dump()}}),  # 30
        ("connect_room", {**in_project, "room": "annex", "email": "ann@example.com"}),
    ]
    results = run_official(official_python, server_process, calls)
    returned = [result.get("returned") for result in results]

    crew = returned[0]
    assert crew["name"] == "crew" and crew["metadata"] == {"k": 1}
    assert returned[1] == returned[2] == crew
    assert returned[4]["groups"][0]["name"] == "crew" and "continuation_token" not in returned[4]  # the last page
    assert [g["annotations"] for g in returned[5]] == [{"a": "b"}]
    members = returned[7]["members"]
    assert [(m["subject"]["email"], m["direct_roles"]) for m in members] == [("ann@example.com", ["manager"])]
    assert returned[8] == members
    policy = returned[10]
    assert policy["resource"]["name"] == "lab" and [(g["subject"]["id"], g["direct_roles"]) for g in policy["access_grants"]] == [(crew["id"], ["developer"])]
    assert returned[11] == policy["access_grants"]
    assert (returned[12], returned[13]) == ({"allowed": True}, {"allowed": False})
    summary = returned[14]
    assert (summary["effective_roles"], summary["capabilities"]) == (["developer"], {"can_use": True, "can_manage": False})
    assert [b["resource"]["id"] for b in returned[15]["access_grants"]] == [lab.id] and returned[16] == returned[15]["access_grants"]
    token = ParticipantToken.from_jwt(returned[17]["jwt"], validate=False)
    assert token.name == "ann@example.com" and token.get_api_grant() == ApiScope.agent_default(tunnels=True)
    assert returned[19] == {"allowed": False}
    assert results[20]["raised"] == "PermissionDeniedError" and "ann@example.com is not a member" in results[20]["message"]
    assert returned[22] == []
    assert results[24] == {"raised": "RoomException", "message": "group not found", "status_code": 400, "code": 1002}
    assert results[26]["raised"] == "ConflictError" and "group 'twice' already exists" in results[26]["message"]
    assert results[27]["raised"] == "NotFoundError" and "has no grant on room" in results[27]["message"]
    assert results[28]["raised"] == "ValidationErrorResponse" and "'feed_manager' is not a role of a room" in results[28]["message"]
    assert results[29]["raised"] == "ServerError" and "Status=501" in results[29]["message"] and "no feed resources" in results[29]["message"]
    assert returned[30]["name"] == "annex"
    assert ParticipantToken.from_jwt(returned[31]["jwt"], validate=False).get_api_grant() == ApiScope.user_default()
