"""Project storage (`upload`, `download`) and `storage.download_url` with the official 0.56 client
against our server (out of process: `official_scripts/project_storage.py`): binary round trips,
the official error messages — the same ones our `Meshagent` raises for the same calls — and a
download URL the official RoomClient accepts and that serves the file."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx
import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import RestError
from meshagent_trio.server import Credentials, Server

pytestmark = pytest.mark.interop

SCRIPTS = Path(__file__).parent / "official_scripts"
ROOM = "official-storage"


async def other_project_key(api: Meshagent) -> str:
    other = await api.create_project(name="other")
    account = await api.create_service_account(project_id=other.id, name="worker")
    key = await api.create_api_key(project_id=other.id, service_account_id=account.id, name="k", description="")
    assert key.value
    return key.value


async def our_errors(api: Meshagent, stranger: Meshagent, project: str) -> dict[str, dict[str, str]]:
    """Our client's errors for the calls the official script makes (class as the official one)."""
    calls = {
        "missing": api.download(project_id=project, path="nope.bin"),
        "traversal_download": api.download(project_id=project, path="a/../../x"),
        "traversal_upload": api.upload(project_id=project, path="../x", data=b"x"),
        "absolute": api.download(project_id=project, path="/etc/passwd"),
        "unknown_project": api.upload(project_id="nope", path="x", data=b"x"),
        "other_project_upload": stranger.upload(project_id=project, path="x", data=b"x"),
        "other_project_download": stranger.download(project_id=project, path="bin/data.bin"),
    }
    errors = {}
    for name, call in calls.items():
        with pytest.raises(RestError) as info:
            await call
        assert type(info.value) is RestError  # the official client raises its base class here
        errors[name] = {"type": "RoomException", "message": str(info.value)}
    return errors


async def test_the_official_client_uses_project_storage_and_download_urls(official_python: str, server: Server, credentials: Credentials) -> None:
    base = f"http://127.0.0.1:{server.port}"
    project = credentials.project_id
    async with Meshagent(base_url=base, token=credentials.api_key) as api:
        other_key = await other_project_key(api)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the official interpreter must not see our src/
        env.update(MESHAGENT_API_URL=base, MESHAGENT_API_KEY=credentials.api_key, SCENARIO_ROOM=ROOM, PROJECT_ID=project, OTHER_API_KEY=other_key)
        with trio.fail_after(120):
            done = await trio.run_process(
                [official_python, str(SCRIPTS / "project_storage.py")], env=env, cwd=str(SCRIPTS), capture_stdout=True, capture_stderr=True, check=False
            )
        assert done.returncode == 0, (done.stdout.decode()[-3000:], done.stderr.decode()[-3000:], sys.executable)
        official = json.loads(done.stdout.decode().strip().splitlines()[-1])

        assert official["round_trip"] is True and official["replaced"] == "replaced" and official["empty"] == ""
        # the file the official client wrote is the one ours reads, and the reverse
        assert await api.download(project_id=project, path="bin/data.bin") == b"replaced"
        async with Meshagent(base_url=base, token=other_key) as stranger:
            ours = await our_errors(api, stranger, project)
    theirs = {name: {"type": error["type"], "message": error["message"]} for name, error in official["errors"].items()}
    assert theirs == ours
    assert theirs["missing"]["message"] == "file was not found"
    assert theirs["traversal_download"]["message"].startswith("Failed to download file. Status code: 400")
    assert theirs["unknown_project"]["message"].startswith("Failed to upload file. Status code: 404")
    assert theirs["other_project_upload"]["message"].startswith("Failed to upload file. Status code: 403")

    url = official["download_url"]
    assert url.startswith(f"{base}/room-files/{project}/{ROOM}/docs/report.txt?")
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200 and response.content == b"hello, url"
    assert response.headers["content-type"].startswith("text/plain")
