"""`meshagent-trio room queue`: list, send (--json, --file, stdin), send-mail, receive, size,
drain, close and open, against the session's local server."""

from __future__ import annotations

import base64
import email
from pathlib import Path
from typing import Callable

import pytest

from clirun import CliResult, assert_one_line_error
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import QueuesGrant
from meshagent_trio.testing import InProcessServer


def ok(result: CliResult) -> CliResult:
    assert result.exit_code == 0, result
    return result


def test_send_receive_size_list(cli: Callable[..., CliResult], room_name: str, tmp_path: Path) -> None:
    r = ("--room", room_name)
    assert ok(cli("room", "queue", "list", *r, "-o", "json")).json() == {"queues": []}
    assert "no queues" in ok(cli("room", "queue", "list", *r)).stdout

    ok(cli("room", "queue", "send", *r, "--queue", "jobs", "--json", '{"n": 1, "text": "héllo"}'))
    (tmp_path / "m.json").write_text('{"n": 2}')
    ok(cli("room", "queue", "send", *r, "--queue", "jobs", "-f", str(tmp_path / "m.json")))
    ok(cli("room", "queue", "send", *r, "--queue", "jobs", "--file", "-", input='{"n": 3}'))

    assert ok(cli("room", "queue", "list", *r, "-o", "json")).json() == {"queues": [{"name": "jobs", "size": 3}]}
    table = ok(cli("room", "queue", "list", *r)).stdout
    assert "jobs" in table and "3" in table
    assert ok(cli("room", "queue", "size", *r, "--queue", "jobs")).stdout == "3\n"
    assert ok(cli("room", "queue", "size", *r, "--queue", "jobs", "-o", "json")).json() == {"name": "jobs", "size": 3}

    assert ok(cli("room", "queue", "receive", *r, "--queue", "jobs")).json() == {"n": 1, "text": "héllo"}
    assert ok(cli("room", "queue", "receive", *r, "--queue", "jobs")).json() == {"n": 2}

    ok(cli("room", "queue", "drain", *r, "--queue", "jobs"))
    assert ok(cli("room", "queue", "size", *r, "--queue", "jobs")).stdout == "0\n"
    assert_one_line_error(cli("room", "queue", "receive", *r, "--queue", "jobs"), 1, "did not contain any messages")


def test_close_and_open(cli: Callable[..., CliResult], room_name: str) -> None:
    r = ("--room", room_name)
    ok(cli("room", "queue", "send", *r, "--queue", "q", "--json", "{}"))
    ok(cli("room", "queue", "close", *r, "--queue", "q"))
    assert_one_line_error(cli("room", "queue", "send", *r, "--queue", "q", "--json", "{}"), 1, "room queue send: error:", "closed")
    assert_one_line_error(cli("room", "queue", "receive", *r, "--queue", "q"), 1, "closed")
    ok(cli("room", "queue", "open", *r, "--queue", "q"))
    ok(cli("room", "queue", "send", *r, "--queue", "q", "--json", '{"again": true}'))
    assert ok(cli("room", "queue", "receive", *r, "--queue", "q")).json() == {}


def test_send_mail(cli: Callable[..., CliResult], room_name: str, tmp_path: Path) -> None:
    r = ("--room", room_name)
    (tmp_path / "notes.txt").write_text("attached")
    ok(cli("room", "queue", "send-mail", *r, "--queue", "inbox@example.com", "--from", "me@example.com", "--subject", "Hi", "--body", "Hello", "--attachment", str(tmp_path / "notes.txt")))
    raw = base64.b64decode(ok(cli("room", "queue", "receive", *r, "--queue", "inbox@example.com")).json()["base64"])
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["Subject"] == "Hi" and mail["From"] == "me@example.com" and mail["To"] == "inbox@example.com"
    assert mail.get_body().get_content().strip() == "Hello"
    assert [part.get_filename() for part in mail.iter_attachments()] == ["notes.txt"]


def test_errors_are_one_line(cli: Callable[..., CliResult], room_name: str, tmp_path: Path) -> None:
    r = ("--room", room_name)
    assert_one_line_error(cli("room", "queue", "list"), 2, "--room")
    assert_one_line_error(cli("room", "queue", "send", *r, "--queue", "q", "--json", "{nope"), 2, "--json", "not valid JSON")
    assert_one_line_error(cli("room", "queue", "send", *r, "--queue", "q", "--json", "[1]"), 2, "JSON object")
    assert_one_line_error(cli("room", "queue", "send", *r, "--queue", "q"), 2, "exactly one")
    assert_one_line_error(cli("room", "queue", "send", *r, "--queue", "q", "-f", str(tmp_path / "missing.json")), 2, "--file", "cannot read")
    assert_one_line_error(cli("room", "queue", "send", *r, "--json", "{}"), 2, "--queue")
    assert_one_line_error(cli("room", "queue", "receive", *r, "--queue", "nope"), 1, "room queue receive: error:", "nope does not exist")
    assert_one_line_error(cli("room", "queue", "size", *r, "--queue", "nope"), 1, "queue not found: nope")
    assert_one_line_error(cli("room", "queue", "drain", *r, "--queue", "nope"), 1, "does not exist")
    assert_one_line_error(cli("room", "queue", "close", *r, "--queue", "nope"), 1, "does not exist")


def test_without_the_queues_grant(cli: Callable[..., CliResult], cli_env: InProcessServer, room_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHAGENT_API_KEY")
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope()))
    assert_one_line_error(cli("room", "queue", "list"), 1, "room queue list: error:", "does not grant the queues API")
    assert_one_line_error(cli("room", "queue", "send", "--queue", "q", "--json", "{}"), 1, "room queue send: error:")
    # a grant that may send to other queues only
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope(queues=QueuesGrant(send=["other"]))))
    assert_one_line_error(cli("room", "queue", "send", "--queue", "q", "--json", "{}"), 1, "room queue send: error:")
