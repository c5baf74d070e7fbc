"""Secrets over REST (protocol/rest.md §9) against a real server on a real socket with our `Meshagent`
client: user and service-account secrets with their versions, search, proxy access and pull
secrets, and the seed's project, room and agent secrets; values read back through REST and
absent in plain form from `control.db` and its WAL; a tampered value refused with a clear error;
a deleted service account, room or agent leaving no secrets behind."""

from __future__ import annotations

import base64
import hashlib
import logging
import sqlite3
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import ConflictError, NotFoundError, PermissionDeniedError, ServerError, ValidationErrorResponse
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.control.secret_crypto import KEY_FILE_NAME, SecretBox, SecretUnreadable


def client(server: Server, token: str) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=token)


def control_db(server: Server) -> Path:
    return server.config.data_dir / "control.db"


def query(server: Server, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
    """Rows of `control.db`, read (or written) beside the running server."""
    db = sqlite3.connect(control_db(server), timeout=10)
    try:
        with db:
            return db.execute(sql, parameters).fetchall()
    finally:
        db.close()


def spec(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "allowed_models": [{"provider": "openai", "model": "gpt-4.1"}]}


async def test_user_secrets_with_versions(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials.api_key) as api:
        github = await api.create_user_secret(project_id=own, name="github", type="oauth", metadata={"provider": "github", "username": "ann"})
        owner = (await api.whoami()).id
        assert (github.owner_user_id, github.created_by_user_id, github.project_id, github.type) == (owner, owner, own, "oauth")
        assert (github.current_version_id, github.value_base64, github.http_only, github.owner_service_account_id) == (None, None, False, None)
        with pytest.raises(ConflictError, match="secret 'github' already exists"):
            await api.create_user_secret(project_id=own, name="github")
        plain = await api.create_user_secret(project_id=own, name="aws", http_only=True, annotations={"team": "ops"})
        with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
            await api.create_user_secret(project_id="nope", name="x")
        with pytest.raises(ValidationErrorResponse, match="name:"):
            await api.create_user_secret(project_id=own, name=" ")

        # versions: numbered, the current one is what include_value and "latest" give
        first = await api.create_user_secret_version(secret_id=github.id, value=b"token-1")
        assert (first.version, first.value_sha256, first.created_by_user_id) == (1, hashlib.sha256(b"token-1").hexdigest(), owner)
        second = await api.create_user_secret_version(secret_id=github.id, value=b"token-2", set_current=False)
        assert (await api.get_user_secret(secret_id=github.id)).current_version_id == first.id
        third = await api.create_user_secret_version(secret_id=github.id, value=b"\x00\xfftoken-3")
        assert [v.version for v in await api.list_user_secret_versions(secret_id=github.id)] == [1, 2, 3]
        got = await api.get_user_secret(secret_id=github.id, include_value=True)
        assert (got.current_version_id, base64.b64decode(got.value_base64 or "")) == (third.id, b"\x00\xfftoken-3")
        assert (await api.get_user_secret(secret_id=github.id)).value_base64 is None
        assert await api.access_user_secret_version(secret_id=github.id, version_id=second.id) == b"token-2"
        assert await api.access_user_secret_version(secret_id=github.id, version_id="latest") == b"\x00\xfftoken-3"
        await api.delete_user_secret_version(secret_id=github.id, version_id=third.id)  # the current one: the newest left takes over
        assert (await api.get_user_secret(secret_id=github.id)).current_version_id == second.id
        assert (await api.create_user_secret_version(secret_id=github.id, value=b"t")).version == 4  # numbers are never reused
        with pytest.raises(NotFoundError, match=f"version '{third.id}' of secret '{github.id}' does not exist"):
            await api.access_user_secret_version(secret_id=github.id, version_id=third.id)
        with pytest.raises(NotFoundError, match="does not exist"):
            await api.delete_user_secret_version(secret_id=github.id, version_id=third.id)
        with pytest.raises(NotFoundError, match="has no current version"):
            await api.access_user_secret_version(secret_id=plain.id, version_id="latest")
        assert (await api.get_user_secret(secret_id=plain.id, include_value=True)).value_base64 is None
        with pytest.raises(ValidationErrorResponse, match="value_base64: not valid base64"):
            await api.create_user_secret_version(secret_id=github.id, value_base64="not base64!")
        with pytest.raises(ValidationErrorResponse, match="value_base64: a secret value is at most 65536 bytes"):
            await api.create_user_secret_version(secret_id=github.id, value=b"x" * 65537)

        # update, list, filter, search
        updated = await api.update_user_secret(secret_id=plain.id, name="aws-prod", metadata={"url": "https://aws"})
        assert (updated.name, updated.metadata, updated.annotations, updated.http_only) == ("aws-prod", {"url": "https://aws"}, {"team": "ops"}, True)
        with pytest.raises(ConflictError, match="'github' already exists"):
            await api.update_user_secret(secret_id=plain.id, name="github")
        await api.create_user_secret(project_id=own, name="zeta")
        first_page = await api.list_user_secrets(page_size=2)
        assert [s.name for s in first_page.secrets] == ["aws-prod", "github"] and first_page.continuation_token
        rest = await api.list_user_secrets(page_size=2, continuation_token=first_page.continuation_token)
        assert ([s.name for s in rest.secrets], rest.continuation_token) == (["zeta"], None)
        assert [s.name for s in (await api.list_user_secrets(filter="GIT")).secrets] == ["github"]
        assert all(s.value_base64 is None for s in first_page.secrets)
        for criteria, names in (
            ({"provider": "github"}, ["github"]),
            ({"username": "bob"}, []),
            ({"type": "oauth"}, ["github"]),
            ({"http_only": True}, ["aws-prod"]),
            ({"annotations": {"team": "ops"}}, ["aws-prod"]),
            ({"metadata": {"provider": "github", "username": "ann"}, "name": "github"}, ["github"]),
            ({"url": "https://aws", "filter": "prod"}, ["aws-prod"]),
            ({}, ["aws-prod", "github", "zeta"]),
        ):
            assert [s.name for s in (await api.search_user_secrets(**criteria)).secrets] == names, criteria
        paged = await api.search_user_secrets(page_size=1, filter="a")
        assert [s.name for s in paged.secrets] == ["aws-prod"]
        assert [s.name for s in (await api.search_user_secrets(page_size=1, filter="a", continuation_token=paged.continuation_token)).secrets] == ["zeta"]
        with pytest.raises(ValidationErrorResponse, match="continuation_token"):
            await api.list_user_secrets(continuation_token="garbage")
        with pytest.raises(ValidationErrorResponse, match="page_size"):
            await api.list_user_secrets(page_size=0)

        await api.delete_user_secret(secret_id=github.id)
        for call in (api.get_user_secret, api.delete_user_secret, api.list_user_secret_versions):
            with pytest.raises(NotFoundError, match=f"secret '{github.id}' does not exist"):
                await call(secret_id=github.id)
        assert query(server, "SELECT count(*) FROM secret_versions WHERE secret_id = ?", github.id) == [(0,)]


async def test_service_account_secrets_proxy_access_and_pull_secrets(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials.api_key) as owner:
        other = await owner.create_project(name="other")
        bot = await owner.create_service_account(project_id=own, name="bot")
        helper = await owner.create_service_account(project_id=own, name="helper")
        stranger = await owner.create_service_account(project_id=other.id, name="stranger")
        key = await owner.create_api_key(project_id=own, service_account_id=bot.id, name="k", description="")
        account = {"project_id": own, "service_account_id": bot.id}

        async with client(server, key.value or "") as as_bot:
            registry = await as_bot.create_service_account_secret(**account, name="registry", type="docker", metadata={"service": "ghcr"})
            assert (registry.owner_service_account_id, registry.created_by_service_account_id, registry.owner_user_id) == (bot.id, bot.id, None)
            version = await as_bot.create_service_account_secret_version(**account, secret_id=registry.id, value=b"robot:pw")
            assert version.created_by_service_account_id == bot.id
            assert await as_bot.access_service_account_secret_version(**account, secret_id=registry.id, version_id=version.id) == b"robot:pw"
            with pytest.raises(PermissionDeniedError, match="user secrets belong to users"):
                await as_bot.list_user_secrets()
            with pytest.raises(PermissionDeniedError, match="another project"):
                await as_bot.list_service_account_secrets(project_id=other.id, service_account_id=stranger.id)

        assert (await owner.get_service_account_secret(**account, secret_id=registry.id, include_value=True)).value_base64 == base64.b64encode(b"robot:pw").decode()
        assert [v.id for v in await owner.list_service_account_secret_versions(**account, secret_id=registry.id)] == [version.id]
        spare = await owner.create_service_account_secret(**account, name="spare")
        assert (await owner.update_service_account_secret(**account, secret_id=spare.id, type="keys")).type == "keys"
        assert [s.name for s in (await owner.list_service_account_secrets(**account)).secrets] == ["registry", "spare"]
        assert [s.name for s in (await owner.search_service_account_secrets(**account, service="ghcr")).secrets] == ["registry"]
        assert (await owner.list_service_account_secrets(project_id=own, service_account_id=helper.id)).secrets == []
        with pytest.raises(NotFoundError, match=f"secret '{registry.id}' does not exist"):  # another account's secret
            await owner.get_service_account_secret(project_id=own, service_account_id=helper.id, secret_id=registry.id)
        with pytest.raises(NotFoundError, match=f"service account '{stranger.id}' does not exist in project '{own}'"):
            await owner.list_service_account_secrets(project_id=own, service_account_id=stranger.id)
        second = await owner.create_service_account_secret_version(**account, secret_id=spare.id, value=b"v")
        await owner.delete_service_account_secret_version(**account, secret_id=spare.id, version_id=second.id)
        assert (await owner.get_service_account_secret(**account, secret_id=spare.id)).current_version_id is None

        # pull secrets: the account's own secrets
        await owner.add_service_account_pull_secret(**account, secret_id=registry.id)
        await owner.add_service_account_pull_secret(**account, secret_id=registry.id)  # again: no change
        assert [s.id for s in await owner.list_service_account_pull_secrets(**account)] == [registry.id]
        with pytest.raises(NotFoundError, match=f"secret '{registry.id}' does not exist"):
            await owner.add_service_account_pull_secret(project_id=own, service_account_id=helper.id, secret_id=registry.id)
        await owner.remove_service_account_pull_secret(**account, secret_id=registry.id)
        assert await owner.list_service_account_pull_secrets(**account) == []
        with pytest.raises(NotFoundError, match="is not a pull secret"):
            await owner.remove_service_account_pull_secret(**account, secret_id=registry.id)

        # proxy access to a user secret: for service accounts of the secret's project
        mine = await owner.create_user_secret(project_id=own, name="openai")
        await owner.grant_user_secret_proxy_access(secret_id=mine.id, service_account_id=helper.id)
        await owner.grant_user_secret_proxy_access(secret_id=mine.id, service_account_id=bot.id)
        await owner.grant_user_secret_proxy_access(secret_id=mine.id, service_account_id=bot.id)
        page = await owner.list_user_secret_proxy_access(secret_id=mine.id, page_size=1)
        ids = sorted([bot.id, helper.id])
        assert [g.subject.id for g in page.access_grants] == ids[:1] and page.access_grants[0].roles == ["use_proxy"]
        assert page.access_grants[0].subject.type == "service_account" and page.access_grants[0].subject.email
        rest = await owner.list_user_secret_proxy_access(secret_id=mine.id, continuation_token=page.continuation_token)
        assert ([g.subject.id for g in rest.access_grants], rest.continuation_token) == (ids[1:], None)
        await owner.revoke_user_secret_proxy_access(secret_id=mine.id, service_account_id=helper.id)
        with pytest.raises(NotFoundError, match="has no proxy access"):
            await owner.revoke_user_secret_proxy_access(secret_id=mine.id, service_account_id=helper.id)
        with pytest.raises(NotFoundError, match=f"service account '{stranger.id}' does not exist in project '{own}'"):
            await owner.grant_user_secret_proxy_access(secret_id=mine.id, service_account_id=stranger.id)
        with pytest.raises(ValidationErrorResponse, match="service accounts only"):
            await owner.grant_user_secret_proxy_access(secret_id=mine.id, subject={"type": "user", "id": "u"})
        assert [g.subject.id for g in (await owner.list_user_secret_proxy_access(secret_id=mine.id)).access_grants] == [bot.id]

        # deleting the account deletes its secrets, their versions, its grants and pull secrets
        await owner.add_service_account_pull_secret(**account, secret_id=registry.id)
        await owner.delete_service_account(**account)
        assert (await owner.list_user_secret_proxy_access(secret_id=mine.id)).access_grants == []
        for table, column in (("owned_secrets", "owner_id"), ("secret_proxy_grants", "service_account_id"), ("service_account_pull_secrets", "service_account_id")):
            assert query(server, f"SELECT count(*) FROM {table} WHERE {column} = ?", bot.id) == [(0,)], table
        assert query(server, "SELECT count(*) FROM secret_versions WHERE secret_id IN (?, ?)", registry.id, spare.id) == [(0,)]
        with pytest.raises(NotFoundError, match="does not exist"):
            await owner.delete_service_account_secret(**account, secret_id=registry.id)


async def test_project_room_and_agent_secrets(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials.api_key) as api:
        docker = await api.create_project_secret(project_id=own, name="docker", type="docker", data=b'{"auths": {}}')
        got = await api.get_project_secret(project_id=own, secret_id=docker)
        assert (got.name, got.type, got.data, got.delegated_to) == ("docker", "docker", b'{"auths": {}}', None)
        with pytest.raises(ConflictError, match="project secret 'docker' already exists"):
            await api.create_project_secret(project_id=own, name="docker", type="keys", data=b"{}")
        keys = await api.create_project_secret(project_id=own, name="keys", type="keys", data=b"{}")
        await api.update_project_secret(project_id=own, secret_id=keys, name="env", type="keys", data=b'{"A": "1"}')
        assert [(s.id, s.name) for s in await api.list_project_secrets(project_id=own)] == [(docker, "docker"), (keys, "env")]
        assert (await api.get_project_secret(project_id=own, secret_id=keys)).data == b'{"A": "1"}'
        await api.delete_project_secret(project_id=own, secret_id=docker)
        with pytest.raises(NotFoundError, match=f"project secret '{docker}' does not exist"):
            await api.get_project_secret(project_id=own, secret_id=docker)
        with pytest.raises(ValidationErrorResponse, match="data_base64: not valid base64"):
            await api.update_project_secret(project_id=own, secret_id=keys, name="env", type="keys", data_base64="%%%")

        # room secrets: one value per delegate under the same id
        room = await api.create_room(project_id=own, name="lab")
        token = await api.create_room_secret(project_id=own, room_name="lab", data=b"room-wide", secret_id="oauth:github", type="oauth")
        assert token == "oauth:github"
        await api.create_room_secret(project_id=own, room_name="lab", data=b"ann's", secret_id="oauth:github", delegated_to="ann")
        with pytest.raises(ConflictError, match="room 'lab' secret 'oauth:github' for 'ann' already exists"):
            await api.create_room_secret(project_id=own, room_name="lab", data=b"x", secret_id="oauth:github", delegated_to="ann")
        generated = await api.create_room_secret(project_id=own, room_name="lab", data=b"g", name="generated")
        listed = await api.list_room_secrets(project_id=own, room_name="lab")
        assert [(s.id, s.name, s.type, s.delegated_to) for s in listed] == [
            (generated, "generated", "opaque", None), ("oauth:github", "oauth:github", "oauth", None), ("oauth:github", "oauth:github", "opaque", "ann")
        ]  # fmt: skip
        assert (await api.get_room_secret(project_id=own, room_name="lab", secret_id="oauth:github")).data == b"room-wide"
        anns = await api.get_room_secret(project_id=own, room_name="lab", secret_id="oauth:github", delegated_to="ann")
        assert (anns.data, anns.delegated_to) == (b"ann's", "ann")
        await api.update_room_secret(project_id=own, room_name="lab", secret_id="oauth:github", data=b"ann's 2", delegated_to="ann", name="gh")
        anns = await api.get_room_secret(project_id=own, room_name="lab", secret_id="oauth:github", delegated_to="ann")
        assert (anns.data, anns.name, anns.type) == (b"ann's 2", "gh", "opaque")
        await api.delete_room_secret(project_id=own, room_name="lab", secret_id="oauth:github", delegated_to="ann")
        with pytest.raises(NotFoundError, match="room 'lab' secret 'oauth:github' for 'ann' does not exist"):
            await api.get_room_secret(project_id=own, room_name="lab", secret_id="oauth:github", delegated_to="ann")
        with pytest.raises(NotFoundError, match="room 'nope' does not exist"):
            await api.list_room_secrets(project_id=own, room_name="nope")
        await api.delete_room(project_id=own, room_id=room.id)  # its secrets go with it
        await api.create_room(project_id=own, name="lab")
        assert await api.list_room_secrets(project_id=own, room_name="lab") == []

        # agent secrets
        agent = await api.create_agent(project_id=own, configuration=spec("planner"))
        sid = await api.create_agent_secret(project_id=own, agent_id=agent.id, data=b"agent-key", name="llm", delegated_to="bob")
        assert [(s.name, s.delegated_to) for s in await api.list_agent_secrets(project_id=own, agent_id=agent.id)] == [("llm", "bob")]
        with pytest.raises(NotFoundError, match=f"agent '{agent.id}' secret '{sid}' does not exist"):  # without its delegate: another secret
            await api.get_agent_secret(project_id=own, agent_id=agent.id, secret_id=sid)
        await api.update_agent_secret(project_id=own, agent_id=agent.id, secret_id=sid, data=b"agent-key-2", delegated_to="bob")
        assert (await api.get_agent_secret(project_id=own, agent_id=agent.id, secret_id=sid, delegated_to="bob")).data == b"agent-key-2"
        await api.delete_agent_secret(project_id=own, agent_id=agent.id, secret_id=sid, delegated_to="bob")
        await api.create_agent_secret(project_id=own, agent_id=agent.id, data=b"left behind")
        await api.delete_agent(project_id=own, agent_id=agent.id)
        assert query(server, "SELECT count(*) FROM scoped_secrets WHERE scope_type = 'agent'") == [(0,)]
        with pytest.raises(NotFoundError, match=f"agent '{agent.id}' does not exist"):
            await api.list_agent_secrets(project_id=own, agent_id=agent.id)

        # another project's key is refused
        other = await api.create_project(name="other")
        worker = await api.create_service_account(project_id=other.id, name="worker")
        key = await api.create_api_key(project_id=other.id, service_account_id=worker.id, name="k", description="")
    async with client(server, key.value or "") as intruder:
        for call in (intruder.list_project_secrets(project_id=own), intruder.list_room_secrets(project_id=own, room_name="lab")):
            with pytest.raises(PermissionDeniedError, match="another project"):
                await call


async def test_values_are_encrypted_at_rest_and_never_logged(server: Server, credentials: Credentials, caplog: pytest.LogCaptureFixture) -> None:
    """Every kind of secret value is read back through REST, and found in plain form (nor base64)
    neither in `control.db`, nor in its WAL, nor in the log."""
    caplog.set_level(logging.DEBUG)
    own = credentials.project_id
    plain = {kind: f"PLAINTEXT-{kind}-0123456789".encode() for kind in ("user", "account", "project", "room", "agent")}
    async with client(server, credentials.api_key) as api:
        user_secret = await api.create_user_secret(project_id=own, name="s")
        await api.create_user_secret_version(secret_id=user_secret.id, value=plain["user"])
        bot = await api.create_service_account(project_id=own, name="bot")
        account_secret = await api.create_service_account_secret(project_id=own, service_account_id=bot.id, name="s")
        await api.create_service_account_secret_version(project_id=own, service_account_id=bot.id, secret_id=account_secret.id, value=plain["account"])
        project_secret = await api.create_project_secret(project_id=own, name="s", type="keys", data=plain["project"])
        await api.create_room(project_id=own, name="vault")
        room_secret = await api.create_room_secret(project_id=own, room_name="vault", data=plain["room"])
        agent = await api.create_agent(project_id=own, configuration=spec("keeper"))
        agent_secret = await api.create_agent_secret(project_id=own, agent_id=agent.id, data=plain["agent"])

        assert await api.access_user_secret_version(secret_id=user_secret.id, version_id="latest") == plain["user"]
        assert await api.access_service_account_secret_version(project_id=own, service_account_id=bot.id, secret_id=account_secret.id, version_id="latest") == plain["account"]
        assert (await api.get_project_secret(project_id=own, secret_id=project_secret)).data == plain["project"]
        assert (await api.get_room_secret(project_id=own, room_name="vault", secret_id=room_secret)).data == plain["room"]
        assert (await api.get_agent_secret(project_id=own, agent_id=agent.id, secret_id=agent_secret)).data == plain["agent"]

    files = [path for path in (control_db(server), control_db(server).with_name("control.db-wal")) if path.exists()]
    assert control_db(server) in files
    stored = b"".join(path.read_bytes() for path in files)
    for kind, value in plain.items():
        assert value not in stored and base64.b64encode(value) not in stored, kind
        assert all(value.decode() not in record.getMessage() for record in caplog.records), kind
    assert b"PLAINTEXT" not in stored
    key_file = server.config.data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32


async def test_a_tampered_value_is_refused_with_a_clear_error(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials.api_key) as api:
        secret = await api.create_user_secret(project_id=own, name="s")
        first = await api.create_user_secret_version(secret_id=secret.id, value=b"first value")
        second = await api.create_user_secret_version(secret_id=secret.id, value=b"second value")
        room_secret = await api.create_project_secret(project_id=own, name="p", type="keys", data=b"project value")

        (sealed,) = query(server, "SELECT sealed FROM secret_versions WHERE id = ?", second.id)[0]
        flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
        query(server, "UPDATE secret_versions SET sealed = ? WHERE id = ?", flipped, second.id)
        with pytest.raises(ServerError, match=f"secret '{secret.id}' version 2 cannot be decrypted: its ciphertext in control.db was altered") as info:
            await api.access_user_secret_version(secret_id=secret.id, version_id=second.id)
        assert info.value.http_status == 500 and "secret_unreadable" in info.value.body
        with pytest.raises(ServerError, match="altered or damaged"):
            await api.list_user_secret_versions(secret_id=secret.id)

        # a sealed value moved to another row does not open there either
        (other,) = query(server, "SELECT sealed FROM secret_versions WHERE id = ?", first.id)[0]
        query(server, "UPDATE secret_versions SET sealed = ? WHERE id = ?", other, second.id)
        with pytest.raises(ServerError, match="altered or damaged"):
            await api.access_user_secret_version(secret_id=secret.id, version_id=second.id)
        assert await api.access_user_secret_version(secret_id=secret.id, version_id=first.id) == b"first value"

        query(server, "UPDATE scoped_secrets SET sealed = substr(sealed, 1, 10) WHERE id = ?", room_secret)
        with pytest.raises(ServerError, match=f"project secret '{room_secret}' cannot be decrypted: its stored form in control.db is damaged"):
            await api.get_project_secret(project_id=own, secret_id=room_secret)


def test_a_value_sealed_under_another_key_names_the_key(tmp_path: Path) -> None:
    sealed = SecretBox(tmp_path / "old" / KEY_FILE_NAME).seal(b"v", "ctx")
    box = SecretBox(tmp_path / "new" / KEY_FILE_NAME)
    with pytest.raises(SecretUnreadable, match=r"encrypted under another secrets key \(key id [0-9a-f]{16}\) than this server's .*new/secrets.key") as info:
        box.open(sealed, "ctx", "secret 'x' version 1")
    assert info.value.status == 500 and "'x' version 1" in str(info.value)
    (tmp_path / "bad.key").write_bytes(b"short")
    with pytest.raises(SecretUnreadable, match="is not a secrets key: it holds 5 bytes, not 32"):
        SecretBox(tmp_path / "bad.key").seal(b"v", "ctx")


def test_the_key_file_is_made_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / KEY_FILE_NAME
    sealed = SecretBox(path).seal(b"value", "ctx")
    key = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SecretBox(path).open(sealed, "ctx", "v") == b"value" and path.read_bytes() == key


@settings(max_examples=60, deadline=None)
@given(value=st.binary(max_size=300), context=st.text(max_size=40), other=st.text(max_size=40))
def test_sealing_round_trips_and_binds_the_context(tmp_path_factory: pytest.TempPathFactory, value: bytes, context: str, other: str) -> None:
    box = SecretBox(tmp_path_factory.getbasetemp() / "hypothesis" / KEY_FILE_NAME)
    sealed = box.seal(value, context)
    assert box.open(sealed, context, "v") == value
    assert box.seal(value, context) != sealed  # a fresh nonce each time
    if other != context:
        with pytest.raises(SecretUnreadable, match="altered or damaged"):
            box.open(sealed, other, "v")


async def test_bad_requests_name_the_field(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    headers = {"authorization": f"Bearer {credentials.api_key}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", headers=headers) as http:
        for verb, path, body, field in (
            ("POST", "/accounts/users/me/secrets", {"name": "x"}, "project_id"),
            ("GET", "/accounts/users/me/secrets?page_size=many", None, "page_size"),
            ("GET", "/accounts/users/me/secrets/s?include_value=maybe", None, "include_value"),
            ("POST", "/accounts/users/me/secrets/s/versions", {"set_current": True}, "value_base64"),
            ("POST", "/accounts/users/me/secrets/s/access:grant-proxy", {"subject": {"type": "service_account"}}, "`id` - at `$.subject`"),
            ("POST", f"/accounts/projects/{own}/secrets", {"name": "n", "type": "keys"}, "data_base64"),
        ):
            answer = await http.request(verb, path, json=body)
            assert answer.status_code == 400 and field in answer.json()["error"]["message"], (path, answer.text)
    async with client(server, credentials.api_key) as api:
        with pytest.raises(ValidationErrorResponse, match="type:"):
            await api.create_user_secret(project_id=own, name="n", type="")
        with pytest.raises(NotFoundError, match="secret 'nope' does not exist"):
            await api.update_user_secret(secret_id="nope", name="x")
