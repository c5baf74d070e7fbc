"""`meshagent-trio room messaging`: list, send, broadcast, and listen (in a child process, ended
by `--count` or by Ctrl-C), against the session's local server."""

from __future__ import annotations

import json
import re
from typing import Callable

import pytest

from beside import Child
from clirun import CliResult, assert_one_line_error
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import MessagingGrant
from meshagent_trio.testing import InProcessServer


def ok(result: CliResult) -> CliResult:
    assert result.exit_code == 0, result
    return result


def test_send_broadcast_list_and_listen(cli: Callable[..., CliResult], room_name: str) -> None:
    r = ("--room", room_name)
    listener = Child("room", "messaging", "listen", *r, "--count", "2")
    ready = listener.stderr_line()
    participant_id = re.search(r"participant (\S+);", ready).group(1)  # type: ignore[union-attr]

    listed = ok(cli("room", "messaging", "list", *r, "-o", "json")).json()
    assert participant_id in [row["id"] for row in listed]
    assert next(row for row in listed if row["id"] == participant_id)["attributes"]["name"] == "cli"
    assert participant_id in ok(cli("room", "messaging", "list", *r)).stdout

    ok(cli("room", "messaging", "send", *r, "--to-participant-id", participant_id, "--type", "chat", "--data", '{"text": "héllo"}'))
    ok(cli("room", "messaging", "broadcast", *r, "--data", '{"text": "all"}'))
    status, out, err = listener.finish()
    assert status == 0, err
    received = [json.loads(line) for line in out.splitlines()]
    assert [(m["type"], m["message"]) for m in received] == [("chat", {"text": "héllo"}), ("chat.broadcast", {"text": "all"})]
    assert all(m["from_participant_id"] != participant_id for m in received)


def test_listen_until_ctrl_c(cli: Callable[..., CliResult], room_name: str) -> None:
    listener = Child("room", "messaging", "listen", "--room", room_name)
    listener.stderr_line()
    ok(cli("room", "messaging", "broadcast", "--room", room_name, "--type", "note", "--data", '{"n": 1}'))
    assert listener.process.stdout is not None
    line = listener.process.stdout.readline().decode()
    assert json.loads(line)["message"] == {"n": 1}
    listener.interrupt()
    status, _out, err = listener.finish()
    assert status == 130 and "Traceback" not in err, err


def test_errors_are_one_line(cli: Callable[..., CliResult], room_name: str) -> None:
    r = ("--room", room_name)
    assert_one_line_error(cli("room", "messaging", "list"), 2, "--room")
    assert_one_line_error(cli("room", "messaging", "broadcast", *r, "--data", "{oops"), 2, "--data", "not valid JSON")
    assert_one_line_error(cli("room", "messaging", "broadcast", *r, "--data", '"text"'), 2, "--data", "JSON object")
    assert_one_line_error(
        cli("room", "messaging", "send", *r, "--to-participant-id", "nobody", "--type", "chat", "--data", "{}"),
        1,
        "room messaging send: error:",
        "nobody",
    )


def test_without_the_messaging_grant(cli: Callable[..., CliResult], cli_env: InProcessServer, room_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHAGENT_API_KEY")
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope()))
    assert_one_line_error(cli("room", "messaging", "list"), 1, "room messaging list: error:", "does not grant the messaging API")
    assert_one_line_error(cli("room", "messaging", "listen", "--count", "1"), 1, "room messaging listen: error:")
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope(messaging=MessagingGrant(broadcast=False))))
    assert_one_line_error(cli("room", "messaging", "broadcast", "--data", "{}"), 1, "room messaging broadcast: error:")
