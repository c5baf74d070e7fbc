"""`meshagent-trio room developer`: `log` writes entries that `watch` (and its hidden alias
`logs`) prints, in plain and JSON formats, in a child process ended by `--count` or Ctrl-C."""

from __future__ import annotations

import json
from typing import Callable

import pytest

from clirun import CliResult, assert_one_line_error
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import DeveloperGrant
from meshagent_trio.cli.room_developer import plain_lines
from meshagent_trio.testing import InProcessServer
from beside import Child


def ok(result: CliResult) -> CliResult:
    assert result.exit_code == 0, result
    return result


def test_log_entries_are_watched_as_json(cli: Callable[..., CliResult], room_name: str) -> None:
    watcher = Child("room", "developer", "watch", "--room", room_name, "--format", "json", "--count", "2")
    watcher.stderr_line()
    ok(cli("room", "developer", "log", "--room", room_name, "--data", '{"message": "deployed", "extra": {"v": 2}}'))
    ok(cli("room", "developer", "log", "--room", room_name, "--type", "build", "--data", '{"step": 3}'))
    status, out, err = watcher.finish()
    assert status == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [
        {"type": "info", "data": {"message": "deployed", "extra": {"v": 2}}},
        {"type": "build", "data": {"step": 3}},
    ]


def test_logs_alias_follows_in_plain_text_until_ctrl_c(cli: Callable[..., CliResult], room_name: str) -> None:
    watcher = Child("room", "developer", "logs", "--room", room_name)
    watcher.stderr_line()
    ok(cli("room", "developer", "log", "--room", room_name, "--type", "warning", "--data", '{"message": "disk low", "extra": {"free": 5}}'))
    assert watcher.process.stdout is not None
    line = watcher.process.stdout.readline().decode()
    assert line.rstrip().endswith('warning disk low {"free": 5}'), line
    watcher.interrupt()
    status, _out, err = watcher.finish()
    assert status == 130 and "Traceback" not in err, err


def test_plain_lines_render_otel_batches() -> None:
    batch = {
        "resourceLogs": [
            {"scopeLogs": [{"logRecords": [{"timeUnixNano": "0", "severityText": "ERROR", "body": {"stringValue": "boom"}}, {"body": {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": "1"}}]}}}]}]}
        ]
    }
    lines = plain_lines("otel.log", batch)
    assert lines[0].endswith("ERROR   boom") and lines[1] == '- INFO    {"a": 1}'
    assert plain_lines("custom", {"x": 1})[0].endswith('custom  {"x": 1}')


def test_errors_are_one_line(cli: Callable[..., CliResult], room_name: str) -> None:
    assert_one_line_error(cli("room", "developer", "watch"), 2, "--room")
    assert_one_line_error(cli("room", "developer", "log", "--room", room_name, "--data", "nope"), 2, "--data", "not valid JSON")
    assert_one_line_error(cli("room", "developer", "log", "--room", room_name, "--data", "[]"), 2, "--data", "JSON object")
    assert_one_line_error(cli("room", "developer", "watch", "--room", room_name, "--format", "xml"), 2, "xml")


def test_without_the_developer_grant(cli: Callable[..., CliResult], cli_env: InProcessServer, room_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHAGENT_API_KEY")
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope()))
    assert_one_line_error(cli("room", "developer", "log", "--data", "{}"), 1, "room developer log: error:", "does not grant the developer API")
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope(developer=DeveloperGrant(logs=False))))
    assert_one_line_error(cli("room", "developer", "watch", "--count", "1"), 1, "room developer watch: error:", "developer logs")
