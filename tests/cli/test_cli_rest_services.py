"""`meshagent-trio service …` against the local server: services of a room and of the project
from spec files and templates (created, listed, read, updated, enabled, deleted and read back),
the spec commands that only read files, their errors, and `service run` with a real
`ServiceHost` app in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest
import trio
import yaml

from clirun import CliResult, assert_one_line_error

SERVICE_HOST_APP = Path(__file__).parent.parent / "service_host_app.py"


def write_spec(directory: Path, name: str, *, service_id: str | None = None, image: str = "example/agent:1", file: str = "service.yaml") -> Path:
    """A service with an image (recorded by the local server, never run) to keep tests inert."""
    spec = {"version": "v1", "kind": "Service", "metadata": {"name": name}, "container": {"image": image}}
    if service_id:
        spec["metadata"]["annotations"] = {"meshagent.service.id": service_id}
    path = directory / file
    path.write_text(yaml.safe_dump(spec))
    return path


TEMPLATE = """\
version: v1
kind: ServiceTemplate
metadata:
  name: "{{ name }}"
variables:
  - name: name
  - name: image
    optional: true
container:
  image: "{{ image or 'example/agent:1' }}"
"""


def test_a_room_service_round_trip(cli: Callable[..., CliResult], room_name: str, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "helper", service_id="helper-id")
    created = cli("service", "create", "--file", str(spec), "--room", room_name)
    assert created.exit_code == 0, created
    service_id = created.stdout.strip()
    assert created.stderr == f"created service {service_id}\n"

    listed = cli("service", "list", "--room", room_name, "-o", "json")
    assert [(s["id"], s["metadata"]["name"], s["container"]["image"]) for s in listed.json()] == [(service_id, "helper", "example/agent:1")]
    table = cli("service", "list", "--room", room_name)
    assert table.exit_code == 0 and service_id in table.stdout and "helper" in table.stdout, table
    assert all(s["id"] != service_id for s in cli("service", "list", "-o", "json").json())

    by_name = cli("service", "get", "helper", "--room", room_name, "-o", "json").json()
    by_id = cli("service", "get", service_id, "--room", room_name, "-o", "json").json()
    assert by_name == by_id and by_id["enabled"] is True
    assert "helper" in cli("service", "get", "helper", "--room", room_name).stdout

    # the same meshagent.service.id again: refused, unless --replace (which updates it)
    assert_one_line_error(cli("service", "create", "-f", str(spec), "--room", room_name), 1, "helper-id", "--replace")
    replaced_spec = write_spec(tmp_path, "helper", service_id="helper-id", image="example/agent:2")
    replaced = cli("service", "create", "-f", str(replaced_spec), "--room", room_name, "--replace")
    assert replaced.exit_code == 0 and replaced.stdout.strip() == service_id, replaced
    assert cli("service", "get", "helper", "--room", room_name, "-o", "json").json()["container"]["image"] == "example/agent:2"

    # update finds it by name (or annotation) and replaces the spec
    updated_spec = write_spec(tmp_path, "helper", service_id="helper-id", image="example/agent:3")
    updated = cli("service", "update", "-f", str(updated_spec), "--room", room_name)
    assert updated.exit_code == 0 and updated.stdout.strip() == service_id, updated
    assert cli("service", "get", service_id, "--room", room_name, "-o", "json").json()["container"]["image"] == "example/agent:3"

    assert cli("service", "disable", "helper", "--room", room_name).exit_code == 0
    assert cli("service", "get", "helper", "--room", room_name, "-o", "json").json()["enabled"] is False
    assert cli("service", "enable", service_id, "--room", room_name).exit_code == 0
    assert cli("service", "get", "helper", "--room", room_name, "-o", "json").json()["enabled"] is True

    deleted = cli("service", "delete", "helper", "--room", room_name)
    assert deleted.exit_code == 0 and deleted.stderr == f"deleted service {service_id}\n", deleted
    assert cli("service", "list", "--room", room_name, "-o", "json").json() == []
    assert_one_line_error(cli("service", "get", "helper", "--room", room_name), 1, "no service 'helper'", room_name)
    assert_one_line_error(cli("service", "delete", service_id, "--room", room_name), 1, service_id)


def test_a_global_service_and_update_with_create(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    name = f"global-{uuid.uuid4().hex[:8]}"
    spec = write_spec(tmp_path, name)
    assert_one_line_error(cli("service", "update", "-f", str(spec), "--global"), 1, name, "--create")
    created = cli("service", "update", "-f", str(spec), "--global", "--create")
    assert created.exit_code == 0, created
    service_id = created.stdout.strip()
    try:
        assert service_id in [s["id"] for s in cli("service", "list", "-o", "json").json()]
        assert cli("service", "get", name, "-o", "json").json()["id"] == service_id
        moved = write_spec(tmp_path, name, image="example/other:1")
        assert cli("service", "update", "-f", str(moved), "--global", "--id", service_id).exit_code == 0
        assert cli("service", "get", service_id, "-o", "json").json()["container"]["image"] == "example/other:1"
        assert_one_line_error(cli("service", "create", "-f", str(spec), "--global"), 1, "already in use", name)
    finally:
        assert cli("service", "delete", service_id).exit_code == 0
    assert service_id not in [s["id"] for s in cli("service", "list", "-o", "json").json()]


def test_services_from_a_template(cli: Callable[..., CliResult], room_name: str, tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE)
    values = tmp_path / "values.yaml"
    values.write_text("name: from-file\nimage: example/file:1\n")

    rendered = cli("service", "render-template", "-f", str(template), "--values-file", str(values), "-v", "name=templated")
    assert rendered.exit_code == 0, rendered
    document = yaml.safe_load(rendered.stdout)
    assert document["kind"] == "ServiceTemplate" and document["metadata"]["name"] == "templated"
    assert document["container"]["image"] == "example/file:1"

    valid = cli("service", "validate-template", "-f", str(template), "-v", "name=ok")
    assert valid.exit_code == 0 and valid.stdout == "ok\n", valid
    assert_one_line_error(cli("service", "validate-template", "-f", str(template)), 1, "template.yaml", "name")

    created = cli("service", "create-template", "-f", str(template), "-v", "name=templated", "--room", room_name)
    assert created.exit_code == 0, created
    service_id = created.stdout.strip()
    got = cli("service", "get", "templated", "--room", room_name, "-o", "json").json()
    assert got["id"] == service_id and got["container"]["image"] == "example/agent:1"
    assert "meshagent.service.template.yaml" in got["metadata"]["annotations"]

    updated = cli("service", "update-template", "-f", str(template), "-v", "name=templated", "-v", "image=example/new:2", "--room", room_name)
    assert updated.exit_code == 0 and updated.stdout.strip() == service_id, updated
    assert cli("service", "get", service_id, "--room", room_name, "-o", "json").json()["container"]["image"] == "example/new:2"
    assert_one_line_error(
        cli("service", "update-template", "-f", str(template), "-v", "name=nobody", "--room", room_name), 1, "nobody", "--create"
    )
    # a service spec is not a template, and a template is not a service spec
    spec = write_spec(tmp_path, "plain")
    assert_one_line_error(cli("service", "create-template", "-f", str(spec), "--room", room_name), 1, "service spec, not a service template")
    assert_one_line_error(cli("service", "create", "-f", str(template), "--room", room_name), 1, "service template, not a service spec")
    assert cli("service", "delete", service_id, "--room", room_name).exit_code == 0


def test_spec_and_validate_read_files_only(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "local-one")
    valid = cli("service", "validate", "-f", str(spec))
    assert valid.exit_code == 0 and valid.stdout == "local-one\n", valid

    as_service = cli("service", "spec", "-f", str(spec), "--service-id", "svc-1")
    assert as_service.exit_code == 0, as_service
    service = yaml.safe_load(as_service.stdout)
    assert service["kind"] == "Service" and service["metadata"]["annotations"] == {"meshagent.service.id": "svc-1"}
    as_template = yaml.safe_load(cli("service", "spec", "-f", str(spec), "--format", "template").stdout)
    assert as_template["kind"] == "ServiceTemplate" and as_template["container"]["image"] == "example/agent:1"
    assert "id" not in as_template and "enabled" not in as_template


def test_bad_spec_files(cli: Callable[..., CliResult], room_name: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert_one_line_error(cli("service", "create", "-f", str(missing), "--room", room_name), 2, "--file", "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: [v1\n")
    assert_one_line_error(cli("service", "validate", "-f", str(broken)), 2, "broken.yaml", "not YAML or JSON")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("version: v1\nkind: Service\nmetadata: {name: x}\nports: [{num: 8078}]\n")
    assert_one_line_error(cli("service", "validate", "-f", str(wrong)), 1, "wrong.yaml", "8078")
    unknown_key = tmp_path / "unknown.yaml"
    unknown_key.write_text("version: v1\nkind: Service\nmetadata: {name: x}\ncolour: red\n")
    assert_one_line_error(cli("service", "create", "-f", str(unknown_key), "--room", room_name), 1, "unknown.yaml", "colour")
    spec = write_spec(tmp_path, "x")
    assert_one_line_error(cli("service", "create", "-f", str(spec)), 2, "--room", "--global")
    assert_one_line_error(cli("service", "create", "-f", str(spec), "--room", room_name, "--global"), 2, "not both")
    assert_one_line_error(cli("service", "spec", "-f", str(spec), "--format", "helm"), 2, "--format", "helm")
    assert_one_line_error(cli("service", "create-template", "-f", str(spec), "-v", "novalue", "--room", room_name), 2, "--value")
    assert cli("service", "list", "--room", room_name, "-o", "json").json() == []


def test_without_credentials_or_permission(cli: Callable[..., CliResult], cli_env, monkeypatch: pytest.MonkeyPatch, room_name: str) -> None:
    from meshagent_core.tokens import ApiScope

    monkeypatch.delenv("MESHAGENT_API_KEY")
    assert_one_line_error(cli("service", "list", "--room", room_name), 1, "MESHAGENT_API_KEY")
    project = cli_env.credentials.project_id
    monkeypatch.setenv("MESHAGENT_TOKEN", "not-a-token")
    assert_one_line_error(cli("service", "list", "--project-id", project, "--room", room_name), 1, "meshagent-trio service list: error:")
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope()))
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    for args in (("service", "list"), ("scheduled-task", "list"), ("mailbox", "list"), ("webhook", "list")):
        assert_one_line_error(cli(*args, "--project-id", project), 1, f"meshagent-trio {' '.join(args)}: error:", "participant token")


def test_run_needs_a_room(cli: Callable[..., CliResult]) -> None:
    assert_one_line_error(cli("service", "run", "true"), 2, "--room")


def test_run_reports_a_command_that_exits_at_once(cli: Callable[..., CliResult], room_name: str) -> None:
    result = cli("service", "run", f"{sys.executable} -c 'raise SystemExit(3)'", "--room", room_name)
    assert result.exit_code == 3, result
    assert "exited with status 3" in result.stderr
    assert_one_line_error(cli("service", "run", "/nonexistent/command", "--room", room_name), 1, "cannot start", "/nonexistent/command")


def test_run_calls_the_service_into_the_room_until_ctrl_c(cli_env, room_name: str, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    command = f"{sys.executable} {SERVICE_HOST_APP} {markers}"
    process = subprocess.Popen(
        [sys.executable, "-m", "meshagent_trio", "service", "run", command, "--room", room_name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MESHAGENT_WEBHOOK_SECRET": ""},
    )
    try:
        trio.run(_agent_joins, cli_env, room_name)
    except BaseException:
        process.kill()
        print(process.communicate(timeout=10))
        raise
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, (stdout, stderr)
    assert stdout == "", stdout
    started = next(line for line in stderr.splitlines() if line.startswith("started "))
    child = int(started.split("(pid ")[1].split(")")[0])
    assert "called greeter into room" in stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (markers / "stopped-greeter.txt").exists():
        time.sleep(0.05)
    assert (markers / "stopped-greeter.txt").exists(), stderr  # its agent stopped cleanly (SIGTERM)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


async def _agent_joins(server, room: str) -> None:
    """The service's agent is in the room: it wrote its greeting and is a participant."""
    from meshagent_trio import RoomClient

    async with RoomClient.connect(room, server.token(room, name="watcher"), connect_timeout=15) as client:
        await client.messaging.enable()
        with trio.fail_after(30):
            while not await client.storage.exists(path="greeting-greeter.txt"):
                await trio.sleep(0.1)
            while "greeter" not in [p.get_attribute("name") for p in client.messaging.remote_participants]:
                await trio.sleep(0.1)
