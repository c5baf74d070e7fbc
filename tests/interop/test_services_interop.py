"""`room.services` of the OFFICIAL 0.56 client against our server's room services
(protocol/webhooks.md §8, protocol/room-apis.md).

Our server runs as a subprocess (`server_process`); the test stores services through REST with
our `Meshagent` client: a local service (`tests/local_service_app.py`, run by the server as a
child process), a container image (not run: a failed state with an event), an external service
whose URL refuses (a failed state), a disabled one and one with nothing to run. The official
client (`official_scripts/room_services_official.py`) then lists them (its `list()` validates
every ServiceSpec and state strictly: any mismatch is a 1100) until the local one runs, and
restarts an unknown id (7001), the image (7002) and the local one.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_trio.server.process import LocalServerProcess
from meshagent_trio.server.services.room_services import IMAGE_NOT_RUN

pytestmark = pytest.mark.interop

SCRIPTS = Path(__file__).resolve().parent / "official_scripts"
APP = Path(__file__).resolve().parents[1] / "local_service_app.py"
ROOM = "interop-room-services"


def refusing_url() -> str:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/hook"


def spec(name: str, **fields: Any) -> dict[str, Any]:
    return {"version": "v1", "kind": "Service", "metadata": {"name": name}, **fields}


async def store(server: LocalServerProcess) -> dict[str, str]:
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(APP))}"
    project = server.credentials.project_id
    async with Meshagent(base_url=server.api_url, token=server.api_key) as api:
        external = await api.create_service(project_id=project, service=spec("refused-ext", external={"url": refusing_url()}))
        ids = {"external": external.id}
        for key, service in {
            "local": spec("local", container={"image": "", "command": command}),
            "image": spec("imaged", container={"image": "registry.example/agent:1"}),
            "disabled": spec("off", enabled=False, container={"image": "", "command": "true"}),
            "idle": spec("nothing"),
        }.items():
            ids[key] = await api.create_room_service(project_id=project, room_name=ROOM, service=service)
    return ids


async def run_official(python: str, server: LocalServerProcess, ids: dict[str, str]) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the official interpreter must not see our src/
    for variable in ("MESHAGENT_ROOM_URL", "MESHAGENT_PROFILE_API_URL", "MESHAGENT_ROOM", "MESHAGENT_TOKEN"):
        env.pop(variable, None)
    env.update(
        MESHAGENT_API_URL=server.api_url,
        MESHAGENT_API_KEY=server.api_key,
        SCENARIO_ROOM=ROOM,
        SERVICES_LOCAL_ID=ids["local"],
        SERVICES_IMAGE_ID=ids["image"],
    )
    with trio.fail_after(120):
        done = await trio.run_process(
            [python, str(SCRIPTS / "room_services_official.py")], capture_stdout=True, capture_stderr=True, env=env, cwd=str(SCRIPTS), check=False
        )
    lines = done.stdout.decode().strip().splitlines()
    assert done.returncode == 0 and lines, f"{done.stdout.decode()[-3000:]}\n{done.stderr.decode()[-3000:]}\n--- server log ---\n{server.log()}"
    return json.loads(lines[-1])


async def test_the_official_client_reads_our_service_states(official_python: str, server_process: LocalServerProcess) -> None:
    ids = await store(server_process)
    seen = await run_official(official_python, server_process, ids)

    running = seen["running"]
    assert [service["metadata"]["name"] for service in running["services"]] == ["refused-ext", "imaged", "local", "nothing", "off"]
    assert [service["id"] for service in running["services"]] == [ids[key] for key in ("external", "image", "local", "idle", "disabled")]
    states = running["service_states"]
    assert set(states) == set(ids.values())

    local = states[ids["local"]]
    assert local["state"] == "running", json.dumps(local)
    assert local["container_id"] and local["started_at"] and local["restart_count"] == 0
    [port] = local["status"]["ports"]
    assert isinstance(port["num"], int) and port["liveness_status"] == "not_configured"
    assert [event["reason"] for event in local["events"]] == ["Started", "Called"]
    assert all(event["count"] == 1 and event["first_timestamp"] <= event["last_timestamp"] for event in local["events"])

    image = states[ids["image"]]
    assert image["state"] == "failed" and image["last_start_error"] == IMAGE_NOT_RUN and image["last_start_error_at"]
    assert [(event["type"], event["reason"]) for event in image["events"]] == [("Warning", "StartFailed")]

    external = states[ids["external"]]
    assert external["state"] == "failed" and "room.call of 'refused-ext'" in external["last_start_error"]
    assert states[ids["disabled"]]["state"] == "disabled" and states[ids["idle"]]["state"] == "idle"

    assert seen["restart_unknown"]["code"] == 7001
    assert seen["restart_image"]["code"] == 7002
    assert seen["restart_local"] == {"no_error": "None"}
    assert seen["restart_count_after"] == 1
