"""`examples/custom_transport.py`: the sans-IO core driven over a trio-websocket connection the
user opened, against the real local server."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import trio

from meshagent_core import JsonContent, RoomException
from meshagent_core.tokens import ApiScope
from meshagent_trio.connection import RoomConnection
from roomtest import mint, room_url

pytest.importorskip("trio_websocket", reason="the example needs trio-websocket (the `test` extra)")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_transport.py"
ROOM = "custom-transport"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("custom_transport_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_example_invokes_a_tool_and_prints_its_answer(server, credentials, capsys) -> None:
    # Something only a working invocation can return: a message queued by another participant.
    token = mint(credentials, ROOM, name="producer", scope=ApiScope.full())
    async with RoomConnection.open(room_url(server, ROOM), token) as producer:
        await producer.invoke("queues", "send", {"name": "jobs", "message": {"job": 42, "text": "héllo"}})

    example = load_example()
    with trio.fail_after(10):  # a broken pump would wait forever
        answer = await example.main(
            room_url(server, ROOM),
            mint(credentials, ROOM, name="custom", scope=ApiScope.full()),
            "queues",
            "receive",
            {"name": "jobs", "wait": False},
        )

    assert isinstance(answer, JsonContent)
    assert answer.json == {"job": 42, "text": "héllo"}
    printed = capsys.readouterr().out
    assert f"joined room {ROOM!r} as participant " in printed
    assert 'queues.receive answered: {"job": 42, "text": "h\\u00e9llo"}' in printed


async def test_the_example_raises_the_error_answer(server, credentials) -> None:
    example = load_example()
    token = mint(credentials, ROOM, name="custom", scope=ApiScope.full())
    with pytest.raises(RoomException) as raised, trio.fail_after(10):
        await example.main(room_url(server, ROOM), token, "storage", "no-such-tool", {})
    assert "no-such-tool" in str(raised.value)
