"""The `developer` toolkit: a room's developer log channel (ROOM_APIS §10).

`log` / `info` / `warning` / `error` append an entry; every open `logs` stream receives it as a
`binary` chunk with headers `{"type": <log type>}` and the entry's data as UTF-8 JSON. Logs are
live only (no history). A subscriber that falls more than `SUBSCRIBER_BUFFER` entries behind
loses the oldest ones rather than slowing the room down.
"""

from __future__ import annotations

from typing import Any

import msgspec
import trio

from meshagent_core import BinaryContent
from meshagent_core.toolkits.developer import LevelInput, LogInput

from ..toolkit import Toolkit, ToolCall, permission_denied

toolkit = Toolkit("developer")

SUBSCRIBER_BUFFER = 1000
_encode = msgspec.json.Encoder().encode


class DeveloperLogs:
    def __init__(self, _room: Any = None) -> None:
        self.subscribers: set[trio.MemorySendChannel[tuple[str, dict[str, Any]]]] = set()

    def publish(self, type: str, data: dict[str, Any]) -> None:
        for subscriber in list(self.subscribers):
            try:
                subscriber.send_nowait((type, data))
            except trio.WouldBlock:
                pass  # a slow reader loses entries; it never blocks the room


def _logs(call: ToolCall) -> DeveloperLogs:
    return call.room.toolkit_state("developer", DeveloperLogs)


def _require_developer(call: ToolCall) -> Any:
    grant = call.scope.developer if call.scope is not None else None
    if grant is None:
        raise permission_denied("the token does not grant the developer API")
    return grant


@toolkit.tool("log")
async def log(call: ToolCall) -> None:
    _require_developer(call)
    entry = call.json_arguments(LogInput)
    _logs(call).publish(entry.type, entry.data)


async def _level(call: ToolCall, level: str) -> None:
    _require_developer(call)
    entry = call.json_arguments(LevelInput)
    _logs(call).publish(level, {"message": entry.message, "extra": entry.extra})


@toolkit.tool("info")
async def info(call: ToolCall) -> None:
    await _level(call, "info")


@toolkit.tool("warning")
async def warning(call: ToolCall) -> None:
    await _level(call, "warning")


@toolkit.tool("error")
async def error(call: ToolCall) -> None:
    await _level(call, "error")


@toolkit.tool("logs")
async def logs(call: ToolCall) -> None:
    """Stream log entries until the caller closes its input (or leaves)."""
    if not _require_developer(call).logs:
        raise permission_denied("the token does not allow reading developer logs")
    send, receive = trio.open_memory_channel[tuple[str, dict[str, Any]]](SUBSCRIBER_BUFFER)
    subscribers = _logs(call).subscribers
    subscribers.add(send)
    await call.open_stream()
    try:
        async with trio.open_nursery() as nursery:

            async def until_input_closes() -> None:
                if call.has_input_stream:
                    async for _ in call.input():
                        pass  # the client sends nothing but the close
                    nursery.cancel_scope.cancel()

            nursery.start_soon(until_input_closes)
            async for type, data in receive:
                await call.send(BinaryContent(headers={"type": type}, data=_encode(data)))
    finally:
        subscribers.discard(send)
