"""`meshagent-trio project` and `rooms` against the session's local server: what the commands
write is read back through the CLI (and the SDK where the CLI has no reader), `-o json` parses,
and every failure is one line with the right status."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable

import pytest
import yaml

from beside import own_project, sdk, visit
from clirun import CliResult, assert_one_line_error, ok
from meshagent_trio import Meshagent
from meshagent_trio.testing import InProcessServer

Cli = Callable[..., CliResult]


# --- projects ----------------------------------------------------------------------------------


def test_project_create_list_get(cli: Cli, cli_env: InProcessServer) -> None:
    name = f"proj-{uuid.uuid4().hex[:8]}"
    created = ok(cli("project", "create", name, "-o", "json")).json()
    assert created["name"] == name and created["id"]

    listed = ok(cli("project", "list", "-o", "json")).json()["projects"]
    by_id = {project["id"]: project for project in listed}
    assert by_id[created["id"]]["name"] == name and by_id[created["id"]]["current"] is False
    assert by_id[own_project(cli_env)]["current"] is True

    table = ok(cli("project", "list")).stdout
    assert name in table and f"*{by_id[own_project(cli_env)]['name']}" in table

    fetched = ok(cli("project", "get", created["id"], "-o", "json")).json()
    assert (fetched["id"], fetched["name"]) == (created["id"], name)
    by_key = ok(cli("project", "get", fetched["project_key"], "-o", "json")).json()
    assert by_key["id"] == created["id"]
    assert name in ok(cli("project", "create", f"{name}-t")).stdout


def test_project_get_unknown_is_one_line(cli: Cli) -> None:
    assert_one_line_error(cli("project", "get", "no-such-project"), 1, "meshagent-trio project get: error:", "no-such-project")


def test_llm_router_config_round_trip(cli: Cli, cli_env: InProcessServer, tmp_path: Path) -> None:
    project = ok(cli("project", "create", f"router-{uuid.uuid4().hex[:8]}", "-o", "json")).json()["id"]
    assert ok(cli("project", "get-llm-router-config", "--project-id", project)).stdout == "{}\n"
    config = {"allowedModels": [{"provider": "openai", "model": "gpt-4o"}], "rules": []}
    source = tmp_path / "router.yaml"
    source.write_text(yaml.safe_dump(config))
    result = ok(cli("project", "set-llm-router-config", str(source), "--project-id", project))
    assert result.stdout == "" and "updated" in result.stderr
    assert yaml.safe_load(ok(cli("project", "get-llm-router-config", "--project-id", project)).stdout) == config
    target = tmp_path / "out.yaml"
    ok(cli("project", "get-llm-router-config", "--project-id", project, "-o", str(target)))
    assert yaml.safe_load(target.read_text()) == config

    source.write_text("colours: [1]\n")
    assert_one_line_error(cli("project", "set-llm-router-config", str(source), "--project-id", project), 1, "unknown key 'colours'")
    source.write_text("a: [\n")
    assert_one_line_error(cli("project", "set-llm-router-config", str(source), "--project-id", project), 1, "invalid LLM router configuration")
    assert_one_line_error(cli("project", "set-llm-router-config", str(tmp_path / "missing.yaml")), 1, "cannot read", "missing.yaml")


def test_room_roles_set_and_reset(cli: Cli, cli_env: InProcessServer, tmp_path: Path) -> None:
    project = ok(cli("project", "create", f"roles-{uuid.uuid4().hex[:8]}", "-o", "json")).json()["id"]
    spec = tmp_path / "roles.yaml"
    spec.write_text(
        yaml.safe_dump({"version": "v1", "kind": "RoomRoles", "roles": {"viewer": {"participant": {"api": {"storage": {}}}}, "admin": {"site_user": True}}})
    )
    ok(cli("project", "set-room-roles", str(spec), "--project-id", project))
    stored = sdk(cli_env, lambda api: api.get_project_settings_document(project, "room_roles"))
    assert stored == {"roles": {"viewer": {"site_user": False, "participant": {"api": {"storage": {}}}}, "admin": {"site_user": True}}}
    ok(cli("project", "reset-room-roles", "--project-id", project))
    assert sdk(cli_env, lambda api: api.get_project_settings_document(project, "room_roles")) is None
    ok(cli("project", "reset-room-roles", "--project-id", project))  # nothing to reset: still fine

    spec.write_text(yaml.safe_dump({"version": "v1", "kind": "RoomRoles", "roles": {"boss": {}}}))
    assert_one_line_error(cli("project", "set-room-roles", str(spec), "--project-id", project), 1, "unknown role 'boss'")
    spec.write_text(yaml.safe_dump({"version": "v2", "kind": "RoomRoles", "roles": {}}))
    assert_one_line_error(cli("project", "set-room-roles", str(spec), "--project-id", project), 1, "version: v1")


# --- rooms -------------------------------------------------------------------------------------


def test_rooms_create_get_update_delete(cli: Cli, cli_env: InProcessServer, room_name: str) -> None:
    created = ok(
        cli("rooms", "create", room_name, "--metadata", '{"team": "a"}', "--annotations", '{"meshagent.storage.class": "ephemeral"}', "-o", "json")
    ).json()
    assert created["name"] == room_name and created["metadata"] == {"team": "a"} and created["enabled"] is True
    assert created["annotations"] == {"meshagent.storage.class": "ephemeral"}
    # the owner (the server key's user) got a full grant
    grants = sdk(cli_env, lambda api: api.list_room_grants_by_room(project_id=own_project(cli_env), room_name=room_name))
    assert len(grants.room_grants) == 1

    again = ok(cli("rooms", "create", room_name, "--if-not-exists", "-o", "json")).json()
    assert again["id"] == created["id"]
    assert_one_line_error(cli("rooms", "create", room_name), 1, "meshagent-trio rooms create: error:", "already exists")

    assert ok(cli("rooms", "get", room_name, "-o", "json")).json() == created
    assert ok(cli("rooms", "get", "--name", room_name, "-o", "json")).json()["id"] == created["id"]
    assert created["id"] in ok(cli("rooms", "get", room_name)).stdout

    renamed = f"{room_name}-x"
    ok(cli("rooms", "update", "--name", room_name, "--new-name", renamed, "--disabled", "--annotations", '{"k": "v"}'))
    after = ok(cli("rooms", "get", renamed, "-o", "json")).json()
    assert (after["id"], after["enabled"], after["annotations"], after["metadata"]) == (created["id"], False, {"k": "v"}, {"team": "a"})
    ok(cli("rooms", "update", "--id", created["id"], "--enabled"))
    assert ok(cli("rooms", "get", renamed, "-o", "json")).json()["enabled"] is True

    result = ok(cli("rooms", "delete", "--id", created["id"]))
    assert result.stdout == "" and created["id"] in result.stderr
    assert_one_line_error(cli("rooms", "get", renamed), 1, "meshagent-trio rooms get: error:", "HTTP 404", renamed)


def test_rooms_delete_by_name_and_no_owner(cli: Cli, cli_env: InProcessServer, room_name: str) -> None:
    ok(cli("rooms", "create", room_name, "--no-owner"))
    grants = sdk(cli_env, lambda api: api.list_room_grants_by_room(project_id=own_project(cli_env), room_name=room_name))
    assert grants.room_grants == []
    ok(cli("rooms", "delete", "--name", room_name))
    assert room_name not in [room["name"] for room in ok(cli("rooms", "list", "--all", "-o", "json")).json()]


def test_rooms_list_pages_filters_and_offsets(cli: Cli, room_name: str) -> None:
    names = [f"{room_name}-{index}" for index in range(5)]
    for name in names:
        ok(cli("rooms", "create", name))
    listed = ok(cli("rooms", "list", "--filter", room_name.upper(), "-o", "json")).json()
    assert [room["name"] for room in listed] == names
    assert set(listed[0]) == {"id", "name", "metadata", "annotations", "enabled"}
    window = ok(cli("rooms", "list", "--filter", room_name, "--offset", "1", "--count", "2", "-o", "json")).json()
    assert [room["name"] for room in window] == names[1:3]
    assert [room["name"] for room in ok(cli("rooms", "list", "--filter", room_name, "--limit", "1", "-o", "json")).json()] == names[:1]
    table = ok(cli("rooms", "list", "--filter", room_name)).stdout
    assert table.splitlines()[0].split() == ["id", "name", "enabled"] and all(name in table for name in names)
    assert ok(cli("rooms", "list", "--filter", "no-room-has-this-name")).stdout == "No rooms found.\n"


def test_rooms_status_and_events(cli: Cli, room_name: str) -> None:
    ok(cli("rooms", "create", room_name))
    assert ok(cli("rooms", "status", room_name, "-o", "json")).json() == {"status": "Unallocated"}
    assert ok(cli("rooms", "events", room_name, "-o", "json")).json() == []
    visit(cli, room_name)  # one session: joined and left
    types = [event["type"] for event in ok(cli("rooms", "events", room_name, "-o", "json")).json()]
    assert types == ["room.lifecycle.stop", "room.participant.left", "room.participant.joined", "room.lifecycle.start"]
    assert [event["type"] for event in ok(cli("rooms", "events", room_name, "--limit", "1", "-o", "json")).json()] == ["room.lifecycle.stop"]
    assert "room.lifecycle.start" in ok(cli("rooms", "events", room_name, "--count", "4")).stdout
    assert ok(cli("rooms", "status", room_name)).stdout.split() == ["status", "Unallocated"]


def test_rooms_errors(cli: Cli, room_name: str) -> None:
    assert_one_line_error(cli("rooms", "get", room_name), 1, "meshagent-trio rooms get: error:", "HTTP 404", room_name)
    assert_one_line_error(cli("rooms", "status", room_name), 1, "HTTP 404", room_name)
    assert_one_line_error(cli("rooms", "events", room_name), 1, "HTTP 404", room_name)
    assert_one_line_error(cli("rooms", "delete", "--name", room_name), 1, "HTTP 404", room_name)
    assert_one_line_error(cli("rooms", "update", "--id", "no-such-id", "--enabled"), 1, "no room with id 'no-such-id'")
    assert_one_line_error(cli("rooms", "delete"), 2, "--id / --name")
    assert_one_line_error(cli("rooms", "update", "--name", room_name), 2, "--new-name")
    assert_one_line_error(cli("rooms", "create", room_name, "--metadata", "{nope"), 2, "--metadata", "not valid JSON")
    assert_one_line_error(cli("rooms", "create", room_name, "--annotations", '{"a": 1}'), 2, "--annotations", "string")
    assert_one_line_error(cli("rooms", "create"), 2, "NAME")
    assert_one_line_error(cli("rooms", "get"), 2, "ROOM")
    assert_one_line_error(cli("rooms", "list", "--order-by", "created_at"), 2, "--order-by", "room_name")
    assert_one_line_error(cli("rooms", "list", "--count", "0"), 2, "--count")
    assert_one_line_error(cli("rooms", "events", room_name, "-o", "yaml"), 2, "yaml")


def test_missing_credentials_are_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHAGENT_API_KEY")
    for args in (("project", "list"), ("rooms", "list"), ("rooms", "get", "lobby")):
        assert_one_line_error(cli(*args), 1, f"meshagent-trio {args[0]} {args[1]}: error:", "MESHAGENT_API_KEY")


def test_another_projects_key_is_refused(cli: Cli, cli_env: InProcessServer, monkeypatch: pytest.MonkeyPatch, room_name: str) -> None:
    other = ok(cli("project", "create", f"other-{uuid.uuid4().hex[:8]}", "-o", "json")).json()["id"]

    async def key_of_other(api: Meshagent) -> str:
        account = await api.create_service_account(project_id=other, name="outsider")
        return (await api.create_api_key(project_id=other, service_account_id=account.id, name="k", description="")).value

    monkeypatch.setenv("MESHAGENT_API_KEY", sdk(cli_env, key_of_other))
    mine = own_project(cli_env)
    assert_one_line_error(cli("rooms", "list", "--project-id", mine), 1, "meshagent-trio rooms list: error:", "HTTP 403")
    assert_one_line_error(cli("rooms", "create", room_name, "--project-id", mine, "--no-owner"), 1, "403")
    assert_one_line_error(cli("project", "get", mine), 1, "meshagent-trio project get: error:")
    # its own project works, and a service account's key grants no owner by default
    ok(cli("rooms", "create", room_name))
    assert [room["name"] for room in ok(cli("rooms", "list", "-o", "json")).json()] == [room_name]
    assert_one_line_error(cli("rooms", "create", f"{room_name}-2", "--owner"), 1, "--no-owner")
    assert [project["id"] for project in ok(cli("project", "list", "-o", "json")).json()["projects"]] == [other]
