"""Fuzzing the running server over real sockets.

Hypothesis sends random and mutated bytes, packets, envelopes and tool arguments (deep nesting,
huge numbers, wrong types, missing keys, bytes that are not UTF-8) to a server running in a
thread of its own, one fresh connection per example, while a bystander in the same room keeps
calling. After every example: the server still accepts connections and answers, every
well-framed request of the fuzzing connection got its answer unless the connection was closed,
and the bystander never saw an error.
"""

from __future__ import annotations

import json
import secrets
import struct
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshagent_core import messages as m
from meshagent_core.envelope import pack_message
from meshagent_core.framing import CHUNK_SIZE, encode_message
from meshagent_core.session import ClientSession
from meshagent_core.session import events as ev
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server, ServerConfig
from meshagent_trio.websocket import WebSocketClosed, connect_websocket
from roomtest import mint

ROOM = "fuzz"

#: Tools that answer at once whatever their arguments (none waits for something to happen).
PROMPT_TOOLS = {
    "storage": ["exists", "stat", "list", "delete", "download", "download_url", "move", "upload"],
    "messaging": ["send", "broadcast", "disable"],
    "developer": ["log"],
    "queues": ["send", "list", "drain", "close", "open"],
    "sync": ["describe", "create"],
    "sqlite": ["query"],
    "nobody-hosts-this": ["tool"],
}
#: Request types other than `room.invoke_tool` whose answers never wait.
PROMPT_REQUESTS = ["room.register_toolkit", "room.unregister_toolkit", "room.call", "no.such.request", ""]


# --- the server and the bystander, each on its own Trio loop in a thread ---------------------


@dataclass
class Bystander:
    calls: int = 0
    errors: list[str] = field(default_factory=list)


class ServerThread:
    def __init__(self, data_dir: Path) -> None:
        self.credentials = Credentials(str(uuid.uuid4()), str(uuid.uuid4()), secrets.token_urlsafe(24))
        config = ServerConfig(data_dir=data_dir, credentials=self.credentials, port=0, max_message_size=1 << 20)
        self.server = Server(config)
        self.bystander = Bystander()
        self._ready = threading.Event()
        self._stop: trio.CancelScope | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/rooms/{ROOM}"

    def token(self, name: str) -> str:
        return mint(self.credentials, ROOM, name=name)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as self._stop:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.server.serve)
                nursery.start_soon(self._bystand)
                self._ready.set()

    async def _bystand(self) -> None:
        async with RoomConnection.open(self.url, self.token("bystander")) as room:
            while True:
                try:
                    with trio.fail_after(10):
                        await room.request(m.LIST_TOOLKITS, {})
                    self.bystander.calls += 1
                except Exception as error:  # recorded, the test fails on it
                    self.bystander.errors.append(repr(error))
                    return
                await trio.sleep(0.005)

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the server thread did not start")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        assert self._token is not None and self._stop is not None
        trio.from_thread.run_sync(self._stop.cancel, trio_token=self._token)
        self._thread.join(10)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(tmp_path_factory.mktemp("fuzz")) as server:
        yield server


# --- what a fuzzing connection sends ---------------------------------------------------------

json_leaves = st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    """JSON nested past any sane limit (the text, since encoders refuse to write it)."""
    depth = draw(st.integers(min_value=200, max_value=20_000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    return opener * depth + b"1" + closer * depth


@st.composite
def header_bytes(draw: st.DrawFn) -> bytes:
    """Header JSON: a random value, a deep one, or bytes that are not JSON (or not UTF-8)."""
    kind = draw(st.sampled_from(["value", "object", "deep", "deep-inside", "junk"]))
    if kind == "value":
        return json.dumps(draw(json_values)).encode()
    if kind == "object":
        return json.dumps(draw(st.dictionaries(st.text(max_size=12), json_values, max_size=6))).encode()
    if kind == "deep":
        return draw(deep_json())
    if kind == "deep-inside":
        return b'{"toolkit":"storage","tool":"exists","arguments":' + draw(deep_json()) + b',"tool_call_id":"x"}'
    return draw(st.binary(max_size=64))


def envelope(header: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">Q", len(header)) + header + payload


@st.composite
def invoke_message(draw: st.DrawFn) -> tuple[str, bytes]:
    """A `room.invoke_tool` of a tool that answers at once, with random or hostile arguments."""
    toolkit = draw(st.sampled_from(sorted(PROMPT_TOOLS)))
    tool = draw(st.sampled_from(PROMPT_TOOLS[toolkit]) | st.text(max_size=10))
    arguments = draw(
        st.sampled_from(["json", "deep", "raw"]).flatmap(
            lambda kind: st.builds(lambda value: {"type": "json", "json": value}, json_values)
            if kind == "json"
            else st.just(None)
            if kind == "deep"
            else json_values
        )
    )
    header: dict[str, Any] = {"toolkit": toolkit, "tool": tool, "arguments": arguments, "tool_call_id": draw(st.text(max_size=8))}
    for key in draw(st.sets(st.sampled_from(["participant_id", "on_behalf_of_id", "tool_call_id", "arguments", "tool"]), max_size=2)):
        header.pop(key, None)  # missing keys
    body = json.dumps(header).encode()
    if arguments is None:
        body = body.replace(b'"arguments": null', b'"arguments": ' + draw(deep_json()))
    return m.INVOKE_TOOL, envelope(body, draw(st.binary(max_size=32)))


@st.composite
def mutated(draw: st.DrawFn, message: tuple[str, bytes]) -> tuple[str, bytes]:
    """A valid message with bytes flipped, cut short, or its header length lying."""
    type, data = message
    how = draw(st.sampled_from(["flip", "truncate", "length"]))
    buffer = bytearray(data)
    if how == "flip" and buffer:
        for _ in range(draw(st.integers(1, 4))):
            buffer[draw(st.integers(0, len(buffer) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif how == "truncate":
        del buffer[draw(st.integers(0, len(buffer))) :]
    else:
        buffer[:8] = struct.pack(">Q", draw(st.integers(0, 2**64 - 1)))
    return type, bytes(buffer)


def valid_exists() -> tuple[str, bytes]:
    header = {"toolkit": "storage", "tool": "exists", "participant_id": None, "on_behalf_of_id": None, "arguments": {"type": "json", "json": {"path": "a.txt"}}, "tool_call_id": "v"}
    return m.INVOKE_TOOL, pack_message(header)


message_kinds = st.one_of(
    invoke_message(),
    st.tuples(st.sampled_from(PROMPT_REQUESTS) | st.text(max_size=20), st.builds(envelope, header_bytes(), st.binary(max_size=32))),
    st.tuples(st.sampled_from([m.SET_ATTRIBUTES, m.TOOL_CALL_REQUEST_CHUNK, m.TOOL_CALL_RESPONSE, m.TOOL_CALL_RESPONSE_CHUNK, m.RESPONSE]), st.builds(envelope, header_bytes(), st.binary(max_size=32))),
    st.tuples(st.sampled_from([m.INVOKE_TOOL, "room.list_toolkits"]), st.binary(max_size=40)),
    mutated(valid_exists()),
)


@dataclass
class Send:
    """What one step of an example puts on the wire: whole messages, or raw packets."""

    packets: list[bytes]
    request_id: int | None = None  # a well-framed message that must be answered


@st.composite
def sends(draw: st.DrawFn) -> list[Send]:
    steps: list[Send] = []
    for index in range(draw(st.integers(1, 4))):
        message_id = 1000 + index
        kind = draw(st.sampled_from(["message", "message", "message", "packet", "broken-framing"]))
        if kind == "packet":
            steps.append(Send([draw(st.binary(max_size=48))]))
            continue
        type, data = draw(message_kinds)
        packets = encode_message(message_id, type, data)
        if kind == "broken-framing":
            packets = draw(st.permutations(packets)) if len(packets) > 1 else packets + [packets[-1]]
            steps.append(Send(packets))
            continue
        one_way = type in m.CLIENT_ONE_WAY_TYPES or type == m.RESPONSE
        steps.append(Send(packets, None if one_way else message_id))
    return steps


# --- one example -----------------------------------------------------------------------------


async def run_example(server: ServerThread, steps: list[Send]) -> None:
    websocket = await connect_websocket(server.url, headers={"Authorization": "Bearer " + server.token("fuzzer")})
    session = ClientSession()  # decodes what the server sends back
    expected = {step.request_id for step in steps if step.request_id is not None}
    answered: set[int] = set()
    closed = False
    try:
        for step in steps:
            await websocket.send_packets(step.packets)
        with trio.fail_after(10):  # a hang guard: each request is answered at once
            while not expected <= answered:
                try:
                    packets = await websocket.receive_packets()
                except WebSocketClosed:
                    closed = True
                    break
                # Answers to ids the session never sent arrive as raw messages: read the ids
                # from the packets' prefixes instead of the session's events.
                for packet in packets:
                    if len(packet) >= 16 and struct.unpack_from(">QII", packet)[1] == 0:
                        if packet[16:].decode("utf-8", "replace") == m.RESPONSE:
                            answered.add(struct.unpack_from(">Q", packet)[0])
                session.receive_packets(packets)
                session.events_received()
    finally:
        with trio.move_on_after(2):
            await websocket.close()
    assert closed or expected <= answered, f"unanswered requests {sorted(expected - answered)}"


async def server_still_answers(server: ServerThread) -> None:
    with trio.fail_after(10):
        async with RoomConnection.open(server.url, server.token("prober")) as room:
            await room.request(m.LIST_TOOLKITS, {})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=sends())
def test_fuzzed_input_never_hurts_the_server_or_a_bystander(fuzz_server: ServerThread, steps: list[Send]) -> None:
    trio.run(run_example, fuzz_server, steps)
    trio.run(server_still_answers, fuzz_server)
    assert fuzz_server.bystander.errors == []


def test_the_bystander_kept_calling_throughout(fuzz_server: ServerThread) -> None:
    """Runs after the fuzzing (same module server): the bystander is still connected and its
    calls kept being answered."""
    before = fuzz_server.bystander.calls
    trio.run(trio.sleep, 0.3)
    assert fuzz_server.bystander.errors == []
    assert fuzz_server.bystander.calls > before


def test_large_header_packets_are_answered_too(fuzz_server: ServerThread) -> None:
    """A header spanning many packets (the fuzzing above stays small) is decoded and refused."""
    header = b'{"toolkit":"storage","tool":"exists","arguments":' + b"[" * 5000 + b"]" * 5000 + b',"tool_call_id":"big"}'
    assert len(header) > 8 * CHUNK_SIZE
    steps = [Send(encode_message(7, m.INVOKE_TOOL, envelope(header)), 7)]
    trio.run(run_example, fuzz_server, steps)
    trio.run(server_still_answers, fuzz_server)


def test_messages_are_decoded_as_the_client_session_expects() -> None:
    """The answers the fuzzing reads are real `__response__` messages: a sanity check of the
    packet-prefix reading in `run_example` against the core's own decoder."""
    session = ClientSession()
    packets = encode_message(5, m.RESPONSE, pack_message({"type": "empty"}))
    assert struct.unpack_from(">QII", packets[0])[1] == 0 and packets[0][16:].decode() == m.RESPONSE
    session.receive_packets(packets)
    assert not [event for event in session.events_received() if isinstance(event, ev.ResponseReceived)]  # not ours: dropped
