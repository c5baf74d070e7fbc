"""The demo: the local server and a session against it, over real sockets.

`run_demo` starts the server on a free port and has two participants meet in a room: one hosts a
toolkit, the other calls it, and the developer log stream shows what happened. `run_transcript`
prints, instead, a session through the sans-IO core alone, in memory: every message framed into
packets, carried across, reassembled and decoded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

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
    """Start the local server, run a two-participant session against it; returns what the tests check."""
    from meshagent_core import BinaryContent, ErrorContent, RoomException, TextContent
    from meshagent_core.session.events import MessageReceived, ToolCallReceived
    from meshagent_core.tokens import ApiScope, ParticipantToken

    from .connection import RoomConnection
    from .server.app import Server, ServerConfig, load_credentials

    credentials, _ = load_credentials(data_dir)
    server = Server(ServerConfig(data_dir=data_dir, credentials=credentials, port=0))
    results: dict[str, object] = {}

    def token(name: str) -> str:
        participant = ParticipantToken(name=name, project_id=credentials.project_id, api_key_id=credentials.key_id)
        participant.add_role_grant("agent")
        participant.add_room_grant("demo")
        participant.add_api_grant(ApiScope.agent_default())
        return participant.to_jwt(token=credentials.secret)

    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve)
        url = f"ws://127.0.0.1:{port}/rooms/demo"
        out(f"local MeshAgent server on http://127.0.0.1:{port}")
        async with RoomConnection.open(url, token("echo-agent")) as host, RoomConnection.open(url, token("alice")) as alice:
            out(f"echo-agent joined as {host.participant_id}, alice as {alice.participant_id}")
            async with alice.stream_call("developer", "logs") as logs:
                await logs.response()
                registration = await host.request(
                    "room.register_toolkit",
                    {"name": "echo", "title": "Echo", "description": "says it back", "tools": {"shout": {"title": "Shout", "description": "upper-cases text"}}, "public": True, "annotations": {}},
                )
                out(f"echo-agent registered toolkit 'echo' ({registration.json['id']})")

                async def serve_echo() -> None:
                    async for event in host.events:
                        if isinstance(event, ToolCallReceived):
                            text = event.arguments.json.get("text", "")
                            if not text:
                                host.respond_to_tool_call(event.call_id, ErrorContent(text="nothing to shout", code=1002))
                                continue
                            await host.invoke("developer", "info", {"message": f"shouting {text!r}", "extra": {}})
                            host.respond_to_tool_call(event.call_id, TextContent(text=text.upper()))
                        elif isinstance(event, MessageReceived) and event.type == "chat":
                            out(f"echo-agent received a chat message: {event.message}")
                            results["chat"] = event.message
                            chat_received.set()

                chat_received = trio.Event()
                nursery.start_soon(serve_echo)
                answer = await alice.invoke("echo", "shout", {"text": "hello, room"})
                out(f"alice called echo.shout -> {answer.text!r}")
                results["shout"] = answer.text
                entry = await logs.next_chunk()
                assert isinstance(entry, BinaryContent)
                out(f"developer log: {entry.headers['type']}: {entry.data.decode()}")
                results["log"] = entry.data.decode()
                await alice.invoke("queues", "send", {"name": "jobs", "create": True, "message": {"job": "tidy"}})
                job = await host.invoke("queues", "receive", {"name": "jobs", "create": True, "wait": True})
                out(f"echo-agent took a job from queue 'jobs' -> {job.json}")
                results["job"] = job.json
                await host.invoke("messaging", "enable", {})
                await alice.invoke("messaging", "enable", {})
                await alice.invoke(
                    "messaging",
                    "send",
                    {"to_participant_id": host.participant_id, "type": "chat", "message_json": '{"text": "thanks!"}', "attachment_base64": None},
                )
                with trio.fail_after(10):
                    await chat_received.wait()
                try:
                    await alice.invoke("sync", "describe", {"path": "notes.doc"})
                except RoomException as error:
                    out(f"alice asked for sync -> error {error.code}: {error.message}")
                    results["unavailable"] = error.code
            nursery.cancel_scope.cancel()
    out("done")
    return results
