from __future__ import annotations

import msgspec
import pytest

from meshagent_core import (
    CONTROL_CLOSE,
    CONTROL_OPEN,
    BinaryContent,
    ClientSession,
    ConnectionLost,
    ControlContent,
    EnvelopeError,
    ErrorContent,
    JsonContent,
    JsonStyle,
    LocalProtocolError,
    ServerSession,
    SessionState,
    TextContent,
    encode_message,
    pack_message,
)
from meshagent_core import messages as m
from meshagent_core.envelope import unpack_message
from meshagent_core.session import events as ev
from meshagent_core.session.base import decode_arguments
from meshagent_core.testing import vectors

VECTORS = vectors.load("wire_vectors")


def ready_pair() -> tuple[ClientSession, ServerSession]:
    client, server = ClientSession(), ServerSession()
    server.send_room_ready("r", "ws://h/rooms/r", "s")
    server.send_connected("p1", {"name": "alice"})
    pump(server, client)
    client.events_received()
    return client, server


def pump(sender, receiver) -> list[ev.Event]:
    receiver.receive_packets(sender.packets_to_send())
    return receiver.events_received()


def raw(session, type: str, header: bytes | dict, payload: bytes = b"", message_id: int = 1) -> list[ev.Event]:
    """Feed a hand-made message to a session."""
    if isinstance(header, dict):
        data = pack_message(header, payload)
    else:
        data = len(header).to_bytes(8, "big") + header + payload
    session.receive_packets(encode_message(message_id, type, data))
    return session.events_received()


# --- handshake -------------------------------------------------------------------------------


@pytest.mark.parametrize("init_first", [False, True])
def test_ready_needs_both_messages_in_either_order(init_first: bool) -> None:
    client = ClientSession()
    first = {"type": "init", "participantId": "p1", "attributes": {"a": 1}}
    second = {"room_name": "r", "room_url": "u", "session_id": "s"}
    types = ["connected", "room_ready"]
    if not init_first:
        first, second = second, first
        types.reverse()
    assert raw(client, types[0], first) == []
    assert client.state is SessionState.CONNECTING
    (ready,) = raw(client, types[1], second)
    assert ready == ev.SessionReady("r", "u", "s", "p1", {"a": 1})
    assert client.state is SessionState.READY and client.participant_id == "p1"


def test_room_ready_missing_field_is_reported_and_does_not_enter() -> None:
    client = ClientSession()
    (event,) = raw(client, "room_ready", {"room_name": "r"})
    assert isinstance(event, ev.MalformedMessage) and str(event.error) == "invalid room_ready message: Object missing required field `room_url`"
    raw(client, "connected", {"type": "init", "participantId": "p", "attributes": {}})
    assert client.state is SessionState.CONNECTING


def test_connected_other_than_init_is_ignored() -> None:
    client = ClientSession()
    assert raw(client, "connected", {"type": "other"}) == []
    assert client.participant_id is None


def test_server_vectors_decode_into_events() -> None:
    client = ClientSession()
    decoded = []
    for case in VECTORS:
        if case["kind"] == "message" and case["direction"] == "server->client" and case["input"]["type"] != "__response__":
            client.receive_packets(bytes.fromhex(frame["hex"]) for frame in case["frames"])
            decoded.extend(client.events_received())
    kinds = [type(e).__name__ for e in decoded]
    assert "SessionReady" in kinds and "RoomStatus" in kinds and "ToolCallReceived" in kinds
    messages = [e for e in decoded if isinstance(e, ev.MessageReceived)]
    assert messages[0].type == "participant.enabled" and messages[0].message["attributes"] == {"name": "bob"}
    assert messages[1] == ev.MessageReceived("p-2", "chat", {"text": "hi"}, b"\x01\x02")
    (call,) = [e for e in decoded if isinstance(e, ev.ToolCallReceived)]
    assert (call.call_id, call.toolkit, call.name, call.tool_call_id) == (11, "mytk", "echo", "tc-1")


def test_client_vectors_are_what_the_client_session_sends() -> None:
    client = ClientSession(json_style=JsonStyle.PYTHON)
    client.set_attributes({"name": "alice", "color": "blue"})
    client.invoke_tool("storage", "exists", {"path": "a.txt"}, tool_call_id="0123456789abcdef0123456789abcdef")
    expected = [c for c in VECTORS if c["kind"] == "message" and c["description"].startswith("client->server")]
    sent = client.packets_to_send()
    assert sent[:2] == [bytes.fromhex(f["hex"]) for f in expected[0]["frames"]]
    assert sent[2:] == [bytes.fromhex(f["hex"]) for f in expected[1]["frames"]]


# --- requests --------------------------------------------------------------------------------


def test_response_for_unknown_id_is_dropped() -> None:
    client, _ = ready_pair()
    assert raw(client, "__response__", {"type": "empty"}, message_id=42) == []


def test_undecodable_response_fails_the_request_instead_of_hanging() -> None:
    client, _ = ready_pair()
    request_id = client.send_request("room.list_toolkits", {})
    (event,) = raw(client, "__response__", {"type": "video"}, message_id=request_id)
    assert isinstance(event, ev.RequestFailed) and event.error.code == 1002
    assert "unsupported content type: video" in event.error.message
    assert not client.pending_requests


def test_error_response_is_an_outcome_with_code() -> None:
    client, server = ready_pair()
    invocation = client.invoke_tool("storage", "stat", {"path": "x"})
    (invoked,) = pump(client, server)
    server.respond(invoked.request_id, ErrorContent(text="file not found", code=3001))
    (event,) = pump(server, client)
    assert event.content.to_exception().code == 3001
    assert invocation.request_id == event.request_id


def test_responding_twice_is_a_local_error() -> None:
    client, server = ready_pair()
    client.send_request("room.list_toolkits", {})
    (request,) = pump(client, server)
    assert isinstance(request, ev.RequestReceived) and request.header == {}
    server.respond(request.request_id, {"tools": {}})
    with pytest.raises(LocalProtocolError):
        server.respond(request.request_id, {"tools": {}})


def test_sending_after_close_raises_connection_lost() -> None:
    client, _ = ready_pair()
    client.connection_closed("bye")
    with pytest.raises(ConnectionLost) as info:
        client.invoke_tool("a", "b")
    assert info.value.code == 1006


def test_packets_after_close_are_ignored() -> None:
    client, _ = ready_pair()
    client.connection_closed("bye")
    client.events_received()
    assert raw(client, "messaging.send", {"from_participant_id": "x", "type": "t", "message": {}}) == []


def test_output_stream_with_progress_event_and_abnormal_close() -> None:
    client, server = ready_pair()
    invocation = client.invoke_tool("tk", "t")
    (invoked,) = pump(client, server)
    server.respond(invoked.request_id, CONTROL_OPEN)
    server.send_response_chunk(invocation.tool_call_id, {"type": "agent.event", "step": 1})
    server.send_response_chunk(invocation.tool_call_id, BinaryContent(headers={"k": 1}, data=b"\x00" * 3000))
    server.send_response_chunk(invocation.tool_call_id, ControlContent(method="close", status_code=1007, message="bad schema"))
    opened, progress, data, closed = pump(server, client)
    assert opened.content == CONTROL_OPEN
    assert progress.chunk == {"type": "agent.event", "step": 1}
    assert data.chunk == BinaryContent(headers={"k": 1}, data=b"\x00" * 3000)
    assert closed == ev.ResponseStreamClosed(invocation.tool_call_id, 1007, "bad schema") and not closed.normal


def test_malformed_chunk_fails_its_stream() -> None:
    client, server = ready_pair()
    invocation = client.invoke_tool("tk", "t")
    (invoked,) = pump(client, server)
    server.respond(invoked.request_id, CONTROL_OPEN)
    pump(server, client)
    (event,) = raw(client, "room.tool_call_response_chunk", {"tool_call_id": invocation.tool_call_id, "chunk": {"type": "json"}})
    assert isinstance(event, ev.ResponseStreamFailed)
    assert event.error.message == (
        "unable to unpack tool call response chunk payload: json content is missing required field 'json'"
    )
    assert not client.open_response_streams


def test_input_stream_rules() -> None:
    client, server = ready_pair()
    invocation = client.invoke_tool("tk", "t", input_stream=True)
    with pytest.raises(LocalProtocolError):
        client.send_input_chunk(invocation.tool_call_id, CONTROL_CLOSE)
    client.send_input_chunk(invocation.tool_call_id, TextContent(text="a"))
    client.close_input(invocation.tool_call_id)
    with pytest.raises(LocalProtocolError):
        client.send_input_chunk(invocation.tool_call_id, TextContent(text="b"))
    invoked, chunk, closed = pump(client, server)
    assert invoked.input_stream and chunk.chunk == TextContent(text="a") and closed.status_code == 1000
    with pytest.raises(ValueError):
        client.invoke_tool("tk", "t", {"a": 1}, input_stream=True)


def test_abandon_closes_the_input_stream_and_drops_the_late_answer() -> None:
    client, server = ready_pair()
    invocation = client.invoke_tool("tk", "t", input_stream=True)
    client.abandon(invocation.request_id)
    invoked, closed = pump(client, server)
    assert isinstance(closed, ev.RequestStreamClosed)
    server.respond(invoked.request_id, JsonContent(json={}))
    assert pump(server, client) == []


def test_set_attributes_strips_the_reserved_key_and_merges() -> None:
    client, server = ready_pair()
    client.set_attributes({"color": "blue"})
    (event,) = pump(client, server)
    assert event == ev.AttributesSet({"color": "blue"})
    assert client.attributes == {"name": "alice", "color": "blue"}


def test_local_attributes_win_after_a_new_init() -> None:
    client = ClientSession()
    client.attributes = {"color": "red"}
    raw(client, "room_ready", {"room_name": "r", "room_url": "u", "session_id": "s"})
    (ready,) = raw(client, "connected", {"type": "init", "participantId": "p", "attributes": {"color": "x", "n": 1}})
    assert ready.attributes == {"color": "red", "n": 1}


# --- server side bad input -------------------------------------------------------------------


def test_malformed_invoke_is_answered_with_an_error() -> None:
    _, server = ready_pair()
    events = raw(server, "room.invoke_tool", {"toolkit": "storage"}, message_id=5)
    assert isinstance(events[0], ev.MalformedMessage)
    client = ClientSession()
    client._pending[5] = None  # the request this answer belongs to
    client.receive_packets(server.packets_to_send())
    (answer,) = client.events_received()
    assert isinstance(answer.content, ErrorContent) and answer.content.code == 1002
    assert "tool" in answer.content.text


def general_invoke_outcome(data: bytes) -> tuple[object, ...]:
    """How an invoke_tool envelope decodes on the general path (a dict header, then
    `decode_arguments`), which the server's one-pass decoding must agree with."""
    try:
        header, payload = unpack_message(data)
        invoke = msgspec.convert(header, type=m.InvokeTool)
        arguments = decode_arguments(invoke.arguments, payload)
    except (EnvelopeError, msgspec.ValidationError) as error:
        return ("refused", str(error) if isinstance(error, EnvelopeError) else str(EnvelopeError(str(error))))
    return ("invoked", invoke.toolkit, invoke.tool, arguments, invoke.tool_call_id, invoke.participant_id, invoke.on_behalf_of_id)


def server_invoke_outcome(data: bytes) -> tuple[object, ...]:
    _, server = ready_pair()
    server.receive_packets(encode_message(7, "room.invoke_tool", data))
    (event,) = server.events_received()
    if isinstance(event, ev.MalformedMessage):
        return ("refused", str(event.error))
    return ("invoked", event.toolkit, event.tool, event.arguments, event.tool_call_id, event.participant_id, event.on_behalf_of_id)


INVOKE_ARGUMENTS = [
    b'{"type":"json","json":{"path":"a"}}',
    b'{"json":{"path":"a"},"type":"json"}',
    b'{"path":"a"}',
    b'{}',
    b'{"type":"custom","x":1}',
    b'{"type":"json"}',
    b'{"type":"json","json":1,"json":2}',
    b'{"type":"json","json":1,"type":"text","text":"a"}',
    b'{"type":"text","text":5}',
    b'{"type":"file","name":"a.txt","mime_type":"text/plain"}',
    b'{"type":"binary","headers":{"kind":"start"}}',
    b'{"type":"binary","headers":[1]}',
    b'{"type":"control","method":"open"}',
    b'{"type":"control","method":"close","status_code":"1007","message":3}',
    b'{"type":"error","text":"x","code":true}',
    b'{"type":"json","json":NaN}',
    b'{"type":"text","text":"\\ud800"}',
    b'[1]',
    b'"text"',
    b'null',
]


@pytest.mark.parametrize("payload", [b"", b"bytes"])
@pytest.mark.parametrize("arguments", INVOKE_ARGUMENTS)
def test_invoke_arguments_decode_as_on_the_general_path(arguments: bytes, payload: bytes) -> None:
    header = b'{"toolkit":"tk","tool":"t","participant_id":null,"on_behalf_of_id":"o","arguments":' + arguments
    header += b',"tool_call_id":"c","__meshagent__":{"v":1,"otel":{}}}'
    data = len(header).to_bytes(8, "big") + header + payload
    assert server_invoke_outcome(data) == general_invoke_outcome(data)


def test_undecodable_request_is_answered_with_an_error() -> None:
    _, server = ready_pair()
    events = raw(server, "room.list_toolkits", b"[1]", message_id=3)
    assert isinstance(events[0], ev.MalformedMessage)
    assert isinstance(events[0].error, EnvelopeError)
    assert server.packets_to_send(), "the caller must get an answer"


def test_duplicate_request_id_is_reported() -> None:
    _, server = ready_pair()
    raw(server, "room.list_toolkits", {}, message_id=3)
    (event,) = raw(server, "room.list_toolkits", {}, message_id=3)
    assert isinstance(event, ev.MalformedMessage) and "already in use" in str(event.error)


def test_unknown_one_way_from_host_is_reported() -> None:
    _, server = ready_pair()
    (event,) = raw(server, "room.tool_call_response", {"type": "empty"}, message_id=99)
    assert isinstance(event, ev.MalformedMessage)


# --- hosting ---------------------------------------------------------------------------------


def test_hosted_call_round_trip_with_streamed_output() -> None:
    client, server = ready_pair()
    call_id = server.send_tool_call("mytk", "echo", JsonContent(json={"x": 1}), caller_id="p2", tool_call_id="tc1")
    (call,) = pump(server, client)
    assert call.call_id == call_id and call.arguments == JsonContent(json={"x": 1})
    client.respond_to_tool_call(call_id, CONTROL_OPEN)
    client.send_tool_call_chunk(call_id, {"type": "progress"})
    client.send_tool_call_chunk(call_id, TextContent(text="out"))
    client.send_tool_call_chunk(call_id, CONTROL_CLOSE)
    with pytest.raises(LocalProtocolError):
        client.send_tool_call_chunk(call_id, TextContent(text="late"))
    opened, progress, out, closed = pump(client, server)
    assert opened == ev.HostResponse(call_id, CONTROL_OPEN)
    assert progress.chunk == {"type": "progress"} and out.chunk == TextContent(text="out")
    assert closed == ev.HostStreamClosed(call_id, "tc1", 1000, None)
    assert not server.routed_calls


def test_input_chunks_before_the_call_are_held_until_it_arrives() -> None:
    client, _ = ready_pair()
    raw(client, "room.tool_call_request_chunk.tk", {"tool_call_id": "t1", "chunk": {"type": "text", "text": "early"}}, message_id=1)
    assert client.events_received() == []
    events = raw(client, "room.tool_call.tk", {"name": "n", "arguments": {"type": "control", "method": "open"}, "caller_id": "c", "tool_call_id": "t1"}, message_id=2)
    assert [type(e) for e in events] == [ev.ToolCallReceived, ev.ToolCallInputChunk]
    assert events[1].chunk == TextContent(text="early")


def test_legacy_plain_object_arguments_are_json() -> None:
    client, _ = ready_pair()
    (call,) = raw(client, "room.tool_call.tk", {"name": "n", "arguments": {"x": 1}, "caller_id": "c"}, message_id=8)
    assert call.arguments == JsonContent(json={"x": 1}) and call.tool_call_id == "8"


def test_malformed_hosted_call_is_refused_to_the_server() -> None:
    client, server = ready_pair()
    call_id = server.send_tool_call("tk", "n", JsonContent(json={}), caller_id="c", tool_call_id="t")
    server.packets_to_send()  # lost; replaced by a broken one with the same id
    (event,) = raw(client, "room.tool_call.tk", {"arguments": {}}, message_id=call_id)
    assert isinstance(event, ev.MalformedMessage)
    (answer,) = pump(client, server)
    assert isinstance(answer, ev.HostResponse) and answer.content.code == 1002


def test_host_leaving_fails_routed_calls() -> None:
    _, server = ready_pair()
    call_id = server.send_tool_call("tk", "n", JsonContent(json={}), caller_id="c", tool_call_id="t")
    server.connection_closed("host left")
    failed, closed = server.events_received()
    assert failed.call_id == call_id and isinstance(failed.error, ConnectionLost)
    assert isinstance(closed, ev.SessionClosed)


def test_unhandled_message_type() -> None:
    client, _ = ready_pair()
    (event,) = raw(client, "room.sync", {"x": 1})
    assert isinstance(event, ev.UnhandledMessage) and event.type == "room.sync"


def test_file_and_log_events() -> None:
    client, _ = ready_pair()
    assert raw(client, "storage.file.updated", {"path": "a", "participant_id": "p"}) == [ev.FileUpdated("a", "p")]
    assert raw(client, "storage.file.moved", {"source_path": "a", "destination_path": "b", "participant_id": "p"}) == [
        ev.FileMoved("a", "b", "p")
    ]
    assert raw(client, "developer.log", {"type": 3, "data": {}}) == [ev.DeveloperLogReceived("unknown", {})]
    (bad,) = raw(client, "storage.file.deleted", {"path": "a"})
    assert isinstance(bad, ev.MalformedMessage)


def test_input_after_the_connection_dropped_raises_connection_lost() -> None:
    client, _ = ready_pair()
    invocation = client.invoke_tool("tk", "t", input_stream=True)
    client.connection_closed("network down", 1006)
    with pytest.raises(ConnectionLost) as info:
        client.send_input_chunk(invocation.tool_call_id, TextContent(text="late"))
    assert info.value.code == 1006
    with pytest.raises(ConnectionLost):
        client.close_input(invocation.tool_call_id)
