"""A room service written with our `ServiceHost` (the way users write one), stored through REST
as a local command and run by our server when its room starts (protocol/webhooks.md §8): the
server starts it with MESHAGENT_PORT and the project's MESHAGENT_WEBHOOK_SECRET, reads its
well-known spec, calls its endpoint into the room with a signed `room.call`, and the agent joins;
a `dismiss` sends the agent away (its `stop()` runs) while the service keeps running."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import trio

from meshagent_core.client.rest import Meshagent
from meshagent_trio import connect
from meshagent_trio.server import Credentials, Server

from roomtest import mint, room_url

APP = Path(__file__).resolve().parents[1] / "service_host_app.py"


async def test_our_service_host_runs_as_a_room_service_and_its_agent_is_dismissed(server: Server, credentials: Credentials, tmp_path: Path) -> None:
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(APP))} {shlex.quote(str(tmp_path))}"
    service = {"version": "v1", "kind": "Service", "metadata": {"name": "greeter-service"}, "container": {"image": "", "command": command}}
    async with Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=credentials.api_key) as api:
        service_id = await api.create_room_service(project_id=credentials.project_id, room_name="test-room", service=service)
    async with connect(room_url(server), mint(credentials, name="alice")) as room:
        await room.messaging.enable()
        with trio.fail_after(60):
            while (greeter := room.messaging.get_participant_by_name("greeter")) is None:
                await trio.sleep(0.05)
            while not await room.storage.exists(path="greeting-greeter.txt"):
                await trio.sleep(0.05)
        listed = await room.services.list()
        assert [spec.metadata.name for spec in listed.services] == ["greeter-service"]
        assert listed.service_states[service_id].state == "running"
        await room.messaging.send_message(to=greeter, type="dismiss", message={})
        with trio.fail_after(30):
            while not (tmp_path / "stopped-greeter.txt").exists():
                await trio.sleep(0.05)
            while room.messaging.get_participant_by_name("greeter") is not None:
                await trio.sleep(0.05)
        state = (await room.services.list()).service_states[service_id]
        assert state.state == "running" and state.restart_count == 0  # the service itself stays
