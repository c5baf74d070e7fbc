"""`meshagent-trio session` and `usage show` against the session's local server: sessions made by
joining rooms (through the CLI, or held open by a participant in a thread) are listed, inspected
and killed; usage reports the minutes and bytes they made."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import pytest
import trio

from beside import visit
from clirun import CliResult, assert_one_line_error
from meshagent_trio import RoomClient
from meshagent_trio.cli.rest_sessions import span_tree
from meshagent_trio.testing import InProcessServer
from clirun import ok

Cli = Callable[..., CliResult]


def one_session(cli: Cli, room: str) -> dict:
    """Join `room` and leave (through the CLI): one ended session of it."""
    visit(cli, room)
    (session,) = ok(cli("session", "list", "--room", room, "-o", "json")).json()["sessions"]
    return session


@contextmanager
def held(server: InProcessServer, room: str) -> Iterator[None]:
    """A participant in `room` until the block ends."""
    joined, stop = threading.Event(), threading.Event()

    async def stay() -> None:
        try:
            async with RoomClient.connect(room, server.token(room, name="holder")):
                joined.set()
                while not stop.is_set():
                    await trio.sleep(0.02)
        except BaseException:  # noqa: BLE001 - a killed session ends the connection; that is the point
            pass

    thread = threading.Thread(target=trio.run, args=(stay,), daemon=True)
    thread.start()
    assert joined.wait(15), "the participant did not join"
    try:
        yield
    finally:
        stop.set()
        thread.join(15)


def test_session_list_and_get(cli: Cli, room_name: str) -> None:
    first = one_session(cli, room_name)
    assert (first["room_name"], first["is_active"], first["participants"]) == (room_name, False, {"user": 1})
    visit(cli, room_name)
    sessions = ok(cli("session", "list", "--room", room_name, "-o", "json")).json()["sessions"]
    assert len(sessions) == 2 and sessions[1]["id"] == first["id"]  # newest first
    assert [s["id"] for s in ok(cli("session", "list", "--room", room_name, "--limit", "1", "-o", "json")).json()["sessions"]] == [sessions[0]["id"]]
    assert first["id"] in [s["id"] for s in ok(cli("session", "list", "--limit", "1000", "-o", "json")).json()["sessions"]]
    table = ok(cli("session", "list", "--room", room_name)).stdout
    assert table.split()[:3] == ["id", "room_name", "created_at"] and first["id"] in table
    ok(cli("rooms", "create", f"{room_name}-idle"))
    assert ok(cli("session", "list", "--room", f"{room_name}-idle")).stdout == f"No recent sessions found for room {room_name}-idle.\n"

    events = ok(cli("session", "get", first["id"], "-o", "json")).json()["events"]
    assert [e["type"] for e in events] == ["room.lifecycle.start", "room.participant.joined", "room.participant.left", "room.lifecycle.stop"]
    assert all(e["session_id"] == first["id"] for e in events)
    assert "room.participant.joined" in ok(cli("session", "get", first["id"])).stdout


def test_session_kill(cli: Cli, cli_env: InProcessServer, room_name: str) -> None:
    with held(cli_env, room_name):
        (active,) = ok(cli("session", "list", "--room", room_name, "-o", "json")).json()["sessions"]
        assert active["is_active"] is True
        assert ok(cli("rooms", "status", room_name, "-o", "json")).json()["status"] == "Allocated"
        declined = ok(cli("session", "kill", active["id"], input="n\n"))
        assert declined.stdout == "" and "Forcefully kill" in declined.stderr
        assert ok(cli("session", "list", "--room", room_name, "-o", "json")).json()["sessions"][0]["is_active"] is True
        killed = ok(cli("session", "kill", active["id"], "--yes"))
        assert killed.stdout == "" and active["id"] in killed.stderr
        (ended,) = ok(cli("session", "list", "--room", room_name, "-o", "json")).json()["sessions"]
        assert ended["is_active"] is False  # ended at once, while the participant still holds on
    assert "room.session.killed" in [e["type"] for e in ok(cli("session", "get", active["id"], "-o", "json")).json()["events"]]
    assert_one_line_error(cli("session", "kill", active["id"], "-y"), 1, "meshagent-trio session kill: error:", "409")


def test_session_logs_metrics_traces(cli: Cli, room_name: str) -> None:
    session = one_session(cli, room_name)["id"]
    # the local server records no OpenTelemetry logs, metrics or spans: the lists are empty
    assert ok(cli("session", "logs", session, "-o", "json")).json() == {"logs": []}
    assert ok(cli("session", "logs", "--room", room_name, "--attrs")).stdout == f"No logs found for session {session}.\n"
    assert ok(cli("session", "metrics", "--session-id", session, "-o", "json")).json() == {"metrics": []}
    assert ok(cli("session", "metrics", "--room", room_name, "--buckets", "--attrs")).stdout == f"No metrics found for session {session}.\n"
    assert ok(cli("session", "traces", session, "--session-id", session, "-o", "json")).json() == {"spans": []}
    result = ok(cli("session", "traces", "--room", room_name, "--name", "x", "--trace-id", "t", "--min-duration", "2ms", "--attrs"))
    assert result.stdout == f"No spans found for session {session}.\n"


def test_span_tree_orders_parents_before_children() -> None:
    spans = [
        {"trace_id": "t", "span_id": "c", "parent_span_id": "a", "created_at": "2"},
        {"trace_id": "t", "span_id": "a", "parent_span_id": None, "created_at": "1"},
        {"trace_id": "t", "span_id": "b", "parent_span_id": "a", "created_at": "1"},
        {"trace_id": "t", "span_id": "d", "parent_span_id": "gone", "created_at": "0"},
    ]
    assert [(depth, span["span_id"]) for depth, span in span_tree(spans)] == [(0, "d"), (0, "a"), (1, "b"), (1, "c")]


def test_session_errors(cli: Cli, monkeypatch: pytest.MonkeyPatch, room_name: str) -> None:
    assert_one_line_error(cli("session", "get", "no-such-session"), 1, "meshagent-trio session get: error:", "no-such-session")
    assert_one_line_error(cli("session", "kill", "no-such-session", "-y"), 1, "no-such-session")
    assert_one_line_error(cli("session", "logs", "no-such-session"), 1, "no-such-session")
    assert_one_line_error(cli("session", "list", "--room", room_name), 1, "meshagent-trio session list: error:", room_name, "does not exist")
    ok(cli("rooms", "create", room_name))
    assert_one_line_error(cli("session", "logs", "--room", room_name), 1, f"no recent sessions found for room {room_name}")
    assert_one_line_error(cli("session", "metrics"), 2, "SESSION_ID", "--room")
    assert_one_line_error(cli("session", "traces", "a", "--session-id", "b"), 2, "--session-id")
    assert_one_line_error(cli("session", "traces", "a", "--min-duration", "soon"), 2, "--min-duration", "soon")
    assert_one_line_error(cli("session", "list", "--limit", "0"), 2, "--limit")
    monkeypatch.delenv("MESHAGENT_API_KEY")
    assert_one_line_error(cli("session", "list"), 1, "MESHAGENT_API_KEY")


def test_participant_token_may_not_list_sessions(cli: Cli, cli_env: InProcessServer, monkeypatch: pytest.MonkeyPatch, room_name: str) -> None:
    monkeypatch.delenv("MESHAGENT_API_KEY")
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name))
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    project = cli_env.credentials.project_id
    assert_one_line_error(cli("session", "list", "--project-id", project), 1, "403", "participant token may only call")
    assert_one_line_error(cli("usage", "show", "--project-id", project), 1, "403")
    assert_one_line_error(cli("usage", "show"), 1, "no project", "--project-id")


# --- usage -------------------------------------------------------------------------------------


def test_usage_show(cli: Cli, room_name: str) -> None:
    visit(cli, room_name)
    rows = ok(cli("usage", "show", "--room", room_name, "-o", "json")).json()
    kinds = {row["usage_type"]: row for row in rows}
    assert set(kinds) == {"participant_minutes", "storage_bytes"} and all(row["room"] == room_name for row in rows)
    assert kinds["participant_minutes"]["total"] > 0 and kinds["participant_minutes"]["date"].endswith("T00:00:00+00:00")

    hourly = ok(cli("usage", "show", "--room", room_name, "--interval", "hour", "--usage-type", "participant_minutes", "-o", "json")).json()
    assert [row["usage_type"] for row in hourly] == ["participant_minutes"] and hourly[0]["date"].endswith(":00:00+00:00")
    assert ok(cli("usage", "show", "--room", room_name, "--user", "someone-else", "-o", "json")).json() == []
    assert ok(cli("usage", "show", "--room", room_name, "--user", "cli", "--user", "x", "-o", "json")).json()[0]["usage_type"] == "participant_minutes"
    assert ok(cli("usage", "show", "--room", room_name, "--start", "2000-01-01", "--end", "2000-01-02")).stdout == "No usage recorded.\n"
    early_end = ("--start", "2000-01-01T10:00:00+02:00", "--end", "2000-01-01T09:00:00Z")  # 08:00Z to 09:00Z
    assert ok(cli("usage", "show", "--room", room_name, *early_end, "-o", "json")).json() == []
    table = ok(cli("usage", "show", "--room", room_name)).stdout
    assert table.split()[:4] == ["usage_type", "room", "date", "total"] and "participant_minutes" in table


def test_usage_errors(cli: Cli) -> None:
    assert_one_line_error(cli("usage", "show", "--interval", "week"), 2, "--interval", "week")
    assert_one_line_error(cli("usage", "show", "--usage-type", "messages"), 2, "--usage-type")
    assert_one_line_error(cli("usage", "show", "--start", "yesterday"), 2, "--start", "ISO-8601")
    assert_one_line_error(cli("usage", "show", "--start", "2025-02-01", "--end", "2025-01-01"), 2, "--end is before --start")
    assert_one_line_error(cli("usage", "show", "--project-id", "no-such-project"), 1, "meshagent-trio usage show: error:", "404")
