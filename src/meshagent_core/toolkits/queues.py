"""`queues` toolkit contract (protocol/room-apis.md §4): named queues of JSON objects.

Every tool is a unary `room.invoke_tool` with `json` arguments:

| tool | input | answer |
|---|---|---|
| `list` | `ListInput` (`{}`) | `json` `ListOutput` — exactly `{"queues": [{"name", "size"}]}` |
| `open` | `OpenInput` | `empty` |
| `send` | `SendInput` | `empty` |
| `drain` | `DrainInput` | `empty` |
| `close` | `CloseInput` | `empty` |
| `receive` | `ReceiveInput` | `json` holding the message object, or `empty` (no message) |
"""

from __future__ import annotations

from typing import Any

import msgspec

TOOLKIT = "queues"


class ListInput(msgspec.Struct):
    """`list`: no fields (the official client's signature also carries `name`, `message`,
    `create`, which it never sends; unknown keys are ignored)."""


class QueueInfo(msgspec.Struct):
    """One queue in a `list` answer: its name and how many messages it holds."""

    name: str
    size: int


class ListOutput(msgspec.Struct):
    """The `list` answer; the official client forbids extra top-level keys."""

    queues: list[QueueInfo]


class OpenInput(msgspec.Struct):
    """`open`: create the queue, or reopen it if it was closed."""

    name: str


class SendInput(msgspec.Struct):
    """`send`: append `message` to the queue (`create`: make a missing queue)."""

    name: str
    message: dict[str, Any]
    create: bool = True


class DrainInput(msgspec.Struct):
    """`drain`: remove every message of the queue."""

    name: str


class CloseInput(msgspec.Struct):
    """`close`: refuse sends and receives until the queue is reopened."""

    name: str


class ReceiveInput(msgspec.Struct):
    """`receive`: take the oldest message (`wait`: long-poll for one; `create`: make a
    missing queue)."""

    name: str
    create: bool = True
    wait: bool = True


__all__ = [
    "TOOLKIT",
    "CloseInput",
    "DrainInput",
    "ListInput",
    "ListOutput",
    "OpenInput",
    "QueueInfo",
    "ReceiveInput",
    "SendInput",
]
