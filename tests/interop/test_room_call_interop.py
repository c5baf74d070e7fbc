"""`room.call` between our server and the official 0.56 code (protocol/webhooks.md §6): our
server calls the official `ServiceHost` (and through it the official `WebhookServer`, which
checks the signature) into a room; the hosted official agent joins, uses storage, and leaves
on `dismiss`. A host holding another secret refuses the call, and the caller hears why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from meshagent_core import ErrorCode, RoomException
from meshagent_core.webhooks import SIGNATURE_HEADER, verify
from meshagent_trio import connect
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.process import free_port

from roomtest import mint, room_url
from webhook_receiver import webhook_receiver

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).resolve().parent / "official_scripts" / "service_host_official.py"


class OfficialHost:
    def __init__(self, python: str, secret: str, markers: Path) -> None:
        self.port = free_port()
        self.markers = markers
        self.process = subprocess.Popen(
            [python, str(SCRIPT), str(self.port), secret, str(markers)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        with trio.fail_after(60):
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"the official host exited: {self.process.stderr.read()}")
                try:
                    async with httpx.AsyncClient() as http:
                        if (await http.get(self.url + "/")).status_code == 200:
                            return
                except httpx.TransportError:
                    await trio.sleep(0.1)

    def stop(self) -> str:
        self.process.terminate()
        try:
            _, errors = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, errors = self.process.communicate()
        return errors


def _participant_id(server: Server, name: str) -> str | None:
    return next((p.id for p in server.rooms["test-room"].participants.values() if p.name == name), None)


async def test_our_server_calls_the_official_service_host_into_a_room(
    official_python: str, server: Server, credentials: Credentials, tmp_path: Path
) -> None:
    secret = await server.control.webhooks.project_secret(credentials.project_id)
    host = OfficialHost(official_python, secret, tmp_path)
    try:
        await host.ready()
        async with connect(room_url(server), mint(credentials, name="alice")) as room:
            await room.messaging.enable()
            await room.agents.make_call(name="official-agent", url=host.url + "/agent", arguments={"why": "interop"})
            with trio.fail_after(30):
                while not await room.storage.exists(path="joined-official-agent.txt"):
                    await trio.sleep(0.05)
                # The official agent does not enable messaging, so it is not in our presence
                # list; its id is the server's to tell (a `dismiss` reaches it all the same).
                while (agent := _participant_id(server, "official-agent")) is None:
                    await trio.sleep(0.05)
            assert await room.storage.download(path="joined-official-agent.txt") is not None
            await room.messaging.send_message(to=agent, type="dismiss", message={})
            with trio.fail_after(30):
                while not (tmp_path / "stopped-official-agent").exists():
                    await trio.sleep(0.05)
            with trio.fail_after(30):
                while any(p.name == "official-agent" for p in server.rooms["test-room"].participants.values()):
                    await trio.sleep(0.05)
    finally:
        errors = host.stop()
    assert host.process.returncode == 0, errors


async def test_an_official_host_with_another_secret_refuses_the_call(official_python: str, server: Server, credentials: Credentials, tmp_path: Path) -> None:
    host = OfficialHost(official_python, "not-the-project-secret", tmp_path)
    try:
        await host.ready()
        async with connect(room_url(server), mint(credentials)) as room:
            with pytest.raises(RoomException, match="http status code: 401") as raised:
                await room.agents.make_call(name="official-agent", url=host.url + "/agent", arguments={})
            assert raised.value.code == ErrorCode.OPERATION_FAILED
    finally:
        host.stop()
    assert not (tmp_path / "stopped-official-agent").exists()
    assert "official-agent" not in {p.name for p in server.rooms["test-room"].participants.values()}


async def test_the_official_clients_make_call_reaches_a_receiver_signed(official_python: str, server: Server, credentials: Credentials) -> None:
    script = SCRIPT.parent / "make_call_official.py"
    secret = await server.control.webhooks.project_secret(credentials.project_id)
    with webhook_receiver() as receiver, webhook_receiver() as refusing:
        refusing.status = 403
        done = await trio.to_thread.run_sync(
            lambda: subprocess.run(
                [official_python, str(script), room_url(server), mint(credentials, name="official"), receiver.url + "/in", refusing.url],
                capture_output=True, text=True, timeout=120,
            )
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        ok, refused = json.loads(done.stdout)
        assert ok == {"ok": True}
        assert "http status code: 403" in refused["error"] and refused["code"] == ErrorCode.OPERATION_FAILED
        [request] = receiver.taken()
        envelope = verify(request.body, request.headers[SIGNATURE_HEADER.lower()], secret, now=None)
        assert envelope["data"]["arguments"] == {"from": "official"}
        assert envelope["data"]["room_name"] == "test-room"
