"""`WebhookServer` and `ServiceHost` of `meshagent_anyio` on asyncio (and on Trio through AnyIO),
against the local server in a subprocess: the same shared code as on Trio, bound to the AnyIO
backend (`ServiceHost` calls are also covered three ways by tests/client/test_service_host.py)."""

from __future__ import annotations

import os
import signal
from typing import Any, Iterator

import anyio
import httpx
import pytest

import meshagent_anyio
from meshagent_anyio import RoomClient, ServiceHost, WebhookServer, backend, send_webhook
from meshagent_core.webhooks import CallEvent, RoomEndedEvent
from meshagent_trio.server import LocalServerProcess
from roomtest import mint
from webhooktest import bridge

pytestmark = pytest.mark.anyio

SECRET = "anyio-webhook-secret"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalServerProcess]:
    with LocalServerProcess() as server:
        yield server


def test_the_adapter_binds_its_own_room_client() -> None:
    assert WebhookServer.room_client_class is meshagent_anyio.RoomClient
    assert ServiceHost.room_client_class is meshagent_anyio.RoomClient
    assert WebhookServer(validate_webhook_secret=False).backend is backend


async def test_webhooks_arrive_by_the_iterator(anyio_backend) -> None:
    async with WebhookServer(host="127.0.0.1", port=0, webhook_secret=SECRET) as server, server.events() as events:
        url = f"http://127.0.0.1:{server.bound_port}/webhook"
        await send_webhook(url=url, event="room.ended", data={"room_name": f"on-{anyio_backend}"}, secret=SECRET)
        with anyio.fail_after(5):
            assert await events.__anext__() == RoomEndedEvent(room_name=f"on-{anyio_backend}")
        with pytest.raises(meshagent_anyio.RoomException, match="http status code: 401"):
            await send_webhook(url=url, event="room.ended", data={"room_name": "x"}, secret="wrong")


class Answering(WebhookServer):
    def __init__(self) -> None:
        super().__init__(host="127.0.0.1", port=0, webhook_secret=SECRET)
        self.calls: list[CallEvent] = []
        self.answered: list[str] = []

    async def on_call(self, event: CallEvent) -> None:
        self.calls.append(event)

    async def on_call_answered(self, room: RoomClient) -> None:
        self.answered.append(room.local_participant.get_attribute("name"))
        await room.storage.upload(path=f"reverse-{room.local_participant.get_attribute('name')}.txt", data=b"hi", overwrite=True)


async def test_the_reverse_form(local_server, anyio_backend) -> None:
    room = f"anyio-reverse-{anyio_backend}"
    name = f"reverse-{anyio_backend}"
    call = {"room_name": room, "room_url": local_server.room_url(room), "token": mint(local_server.credentials, room, name=name)}
    service = Answering()
    async with meshagent_anyio.connect(local_server.room_url(room), mint(local_server.credentials, room, name="observer")) as observer:
        await observer.messaging.enable()
        async with anyio.create_task_group() as tasks:
            async with service:
                tasks.start_soon(bridge, backend, f"ws://127.0.0.1:{service.bound_port}/webhook", call, local_server.room_url(room), SECRET)
                with anyio.fail_after(10):
                    while not await observer.storage.exists(path=f"reverse-{name}.txt"):
                        await anyio.sleep(0.02)
            # Stopping the server left the room; the bridge saw the close and ended.
        assert service.answered == [name] and service.calls == []
        with anyio.fail_after(10):
            while any(p.get_attribute("name") == name for p in observer.messaging.remote_participants):
                await anyio.sleep(0.02)


async def test_a_service_host_runs_until_sigterm(local_server, anyio_backend) -> None:
    room = f"anyio-run-{anyio_backend}"
    log: list[str] = []

    class Agent:
        async def start(self, *, room: Any) -> None:
            log.append("start")

        async def stop(self) -> None:
            log.append("stop")

    host = ServiceHost(host="127.0.0.1", port=0)
    host.add_path("/agent", cls=Agent)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(host.run)
        with anyio.fail_after(10):
            while host.bound_port is None:
                await anyio.sleep(0.01)
            port = host.bound_port
            data = {"room_name": room, "room_url": local_server.room_url(room), "token": mint(local_server.credentials, room, name="a")}
            await send_webhook(url=f"http://127.0.0.1:{host.bound_port}/agent", event="room.call", data=data)
            while log != ["start"]:
                await anyio.sleep(0.01)
            os.kill(os.getpid(), signal.SIGTERM)
            while host.bound_port is not None:
                await anyio.sleep(0.01)
    assert log == ["start", "stop"]
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):  # no longer listening
            await http.get(f"http://127.0.0.1:{port}/")
