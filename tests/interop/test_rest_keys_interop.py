"""Service accounts, API keys, participant tokens and `whoami` (protocol/rest.md §14, §3) with the
official `Meshagent` 0.56 client and `RoomClient` against our server (a subprocess): every method
of the group, its errors as the official client raises them, and keys deleted while a room is
live. One run of `official_scripts/rest_keys_scenario.py` per module; each test reads its part."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshagent_trio.server.process import LocalServerProcess

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).parent / "official_scripts" / "rest_keys_scenario.py"


@pytest.fixture(scope="module")
def observed(official_python: str, server_process: LocalServerProcess) -> dict[str, Any]:
    """What the official script saw (the test fails with its output and the server's log if the
    script failed)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MESHAGENT_") and key != "PYTHONPATH"}
    env.update({"MESHAGENT_API_URL": server_process.api_url, "MESHAGENT_API_KEY": server_process.api_key, "SCENARIO_ROOM": "keys-room"})
    done = subprocess.run([official_python, str(SCRIPT)], env=env, cwd=str(SCRIPT.parent), capture_output=True, text=True, timeout=180)
    lines = done.stdout.strip().splitlines()
    data = json.loads(lines[-1]) if lines else None
    if done.returncode != 0 or not isinstance(data, dict):
        pytest.fail(f"{SCRIPT.name} failed ({done.returncode}):\n{done.stdout[-6000:]}\n{done.stderr[-4000:]}\n{server_process.log()}", pytrace=False)
    return data


def refused(error: dict[str, Any], kind: str, *words: str) -> bool:
    return error.get("type") == kind and all(word in error["message"] for word in words)


def test_service_accounts(observed: dict[str, Any], server_process: LocalServerProcess) -> None:
    own = server_process.credentials.project_id
    created = observed["created_account"]
    assert {k: created[k] for k in ("project_id", "key", "name", "display_name", "description", "metadata", "annotations", "email")} == {
        "project_id": own,
        "key": "wk",
        "name": "worker",
        "display_name": "Worker",
        "description": "d",
        "metadata": {"a": 1},
        "annotations": {"b": "c"},
        "email": f"worker@service.{own}.local",
    }
    assert observed["got_account"] == observed["got_by_name"] == created
    assert observed["update_answer"] is None
    updated = observed["updated_account"]
    assert (updated["name"], updated["display_name"], updated["description"], updated["id"]) == ("builder", "Builder", "new", created["id"])
    first, second = observed["account_pages"]
    assert [a["name"] for a in first["service_accounts"]] == ["builder"] and first["continuation_token"]
    assert [a["name"] for a in second["service_accounts"]] == ["second"] and "continuation_token" not in second
    assert refused(observed["duplicate_account"], "ConflictError", "Status=409", "'worker' already exists")
    assert refused(observed["unknown_account"], "NotFoundError", "Status=404", "service account 'nope' does not exist")
    assert refused(observed["deleted_account"], "NotFoundError", created["id"])


def test_api_keys(observed: dict[str, Any], server_process: LocalServerProcess) -> None:
    key = observed["created_key"]
    assert key["value"].startswith("ma-") and (key["name"], key["description"]) == ("ci", "for CI")
    assert observed["parsed_key"] == {"id": key["id"], "project_id": server_process.credentials.project_id}
    assert [k["id"] for k in observed["listed_keys"]["keys"]] == [key["id"]] and "value" not in observed["listed_keys"]["keys"][0]
    assert observed["listed_after_delete"] == {"keys": []}
    assert refused(observed["delete_key_again"], "NotFoundError", "Status=404", key["id"])
    assert refused(observed["revoke_by_msid"], "ServerError", "Status=501", "msid")


def test_whoami(observed: dict[str, Any]) -> None:
    owner = observed["whoami_owner"]
    assert owner["type"] == "user" and owner["user"]["email"] == owner["email"] == "owner@localhost"
    by_key = observed["whoami_key"]
    assert by_key["type"] == "service_account" and by_key["id"] == observed["created_account"]["id"]
    assert by_key["service_account"]["name"] == "builder"
    participant = observed["whoami_participant"]
    assert (participant["type"], participant["email"]) == ("user", "bob@example.com")


def test_participant_tokens(observed: dict[str, Any], server_process: LocalServerProcess) -> None:
    credentials = server_process.credentials
    owner_token = observed["validated_owner_token"]
    assert (owner_token["name"], owner_token["sub"], owner_token["kid"]) == ("ann", credentials.project_id, credentials.key_id)
    assert {"name": "room", "scope": "keys-room"} in owner_token["grants"] and {"name": "role", "scope": "agent"} in owner_token["grants"]
    key_token = observed["validated_key_token"]
    assert (key_token["name"], key_token["kid"], key_token["email"]) == ("bob@example.com", observed["created_key"]["id"], "bob@example.com")
    assert {"name": "api", "scope": {"messaging": {}}} in key_token["grants"]
    assert refused(observed["validate_garbage"], "PermissionDeniedError", "Status=403", "invalid participant token")
    assert refused(observed["participant_list_projects"], "PermissionDeniedError", "Status=403", "a participant token may only call")


def test_keys_deleted_while_a_room_is_live(observed: dict[str, Any]) -> None:
    assert observed["join_with_key"] == observed["join_with_minted"] == {"joined": True}
    after = observed["join_after_delete"]
    assert after.get("joined") is None and "403" in after["message"], after
    assert refused(observed["rest_after_delete"], "PermissionDeniedError", "Status=403", "not known to this server")
    assert refused(observed["validate_after_delete"], "PermissionDeniedError", "Status=403", "Unknown API key id")
    assert refused(observed["key_in_other_project"], "PermissionDeniedError", "Status=403", "another project")


def test_rooms_of_another_project(observed: dict[str, Any]) -> None:
    assert observed["other_connection"]["same_project"] and observed["other_connection"]["room_name"] == "keys-room"
    assert observed["join_other_project"] == {"joined": True}
