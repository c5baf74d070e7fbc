"""`room.mounts`: the volumes mounted in the room (protocol/room-apis.md §9), as the official 0.56
`MountsClient`.

The answer is validated as the official client validates it: anything but a `json` answer of the
right shape (volumes strict: no unknown keys, consumers consistent) raises `RoomException` with
code 1100 (UNEXPECTED_RESPONSE_TYPE), "unexpected return type from mounts.list".
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..content import JsonContent
from ..toolkits.mounts import TOOLKIT, ListInput, MountedVolume, MountedVolumeConsumer, read_list_output
from .calls import unexpected_response
from .participants import SubClient


class MountsClient(SubClient):
    """`room.mounts`: what volumes the room has and who mounts them.

    On the local server a call without the token's `containers` grant fails with 1001."""

    async def list(self) -> list[MountedVolume]:
        """Every volume mounted in the room."""
        return volumes_from_list_answer(await self.room.invoke(TOOLKIT, "list", msgspec.to_builtins(ListInput())))


def volumes_from_list_answer(response: Any) -> list[MountedVolume]:
    """The official client's reading of a `list` answer; code 1100 when it does not fit."""
    if not isinstance(response, JsonContent) or not isinstance(response.json, dict):
        raise unexpected_response(TOOLKIT, "list")
    try:
        return read_list_output(response.json).volumes
    except msgspec.ValidationError:
        raise unexpected_response(TOOLKIT, "list") from None


__all__ = ["MountedVolume", "MountedVolumeConsumer", "MountsClient", "volumes_from_list_answer"]
