"""The conventions every command follows: exit statuses, one-line errors, `-o json`, `.env`,
`--help` with an example on every command."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from clirun import CliResult, assert_one_line_error, invoke


def test_a_room_command_round_trips_json(cli: Callable[..., CliResult], room_name: str) -> None:
    listed = cli("room", "mounts", "list", "--room", room_name, "-o", "json")
    assert listed.exit_code == 0, listed
    assert isinstance(listed.json(), list)
    table = cli("room", "mounts", "list", "--room", room_name)
    assert table.exit_code == 0 and table.stderr == "", table


def test_missing_room_is_a_usage_error(cli: Callable[..., CliResult]) -> None:
    result = cli("room", "mounts", "list")
    assert_one_line_error(result, 2, "meshagent-trio room mounts list: error:", "--room", "MESHAGENT_ROOM", "--help")


def test_an_unreachable_server_is_one_line(cli: Callable[..., CliResult], monkeypatch, room_name: str) -> None:
    monkeypatch.setenv("MESHAGENT_API_URL", "http://127.0.0.1:9")
    monkeypatch.setattr("meshagent_trio.cli.common.CONNECT_TIMEOUT", 0.5)
    result = cli("room", "mounts", "list", "--room", room_name)
    assert_one_line_error(result, 1, "meshagent-trio room mounts list: error:", "127.0.0.1:9")


def test_unknown_commands_and_options_are_usage_errors(cli: Callable[..., CliResult]) -> None:
    assert_one_line_error(cli("room", "nope"), 2, "No such command", "nope")
    assert_one_line_error(cli("room", "mounts", "list", "--colour"), 2, "--colour")
    assert_one_line_error(cli("room", "mounts", "list", "-o", "yaml"), 2, "yaml")


def test_dotenv_in_the_working_directory_is_read(cli: Callable[..., CliResult], monkeypatch, tmp_path: Path, room_name: str) -> None:
    monkeypatch.delenv("MESHAGENT_ROOM", raising=False)
    (tmp_path / ".env").write_text(f"MESHAGENT_ROOM={room_name}\n")
    result = cli("room", "mounts", "list", "-o", "json")
    assert result.exit_code == 0, result


def test_the_environment_wins_over_dotenv(cli: Callable[..., CliResult], monkeypatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MESHAGENT_API_URL=http://127.0.0.1:9\n")
    result = cli("room", "mounts", "list", "--room", "lobby", "-o", "json")
    assert result.exit_code == 0, result


def test_version(cli: Callable[..., CliResult]) -> None:
    from meshagent_trio import __version__

    assert invoke("version").stdout == f"meshagent-trio {__version__}\n"
    assert invoke("--version").stdout == f"meshagent-trio {__version__}\n"


def test_listings_name_every_group_though_only_the_named_one_is_built(cli: Callable[..., CliResult]) -> None:
    from meshagent_trio.cli.app import ROOM_GROUPS, TOP_GROUPS

    top = invoke("--help")
    assert top.exit_code == 0 and all(f"  {name} " in top.stdout for name, _module, _aliases in TOP_GROUPS), top
    room = invoke("room", "--help")
    assert room.exit_code == 0 and all(f"  {name} " in room.stdout for name, _module, _aliases in ROOM_GROUPS), room
    storage = invoke("room", "storage", "--help")
    assert storage.exit_code == 0 and "  cp " in storage.stdout and "  ls " in storage.stdout, storage


def test_a_bad_or_expired_token_is_one_line(cli: Callable[..., CliResult], cli_env, monkeypatch, room_name: str) -> None:
    from datetime import datetime, timedelta, timezone

    monkeypatch.delenv("MESHAGENT_API_KEY")
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.setenv("MESHAGENT_TOKEN", "not-a-jwt")
    garbage = cli("room", "mounts", "list")
    assert_one_line_error(garbage, 1, "meshagent-trio room mounts list: error:")
    expired = cli_env.token(room_name, name="late", expires=datetime.now(timezone.utc) - timedelta(minutes=5))
    monkeypatch.setenv("MESHAGENT_TOKEN", expired)
    late = cli("room", "mounts", "list")
    assert_one_line_error(late, 1, "meshagent-trio room mounts list: error:")
    assert "expired" in late.stderr.lower(), late
