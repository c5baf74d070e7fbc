"""Containment over real sockets: what one participant sends can fail only its own request (or,
at worst, its own connection). Deeply nested JSON anywhere, undecodable requests answered at
once, and the message shapes of the TypeScript client (null keys left out, every request chunk
a request of its own that waits for its empty `__response__`).

The offender speaks the wire protocol by hand (`RawParticipant`: packets and envelopes built
with the core's helpers, or raw bytes); a bystander in the same room is an ordinary
`RoomConnection`. Every wait is bounded by `trio.fail_after` (a hang guard).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import subprocess
import textwrap
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import msgspec
import pytest
import trio

from meshagent_core import (
    BinaryContent,
    ClientSession,
    ControlContent,
    EmptyContent,
    ErrorCode,
    ErrorContent,
    JsonContent,
    Message,
    PacketReader,
    RoomException,
    encode_message,
    pack_message,
    unpack_content,
    unpack_message,
)
from meshagent_core import messages as m
from meshagent_core.content import pack_content
from meshagent_core.session import events as ev
from meshagent_core.session.base import decode_chunk_message
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server.toolkits.storage import PULL_CHUNK_SIZE
from meshagent_trio.websocket import HandshakeRejected, WebSocketClosed, WebSocketConnection, connect_websocket
from roomtest import mint, room_url

ROOM = "test-room"
DEPTHS = [1_000, 100_000]
#: Hang guard for one exchange with the server (a local socket answers in microseconds).
STEP = 5


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def envelope(header: bytes, payload: bytes = b"") -> bytes:
    """An envelope around header bytes exactly as given (however malformed)."""
    return struct.pack(">Q", len(header)) + header + payload


class RawParticipant:
    """A participant speaking the protocol by hand: fresh message ids, raw envelopes, and every
    message it receives kept in `inbox` until a test takes it."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.reader = PacketReader()
        self.inbox: list[Message] = []
        self.participant_id = ""
        self._last_id = 1_000

    @classmethod
    @asynccontextmanager
    async def join(cls, server, credentials, name: str = "offender") -> AsyncIterator["RawParticipant"]:
        with trio.fail_after(STEP):
            ws = await connect_websocket(room_url(server, ROOM), headers={"Authorization": "Bearer " + mint(credentials, ROOM, name=name)})
            raw = cls(ws)
            connected = await raw.next(lambda message: message.type == m.CONNECTED)
            raw.participant_id = unpack_message(connected.data)[0]["participantId"]
            await raw.next(lambda message: message.type == m.ROOM_READY)
        try:
            yield raw
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                try:
                    await ws.close()
                except (WebSocketClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                    pass

    def new_id(self) -> int:
        self._last_id += 1
        return self._last_id

    async def send(self, type: str, data: bytes, message_id: int | None = None) -> int:
        message_id = self.new_id() if message_id is None else message_id
        await self.ws.send_packets(encode_message(message_id, type, data))
        return message_id

    async def send_header(self, type: str, header: dict[str, Any], payload: bytes = b"") -> int:
        return await self.send(type, pack_message(header, payload))

    async def next(self, match: Callable[[Message], bool]) -> Message:
        """The first message (kept or newly read) that `match`es; others stay in `inbox`."""
        while True:
            for index, message in enumerate(self.inbox):
                if match(message):
                    return self.inbox.pop(index)
            self.inbox.extend(self.reader.receive_packets(await self.ws.receive_packets()))

    async def answer(self, request_id: int) -> Any:
        message = await self.next(lambda message: message.type == m.RESPONSE and message.id == request_id)
        return unpack_content(message.data)

    async def error_answer(self, request_id: int) -> ErrorContent:
        answer = await self.answer(request_id)
        assert isinstance(answer, ErrorContent), answer
        return answer


def invoke_header(toolkit: str, tool: str, arguments: Any, tool_call_id: str = "call-1") -> dict[str, Any]:
    """`room.invoke_tool` as the TypeScript client writes it: no null keys."""
    return {"toolkit": toolkit, "tool": tool, "arguments": arguments, "tool_call_id": tool_call_id}


async def next_message(room: RoomConnection, type: str) -> ev.MessageReceived:
    """The next `messaging.send` of `type` the room connection gets (others are skipped)."""
    while True:
        event = await room.next_event(ev.MessageReceived)
        if event.type == type:
            return event


async def room_still_serves(server, credentials, bystander: RoomConnection) -> None:
    """The bystander is answered, and a newcomer can join and is answered."""
    with trio.fail_after(STEP):
        assert isinstance(await bystander.request("room.list_toolkits", {}), JsonContent)
        async with RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name="newcomer")) as newcomer:
            assert isinstance(await newcomer.request("room.list_toolkits", {}), JsonContent)
            assert isinstance(await newcomer.invoke("storage", "exists", {"path": "x.txt"}), JsonContent)


@asynccontextmanager
async def offender_and_bystander(server, credentials) -> AsyncIterator[tuple[RawParticipant, RoomConnection]]:
    async with RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name="bystander")) as bystander:
        with trio.fail_after(STEP):
            await bystander.request("room.list_toolkits", {})
        async with RawParticipant.join(server, credentials) as offender:
            yield offender, bystander


# --- 1. deeply nested JSON -------------------------------------------------------------------

# Each: (message type, header bytes around the nesting). All carry an id the server answers.
DEEP_REQUESTS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "request header": (
        "room.list_toolkits",
        lambda nesting: b'{"extra":' + nesting + b"}",
    ),
    "invoke arguments": (
        "room.invoke_tool",
        lambda nesting: b'{"toolkit":"storage","tool":"exists","arguments":' + nesting + b',"tool_call_id":"deep-1"}',
    ),
    "json of the arguments": (
        "room.invoke_tool",
        lambda nesting: b'{"toolkit":"storage","tool":"exists","arguments":{"type":"json","json":{"path":"a.txt","x":'
        + nesting
        + b'}},"tool_call_id":"deep-2"}',
    ),
    "json of the arguments of a hosted toolkit call": (
        "room.invoke_tool",
        lambda nesting: b'{"toolkit":"nobody-hosts-this","tool":"t","arguments":{"type":"json","json":'
        + nesting
        + b'},"tool_call_id":"deep-3"}',
    ),
    "request chunk header": (
        "room.tool_call_request_chunk",
        lambda nesting: b'{"tool_call_id":"deep-4","chunk":' + nesting + b"}",
    ),
}


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("place", list(DEEP_REQUESTS))
async def test_deep_json_in_a_request_fails_that_request_only(server, credentials, place: str, depth: int) -> None:
    type, build = DEEP_REQUESTS[place]
    async with offender_and_bystander(server, credentials) as (offender, bystander):
        with trio.fail_after(STEP):
            request_id = await offender.send(type, envelope(build(deep(depth))))
            error = await offender.error_answer(request_id)
        assert error.code == 1002, error
        await room_still_serves(server, credentials, bystander)
        with trio.fail_after(STEP):  # and the offender itself is still served
            assert isinstance(await offender.answer(await offender.send_header("room.list_toolkits", {})), JsonContent)


@pytest.mark.parametrize("depth", DEPTHS)
async def test_deep_attributes_are_dropped_and_the_offender_stays_connected(server, credentials, depth: int) -> None:
    async with offender_and_bystander(server, credentials) as (offender, bystander):
        with trio.fail_after(STEP):
            await bystander.invoke("messaging", "enable", {})
        with trio.fail_after(STEP):
            await offender.send(m.SET_ATTRIBUTES, envelope(b'{"deep":' + deep(depth) + b"}"))
            await offender.send_header(m.SET_ATTRIBUTES, {"shallow": 1})
            # still connected and served, in order: the shallow change took effect, the deep one did not
            assert isinstance(await offender.answer(await offender.send_header("room.list_toolkits", {})), JsonContent)
            await offender.answer(await offender.send_header("room.invoke_tool", invoke_header("messaging", "enable", {"type": "json", "json": {}})))
            enabled = await next_message(bystander, "participant.enabled")
        assert enabled.from_participant_id == offender.participant_id, enabled
        assert enabled.message["attributes"] == {"name": "offender", "shallow": 1}, enabled
        await room_still_serves(server, credentials, bystander)


@pytest.mark.parametrize("depth", DEPTHS)
async def test_deep_message_json_is_refused_and_nothing_is_delivered(server, credentials, depth: int) -> None:
    async with offender_and_bystander(server, credentials) as (offender, bystander):
        with trio.fail_after(STEP):
            await bystander.invoke("messaging", "enable", {})
        message_json = '{"a":' + deep(depth).decode() + "}"
        arguments = {"to_participant_id": bystander.participant_id, "type": "chat", "message_json": message_json}
        with trio.fail_after(STEP):
            request_id = await offender.send_header("room.invoke_tool", invoke_header("messaging", "send", {"type": "json", "json": arguments}))
            error = await offender.error_answer(request_id)
        assert error.code == 1002 and "message_json" in error.text, error
        with trio.fail_after(STEP):  # a good message after it is the first one delivered
            arguments["message_json"] = '{"a":1}'
            assert isinstance(await offender.answer(await offender.send_header("room.invoke_tool", invoke_header("messaging", "send", {"type": "json", "json": arguments}, "call-2"))), EmptyContent)
            received = await next_message(bystander, "chat")
        assert received.message == {"a": 1}, received  # the first chat message it got
        await room_still_serves(server, credentials, bystander)


async def test_deep_json_in_a_live_upload_chunk_fails_the_chunk_not_the_room(server, credentials) -> None:
    """A deep chunk for an upload in progress: its acknowledgement is an error; the upload is
    still waiting for a usable chunk and completes."""
    async with offender_and_bystander(server, credentials) as (offender, bystander):
        with trio.fail_after(STEP):
            upload = TsUpload(offender, "live.bin", b"abc")
            await upload.start()
            bad = await offender.send(m.TOOL_CALL_REQUEST_CHUNK, envelope(b'{"tool_call_id":"' + upload.tool_call_id.encode() + b'","chunk":' + deep(100_000) + b"}"))
            assert (await offender.error_answer(bad)).code == 1002
            await upload.finish()
        await room_still_serves(server, credentials, bystander)
        with trio.fail_after(STEP):
            assert (await bystander_download(bystander, "live.bin")) == b"abc"


async def test_a_token_with_a_deep_header_is_refused_at_the_door(server, credentials) -> None:
    good = mint(credentials, ROOM, name="mallory")
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT","x":' + deep(1_000) + b"}").rstrip(b"=").decode()
    token = header + good[good.index(".") :]
    async with RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name="bystander")) as bystander:
        with trio.fail_after(STEP):
            with pytest.raises(HandshakeRejected) as info:
                await connect_websocket(room_url(server, ROOM), headers={"Authorization": "Bearer " + token})
        assert info.value.status == 403, info.value
        await room_still_serves(server, credentials, bystander)


def nested_list(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


async def next_messaging_event(room: RoomConnection) -> ev.Event:
    """The next `messaging.send` the room connection gets, decodable (`MessageReceived`) or not
    (`MalformedMessage`)."""
    while True:
        event = await room.next_event(ev.MessageReceived, ev.MalformedMessage)
        if isinstance(event, ev.MessageReceived) or event.type == m.MESSAGING_SEND:
            return event


async def test_attributes_the_server_accepts_reach_the_other_participants(server, credentials) -> None:
    async with RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name="a")) as a:
        a.set_attributes({"k": nested_list(253)})  # the set_attributes header is 254 levels: accepted
        with trio.fail_after(STEP):
            await a.invoke("messaging", "enable", {})
        async with RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name="b")) as b:
            with trio.fail_after(STEP):
                await b.invoke("messaging", "enable", {})
                event = await next_messaging_event(b)
            # either the server kept the value (and b can read it) or it refused it: b must
            # get a messaging.enabled it can decode
            assert isinstance(event, ev.MessageReceived) and event.type == "messaging.enabled", event


async def test_a_message_the_server_accepts_is_delivered_or_refused(server, credentials) -> None:
    async with RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name="a")) as a:
        async with RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name="b")) as b:
            with trio.fail_after(STEP):
                await b.invoke("messaging", "enable", {})
            message_json = json.dumps({"k": nested_list(255)})  # 256 levels
            arguments = {"to_participant_id": b.participant_id, "type": "chat", "message_json": message_json}
            with trio.fail_after(STEP):
                try:
                    await a.invoke("messaging", "send", arguments)
                except RoomException as refused:  # refusing it is fine
                    assert refused.code == 1002
                    return
                event = await next_messaging_event(b)
                while isinstance(event, ev.MessageReceived) and event.type != "chat":
                    event = await next_messaging_event(b)
            assert isinstance(event, ev.MessageReceived), event  # accepted: then it must arrive


# --- 2. undecodable requests are answered at once --------------------------------------------

UNDECODABLE: dict[str, tuple[str, bytes]] = {
    "invalid header JSON": ("room.list_toolkits", envelope(b'{"participant_name": nope}')),
    "invalid header JSON (invoke)": ("room.invoke_tool", envelope(b'{"toolkit":"storage",')),
    "header length past the end": ("room.list_toolkits", struct.pack(">Q", 100) + b"{}"),
    "header length past the end (invoke)": ("room.invoke_tool", struct.pack(">Q", 1 << 40) + b"{}"),
    "envelope shorter than 8 bytes": ("room.list_toolkits", b"\x00\x00\x01"),
    "envelope shorter than 8 bytes (invoke)": ("room.invoke_tool", b"\x00"),
    "empty envelope": ("room.list_toolkits", b""),
    "header is an array": ("room.list_toolkits", envelope(b"[1,2]")),
    "header is a string (invoke)": ("room.invoke_tool", envelope(b'"storage"')),
    "header is null": ("room.list_toolkits", envelope(b"null")),
    "unknown content type in arguments": (
        "room.invoke_tool",
        pack_message(invoke_header("storage", "exists", {"type": "no-such-type", "path": "a"})),
    ),
    "arguments not an object": ("room.invoke_tool", pack_message(invoke_header("storage", "exists", 42))),
    "arguments a list": ("room.invoke_tool", pack_message(invoke_header("storage", "exists", [{"path": "a"}]))),
    "missing toolkit": (
        "room.invoke_tool",
        pack_message({"tool": "exists", "arguments": {"type": "json", "json": {"path": "a"}}, "tool_call_id": "t"}),
    ),
    "missing tool_call_id": (
        "room.invoke_tool",
        pack_message({"toolkit": "storage", "tool": "exists", "arguments": {"type": "json", "json": {"path": "a"}}}),
    ),
    "toolkit not a string": ("room.invoke_tool", pack_message(invoke_header(7, "exists", {"type": "json", "json": {}}))),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", list(UNDECODABLE))
async def test_an_undecodable_request_is_answered_at_once(server, credentials, case: str) -> None:
    type, data = UNDECODABLE[case]
    async with RawParticipant.join(server, credentials) as raw:
        request_id = raw.new_id()
        with trio.fail_after(1):  # a hang guard: nothing else is sent that could push the answer out
            await raw.send(type, data, request_id)
            error = await raw.error_answer(request_id)
        assert error.code == 1002, error
        assert raw.inbox == [], raw.inbox  # nothing but the answer
        with trio.fail_after(STEP):  # the connection goes on
            assert isinstance(await raw.answer(await raw.send_header("room.list_toolkits", {})), JsonContent)


async def test_undecodable_requests_in_one_batch_are_each_answered(server, credentials) -> None:
    async with RawParticipant.join(server, credentials) as raw:
        ids = [raw.new_id() for _ in UNDECODABLE]
        packets = [packet for (type, data), request_id in zip(UNDECODABLE.values(), ids) for packet in encode_message(request_id, type, data)]
        with trio.fail_after(1):
            await raw.ws.send_packets(packets)
            for request_id in ids:
                await raw.error_answer(request_id)
        assert raw.inbox == []


# --- 3. the TypeScript client's shapes -------------------------------------------------------


async def test_invoke_without_participant_and_on_behalf_of_keys_is_answered(server, credentials) -> None:
    async with RawParticipant.join(server, credentials) as raw:
        with trio.fail_after(1):
            header = invoke_header("storage", "exists", {"type": "json", "json": {"path": "nothing.txt"}})
            assert "participant_id" not in header and "on_behalf_of_id" not in header
            answer = await raw.answer(await raw.send_header("room.invoke_tool", header))
        assert isinstance(answer, JsonContent) and answer.json == {"exists": False}, answer
        with trio.fail_after(1):  # the legacy form of the arguments (a plain object), same shape
            answer = await raw.answer(await raw.send_header("room.invoke_tool", invoke_header("storage", "exists", {"path": "nothing.txt"}, "call-2")))
        assert isinstance(answer, JsonContent) and answer.json == {"exists": False}, answer
        with trio.fail_after(1):  # and through the standard-library path (a NaN in the header)
            data = envelope(b'{"toolkit":"storage","tool":"exists","arguments":{"type":"json","json":{"path":"nothing.txt","n":NaN}},"tool_call_id":"call-3"}')
            answer = await raw.answer(await raw.send("room.invoke_tool", data))
        assert isinstance(answer, JsonContent) and answer.json == {"exists": False}, answer


class TsUpload:
    """`storage.upload` as the TypeScript client does it: every request chunk is a message with
    its own id, and the next one is sent only once the empty `__response__` to it arrived."""

    def __init__(self, raw: RawParticipant, path: str, data: bytes) -> None:
        self.raw = raw
        self.path = path
        self.data = data
        self.tool_call_id = f"ts-upload-{raw.new_id()}"
        self.request_id = 0
        self.pulls: list[int] = []
        self.acknowledged = 0

    async def chunk(self, content: Any) -> None:
        header = {"tool_call_id": self.tool_call_id, "chunk": msgspec.to_builtins(content.header())}
        chunk_id = await self.raw.send(m.TOOL_CALL_REQUEST_CHUNK, pack_message(header, content.data))
        ack = await self.raw.answer(chunk_id)
        assert isinstance(ack, EmptyContent), ack
        self.acknowledged += 1

    async def start(self) -> None:
        header = invoke_header("storage", "upload", {"type": "control", "method": "open"}, self.tool_call_id)
        self.request_id = await self.raw.send_header("room.invoke_tool", header)
        start = {"kind": "start", "path": self.path, "overwrite": False, "name": self.path, "mime_type": "application/octet-stream", "size": len(self.data)}
        await self.chunk(BinaryContent(headers=start))
        opened = await self.raw.answer(self.request_id)
        assert isinstance(opened, ControlContent) and opened.is_open, opened

    async def finish(self) -> None:
        offset = 0
        while True:
            message = await self.raw.next(lambda message: message.type == m.TOOL_CALL_RESPONSE_CHUNK)
            header, chunk = decode_chunk_message(message.data)
            assert header.tool_call_id == self.tool_call_id
            if isinstance(chunk, ControlContent) and chunk.is_close:
                assert chunk.status_code == 1000, chunk
                return
            assert isinstance(chunk, BinaryContent) and chunk.headers["kind"] == "pull", chunk
            size = chunk.headers.get("chunk_size") or 64 * 1024
            self.pulls.append(size)
            if offset >= len(self.data):
                await self.chunk(ControlContent(method="close", status_code=1000))
            else:
                piece = self.data[offset : offset + size]
                await self.chunk(BinaryContent(headers={"kind": "data"}, data=piece))
                offset += len(piece)


async def bystander_download(room: RoomConnection, path: str) -> bytes:
    """`storage.download` by hand over a RoomConnection (start, pulls, data chunks, close)."""
    parts = []
    async with room.stream_call("storage", "download") as stream:
        stream.send(BinaryContent(headers={"kind": "start", "path": path, "chunk_size": 1 << 20}))
        opened = await stream.response()
        assert isinstance(opened, ControlContent) and opened.is_open, opened
        started = await stream.next_chunk()
        assert isinstance(started, BinaryContent) and started.headers["kind"] == "start", started
        size = started.headers["size"]
        while sum(map(len, parts)) < size:
            stream.send(BinaryContent(headers={"kind": "pull"}))
            chunk = await stream.next_chunk()
            assert isinstance(chunk, BinaryContent) and chunk.headers["kind"] == "data", chunk
            parts.append(chunk.data)
    return b"".join(parts)


async def test_a_chunked_upload_done_the_typescript_way_completes(server, credentials) -> None:
    data = os.urandom(2 * PULL_CHUNK_SIZE + 123)  # three pulls for data, a fourth answered by the close
    async with offender_and_bystander(server, credentials) as (uploader, bystander):
        upload = TsUpload(uploader, "docs/ts.bin", data)
        with trio.fail_after(STEP):
            await upload.start()
            await upload.finish()
        assert len(upload.pulls) == 4 and upload.acknowledged == 5  # start, 3 data, close
        with trio.fail_after(STEP):
            assert hashlib.sha256(await bystander_download(bystander, "docs/ts.bin")).digest() == hashlib.sha256(data).digest()
            updated = await bystander.next_event(ev.FileUpdated)
        assert updated.path == "docs/ts.bin" and updated.participant_id == uploader.participant_id


async def test_a_bad_chunk_of_a_typescript_upload_is_acknowledged_with_an_error(server, credentials) -> None:
    async with RawParticipant.join(server, credentials) as raw:
        with trio.fail_after(STEP):
            bad = await raw.send(m.TOOL_CALL_REQUEST_CHUNK, pack_message({"tool_call_id": "x", "chunk": {"type": "no-such-type"}}))
            assert (await raw.error_answer(bad)).code == 1002
            bad = await raw.send(m.TOOL_CALL_REQUEST_CHUNK, envelope(b'{"tool_call_id": '))
            assert (await raw.error_answer(bad)).code == 1002
            # a chunk for a call nobody knows is still acknowledged (the call may just have ended)
            stray = await raw.send(m.TOOL_CALL_REQUEST_CHUNK, pack_message({"tool_call_id": "nobody", "chunk": {"type": "binary", "headers": {"kind": "data"}}}, b"x"))
            assert isinstance(await raw.answer(stray), EmptyContent)
        assert raw.inbox == []


def test_our_client_session_ignores_answers_to_ids_it_does_not_wait_for() -> None:
    client = ClientSession()
    server_ready = [
        *encode_message(1, m.ROOM_READY, pack_message({"room_name": "r", "room_url": "u", "session_id": "s"})),
        *encode_message(2, m.CONNECTED, pack_message({"type": "init", "participantId": "p", "attributes": {}})),
    ]
    client.receive_packets(server_ready)
    assert [type(event) for event in client.events_received()] == [ev.SessionReady]
    invocation = client.invoke_tool("storage", "upload", input_stream=True)
    client.send_input_chunk(invocation.tool_call_id, BinaryContent(headers={"kind": "start", "path": "a"}))
    client.close_input(invocation.tool_call_id)
    sent = PacketReader().receive_packets(client.packets_to_send())
    chunk_ids = [message.id for message in sent if message.type == m.TOOL_CALL_REQUEST_CHUNK]
    assert len(chunk_ids) == 2 and invocation.request_id not in chunk_ids
    # the server acknowledges each chunk on its id, and answers something nobody asked
    for message_id in [*chunk_ids, 4242]:
        client.receive_packets(encode_message(message_id, m.RESPONSE, pack_content(EmptyContent())))
    client.receive_packets(encode_message(4243, m.RESPONSE, pack_content(ErrorContent(text="x", code=1002))))
    assert client.events_received() == []
    assert client.pending_requests == {invocation.request_id}
    # ...and the real answer still resolves the call
    client.receive_packets(encode_message(invocation.request_id, m.RESPONSE, pack_content(ControlContent(method="open"))))
    (event,) = client.events_received()
    assert isinstance(event, ev.ResponseReceived) and event.request_id == invocation.request_id


async def test_our_client_uploads_through_the_acknowledgements(server, credentials) -> None:
    import meshagent_trio

    data = os.urandom(300 * 1024)
    with trio.fail_after(STEP):
        async with meshagent_trio.connect(room_url(server, ROOM), mint(credentials, ROOM, name="ours")) as room:
            await room.storage.upload(path="ours.bin", data=data)
            await room.storage.upload(path="ours2.bin", data=b"second")
            assert (await room.storage.download(path="ours.bin")).data == data
            assert await room.storage.exists(path="ours2.bin")


# --- the official Python client (interop) ----------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
SCENARIO_DIR = REPO / "tests" / "interop" / "official_scripts"
OFFICIAL_UPLOAD_SIZE = 700 * 1024 + 5

OFFICIAL_UPLOAD_SCRIPT = textwrap.dedent(
    """
    import hashlib, os
    from _official import connect, observed, run, timed

    async def main():
        data = os.urandom(int(os.environ["UPLOAD_SIZE"]))
        observed["sha256"] = hashlib.sha256(data).hexdigest()
        async with connect("official-uploader") as room:
            await timed("upload", room.storage.upload(path="official/multi.bin", data=data))
            file = await timed("download", room.storage.download(path="official/multi.bin"))
            observed["downloaded_sha256"] = hashlib.sha256(file.data).hexdigest()
            observed["size"] = len(file.data)
        return observed

    run(main)
    """
)


@pytest.fixture
def official_python() -> str:
    """The official client's interpreter (found as tests/interop/conftest.py finds it), else skip.
    A plain fixture: it runs, and skips, before the test's Trio run starts."""
    configured = os.environ.get("OFFICIAL_PYTHON")
    python = configured or str(REPO / ".venv-official" / "bin" / "python")
    if not configured and not Path(python).exists():
        pytest.skip("official meshagent-api 0.56 environment not found: run `make official-env` (needs Python 3.13)")
    try:
        probe = subprocess.run([python, "-c", "import meshagent.api"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"official meshagent-api 0.56 environment unusable ({python}: {error})")
    if probe.returncode != 0:
        pytest.skip(f"official meshagent-api 0.56 environment cannot import meshagent.api: {probe.stderr.strip()[-300:]}")
    return python


@pytest.mark.interop
async def test_the_official_client_uploads_a_multi_chunk_file_and_reads_it_back(official_python, server, credentials, tmp_path) -> None:
    python = official_python
    assert OFFICIAL_UPLOAD_SIZE > 2 * PULL_CHUNK_SIZE  # the server pulls it in several chunks
    script = tmp_path / "official_upload.py"
    script.write_text(OFFICIAL_UPLOAD_SCRIPT)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "MESHAGENT_ROOM_URL", "MESHAGENT_TOKEN", "MESHAGENT_ROOM")}
    env.update(
        {
            "PYTHONPATH": str(SCENARIO_DIR),
            "MESHAGENT_API_URL": f"http://127.0.0.1:{server.port}",
            "MESHAGENT_API_KEY": credentials.api_key,
            "SCENARIO_ROOM": ROOM,
            "UPLOAD_SIZE": str(OFFICIAL_UPLOAD_SIZE),
        }
    )
    async with RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name="bystander")) as bystander:
        with trio.fail_after(60):
            result = await trio.run_process([python, str(script)], env=env, capture_stdout=True, capture_stderr=True, check=False)
        output = result.stdout.decode(errors="replace").strip().splitlines()
        assert result.returncode == 0, (output[-1:] if output else "", result.stderr.decode(errors="replace")[-3000:])
        seen = json.loads(output[-1])
        assert seen["size"] == OFFICIAL_UPLOAD_SIZE and seen["downloaded_sha256"] == seen["sha256"], seen
        with trio.fail_after(STEP):
            data = await bystander_download(bystander, "official/multi.bin")
        assert hashlib.sha256(data).hexdigest() == seen["sha256"]


# --- bugs in the server itself end at most one connection -------------------------------------


def _install_failing_toolkit(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """A built-in toolkit whose tools fail the way a bug would (the real server runs it)."""
    from meshagent_trio.server import toolkits as builtin
    from meshagent_trio.server.toolkit import Toolkit, ToolCall

    broken = Toolkit("broken")

    @broken.tool("os_error")
    async def os_error(call: ToolCall) -> None:
        open(data_dir / "rooms" / "no" / "such" / "file")  # OSError naming a server path

    @broken.tool("bug")
    async def bug(call: ToolCall) -> None:
        raise KeyError("an internal detail")

    @broken.tool("native_panic")
    async def native_panic(call: ToolCall) -> None:
        from pycrdt import Doc, Map

        Doc().get("m", type=Map)["x"] = 2**64  # pycrdt panics (a BaseException) on a value Yjs cannot hold

    monkeypatch.setitem(builtin.BUILTIN_TOOLKITS, "broken", broken)  # the table dispatch reads


async def test_a_failing_handler_answers_its_call_without_server_paths(server, credentials, monkeypatch) -> None:
    _install_failing_toolkit(monkeypatch, server.config.data_dir)
    with trio.fail_after(10):
        async with RoomConnection.open(room_url(server), mint(credentials, name="caller")) as caller:
            with pytest.raises(RoomException) as info:
                await caller.invoke("broken", "os_error", {})
            assert info.value.code == ErrorCode.OPERATION_FAILED
            assert "No such file or directory" in info.value.message
            assert str(server.config.data_dir) not in info.value.message and "/" not in info.value.message
            with pytest.raises(RoomException) as info:
                await caller.invoke("broken", "bug", {})
            assert "an internal detail" not in info.value.message and "KeyError" in info.value.message
            with pytest.raises(RoomException) as info:
                await caller.invoke("broken", "native_panic", {})
            assert "PanicException" in info.value.message
            assert await caller.request(m.LIST_TOOLKITS, {})  # the caller is still served


async def test_a_bug_outside_any_handler_closes_only_that_connection_with_1011(server, credentials, monkeypatch) -> None:
    from meshagent_trio.server import dispatch

    def broken_attributes(participant: Any, event: Any) -> None:
        raise RuntimeError("a bug in the server")

    monkeypatch.setitem(dispatch._EVENT_HANDLERS, ev.AttributesSet, broken_attributes)
    with trio.fail_after(10):
        async with RoomConnection.open(room_url(server), mint(credentials, name="bystander")) as bystander:
            websocket = await connect_websocket(room_url(server), headers={"Authorization": "Bearer " + mint(credentials, name="offender")})
            await websocket.receive_packets()
            room = server.rooms["test-room"]
            assert len(room.participants) == 2
            await websocket.send_packets(encode_message(1, m.SET_ATTRIBUTES, pack_message({"color": "red"})))
            with pytest.raises(WebSocketClosed) as closed:
                while True:
                    await websocket.receive_packets()
            assert closed.value.code == 1011 and "internal error" in closed.value.reason
            assert "a bug in the server" not in closed.value.reason
            assert len(room.participants) == 1  # the offender left the room, nobody else did
            assert await bystander.request(m.LIST_TOOLKITS, {})
