"""`mounts` toolkit contract (protocol/room-apis.md §9): the volumes mounted in the room.

| tool | input | answer |
|---|---|---|
| `list` | `ListInput` (`{}`) | `json` `ListOutput` — `{"volumes": [MountedVolume, …]}` |

A `MountedVolume` is strict, as the official client reads it: a key it does not know (an
internal `mount_path`, say), a consumer of kind `room` carrying a `container_id` or one of kind
`container` without it makes the official client fail with "unexpected return type from
mounts.list" (1100). The top level of the answer may carry extra keys.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ..rest.models import StorageClass

TOOLKIT = "mounts"


class ListInput(msgspec.Struct):
    """`list`: no fields."""


class MountedVolumeConsumer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Who mounts a volume: the room itself (`kind="room"`) or one container (`kind="container"`
    with its `container_id`)."""

    kind: Literal["room", "container"]
    container_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "container" and self.container_id is None:
            raise ValueError("container consumers require container_id")
        if self.kind == "room" and self.container_id is not None:
            raise ValueError("room consumers cannot include container_id")


class MountedVolume(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One volume mounted in the room (the official `MountedVolume`)."""

    id: str
    name: str
    #: whether the room cannot run without the volume
    required: bool
    description: str = ""
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    storage_class: StorageClass = "standard"
    max_size_mb: int | None = None
    consumers: list[MountedVolumeConsumer] = msgspec.field(default_factory=list)


class ListOutput(msgspec.Struct, kw_only=True):
    """The `list` answer (unknown top-level keys are ignored, as officially)."""

    volumes: list[MountedVolume] = msgspec.field(default_factory=list)


def read_list_output(value: Any) -> ListOutput:
    """A `list` answer's JSON read as the official client reads it (leniently typed: `"5"` is
    read as a number); `msgspec.ValidationError` when it does not fit."""
    return msgspec.convert(value, ListOutput, strict=False)


__all__ = [
    "TOOLKIT",
    "ListInput",
    "ListOutput",
    "MountedVolume",
    "MountedVolumeConsumer",
    "StorageClass",
    "read_list_output",
]
