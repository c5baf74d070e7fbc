"""The official `Meshagent` client (0.56, out of process) against our server for every secrets method
of protocol/rest.md §9: user and service-account secrets, their versions (values as bytes both
ways), search, proxy access and pull secrets; the official models read our answers, and the
refusals raise the official exceptions (409, 404, 400, and 500 for a value tampered with in
`control.db`). (The seed's project, room and agent secrets exist only on our client:
tests/server/test_rest_secrets.py.)"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshagent_core.client.rest import Meshagent

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).parent / "official_scripts" / "rest_calls.py"
MODELS = {"value": "bytes"}


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def run_official(official_python: str, server_process: Any, calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    payload = json.dumps([{"method": method, "kwargs": kwargs, "models": MODELS} for method, kwargs in calls])
    result = subprocess.run(
        [official_python, str(SCRIPT), server_process.api_url, server_process.api_key], input=payload, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def tamper(server_process: Any, version_id: str) -> None:
    """Flip the last bit of a sealed value in the server's `control.db`."""
    db = sqlite3.connect(Path(server_process.data_dir) / "control.db", timeout=10)
    try:
        with db:
            (sealed,) = db.execute("SELECT sealed FROM secret_versions WHERE id = ?", (version_id,)).fetchone()
            db.execute("UPDATE secret_versions SET sealed = ? WHERE id = ?", (sealed[:-1] + bytes([sealed[-1] ^ 1]), version_id))
    finally:
        db.close()


def refused(result: dict[str, Any], kind: str, *words: str) -> bool:
    return result.get("raised") == kind and all(word in result["message"] for word in words)


async def test_the_official_client_manages_secrets(official_python: str, server_process: Any) -> None:
    project = server_process.credentials.project_id
    async with Meshagent(base_url=server_process.api_url, token=server_process.api_key) as ours:
        damaged = await ours.create_user_secret(project_id=project, name="damaged")
        damaged_version = await ours.create_user_secret_version(secret_id=damaged.id, value=b"will be damaged")
    tamper(server_process, damaged_version.id)

    user = {"secret_id": "$0.id"}
    account = {"project_id": project, "service_account_id": "$13.id"}
    registry = {**account, "secret_id": "$14.id"}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("create_user_secret", {"project_id": project, "name": "github", "type": "oauth", "metadata": {"provider": "github"}}),  # 0
        ("create_user_secret_version", {**user, "value": b64(b"token-1")}),
        ("create_user_secret_version", {**user, "value": b64(b"\x00token-2"), "set_current": False}),
        ("list_user_secret_versions", user),
        ("access_user_secret_version", {**user, "version_id": "$2.id"}),
        ("access_user_secret_version", {**user, "version_id": "latest"}),  # 5
        ("get_user_secret", {**user, "include_value": True}),
        ("update_user_secret", {**user, "name": "gh", "annotations": {"team": "core"}}),
        ("list_user_secrets", {"page_size": 1}),
        ("search_user_secrets", {"provider": "github", "annotations": {"team": "core"}}),
        ("create_user_secret", {"project_id": project, "name": "gh"}),  # 10: taken
        ("delete_user_secret_version", {**user, "version_id": "$1.id"}),
        ("access_user_secret_version", {**user, "version_id": "$1.id"}),
        ("create_service_account", {"project_id": project, "name": "bot"}),
        ("create_service_account_secret", {**account, "name": "registry", "type": "docker", "metadata": {"service": "ghcr"}}),
        ("create_service_account_secret_version", {**registry, "value": b64(b"robot:pw")}),  # 15
        ("list_service_account_secret_versions", registry),
        ("access_service_account_secret_version", {**registry, "version_id": "$15.id"}),
        ("get_service_account_secret", {**registry, "include_value": True}),
        ("update_service_account_secret", {**registry, "type": "keys", "http_only": True}),
        ("list_service_account_secrets", account),  # 20
        ("search_service_account_secrets", {**account, "service": "ghcr"}),
        ("add_service_account_pull_secret", registry),
        ("list_service_account_pull_secrets", account),
        ("remove_service_account_pull_secret", registry),
        ("list_service_account_pull_secrets", account),  # 25
        ("grant_user_secret_proxy_access", {**user, "service_account_id": "$13.id"}),
        ("list_user_secret_proxy_access", user),
        ("revoke_user_secret_proxy_access", {**user, "service_account_id": "$13.id"}),
        ("revoke_user_secret_proxy_access", {**user, "service_account_id": "$13.id"}),
        ("delete_service_account_secret_version", {**registry, "version_id": "$15.id"}),  # 30
        ("delete_service_account_secret", registry),
        ("get_service_account_secret", registry),
        ("delete_user_secret", user),
        ("get_user_secret", user),
        ("access_user_secret_version", {"secret_id": damaged.id, "version_id": damaged_version.id}),  # 35
        ("create_user_secret_version", {"secret_id": damaged.id, "value": b64(b"x" * 65537)}),
        ("list_user_secrets", {"page_size": 1, "continuation_token": "$8.continuation_token"}),
        ("list_service_account_secrets", {"project_id": project, "service_account_id": "nope"}),
    ]
    results = run_official(official_python, server_process, calls)
    returned = [result.get("returned") for result in results]
    raised = {index: result for index, result in enumerate(results) if "raised" in result}
    assert set(raised) == {10, 12, 29, 32, 34, 35, 36, 38}, raised

    github, first, second = returned[0], returned[1], returned[2]
    assert (github["name"], github["type"], github["metadata"], github["project_id"]) == ("github", "oauth", {"provider": "github"}, project)
    assert github["owner_user_id"] and "value_base64" not in github and "current_version_id" not in github
    assert (first["version"], second["version"], first["value_sha256"]) == (1, 2, hashlib.sha256(b"token-1").hexdigest())
    assert [v["id"] for v in returned[3]] == [first["id"], second["id"]]
    assert returned[4] == {"bytes_base64": b64(b"\x00token-2")} and returned[5] == {"bytes_base64": b64(b"token-1")}
    assert (returned[6]["current_version_id"], returned[6]["value_base64"]) == (first["id"], b64(b"token-1"))
    assert (returned[7]["name"], returned[7]["annotations"]) == ("gh", {"team": "core"})
    assert [s["name"] for s in returned[8]["secrets"]] == ["damaged"] and returned[8]["continuation_token"]
    assert [s["id"] for s in returned[9]["secrets"]] == [github["id"]]
    assert refused(raised[10], "ConflictError", "Status=409", "secret 'gh' already exists")
    assert returned[11] is None
    assert refused(raised[12], "NotFoundError", "Status=404", first["id"])

    bot, secret, version = returned[13], returned[14], returned[15]
    assert (secret["owner_service_account_id"], secret["type"], version["version"]) == (bot["id"], "docker", 1)
    assert [v["id"] for v in returned[16]] == [version["id"]]
    assert returned[17] == {"bytes_base64": b64(b"robot:pw")} and returned[18]["value_base64"] == b64(b"robot:pw")
    assert (returned[19]["type"], returned[19]["http_only"]) == ("keys", True)
    assert [s["id"] for s in returned[20]["secrets"]] == [s["id"] for s in returned[21]["secrets"]] == [secret["id"]]
    assert returned[22] is None and [s["id"] for s in returned[23]] == [secret["id"]]
    assert returned[24] is None and returned[25] == []
    assert returned[26] is None and returned[27]["access_grants"] == [
        {"subject": {"type": "service_account", "id": bot["id"], "name": "bot", "email": bot["email"]}, "roles": ["use_proxy"]}
    ]
    assert returned[28] is None and refused(raised[29], "NotFoundError", "Status=404", "has no proxy access")
    assert returned[30] is None and returned[31] is None
    assert refused(raised[32], "NotFoundError", "Status=404", f"secret '{secret['id']}' does not exist")
    assert returned[33] is None and refused(raised[34], "NotFoundError", "Status=404", github["id"])
    assert refused(raised[35], "ServerError", "Status=500", "secret_unreadable", "altered or damaged")
    assert "will be damaged" not in raised[35]["message"]
    assert refused(raised[36], "ValidationErrorResponse", "Status=400", "value_base64: a secret value is at most 65536 bytes")
    assert returned[37] == {"secrets": []}  # the page after "damaged": "gh" was deleted since
    assert refused(raised[38], "NotFoundError", "Status=404", "service account 'nope' does not exist")
