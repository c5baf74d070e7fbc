"""The demo: the local server and a session against it, over real sockets.

`run_demo` starts the server on a free port and has two participants meet in a room: one hosts a
toolkit, the other calls it, and the developer log stream shows what happened. `run_transcript`
prints, instead, a session through the sans-IO core alone, in memory: every message framed into
packets, carried across, reassembled and decoded.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable

import trio

from meshagent_core import (
    CONTROL_CLOSE,
    CONTROL_OPEN,
    ClientSession,
    ErrorContent,
    FileContent,
    JsonContent,
    PacketReader,
    ServerSession,
    TextContent,
)
from meshagent_core.session import events as ev
from meshagent_core.session.base import Session


def _carry(sender: Session, receiver: Session, direction: str, out: Callable[[str], None]) -> list[ev.Event]:
    packets = sender.packets_to_send()
    for message in PacketReader().receive_packets(packets):
        out(f"  {direction} #{message.id:<3} {message.type:<30} {len(message.data):>6} bytes")
    out(f"  ({len(packets)} packets in one write)")
    receiver.receive_packets(packets)
    events = receiver.events_received()
    for event in events:
        out(f"      -> {event!r}"[:160])
    return events


def run_transcript(out: Callable[[str], None] = print) -> dict[str, int]:
    """Run the transcript; returns counts that the tests check."""
    client, server = ClientSession(), ServerSession()

    out("handshake")
    server.send_room_status(status="starting", message="room is starting")
    server.send_room_ready("demo", "ws://127.0.0.1:8078/rooms/demo", "session-1")
    server.send_connected("participant-1", {"name": "alice"})
    _carry(server, client, "S->C", out)

    out("a unary tool call, answered")
    client.set_attributes({"color": "blue"})
    client.invoke_tool("storage", "exists", {"path": "notes.txt"})
    invoked = [e for e in _carry(client, server, "C->S", out) if isinstance(e, ev.ToolInvoked)]
    server.respond(invoked[0].request_id, JsonContent(json={"exists": False}))
    _carry(server, client, "S->C", out)

    out("a streamed upload: 3000 bytes of input chunks, streamed output")
    upload = client.invoke_tool("storage", "upload", input_stream=True)
    client.send_input_chunk(upload.tool_call_id, FileContent(name="notes.txt", mime_type="text/plain", data=b"x" * 3000))
    client.close_input(upload.tool_call_id)
    invoked = [e for e in _carry(client, server, "C->S", out) if isinstance(e, ev.ToolInvoked)]
    server.respond(invoked[0].request_id, CONTROL_OPEN)
    server.send_response_chunk(upload.tool_call_id, TextContent(text="stored 3000 bytes"))
    server.send_response_chunk(upload.tool_call_id, CONTROL_CLOSE)
    _carry(server, client, "S->C", out)

    out("a call routed to a toolkit this participant hosts")
    call_id = server.send_tool_call("echo", "say", JsonContent(json={"text": "hi"}), caller_id="participant-2", tool_call_id="call-1")
    _carry(server, client, "S->C", out)
    client.respond_to_tool_call(call_id, ErrorContent(text="echo is shy", code=1008))
    _carry(client, server, "C->S", out)

    out("the connection drops with a request in flight")
    client.invoke_tool("queues", "receive", {"name": "jobs", "wait": True})
    client.connection_closed("network unreachable", 1006)
    failed = [e for e in client.events_received() if isinstance(e, ev.RequestFailed)]
    for event in failed:
        out(f"      -> {event!r}")
    return {"failed_on_close": len(failed)}


async def run_demo(data_dir: Path, out: Callable[[str], None] = print) -> dict[str, object]:
    """Start the local server and run a two-participant session with the SDK against it;
    returns what the tests check."""
    from meshagent_core import RoomException
    from meshagent_core.tokens import ApiScope, ParticipantToken

    from . import ChildProperty, ElementType, Meshagent, MeshSchema, ServiceHost, Toolkit, ValueProperty, connect, tool
    from .server.app import Server, ServerConfig, load_credentials

    credentials, _ = load_credentials(data_dir)
    server = Server(ServerConfig(data_dir=data_dir, credentials=credentials, port=0))
    results: dict[str, object] = {}
    # A room of its own per run: the data directory keeps earlier runs' files, queues and
    # documents, and the demo must not trip over them.
    room_name = f"demo-{uuid.uuid4().hex[:8]}"

    def token(name: str) -> str:
        participant = ParticipantToken(name=name, project_id=credentials.project_id, api_key_id=credentials.key_id)
        participant.add_role_grant("agent")
        participant.add_room_grant(room_name)
        participant.add_api_grant(ApiScope.agent_default())
        return participant.to_jwt(token=credentials.secret)

    TODO_SCHEMA = MeshSchema(
        root_tag_name="todo",
        elements=[
            ElementType(tag_name="todo", properties=[ChildProperty(name="items", child_tag_names=["item"])]),
            ElementType(
                tag_name="item",
                properties=[ValueProperty(name="title", type="string"), ValueProperty(name="done", type="boolean")],
            ),
        ],
    )

    greeter_stopped = trio.Event()
    services = ServiceHost(host="127.0.0.1", port=0, name="greeter-service")

    @services.path("/greeter", identity="greeter")
    class Greeter:
        async def start(self, *, room: Any) -> None:
            await room.storage.upload(path="notes/greeting.txt", data=b"hello from the greeter service", overwrite=True)

        async def stop(self) -> None:
            greeter_stopped.set()

    @tool
    async def shout(text: str) -> str:
        """Upper-cases text."""
        return text.upper()

    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve)
        url = f"ws://127.0.0.1:{port}/rooms/{room_name}"
        out(f"local MeshAgent server on http://127.0.0.1:{port}")
        api = Meshagent(base_url=f"http://127.0.0.1:{port}", token=credentials.api_key)
        project = credentials.project_id
        room = await api.create_room(project_id=project, name=room_name)
        alice_user = {"type": "user", "email": "alice@example.com"}
        await api.grant_resource_policy(project_id=project, resource_type="room", resource_id=room.id, subject=alice_user, roles=["developer"])
        alice_access = await api.connect_room(project_id=project, room=room_name, email="alice@example.com")
        out(f"REST: made room {room_name}, granted alice@example.com 'developer' in it; connect_room gave her a token")
        async with connect(url, token("echo-agent")) as agent, connect(alice_access.room_url, alice_access.jwt) as alice:
            out(f"echo-agent joined as {agent.local_participant.id}, alice as {alice.local_participant.id}")
            async with agent.agents.host(Toolkit(name="echo", tools=[shout])):
                toolkits = await alice.agents.list_toolkits()
                out(f"alice sees toolkits: {[toolkit.name for toolkit in toolkits]}")
                answer = await alice.agents.invoke_tool(toolkit="echo", tool="shout", input={"text": "hello, room"})
                out(f"alice called echo.shout -> {answer.text!r}")
                results["shout"] = answer.text

            async with alice.developer.logs() as logs:
                await agent.developer.log(type="info", data={"message": "echo-agent is here"})
                async for entry in logs:
                    break
                out(f"developer log: {entry.type}: {entry.data}")
                results["log"] = entry.data

            await alice.storage.upload(path="notes/hello.txt", data=b"written by alice")
            file = await agent.storage.download(path="notes/hello.txt")
            out(f"echo-agent downloaded {file.name} ({file.mime_type}): {file.data!r}")
            results["file"] = file.data

            await alice.queues.send(name="jobs", message={"job": "tidy"})
            job = await agent.queues.receive(name="jobs", wait=True)
            out(f"echo-agent took a job from queue 'jobs' -> {job}")
            results["job"] = job

            await agent.messaging.enable()
            await alice.messaging.enable()
            async with agent.messaging.messages() as messages:
                await alice.messaging.send_message(to=agent.local_participant.id, type="chat", message={"text": "thanks!"})
                async for message in messages:
                    break
            out(f"echo-agent received a chat message from alice: {message.message}")
            results["chat"] = message.message

            plan = "notes/plan.todo"
            document = await alice.sync.open(path=plan, schema=TODO_SCHEMA, initial_json={"todo": {"items": []}})
            mirror = await agent.sync.open(path=plan)
            async with agent.sync.changes(path=plan) as changes:
                document.root.append_child("item", {"title": "write the demo", "done": True})
                document.root.append_child("item", {"title": "ship it", "done": False})
                async for change in changes:
                    if len(mirror.root.get_children()) == 2:
                        break
            out(f"echo-agent sees alice's document {plan}: {mirror.to_json()}")
            mirror.root.get_children()[1]["done"] = True
            await agent.sync.close(path=plan)  # sends its edit before it returns
            await alice.sync.close(path=plan)
            results["document"] = await alice.sync.describe(path=plan)
            out(f"after echo-agent ticked the last item, the room's copy is: {results['document']}")

            await agent.datasets.create_table_from_json_data(name="orders", data=[{"item": "tea", "qty": 2}, {"item": "cake", "qty": 1}])
            await agent.datasets.insert(table="orders", records=[{"item": "scones", "qty": 4}])
            orders = await agent.datasets.sql(query="SELECT item, qty FROM orders WHERE qty > 1 ORDER BY qty DESC")
            out(f"echo-agent made the Lance table 'orders', inserted a row, and asked SQL for qty > 1: {orders.to_pylist()}")
            results["orders"] = orders.to_pylist()

            async with services:
                # room.call: the server mints a token for "greeter" and POSTs a signed webhook
                # to the ServiceHost, which joins the room with it.
                await agent.agents.make_call(name="greeter", url=f"http://127.0.0.1:{services.bound_port}/greeter", arguments={})
                with trio.fail_after(30):
                    while (greeter := alice.messaging.get_participant_by_name("greeter")) is None or not await alice.storage.exists(path="notes/greeting.txt"):
                        await trio.sleep(0.05)
                greeting = await alice.storage.download(path="notes/greeting.txt")
                out(f"echo-agent called the greeter service into the room; it wrote {greeting.data!r}")
                await alice.messaging.send_message(to=greeter, type="dismiss", message={})
                with trio.fail_after(30):
                    await greeter_stopped.wait()
                out("alice dismissed the greeter; it stopped and left")
                results["service"] = greeting.data

            try:
                await alice.invoke("containers", "list_images", {})
            except RoomException as error:
                out(f"alice asked for container images -> error {error.code}: {error.message}")
                results["unavailable"] = error.code
        (session,) = await api.list_recent_room_sessions(project_id=project, room_name=room_name)
        results["session_roles"] = await api.get_session_participant_counts(project_id=project, session_id=session.id)
        out(f"REST: the room's session had participants by role {results['session_roles']}")
        await api.close()
        nursery.cancel_scope.cancel()
    out("done")
    return results
