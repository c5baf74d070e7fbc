"""A client session against a server session, in memory, under random interleavings.

Packets travel through two FIFO pipes that are delivered in random slices; requests,
responses, output streams, input streams, hosted tool calls, abandonments and connection loss
are interleaved at random. Whatever happens: every request gets exactly one outcome (unless its
caller abandoned it first), every opened stream exactly one end, every routed call exactly one
end on the server, and no chunk is delivered twice or out of order.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from meshagent_core import CONTROL_CLOSE, CONTROL_OPEN, ClientSession, ErrorContent, JsonContent, ServerSession, TextContent
from meshagent_core.session import events as ev


class SessionPair(RuleBasedStateMachine):
    @initialize(ready_first=st.booleans())
    def connect(self, ready_first: bool) -> None:
        self.client = ClientSession()
        self.server = ServerSession()
        self.c2s: list[bytes] = []
        self.s2c: list[bytes] = []
        self.closed = False
        self.seq = 0
        if ready_first:
            self.server.send_room_ready("room", "ws://h/rooms/room", "s1")
            self.server.send_connected("p1", {"a": 1})
        else:
            self.server.send_connected("p1", {"a": 1})
            self.server.send_room_ready("room", "ws://h/rooms/room", "s1")
        # client bookkeeping
        self.requests: dict[int, str] = {}  # request id -> tool_call_id
        self.outcomes: Counter[int] = Counter()
        self.abandoned_without_outcome: set[int] = set()
        self.streams_opened: set[str] = set()
        self.stream_ends: Counter[str] = Counter()
        self.input_open: set[str] = set()
        self.ready_events = 0
        self.chunks_seen: dict[str, list[int]] = defaultdict(list)
        self.hosted_pending: dict[int, str] = {}  # client side: call id -> state ("new"/"open")
        # server bookkeeping
        self.server_requests: dict[int, str] = {}  # unanswered request id -> tool_call_id
        self.server_streams: set[str] = set()
        self.server_inputs_seen: dict[str, list[int]] = defaultdict(list)
        self.routed: set[int] = set()
        self.routed_ends: Counter[int] = Counter()
        self.host_chunks_seen: dict[int, list[int]] = defaultdict(list)
        self.flush()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def flush(self) -> None:
        if not self.closed:
            self.c2s.extend(self.client.packets_to_send())
            self.s2c.extend(self.server.packets_to_send())
        self.drain_events()

    # --- delivery -------------------------------------------------------------------------

    @rule(n=st.integers(min_value=1, max_value=40))
    def deliver_to_server(self, n: int) -> None:
        batch, self.c2s = self.c2s[:n], self.c2s[n:]
        self.server.receive_packets(batch)
        self.flush()

    @rule(n=st.integers(min_value=1, max_value=40))
    def deliver_to_client(self, n: int) -> None:
        batch, self.s2c = self.s2c[:n], self.s2c[n:]
        self.client.receive_packets(batch)
        self.flush()

    # --- client actions -------------------------------------------------------------------

    @precondition(lambda self: not self.closed)
    @rule(streamed_input=st.booleans())
    def client_invoke(self, streamed_input: bool) -> None:
        seq = self.next_seq()
        invocation = self.client.invoke_tool(
            "tk", "t", None if streamed_input else {"n": seq}, input_stream=streamed_input, tool_call_id=f"call{seq:06d}"
        )
        self.requests[invocation.request_id] = invocation.tool_call_id
        if streamed_input:
            self.input_open.add(invocation.tool_call_id)
        self.flush()

    @precondition(lambda self: not self.closed and self.input_open)
    @rule(data=st.data(), close=st.booleans())
    def client_input(self, data: st.DataObject, close: bool) -> None:
        tool_call_id = data.draw(st.sampled_from(sorted(self.input_open)))
        if close:
            self.client.close_input(tool_call_id)
            self.input_open.discard(tool_call_id)
        else:
            self.client.send_input_chunk(tool_call_id, TextContent(text=str(self.next_seq())))
        self.flush()

    @precondition(lambda self: not self.closed and self.requests)
    @rule(data=st.data())
    def client_abandons(self, data: st.DataObject) -> None:
        request_id = data.draw(st.sampled_from(sorted(self.requests)))
        if self.outcomes[request_id] == 0:
            self.abandoned_without_outcome.add(request_id)
        tool_call_id = self.requests[request_id]
        if tool_call_id in self.streams_opened and self.stream_ends[tool_call_id] == 0:
            self.stream_ends[tool_call_id] = -1  # abandoned: no end event is owed
        self.client.abandon(request_id)
        self.input_open.discard(tool_call_id)
        self.flush()

    @precondition(lambda self: not self.closed and self.hosted_pending)
    @rule(data=st.data(), kind=st.sampled_from(["result", "error", "open", "chunk", "close"]))
    def client_answers_hosted_call(self, data: st.DataObject, kind: str) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.hosted_pending)))
        state = self.hosted_pending[call_id]
        if state == "new":
            if kind == "open":
                self.client.respond_to_tool_call(call_id, CONTROL_OPEN)
                self.hosted_pending[call_id] = "open"
            else:
                content = ErrorContent(text="no", code=1002) if kind == "error" else JsonContent(json={"r": 1})
                self.client.respond_to_tool_call(call_id, content)
                del self.hosted_pending[call_id]
        elif kind == "close":
            self.client.send_tool_call_chunk(call_id, CONTROL_CLOSE)
            del self.hosted_pending[call_id]
        else:
            self.client.send_tool_call_chunk(call_id, TextContent(text=str(self.next_seq())))
        self.flush()

    # --- server actions -------------------------------------------------------------------

    @precondition(lambda self: not self.closed and self.server_requests)
    @rule(data=st.data(), kind=st.sampled_from(["json", "error", "open"]))
    def server_responds(self, data: st.DataObject, kind: str) -> None:
        request_id = data.draw(st.sampled_from(sorted(self.server_requests)))
        tool_call_id = self.server_requests.pop(request_id)
        if kind == "open":
            self.server.respond(request_id, CONTROL_OPEN)
            self.server_streams.add(tool_call_id)
        elif kind == "error":
            self.server.respond(request_id, ErrorContent(text="failed", code=1008))
        else:
            self.server.respond(request_id, JsonContent(json={"ok": True}))
        self.flush()

    @precondition(lambda self: not self.closed and self.server_streams)
    @rule(data=st.data(), close=st.booleans())
    def server_streams_output(self, data: st.DataObject, close: bool) -> None:
        tool_call_id = data.draw(st.sampled_from(sorted(self.server_streams)))
        if close:
            self.server.send_response_chunk(tool_call_id, CONTROL_CLOSE)
            self.server_streams.discard(tool_call_id)
        else:
            self.server.send_response_chunk(tool_call_id, TextContent(text=str(self.next_seq())))
        self.flush()

    @precondition(lambda self: not self.closed)
    @rule(with_input=st.booleans())
    def server_routes_call(self, with_input: bool) -> None:
        tool_call_id = f"tc{self.next_seq()}"
        call_id = self.server.send_tool_call("hosted", "echo", JsonContent(json={}), caller_id="p2", tool_call_id=tool_call_id)
        self.routed.add(call_id)
        if with_input:
            self.server.send_tool_call_input("hosted", tool_call_id, TextContent(text="x"))
        self.flush()

    @precondition(lambda self: not self.closed)
    @rule()
    def connection_lost(self) -> None:
        self.closed = True
        self.c2s.clear()
        self.s2c.clear()
        self.client.connection_closed("network down", 1006)
        self.server.connection_closed("network down", 1006)
        self.drain_events()

    # --- events ---------------------------------------------------------------------------

    def drain_events(self) -> None:
        for event in self.client.events_received():
            self.on_client_event(event)
        for event in self.server.events_received():
            self.on_server_event(event)

    def on_client_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.SessionReady):
            self.ready_events += 1
            assert (event.room_name, event.participant_id, event.attributes) == ("room", "p1", {"a": 1})
        elif isinstance(event, (ev.ResponseReceived, ev.RequestFailed)):
            assert event.request_id in self.requests
            assert event.request_id not in self.abandoned_without_outcome
            self.outcomes[event.request_id] += 1
            if isinstance(event, ev.ResponseReceived) and event.content == CONTROL_OPEN:
                self.streams_opened.add(self.requests[event.request_id])
        elif isinstance(event, ev.ResponseChunk):
            n = int(event.chunk.text)
            seen = self.chunks_seen[event.tool_call_id]
            assert not seen or seen[-1] < n, "chunk delivered twice or out of order"
            seen.append(n)
        elif isinstance(event, (ev.ResponseStreamClosed, ev.ResponseStreamFailed)):
            assert event.tool_call_id in self.streams_opened
            assert self.stream_ends[event.tool_call_id] >= 0, "end event for an abandoned stream"
            self.stream_ends[event.tool_call_id] += 1
        elif isinstance(event, ev.ToolCallReceived):
            assert event.call_id not in self.hosted_pending
            self.hosted_pending[event.call_id] = "new"
        elif isinstance(event, ev.ToolCallCancelled):
            assert event.call_id in self.hosted_pending
            del self.hosted_pending[event.call_id]
        elif isinstance(event, (ev.ToolCallInputChunk, ev.SessionClosed)):
            pass
        else:
            raise AssertionError(f"unexpected client event {event!r}")

    def on_server_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.ToolInvoked):
            assert event.request_id not in self.server_requests
            self.server_requests[event.request_id] = event.tool_call_id
        elif isinstance(event, ev.RequestChunk):
            n = int(event.chunk.text)
            seen = self.server_inputs_seen[event.tool_call_id]
            assert not seen or seen[-1] < n, "input chunk delivered twice or out of order"
            seen.append(n)
        elif isinstance(event, ev.HostResponse):
            if event.content != CONTROL_OPEN:
                self.routed_ends[event.call_id] += 1
        elif isinstance(event, (ev.HostStreamClosed, ev.HostCallFailed)):
            self.routed_ends[event.call_id] += 1
        elif isinstance(event, ev.HostChunk):
            n = int(event.chunk.text)
            seen = self.host_chunks_seen[event.call_id]
            assert not seen or seen[-1] < n
            seen.append(n)
        elif isinstance(event, (ev.RequestStreamClosed, ev.SessionClosed)):
            pass
        else:
            raise AssertionError(f"unexpected server event {event!r}")

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def at_most_one_outcome_each(self) -> None:
        assert self.ready_events <= 1
        assert all(count <= 1 for count in self.outcomes.values())
        assert all(count <= 1 for count in self.stream_ends.values())
        assert all(count <= 1 for count in self.routed_ends.values())

    @invariant()
    def closed_means_settled(self) -> None:
        if not self.closed:
            return
        for request_id in self.requests:
            expected = 0 if request_id in self.abandoned_without_outcome else 1
            assert self.outcomes[request_id] == expected, request_id
        for tool_call_id in self.streams_opened:
            assert self.stream_ends[tool_call_id] in (1, -1)
        for call_id in self.routed:
            assert self.routed_ends[call_id] == 1
        assert not self.client.pending_requests and not self.client.open_response_streams
        assert not self.server.routed_calls and not self.hosted_pending

    def teardown(self) -> None:
        if not getattr(self, "closed", True):
            self.connection_lost()
            self.closed_means_settled()


TestSessionPair = SessionPair.TestCase
TestSessionPair.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
