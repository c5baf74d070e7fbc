"""Embedding the protocol core in a transport you own: a room session over trio-websocket.

`meshagent_core.ClientSession` is sans-IO: it never touches a socket and never awaits. You feed it
each binary WebSocket message (one room packet) with `receive_packet`, take the events that
produced with `events_received()`, and write what it queued with `packets_to_send()`. Here the
WebSocket is one you opened yourself with trio-websocket (`pip install trio-websocket`), with the
participant token in the `Authorization` header, as any MeshAgent client sends it.

Two tasks move the bytes: a receiver (socket -> session -> events channel) and a sender (session ->
socket, woken whenever something was queued; a single writer keeps the packets of one message
together). The main task reads the events in order: it waits for `SessionReady`, invokes a tool,
waits for the answer to that request, and prints it.

    MESHAGENT_TOKEN=... python examples/custom_transport.py ws://127.0.0.1:8080/rooms/my-room storage list '{"path": ""}'

(`meshagent-trio serve` runs a local server.)
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

import trio
import trio_websocket

from meshagent_core import ClientSession, ConnectionLost, Content, ErrorContent, JsonContent, TextContent
from meshagent_core.session import events as ev


class Pump:
    """Moves packets between a trio-websocket connection and a `ClientSession`, and hands the
    session's events to `events` (a channel that ends when the connection does)."""

    def __init__(self, websocket: trio_websocket.WebSocketConnection, session: ClientSession) -> None:
        self.websocket = websocket
        self.session = session
        self._send_events, self.events = trio.open_memory_channel[ev.Event](math.inf)
        self._wakeup = trio.Event()

    def flush_soon(self) -> None:
        """Something was queued on the session: wake the sender."""
        self._wakeup.set()

    async def send_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            for packet in self.session.packets_to_send():  # every queued packet, in order
                await self.websocket.send_message(packet)

    async def receive_loop(self) -> None:
        try:
            while True:
                try:
                    message = await self.websocket.get_message()
                except trio_websocket.ConnectionClosed as closed:
                    reason = closed.reason
                    self.session.connection_closed(reason.reason or reason.name, reason.code)
                    return
                if isinstance(message, str):
                    self.session.connection_closed("the server sent a text message; room packets are binary")
                    await self.websocket.aclose(1003, "binary messages only")
                    return
                self.session.receive_packet(message)
                if self.session.has_packets_to_send:  # e.g. the session answered a malformed call
                    self.flush_soon()
                self._forward()
        finally:
            self._forward()  # SessionClosed and the failures of pending requests
            self._send_events.close()

    def _forward(self) -> None:
        for event in self.session.events_received():
            self._send_events.send_nowait(event)


async def main(
    room_url: str,
    token: str,
    toolkit: str = "storage",
    tool: str = "list",
    arguments: dict[str, Any] | None = None,
) -> Content:
    """Join the room at `room_url`, invoke `toolkit`.`tool` with `arguments`, print the answer and
    return it (an `error` answer raises `RoomException`)."""
    headers = [("Authorization", f"Bearer {token}")]
    async with trio_websocket.open_websocket_url(room_url, extra_headers=headers) as websocket:
        session = ClientSession()
        pump = Pump(websocket, session)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump.receive_loop)
            nursery.start_soon(pump.send_loop)

            request_id: int | None = None
            outcome: ev.ResponseReceived | ev.RequestFailed | None = None
            async for event in pump.events:
                if isinstance(event, ev.SessionReady):
                    print(f"joined room {event.room_name!r} as participant {event.participant_id}")
                    request_id = session.invoke_tool(toolkit, tool, arguments).request_id
                    pump.flush_soon()
                elif isinstance(event, (ev.ResponseReceived, ev.RequestFailed)) and event.request_id == request_id:
                    outcome = event
                    break
                # Anything else (room status, messages, file events, …) is not this example's business.
            nursery.cancel_scope.cancel()
        session.connection_closed("closed by the client")
    # Raised here, outside the nursery, so the caller gets the error itself, not an ExceptionGroup.
    if outcome is None:
        raise ConnectionLost(f"the room connection ended before the answer: {session.close_reason}")
    if isinstance(outcome, ev.RequestFailed):
        raise outcome.error
    answer = outcome.content
    if isinstance(answer, ErrorContent):
        raise answer.to_exception()
    print(f"{toolkit}.{tool} answered: {_describe(answer)}")
    return answer


def _describe(content: Content) -> str:
    if isinstance(content, JsonContent):
        return json.dumps(content.json)
    if isinstance(content, TextContent):
        return content.text
    return repr(content)


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 5 or len(sys.argv) == 3:
        sys.exit(f"usage: MESHAGENT_TOKEN=... {sys.argv[0]} ROOM_URL [TOOLKIT TOOL [JSON_ARGUMENTS]]")
    toolkit, tool = sys.argv[2:4] if len(sys.argv) >= 4 else ("storage", "list")
    arguments = json.loads(sys.argv[4]) if len(sys.argv) == 5 else ({"path": ""} if len(sys.argv) == 2 else None)
    trio.run(main, sys.argv[1], os.environ.get("MESHAGENT_TOKEN", ""), toolkit, tool, arguments)
