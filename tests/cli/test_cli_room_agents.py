"""`meshagent-trio room agents`: list the toolkits a participant hosts in the room and call their
tools, against the session's local server, with the toolkit hosted by a real participant (our
client, in a thread of its own)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, AsyncIterator, Callable, Iterator

import trio

from beside import in_background
from clirun import CliResult, assert_one_line_error
from meshagent_core.client.tools import Toolkit, tool
from meshagent_core.tokens import ApiScope, StorageGrant
from meshagent_trio import connect
from meshagent_trio.testing import InProcessServer


@tool
async def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


@tool
async def greet(name: str) -> str:
    """Say hello."""
    return f"hello {name}"


@tool
async def count(n: int) -> AsyncIterator[dict]:
    """Count up to n."""
    for i in range(n):
        yield {"i": i}


MATH = Toolkit(name="math", title="Math", description="Arithmetic for tests.", tools=[add, greet, count])


@contextmanager
def hosting(server: InProcessServer, room: str, toolkit: Toolkit = MATH) -> Iterator[None]:
    """`toolkit` hosted in `room` by a participant named `host` while the block runs."""

    async def work(task_status: Any) -> None:
        async with connect(server.room_url(room), server.token(room, name="host")) as client:
            async with client.agents.host(toolkit):
                task_status.started()
                await trio.sleep_forever()

    with in_background(work):
        yield


def test_list_toolkits_shows_the_hosted_toolkit(cli: Callable[..., CliResult], cli_env: InProcessServer, room_name: str) -> None:
    empty = cli("room", "agents", "list-toolkits", "--room", room_name, "-o", "json")
    assert empty.exit_code == 0 and empty.json() == [], empty
    with hosting(cli_env, room_name):
        listed = cli("room", "agents", "list-toolkits", "--room", room_name, "-o", "json")
        assert listed.exit_code == 0, listed
        [toolkit] = listed.json()
        assert toolkit["name"] == "math" and toolkit["title"] == "Math" and toolkit["description"] == "Arithmetic for tests."
        assert toolkit["participant_id"]
        tools = {entry["name"]: entry for entry in toolkit["tools"]}
        assert set(tools) == {"add", "greet", "count"}
        assert tools["add"]["description"] == "Add two numbers." and set(tools["add"]["input_schema"]["properties"]) == {"a", "b"}

        only_theirs = cli("room", "agent", "list-toolkits", "--room", room_name, "--participant-id", toolkit["participant_id"], "-o", "json")
        assert [entry["name"] for entry in only_theirs.json()] == ["math"], only_theirs

        table = cli("room", "agents", "list-toolkits", "--room", room_name)
        assert table.exit_code == 0 and table.stderr == "", table
        lines = table.stdout.splitlines()
        assert lines[0].split()[:3] == ["name", "title", "tools"]
        assert "math" in lines[1] and "add, greet, count" in lines[1]


def test_invoke_tool_prints_json_text_and_streams(cli: Callable[..., CliResult], cli_env: InProcessServer, room_name: str) -> None:
    with hosting(cli_env, room_name):
        added = cli("room", "agents", "invoke-tool", "--room", room_name, "--toolkit", "math", "--tool", "add", "--arguments", '{"a": 2, "b": 40}')
        assert added.exit_code == 0 and added.json() == 42, added

        greeted = cli("room", "agents", "invoke", "--room", room_name, "--toolkit", "math", "--tool", "greet", "--arguments", '{"name": "bob"}')
        assert greeted.exit_code == 0 and greeted.stdout == "hello bob\n", greeted

        counted = cli("room", "agent", "invoke-tool", "--room", room_name, "--toolkit", "math", "--tool", "count", "--arguments", '{"n": 3}')
        assert counted.exit_code == 0, counted
        assert counted.stdout.splitlines() == ['{"i":0}', '{"i":1}', '{"i":2}']

        refused = cli("room", "agents", "invoke-tool", "--room", room_name, "--toolkit", "math", "--tool", "add", "--arguments", '{"a": "x"}')
        assert_one_line_error(refused, 1, "meshagent-trio room agents invoke-tool: error:")

        unknown_tool = cli("room", "agents", "invoke-tool", "--room", room_name, "--toolkit", "math", "--tool", "nope")
        assert_one_line_error(unknown_tool, 1, "nope")


def test_invoke_tool_waits_for_the_toolkit_then_says_it_is_missing(cli: Callable[..., CliResult], room_name: str) -> None:
    started = time.monotonic()
    missing = cli("room", "agents", "invoke-tool", "--room", room_name, "--toolkit", "absent", "--tool", "x", "--timeout", "1")
    assert time.monotonic() - started >= 1
    assert_one_line_error(missing, 1, "meshagent-trio room agents invoke-tool: error:", "absent")


def test_invoke_tool_reaches_the_rooms_builtin_toolkits(cli: Callable[..., CliResult], room_name: str) -> None:
    assert cli("room", "agents", "invoke-tool", "--room", room_name, "--toolkit", "storage", "--tool", "list", "--arguments", '{"path": ""}', "--timeout", "0").exit_code == 0


def test_usage_errors(cli: Callable[..., CliResult], room_name: str) -> None:
    assert_one_line_error(cli("room", "agents", "list-toolkits"), 2, "--room")
    assert_one_line_error(cli("room", "agents", "invoke-tool", "--toolkit", "math", "--tool", "add"), 2, "--room")
    assert_one_line_error(cli("room", "agents", "invoke-tool", "--room", room_name, "--tool", "add"), 2, "--toolkit")
    bad_json = cli("room", "agents", "invoke-tool", "--room", room_name, "--toolkit", "math", "--tool", "add", "--arguments", "{a")
    assert_one_line_error(bad_json, 2, "--arguments", "not valid JSON")


def test_no_permission(cli: Callable[..., CliResult], cli_env: InProcessServer, monkeypatch: Any, room_name: str) -> None:
    """A token without the `agents` grant may list toolkits (no grant needed: tokens.md §7) but
    not call their tools."""
    monkeypatch.delenv("MESHAGENT_API_KEY")
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope(storage=StorageGrant())))
    with hosting(cli_env, room_name):
        listed = cli("room", "agents", "list-toolkits", "-o", "json")
        assert [toolkit["name"] for toolkit in listed.json()] == ["math"], listed
        refused = cli("room", "agents", "invoke-tool", "--toolkit", "math", "--tool", "add", "--arguments", '{"a": 1}')
        assert_one_line_error(refused, 1, "meshagent-trio room agents invoke-tool: error:")
