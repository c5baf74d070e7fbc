"""`ServiceHost` (protocol/webhooks.md §4) against the real local server, on Trio and on AnyIO
(asyncio and Trio): a `room.call` POST makes the registered agent join the room, where it
writes a file; a `dismiss` message makes it stop and leave; a Toolkit path is callable in the
room; stopping the host ends the calls cleanly; bad signatures and failed joins."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from meshagent_core import RoomException
from meshagent_core.client.tools import Toolkit, tool
from meshagent_core.content import JsonContent
from meshagent_core.webhooks import sign, webhook_body
from roomtest import mint
from webhooktest import bridge

pytestmark = pytest.mark.anyio

SECRET = "service-secret-0123456789"
WAIT = 15.0


def room_name(request: pytest.FixtureRequest, client_variant: tuple[str, str]) -> str:
    return f"svc-{request.node.originalname[5:30]}-{'-'.join(client_variant)}".replace("_", "-")


def call_data(local_server: Any, room: str, name: str = "svc-agent") -> dict[str, Any]:
    return {
        "room_name": room,
        "room_url": local_server.room_url(room),
        "token": mint(local_server.credentials, room, name=name),
        "arguments": {},
    }


async def post_call(port: int, path: str, data: dict[str, Any], *, secret: str | None = None, signature: str | None = None) -> httpx.Response:
    body = webhook_body("room.call", data)
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["Meshagent-Signature"] = sign(body, secret)
    if signature is not None:
        headers["Meshagent-Signature"] = signature
    async with httpx.AsyncClient() as http:
        return await http.post(f"http://127.0.0.1:{port}{path}", content=body, headers=headers, timeout=10)


async def eventually(check: Any, what: str, timeout: float = WAIT) -> Any:
    """Poll `check()` (awaited when it returns an awaitable) until it gives something truthy;
    fails naming `what` after `timeout` seconds."""
    try:
        with anyio.fail_after(timeout):
            while True:
                value = check()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value
                await anyio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting until {what}") from None


def agent_class(log: list[str], path: str = "hello.txt") -> type:
    class Writer:
        async def start(self, *, room: Any) -> None:
            log.append(f"start {room.local_participant.get_attribute('name')}")
            await room.storage.upload(path=path, data=b"written by the agent", overwrite=True)

        async def stop(self) -> None:
            log.append("stop")

    return Writer


async def participant_named(observer: Any, name: str) -> Any:
    for participant in observer.messaging.remote_participants:
        if participant.get_attribute("name") == name:
            return participant
    return None


async def absent(observer: Any, name: str) -> bool:
    return await participant_named(observer, name) is None


async def test_a_call_joins_writes_and_is_dismissed(client_module, client_variant, local_server, request) -> None:
    room = room_name(request, client_variant)
    log: list[str] = []
    host = client_module.ServiceHost(host="127.0.0.1", name="writer")
    host.add_path("/agent", cls=agent_class(log))
    url = local_server.room_url(room)
    async with host, client_module.connect(url, mint(local_server.credentials, room, name="observer")) as observer:
        await observer.messaging.enable()
        answer = await post_call(host.bound_port, "/agent", call_data(local_server, room))
        assert (answer.status_code, answer.json()) == (200, {"ok": True})
        agent = await eventually(lambda: participant_named(observer, "svc-agent"), "the agent joined")
        assert await eventually(lambda: observer.storage.exists(path="hello.txt"), "the agent wrote its file")
        assert (await observer.storage.download(path="hello.txt")).data == b"written by the agent"
        assert log == ["start svc-agent"]
        await observer.messaging.send_message(to=agent, type="dismiss", message={})

        async def gone() -> bool:
            return log[-1:] == ["stop"] and await participant_named(observer, "svc-agent") is None

        await eventually(gone, "the agent stopped and left")
    assert log == ["start svc-agent", "stop"]


async def test_the_reverse_form_runs_the_agent_over_the_rooms_socket(client_module, client_variant, local_server, request) -> None:
    room = room_name(request, client_variant)
    log: list[str] = []
    host = client_module.ServiceHost(host="127.0.0.1", port=0, webhook_secret=SECRET)
    host.add_path("/agent", cls=agent_class(log, "reverse.txt"))
    url = local_server.room_url(room)
    async with host, client_module.connect(url, mint(local_server.credentials, room, name="observer")) as observer:
        await observer.messaging.enable()
        async with anyio.create_task_group() as tasks:
            service_url = f"ws://127.0.0.1:{host.bound_port}/agent"
            tasks.start_soon(bridge, client_module.backend, service_url, call_data(local_server, room, "reverse-agent"), url, SECRET)
            assert await eventually(lambda: observer.storage.exists(path="reverse.txt"), "the agent wrote its file")
            agent = await eventually(lambda: participant_named(observer, "reverse-agent"), "the agent is present")
            await observer.messaging.send_message(to=agent, type="dismiss", message={})
            # Dismissed: the agent's socket closes (the bridge ends by itself) and it stops.
        await eventually(lambda: log == ["start reverse-agent", "stop"], "the agent stopped")
        await eventually(lambda: absent(observer, "reverse-agent"), "the agent left")


async def test_signatures_are_checked_only_with_a_secret(client_module, client_variant, local_server, request) -> None:
    room = room_name(request, client_variant)
    log: list[str] = []
    host = client_module.ServiceHost(host="127.0.0.1", port=0, webhook_secret=SECRET)
    host.add_path("/agent", cls=agent_class(log))
    data = call_data(local_server, room)
    async with host:
        missing = await post_call(host.bound_port, "/agent", data)
        assert (missing.status_code, missing.reason_phrase, missing.text) == (401, "missing signature", "401: missing signature")
        other = await post_call(host.bound_port, "/agent", data, secret="another-secret")
        assert (other.status_code, other.reason_phrase) == (401, "invalid jwt")
        bare = await post_call(host.bound_port, "/agent", data, signature=sign(webhook_body("room.call", data), SECRET)[7:])
        assert (bare.status_code, bare.reason_phrase) == (401, "missing signature")
        assert log == []
        signed = await post_call(host.bound_port, "/agent", data, secret=SECRET)
        assert signed.status_code == 200
        await eventually(lambda: log[:1] == ["start svc-agent"], "the signed call was answered")
    assert log == ["start svc-agent", "stop"]  # stopping the host ended the call


async def test_a_toolkit_path_is_hosted_in_the_room(client_module, client_variant, local_server, request) -> None:
    room = room_name(request, client_variant)

    @tool
    async def shout(text: str) -> str:
        return text.upper() + "!"

    class Shouter(Toolkit):
        def __init__(self) -> None:
            super().__init__(name="shouter", tools=[shout])

    host = client_module.ServiceHost(host="127.0.0.1", port=0)

    @host.path("/tools", identity="shouter-agent")
    class Registered(Shouter):
        pass

    assert Registered.__name__ == "Registered" and host.has_path("/tools")
    url = local_server.room_url(room)
    async with host, client_module.connect(url, mint(local_server.credentials, room, name="caller")) as caller:
        await caller.messaging.enable()
        assert (await post_call(host.bound_port, "/tools", call_data(local_server, room, "shouter-agent"))).status_code == 200

        async def toolkit_listed() -> bool:
            return [toolkit.name for toolkit in await caller.agents.list_toolkits()] == ["shouter"]

        await eventually(toolkit_listed, "the toolkit was registered")
        answer = await caller.agents.invoke_tool(toolkit="shouter", tool="shout", input={"text": "hi"})
        assert answer == JsonContent(json="HI!") or getattr(answer, "text", None) == "HI!"
        agent = await eventually(lambda: participant_named(caller, "shouter-agent"), "the toolkit's participant is present")
        await caller.messaging.send_message(to=agent, type="dismiss", message={})

        async def toolkit_gone() -> bool:
            return await caller.agents.list_toolkits() == [] and await participant_named(caller, "shouter-agent") is None

        await eventually(toolkit_gone, "the toolkit left with its participant")
        with pytest.raises(RoomException):
            await caller.agents.invoke_tool(toolkit="shouter", tool="shout", input={"text": "hi"})


async def test_stopping_the_host_ends_running_calls_cleanly(client_module, client_variant, local_server, request) -> None:
    room = room_name(request, client_variant)
    log: list[str] = []
    host = client_module.ServiceHost(host="127.0.0.1", port=0)
    host.add_path("/a", cls=agent_class(log, "a.txt"))
    host.add_path("/b", cls=agent_class(log, "b.txt"))
    url = local_server.room_url(room)
    async with client_module.connect(url, mint(local_server.credentials, room, name="observer")) as observer:
        await observer.messaging.enable()
        async with host:
            assert (await post_call(host.bound_port, "/a", call_data(local_server, room, "agent-a"))).status_code == 200
            assert (await post_call(host.bound_port, "/b", call_data(local_server, room, "agent-b"))).status_code == 200

            async def both_here() -> bool:
                return bool(await participant_named(observer, "agent-a") and await participant_named(observer, "agent-b"))

            await eventually(both_here, "both agents joined")
            await eventually(lambda: observer.storage.exists(path="b.txt"), "the second agent wrote its file")
            await eventually(lambda: observer.storage.exists(path="a.txt"), "the first agent wrote its file")
        # Leaving the block returned only after both calls stopped and left.
        assert sorted(log) == ["start agent-a", "start agent-b", "stop", "stop"]

        async def both_gone() -> bool:
            return not await participant_named(observer, "agent-a") and not await participant_named(observer, "agent-b")

        await eventually(both_gone, "both agents left the room", timeout=5)


async def test_a_failed_join_is_logged_and_the_host_goes_on(client_module, client_variant, local_server, request, caplog) -> None:
    room = room_name(request, client_variant)
    log: list[str] = []
    host = client_module.ServiceHost(host="127.0.0.1", port=0)
    host.add_path("/agent", cls=agent_class(log))
    bad = {**call_data(local_server, room), "token": mint(local_server.credentials, "another-room")}
    caplog.set_level(logging.ERROR, logger="meshagent_core.client.service_host")
    async with host:
        assert (await post_call(host.bound_port, "/agent", bad)).status_code == 200
        await eventually(lambda: any("failed" in r.getMessage() for r in caplog.records), "the failure was logged")
        assert log == []
        assert (await post_call(host.bound_port, "/agent", call_data(local_server, room))).status_code == 200
        await eventually(lambda: log[:1] == ["start svc-agent"], "the next call was answered")
    assert log == ["start svc-agent", "stop"]


async def test_http_surface(client_module, client_variant) -> None:
    host = client_module.ServiceHost(host="127.0.0.1", port=0, name="surface")
    host.add_path("/agent", cls=object)
    async with host, httpx.AsyncClient(base_url=f"http://127.0.0.1:{host.bound_port}", timeout=10) as http:
        assert (await http.get("/")).json() == {"ok": True}
        spec = (await http.get("/.well-known/meshagent-service.json")).json()
        assert spec["metadata"]["name"] == "surface"
        assert spec["ports"][0]["num"] == host.bound_port  # port 0: the bound port is advertised
        assert spec["ports"][0]["endpoints"] == [
            {"path": "/agent", "meshagent": {"identity": "agent", "api": None}, "mcp": None, "annotations": None}
        ]
        assert (await http.get("/nowhere")).status_code == 404
        assert (await http.put("/agent", content=b"{}")).status_code == 405
        not_object = await http.post("/agent", content=b"[1]", headers={"content-type": "application/json"})
        assert (not_object.status_code, not_object.reason_phrase) == (400, "invalid request body")
        other = await http.post("/agent", json={"event": "room.started", "data": {"room_name": "r", "room_url": "u"}})
        assert (other.status_code, other.json()) == (200, {"ok": True})  # accepted and ignored
        no_json = await http.post("/agent", content=b"hello")  # not JSON: the envelope is {}
        assert no_json.status_code == 400  # {} has no event name
        assert (await http.post("/agent", content=b"x" * (1024 * 1024 + 1))).status_code == 413


def test_registrations_are_checked(client_module) -> None:
    host = client_module.ServiceHost(port=0)
    host.add_path("/a", cls=object)
    with pytest.raises(ValueError, match="registered already"):
        host.add_path("/a", cls=object)
    with pytest.raises(ValueError, match="starts with '/'"):
        host.add_path("a", cls=object)
    with pytest.raises(ValueError, match="own path"):
        host.add_path("/.well-known/meshagent-service.json", cls=object)
    with pytest.raises(TypeError, match="class or a Toolkit"):
        host.add_path("/b", cls=object())
    with pytest.raises(ValueError, match="port"):
        client_module.ServiceHost(port=70000)
    assert msgspec.to_builtins(client_module.ServiceHost(name="n").get_service_spec(image="i", environment={"A": "1"}))["container"][
        "environment"
    ] == [{"name": "A", "value": "1", "token": None, "secret": None}]
