"""`developer` toolkit contract (protocol/room-apis.md §5)."""

from __future__ import annotations

from typing import Any

import msgspec

TOOLKIT = "developer"


class LogInput(msgspec.Struct):
    """`log`: a typed log entry."""

    type: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class LevelInput(msgspec.Struct):
    """`info` / `warning` / `error`."""

    message: str
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
