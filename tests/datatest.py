"""What the stream-level tests of the data toolkits (`sqlite`, `dataset`) share: a raw connection,
the data and pull chunks, and small assertions."""

from __future__ import annotations

from typing import Any

import pytest

from meshagent_core import BinaryContent, ControlContent, RoomException
from meshagent_core.toolkits.arrow_ipc import ARROW_STREAM
from meshagent_trio.connection import RoomConnection

from roomtest import mint, room_url

ROOM = "test-room"
DATA = {"kind": "data", "content_type": ARROW_STREAM}
PULL = BinaryContent(headers={"kind": "pull"})


def join(server: Any, credentials: Any, name: str = "alice") -> Any:
    return RoomConnection.open(room_url(server), mint(credentials, name=name))


async def fails(code: int, awaitable: Any) -> RoomException:
    with pytest.raises(RoomException) as info:
        await awaitable
    assert info.value.code == code, info.value
    return info.value


async def opened(stream: Any) -> None:
    response = await stream.response()
    assert isinstance(response, ControlContent) and response.is_open, response
