"""The `developer` toolkit: a room's developer log channel (protocol/room-apis.md §5).

`log` / `info` / `warning` / `error` append an entry; every open `logs` stream receives it as a
`binary` chunk with headers `{"type": <log type>}` and the entry's data as UTF-8 JSON. Logs are
live only (no history). Entries are queued for each subscriber without slowing the writer down;
a subscriber that cannot keep up is evicted like any slow reader (see `rooms.participant`).
"""

from __future__ import annotations

from typing import Any

import msgspec
import trio

from meshagent_core import BinaryContent
from meshagent_core.toolkits.developer import LevelInput, LogInput

from ..toolkit import Toolkit, ToolCall, permission_denied

toolkit = Toolkit("developer")

_encode = msgspec.json.Encoder().encode


class DeveloperLogs:
    """The open `logs` streams of a room."""

    def __init__(self, _room: Any = None) -> None:
        self.subscribers: set[ToolCall] = set()

    def publish(self, type: str, data: dict[str, Any]) -> None:
        if not self.subscribers:
            return
        chunk = BinaryContent(headers={"type": type}, data=_encode(data))
        for subscriber in list(self.subscribers):
            subscriber.push(chunk)


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
    subscribers = _logs(call).subscribers
    await call.open_stream()
    subscribers.add(call)
    try:
        if call.has_input_stream:
            async for _ in call.input():
                pass  # the client sends nothing but the close
        else:
            await trio.sleep_forever()  # until the caller leaves
    finally:
        subscribers.discard(call)
