"""A session transcript through the sans-IO core: a participant and a room server, in memory.

Every message is framed into packets, carried across, reassembled and decoded, so the
transcript shows exactly what the two state machines put on the wire and what they made of it.
"""

from __future__ import annotations

from typing import Callable

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
