"""`room.queues`: the room's named queues of JSON messages (protocol/room-apis.md §4), as the official 0.56
`QueuesClient` (same method names and keyword arguments).

Answers are validated as the official client validates them: an answer of the wrong content
type or shape raises `RoomException` with code 1100 (UNEXPECTED_RESPONSE_TYPE).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..content import EmptyContent, JsonContent, TextContent
from ..toolkits.queues import (
    TOOLKIT,
    CloseInput,
    DrainInput,
    ListInput,
    OpenInput,
    QueueInfo,
    ReceiveInput,
    SendInput,
)
from .participants import SubClient
from .calls import unexpected_response

#: One queue of `room.queues.list()`: `name` and `size` (messages waiting), the official
#: `Queue`'s fields. It is the contract's `QueueInfo` (one definition of the shape).
Queue = QueueInfo


class QueuesClient(SubClient):
    """`room.queues`: FIFO queues of JSON objects shared by the room's participants.

    Failures raise `RoomException` with the server's code; on the local server: 5001 a missing
    queue with `create=False`, 1006 a closed queue, 1001 not permitted by the token's `queues`
    grant.
    """

    async def _invoke(self, operation: str, arguments: msgspec.Struct) -> Any:
        return await self.room.invoke(TOOLKIT, operation, msgspec.to_builtins(arguments))

    async def _invoke_empty(self, operation: str, arguments: msgspec.Struct) -> None:
        response = await self._invoke(operation, arguments)
        if not isinstance(response, EmptyContent):
            raise unexpected_response(TOOLKIT, operation)

    async def list(self, *, name: str | None = None, message: dict | None = None, create: bool = True) -> list[Queue]:
        """Every queue of the room with its `size`. (`name`, `message` and `create` are
        accepted for compatibility with the official signature and ignored, as there.)"""
        del name, message, create
        return _queues_from_list_answer(await self._invoke("list", ListInput()))

    async def open(self, *, name: str) -> None:
        """Create the queue `name`, or reopen it if it was closed (a no-op if it is open)."""
        await self._invoke_empty("open", OpenInput(name=name))

    async def send(self, *, name: str, message: dict, create: bool = True) -> None:
        """Append `message` (a JSON object) to the queue; `create` makes a missing queue."""
        await self._invoke_empty("send", SendInput(name=name, message=message, create=create))

    async def drain(self, *, name: str) -> None:
        """Remove every message of the queue."""
        await self._invoke_empty("drain", DrainInput(name=name))

    async def close(self, *, name: str) -> None:
        """Close the queue: sends and receives are refused until it is reopened with `open`."""
        await self._invoke_empty("close", CloseInput(name=name))

    async def receive(self, *, name: str, create: bool = True, wait: bool = True) -> dict | str | None:
        """Take the oldest message of the queue, or None when there is none. With `wait`, the
        server holds the request until a message arrives or its poll times out (then None:
        call again)."""
        response = await self._invoke("receive", ReceiveInput(name=name, create=create, wait=wait))
        if isinstance(response, EmptyContent):
            return None
        if isinstance(response, JsonContent):
            return response.json
        if isinstance(response, TextContent):
            return response.text
        raise unexpected_response(TOOLKIT, "receive")


def _queues_from_list_answer(response: Any) -> list[Queue]:
    """The official client's reading of a `list` answer: `json` with exactly `{"queues": [...]}`;
    items may carry extra keys; `size` is coerced as Python's `int()` does (" 4 ", true, 5.9
    and "+1_000" are accepted); anything else is code 1100."""
    if not isinstance(response, JsonContent):
        raise unexpected_response(TOOLKIT, "list")
    payload = response.json
    if not isinstance(payload, dict) or set(payload) != {"queues"} or not isinstance(payload["queues"], list):
        raise unexpected_response(TOOLKIT, "list")
    queues: list[Queue] = []
    for item in payload["queues"]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or "size" not in item:
            raise unexpected_response(TOOLKIT, "list")
        try:
            size = int(item["size"])
        except (TypeError, ValueError, OverflowError):
            raise unexpected_response(TOOLKIT, "list") from None
        queues.append(Queue(name=item["name"], size=size))
    return queues


__all__ = ["Queue", "QueuesClient"]
