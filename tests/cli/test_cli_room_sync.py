"""`meshagent-trio room sync`: documents as JSON against the session's local server: create, get,
inspect, grep, update by JSON patch (read back through the CLI and the SDK, with the ids of
untouched elements kept), and `watch` (in a subprocess: it prints each version and leaves on
Ctrl-C with status 130)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import trio

from clirun import CliResult, assert_one_line_error
from meshagent_core.tokens import ApiScope, StorageGrant
from meshagent_trio import connect
from meshagent_trio.cli.room_sync import PatchError, apply_patch
from meshagent_trio.testing import InProcessServer

SCHEMA = {
    "$root_tag_ref": "#/$defs/plan",
    "$defs": {
        "plan": {
            "type": "object",
            "properties": {"plan": {"type": "object", "properties": {"items": {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/item"}]}}}}},
        },
        "item": {
            "type": "object",
            "properties": {"item": {"type": "object", "properties": {"title": {"type": "string"}, "done": {"type": "boolean"}}}},
        },
    },
}
INITIAL = {"plan": {"items": [{"item": {"title": "write it", "done": True}}, {"item": {"title": "ship it", "done": False}}]}}


@pytest.fixture
def document(cli: Callable[..., CliResult], tmp_path: Path, room_name: str) -> str:
    (tmp_path / "plan.schema.json").write_text(json.dumps(SCHEMA))
    created = cli("room", "sync", "create", "--room", room_name, "notes/plan.doc", "--schema", "plan.schema.json", "--json", json.dumps(INITIAL))
    assert created.exit_code == 0 and created.stdout == "", created
    return "notes/plan.doc"


def get(cli: Callable[..., CliResult], room: str, path: str, *options: str) -> Any:
    result = cli("room", "sync", "get", "--room", room, path, *options)
    assert result.exit_code == 0, result
    return result.json()


def test_create_then_get_inspect_and_grep(cli: Callable[..., CliResult], cli_env: InProcessServer, room_name: str, document: str) -> None:
    assert get(cli, room_name, document) == INITIAL
    with_ids = get(cli, room_name, document, "--include-ids", "--compact")
    assert all(item["item"]["$id"] for item in with_ids["plan"]["items"])
    compact = cli("room", "sync", "show", "--room", room_name, document, "--compact")
    assert compact.stdout.count("\n") == 1 and json.loads(compact.stdout) == INITIAL, compact

    schema = cli("room", "sync", "inspect", "--room", room_name, document, "--pretty")
    assert schema.exit_code == 0 and schema.json()["$root_tag_ref"] == "#/$defs/plan", schema

    found = cli("room", "sync", "grep", "--room", room_name, document, "SHIP", "--ignore-case")
    assert found.exit_code == 0 and found.json() == [{"item": {"title": "ship it", "done": False}}], found
    context = cli("room", "sync", "grep", "--room", room_name, document, "ship", "--before", "1", "--compact")
    assert [node["item"]["title"] for node in context.json()] == ["write it", "ship it"]
    assert cli("room", "sync", "grep", "--room", room_name, document, "nothing-like-this").json() == []

    async def through_the_sdk() -> Any:
        async with connect(cli_env.room_url(room_name), cli_env.token(room_name)) as room:
            return await room.sync.describe(path=document)

    assert trio.run(through_the_sdk) == INITIAL


def test_create_refuses_an_existing_document(cli: Callable[..., CliResult], room_name: str, document: str) -> None:
    again = cli("room", "sync", "create", "--room", room_name, document, "--schema", "plan.schema.json")
    assert_one_line_error(again, 1, "already exists", document)


def test_update_applies_a_json_patch_and_keeps_untouched_elements(cli: Callable[..., CliResult], tmp_path: Path, room_name: str, document: str) -> None:
    before = get(cli, room_name, document, "--include-ids")["plan"]["items"]
    patch = [
        {"op": "replace", "path": "/plan/items/1/item/done", "value": True},
        {"op": "add", "path": "/plan/items/-", "value": {"item": {"title": "celebrate"}}},
        {"op": "test", "path": "/plan/items/0/item/title", "value": "write it"},
    ]
    updated = cli("room", "sync", "update", "--room", room_name, document, "--patch", json.dumps(patch))
    assert updated.exit_code == 0 and updated.stdout == "", updated
    after = get(cli, room_name, document, "--include-ids")["plan"]["items"]
    assert [item["item"] for item in after] == [
        {"$id": before[0]["item"]["$id"], "title": "write it", "done": True},
        {"$id": before[1]["item"]["$id"], "title": "ship it", "done": True},
        {"$id": after[2]["item"]["$id"], "title": "celebrate"},
    ]

    (tmp_path / "patch.json").write_text(json.dumps([{"op": "remove", "path": "/plan/items/0"}, {"op": "move", "from": "/plan/items/1", "path": "/plan/items/0"}]))
    edited = cli("room", "sync", "edit", "--room", room_name, document, "--patch-file", "patch.json")
    assert edited.exit_code == 0, edited
    assert get(cli, room_name, document) == {"plan": {"items": [{"item": {"title": "celebrate"}}, {"item": {"title": "ship it", "done": True}}]}}


def test_update_errors(cli: Callable[..., CliResult], room_name: str, document: str) -> None:
    failed_test = cli("room", "sync", "update", "--room", room_name, document, "--patch", '[{"op": "test", "path": "/plan/items/0/item/title", "value": "no"}]')
    assert_one_line_error(failed_test, 1, "does not apply", "test failed")
    missing = cli("room", "sync", "update", "--room", room_name, document, "--patch", '[{"op": "remove", "path": "/plan/items/9"}]')
    assert_one_line_error(missing, 1, "does not apply", "non-existent")
    schema_breaking = cli("room", "sync", "update", "--room", room_name, document, "--patch", '[{"op": "add", "path": "/plan/items/0/item/colour", "value": "red"}]')
    assert_one_line_error(schema_breaking, 1, "colour")
    assert_one_line_error(cli("room", "sync", "update", "--room", room_name, document, "--patch", '{"op": "add"}'), 2, "--patch", "list of operations")
    assert_one_line_error(cli("room", "sync", "update", "--room", room_name, document, "--patch", '[{"op": "frobnicate", "path": ""}]'), 2, "frobnicate")
    assert_one_line_error(cli("room", "sync", "update", "--room", room_name, document), 2, "--patch")
    assert_one_line_error(cli("room", "sync", "update", "--room", room_name, document, "--patch", "[", "--patch-file", "x.json"), 2, "not both")
    assert get(cli, room_name, document) == INITIAL  # nothing of the failed patches was applied


def test_apply_patch_follows_rfc_6902() -> None:
    document = {"a": {"b": [1, 2]}, "c": "x"}
    assert apply_patch(document, [{"op": "add", "path": "/a/b/1", "value": 9}]) == {"a": {"b": [1, 9, 2]}, "c": "x"}
    assert apply_patch(document, [{"op": "copy", "from": "/c", "path": "/d"}])["d"] == "x"
    assert apply_patch(document, [{"op": "replace", "path": "", "value": {}}]) == {}
    assert apply_patch(document, [{"op": "add", "path": "/a~1b", "value": 1}])["a/b"] == 1
    assert document == {"a": {"b": [1, 2]}, "c": "x"}  # not changed in place
    with pytest.raises(PatchError) as into_itself:
        apply_patch(document, [{"op": "move", "from": "/a", "path": "/a/b/0"}])
    assert not into_itself.value.malformed
    with pytest.raises(PatchError) as no_pointer:
        apply_patch(document, [{"op": "add", "path": "a", "value": 1}])
    assert no_pointer.value.malformed


def test_missing_documents_rooms_and_permissions(cli: Callable[..., CliResult], cli_env: InProcessServer, monkeypatch: Any, room_name: str, document: str) -> None:
    for command in ("get", "inspect", "watch"):
        assert_one_line_error(cli("room", "sync", command, "--room", room_name, "notes/none.doc"), 1, f"meshagent-trio room sync {command}: error:")
    assert_one_line_error(cli("room", "sync", "get", document), 2, "--room")
    assert_one_line_error(cli("room", "sync", "grep", "--room", room_name, document, "("), 2, "regular expression")
    assert_one_line_error(cli("room", "sync", "create", "--room", room_name, "x.doc", "--json", "[1]"), 2, "--json")

    monkeypatch.delenv("MESHAGENT_API_KEY")
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope(storage=StorageGrant())))
    assert_one_line_error(cli("room", "sync", "get", document), 1, "meshagent-trio room sync get: error:")
    refused = cli("room", "sync", "update", document, "--patch", '[{"op": "remove", "path": "/plan/items/0"}]')
    assert_one_line_error(refused, 1, "meshagent-trio room sync update: error:")


def test_watch_prints_every_version_until_ctrl_c(cli_env: InProcessServer, room_name: str, document: str, tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "meshagent_trio", "room", "sync", "watch", "--room", room_name, document],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        cwd=tmp_path,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert json.loads(process.stdout.readline()) == INITIAL

        async def edit() -> None:
            async with connect(cli_env.room_url(room_name), cli_env.token(room_name)) as room:
                doc = await room.sync.open(path=document, create=False)
                doc.root.append_child("item", {"title": "watched"})
                await room.sync.close(path=document)

        trio.run(edit)
        changed = json.loads(process.stdout.readline())
        assert [item["item"]["title"] for item in changed["plan"]["items"]] == ["write it", "ship it", "watched"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 130
        assert process.stdout.read() == "" and process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_watch_stops_after_count(cli: Callable[..., CliResult], room_name: str, document: str) -> None:
    watched = cli("room", "sync", "watch", "--room", room_name, document, "--count", "1", "--include-ids")
    assert watched.exit_code == 0, watched
    [line] = watched.stdout.splitlines()
    assert json.loads(line)["plan"]["items"][0]["item"]["$id"]
