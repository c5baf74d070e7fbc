"""`meshagent-trio api-key` and `secret` against the session's local server: keys made by the CLI
are trusted as credentials until the CLI deletes them; secrets, their versions, proxy grants and
pull secrets are read back through the CLI; failures are one line with the right status."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from clirun import CliResult, assert_one_line_error
from meshagent_trio.testing import InProcessServer
from beside import own_project, sdk
from clirun import ok

Cli = Callable[..., CliResult]


def new_account(server: InProcessServer) -> Any:
    name = f"sa-{uuid.uuid4().hex[:10]}"
    return sdk(server, lambda api: api.create_service_account(project_id=own_project(server), name=name))


# --- API keys ----------------------------------------------------------------------------------


def test_api_keys_create_list_use_delete(cli: Cli, cli_env: InProcessServer, monkeypatch: pytest.MonkeyPatch) -> None:
    account = new_account(cli_env)
    made = ok(cli("api-key", "create", "ci", "--service-account", account.name))
    value = made.stdout.strip()
    assert value.startswith("ma-") and len(made.stdout.splitlines()) == 1 and "not shown again" in made.stderr
    second = ok(cli("api-key", "create", "ci2", "--service-account", account.email, "--description", "second", "-o", "json")).json()
    assert (second["name"], second["description"], second["service_account_id"]) == ("ci2", "second", account.id)
    assert second["value"].startswith("ma-")

    keys = ok(cli("api-key", "list", "--service-account", account.id, "-o", "json")).json()["api_keys"]
    assert sorted(key["name"] for key in keys) == ["ci", "ci2"] and all("value" not in key for key in keys)
    assert "ci2" in ok(cli("api-key", "list", "--service-account", account.name)).stdout

    # the new key is a credential of its own: its account is the default one
    monkeypatch.setenv("MESHAGENT_API_KEY", value)
    assert len(ok(cli("api-key", "list", "-o", "json")).json()["api_keys"]) == 2
    ok(cli("api-key", "delete", second["id"]))
    assert [key["name"] for key in ok(cli("api-key", "list", "-o", "json")).json()["api_keys"]] == ["ci"]

    monkeypatch.setenv("MESHAGENT_API_KEY", cli_env.api_key)
    (first,) = ok(cli("api-key", "list", "--service-account", account.key, "-o", "json")).json()["api_keys"]
    ok(cli("api-key", "delete", first["id"], "--service-account", account.name))
    assert ok(cli("api-key", "list", "--service-account", account.name)).stdout == "No API keys.\n"
    monkeypatch.setenv("MESHAGENT_API_KEY", value)
    assert_one_line_error(cli("api-key", "list"), 1, "meshagent-trio api-key list: error:", "403")


def test_api_key_errors(cli: Cli, cli_env: InProcessServer, monkeypatch: pytest.MonkeyPatch) -> None:
    account = new_account(cli_env)
    assert_one_line_error(cli("api-key", "list"), 2, "--service-account", "no service account")
    assert_one_line_error(cli("api-key", "create", "k", "--service-account", "nobody-here"), 1, "no service account 'nobody-here'")
    assert_one_line_error(cli("api-key", "delete", "no-such-key", "--service-account", account.name), 1, "meshagent-trio api-key delete: error:", "no-such-key")
    assert_one_line_error(cli("api-key", "create"), 2, "Missing argument")
    monkeypatch.delenv("MESHAGENT_API_KEY")
    assert_one_line_error(cli("api-key", "list", "--service-account", account.name), 1, "MESHAGENT_API_KEY")


# --- secrets -----------------------------------------------------------------------------------


def test_user_secret_lifecycle(cli: Cli, tmp_path: Path) -> None:
    name = f"gh-{uuid.uuid4().hex[:8]}"
    secret = ok(cli("secret", "create", name, "--value", "one", "--metadata", '{"provider": "github"}', "--type", "token", "-o", "json")).json()
    sid = secret["id"]
    assert (secret["name"], secret["type"], secret["metadata"]) == (name, "token", {"provider": "github"}) and secret["current_version_id"]
    assert sid in [s["id"] for s in ok(cli("secret", "list", "-o", "json")).json()["secrets"]]
    row = next(line for line in ok(cli("secret", "list", "--filter", name)).stdout.splitlines() if sid in line)
    assert row.split()[:4] == [name, sid, "token", "false"]

    got = ok(cli("secret", "get", sid, "--include-value", "-o", "json")).json()
    assert base64.b64decode(got["value_base64"]) == b"one"
    assert "value_base64" not in ok(cli("secret", "get", sid, "-o", "json")).json()
    assert ok(cli("secret", "access", sid)).stdout == "one\n"

    (tmp_path / "v2").write_bytes(b"two\n")
    v2 = ok(cli("secret", "add-version", sid, "--value-file", str(tmp_path / "v2"), "-o", "json")).json()["versions"][0]
    assert v2["version"] == 2
    assert ok(cli("secret", "access", sid)).stdout == "two\n"
    v3 = ok(cli("secret", "add-version", sid, "--value", "three", "--no-set-current", "-o", "json")).json()["versions"][0]
    assert ok(cli("secret", "access", sid, "-o", "json")).json() == {"value_base64": base64.b64encode(b"two\n").decode()}
    assert ok(cli("secret", "access", sid, "--version", v3["id"])).stdout == "three\n"
    versions = ok(cli("secret", "versions", sid, "-o", "json")).json()["versions"]
    assert sorted(v["version"] for v in versions) == [1, 2, 3]
    assert v3["id"] in ok(cli("secret", "versions", sid)).stdout

    ok(cli("secret", "delete-version", sid, v2["id"]))
    assert ok(cli("secret", "access", sid)).stdout == "three\n"  # the newest remaining is current

    ok(cli("secret", "update", sid, "--name", f"{name}-b", "--http-only", "--annotations", '{"a": "b"}'))
    updated = ok(cli("secret", "get", sid, "-o", "json")).json()
    assert (updated["name"], updated["http_only"], updated["annotations"]) == (f"{name}-b", True, {"a": "b"})

    found = ok(cli("secret", "search", "--provider", "github", "--http-only", "-o", "json")).json()["secrets"]
    assert sid in [s["id"] for s in found]
    assert ok(cli("secret", "search", "--name", f"{name}-nope", "-o", "json")).json() == {"secrets": []}
    assert ok(cli("secret", "search", "--metadata", '{"provider": "gitlab"}')).stdout == "No secrets.\n"

    ok(cli("secret", "delete", sid))
    assert_one_line_error(cli("secret", "get", sid), 1, "meshagent-trio secret get: error:", "404")


def test_service_account_secrets_pull_secrets_and_proxy(cli: Cli, cli_env: InProcessServer) -> None:
    account = new_account(cli_env)
    created = ok(cli("secret", "create", "registry", "--subject", account.name, "--value", "pw", "-o", "json")).json()
    assert created["owner_service_account_id"] == account.id
    assert [s["id"] for s in ok(cli("secret", "list", "--subject", account.email, "-o", "json")).json()["secrets"]] == [created["id"]]
    assert ok(cli("secret", "access", created["id"], "--subject", account.id)).stdout == "pw\n"
    assert created["id"] not in ok(cli("secret", "list", "-o", "json")).stdout  # not the user's

    assert ok(cli("secret", "pull-secrets", "--subject", account.name, "-o", "json")).json() == {"secrets": []}
    ok(cli("secret", "add-pull-secret", created["id"], "--subject", account.name))
    pulled = ok(cli("secret", "pull-secrets", "--subject", account.name, "-o", "json")).json()["secrets"]
    assert [s["id"] for s in pulled] == [created["id"]]
    assert "registry" in ok(cli("secret", "pull-secrets", "--subject", account.name)).stdout
    ok(cli("secret", "remove-pull-secret", created["id"], "--subject", account.name))
    assert ok(cli("secret", "pull-secrets", "--subject", account.name)).stdout == "No secrets.\n"

    mine = ok(cli("secret", "create", f"proxy-{uuid.uuid4().hex[:8]}", "--http-only", "-o", "json")).json()
    assert mine["http_only"] is True and "current_version_id" not in mine
    ok(cli("secret", "grant-proxy", mine["id"], "--subject", account.name))
    (grant,) = ok(cli("secret", "grants", mine["id"], "-o", "json")).json()["access_grants"]
    assert (grant["subject"]["id"], grant["roles"]) == (account.id, ["use_proxy"])
    assert account.id in ok(cli("secret", "grants", mine["id"])).stdout
    ok(cli("secret", "revoke-proxy", mine["id"], "--subject", account.name))
    assert ok(cli("secret", "grants", mine["id"])).stdout == "No proxy access grants.\n"

    ok(cli("secret", "update", created["id"], "--subject", account.name, "--type", "docker"))
    assert ok(cli("secret", "get", created["id"], "--subject", account.name, "-o", "json")).json()["type"] == "docker"
    (version,) = ok(cli("secret", "versions", created["id"], "--subject", account.name, "-o", "json")).json()["versions"]
    ok(cli("secret", "delete-version", created["id"], version["id"], "--subject", account.name))
    assert_one_line_error(cli("secret", "access", created["id"], "--subject", account.name), 1, "no current version")
    ok(cli("secret", "delete", created["id"], "--subject", account.name))
    assert ok(cli("secret", "list", "--subject", account.name, "-o", "json")).json() == {"secrets": []}


def test_secret_errors(cli: Cli, cli_env: InProcessServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "v").write_text("x")
    assert_one_line_error(cli("secret", "get", "no-such-secret"), 1, "meshagent-trio secret get: error:", "no-such-secret")
    assert_one_line_error(cli("secret", "list", "--subject", "nobody-here"), 1, "no service account 'nobody-here'")
    assert_one_line_error(cli("secret", "create", "s", "--value", "a", "--value-file", str(tmp_path / "v")), 2, "only one of --value or --value-file")
    assert_one_line_error(cli("secret", "create", "s", "--value-file", str(tmp_path / "missing")), 2, "--value-file")
    assert_one_line_error(cli("secret", "add-version", "some-id"), 2, "--value")
    assert_one_line_error(cli("secret", "update", "some-id"), 2, "at least one of")
    assert_one_line_error(cli("secret", "search", "--annotations", "[1]"), 2, "--annotations", "JSON object")
    assert_one_line_error(cli("secret", "pull-secrets", "--subject", "me"), 2, "--subject", "service account")
    assert_one_line_error(cli("secret", "grant-proxy", "some-id"), 2, "--subject")
    assert_one_line_error(cli("secret", "list", "--page-size", "0"), 2, "--page-size")

    account = new_account(cli_env)
    key = sdk(cli_env, lambda api: api.create_api_key(project_id=own_project(cli_env), service_account_id=account.id, name="k", description="")).value
    monkeypatch.setenv("MESHAGENT_API_KEY", key)  # a service account's key has no user secrets
    assert_one_line_error(cli("secret", "list"), 1, "meshagent-trio secret list: error:", "403")
    ok(cli("secret", "create", "own", "--subject", account.name, "--value", "v"))  # but its own
    monkeypatch.delenv("MESHAGENT_API_KEY")
    assert_one_line_error(cli("secret", "list"), 1, "MESHAGENT_API_KEY")
