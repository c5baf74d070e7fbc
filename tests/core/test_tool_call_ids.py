"""Generated `tool_call_id`s: 32 lowercase hex digits of a version-4 UUID (what the official
client sends, `uuid4().hex`), never repeated on a session, different across sessions."""

from __future__ import annotations

import uuid

from meshagent_core import ClientSession
from meshagent_core.session import client as client_module


def _ids(session: ClientSession, count: int) -> list[str]:
    return [session.invoke_tool("storage", "exists", {"path": "a"}).tool_call_id for _ in range(count)]


def test_ids_are_uuid4_hex_and_unique_within_a_session() -> None:
    session = ClientSession()
    ids = _ids(session, 5000)
    assert len(set(ids)) == len(ids)
    for tool_call_id in ids[:50] + ids[-50:]:
        parsed = uuid.UUID(hex=tool_call_id)
        assert parsed.hex == tool_call_id and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_sessions_draw_different_ids() -> None:
    first, second = ClientSession(), ClientSession()
    assert not set(_ids(first, 100)) & set(_ids(second, 100))


def test_counter_overflow_draws_a_new_random_part() -> None:
    session = ClientSession()
    [before] = _ids(session, 1)
    session._tool_call_count = client_module._TOOL_CALL_COUNTER_LIMIT - 1  # as after 2**48 calls
    [after] = _ids(session, 1)
    assert uuid.UUID(hex=after).version == 4
    assert after[:20] != before[:20]  # the random part above the counter was drawn again
