"""`meshagent-trio token`, `call` (and `room agents call`) and `room connect` against the session's
local server: minted tokens decoded with our core and used to join the room; calls received by a
real webhook receiver and by a real `ServiceHost` that then serves its toolkit in the room;
commands run by `room connect` that join the room with the environment they were given."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import trio

from clirun import CliResult, assert_one_line_error
from meshagent_core.client.tools import Toolkit, tool
from meshagent_core.tokens import AgentsGrant, ApiScope, LLMGrant, ParticipantToken, StorageGrant
from meshagent_core.webhooks import SIGNATURE_HEADER, verify
from meshagent_trio import ServiceHost, connect
from meshagent_trio.testing import InProcessServer, new_credentials
from beside import in_background
from webhook_receiver import webhook_receiver

SPEC = """\
version: v1
kind: ParticipantToken
identity: alice
room: {room}
role: agent
api:
  llm: {{}}
  storage: {{}}
"""


def decode(server: InProcessServer, jwt: str) -> ParticipantToken:
    return ParticipantToken.from_jwt(jwt.strip(), token=server.credentials.secret)


def can_join(server: InProcessServer, room: str, jwt: str) -> bool:
    async def join() -> bool:
        async with connect(server.room_url(room), jwt.strip()) as client:
            await client.storage.upload(path=f"joined-{client.local_participant.get_attribute('name')}.txt", data=b"x", overwrite=True)
            return await client.storage.exists(path=f"joined-{client.local_participant.get_attribute('name')}.txt")

    return trio.run(join)


# --- token -----------------------------------------------------------------------------------------


def test_token_from_options(cli: Callable[..., CliResult], cli_env: InProcessServer, room_name: str) -> None:
    minted = cli("token", "generate", "--room", room_name, "--name", "bob")
    assert minted.exit_code == 0 and minted.stderr == "", minted
    token = decode(cli_env, minted.stdout)
    assert token.name == "bob" and token.role == "user" and token.grant_scope("room") == room_name
    assert token.get_api_grant() == ApiScope.user_default()
    assert token.project_id == cli_env.credentials.project_id and token.api_key_id == cli_env.credentials.key_id
    assert can_join(cli_env, room_name, minted.stdout)

    agent = decode(cli_env, cli("token", "--room", room_name, "--name", "helper", "--role", "agent").stdout)
    assert agent.role == "agent" and agent.get_api_grant() == ApiScope.agent_default()
    full = decode(cli_env, cli("token", "generate", "--room", room_name, "--name", "x", "--api", "full").stdout)
    assert full.get_api_grant() == ApiScope.full()
    scoped = decode(cli_env, cli("token", "generate", "--room", room_name, "--name", "x", "--api", '{"storage": {}}').stdout)
    assert scoped.get_api_grant() == ApiScope(storage=StorageGrant())

    other = new_credentials()
    signed_elsewhere = cli("token", "generate", "--room", room_name, "--name", "x", "--key", other.api_key).stdout.strip()
    assert ParticipantToken.from_jwt(signed_elsewhere, token=other.secret).api_key_id == other.key_id


def test_token_from_a_spec_file(cli: Callable[..., CliResult], cli_env: InProcessServer, tmp_path: Path, room_name: str) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC.format(room=room_name))
    minted = cli("token", "--input", "spec.yaml")  # the official spelling: the group runs `generate`
    assert minted.exit_code == 0, minted
    token = decode(cli_env, minted.stdout)
    assert (token.name, token.role, token.grant_scope("room")) == ("alice", "agent", room_name)
    assert token.get_api_grant() == ApiScope(llm=LLMGrant(), storage=StorageGrant())
    assert can_join(cli_env, room_name, minted.stdout)

    written = cli("token", "generate", "-i", "spec.yaml", "-o", "alice.jwt", "--name", "carol")
    assert written.exit_code == 0 and written.stdout == "", written
    assert decode(cli_env, (tmp_path / "alice.jwt").read_text()).name == "carol"


def test_token_errors(cli: Callable[..., CliResult], monkeypatch: Any, tmp_path: Path, room_name: str) -> None:
    assert_one_line_error(cli("token", "generate", "--room", room_name), 2, "--name")
    assert_one_line_error(cli("token", "generate", "-i", "missing.yaml"), 2, "--input", "missing.yaml")
    (tmp_path / "no-llm.yaml").write_text(SPEC.format(room=room_name).replace("  llm: {}\n", ""))
    assert_one_line_error(cli("token", "generate", "-i", "no-llm.yaml"), 2, "llm grant")
    (tmp_path / "bad.yaml").write_text("identity: [unclosed")
    assert_one_line_error(cli("token", "generate", "-i", "bad.yaml"), 2, "not YAML")
    assert_one_line_error(cli("token", "generate", "--name", "x", "--api", "{nope"), 2, "--api")
    assert_one_line_error(cli("token", "generate", "--name", "x", "--api", "everything"), 2, "--api")
    assert_one_line_error(cli("token", "generate", "--name", "x", "--role", "boss"), 2, "--role")
    assert_one_line_error(cli("token", "--room", "x", "generate", "--name", "y"), 2, "after 'generate'")
    assert_one_line_error(cli("token", "generate", "--name", "x", "--key", "not-a-key"), 1, "not an API key")
    monkeypatch.delenv("MESHAGENT_API_KEY")
    assert_one_line_error(cli("token", "generate", "--name", "x"), 1, "nothing to sign the token with")


# --- call ------------------------------------------------------------------------------------------


def test_call_to_a_local_url_is_sent_from_here(cli: Callable[..., CliResult], cli_env: InProcessServer, tmp_path: Path, room_name: str) -> None:
    with webhook_receiver() as receiver:
        sent = cli("call", "agent", "--room", room_name, "--participant-name", "bob", "--url", receiver.url + "/agent", "--arguments", '{"x": 1}')
        assert sent.exit_code == 0 and sent.stdout == "", sent
        [request] = receiver.taken()
        assert request.path == "/agent" and SIGNATURE_HEADER.lower() not in request.headers
        envelope = json.loads(request.body)
        assert envelope["event"] == "room.call"
        data = envelope["data"]
        assert (data["room_name"], data["room_url"], data["arguments"]) == (room_name, cli_env.room_url(room_name), {"x": 1})
        token = decode(cli_env, data["token"])
        assert (token.name, token.role, token.grant_scope("room")) == ("bob", "agent", room_name)
        assert token.get_api_grant() == ApiScope.agent_default()
        assert can_join(cli_env, room_name, data["token"])

        (tmp_path / "spec.yaml").write_text(SPEC.format(room=room_name))
        with_spec = cli("room", "agents", "call", "tool", "--room", room_name, "--participant-name", "bob", "--url", receiver.url + "/tool", "-p", "spec.yaml", "--role", "tool")
        assert with_spec.exit_code == 0, with_spec
        token = decode(cli_env, json.loads(receiver.taken()[1].body)["data"]["token"])
        assert (token.name, token.role) == ("alice", "tool")
        assert token.get_api_grant() == ApiScope(llm=LLMGrant(), storage=StorageGrant())


def test_call_through_the_room(cli: Callable[..., CliResult], cli_env: InProcessServer, room_name: str) -> None:
    secret = cli_env.server.control.webhooks  # the project's webhook secret signs what the room sends

    async def project_secret() -> str:
        return await secret.project_secret(cli_env.credentials.project_id)

    with webhook_receiver() as receiver:
        sent = cli("call", "toolkit", "--room", room_name, "--participant-name", "kit", "--url", receiver.url + "/kit", "--no-local")
        assert sent.exit_code == 0, sent
        [request] = receiver.taken()
        envelope = verify(request.body, request.headers[SIGNATURE_HEADER.lower()], trio.run(project_secret), now=None)
        assert envelope["event"] == "room.call" and envelope["data"]["room_name"] == room_name and envelope["data"]["arguments"] == {}
        assert decode(cli_env, envelope["data"]["token"]).name == "kit"

        receiver.status = 500
        refused = cli("call", "agent", "--room", room_name, "--participant-name", "kit", "--url", receiver.url, "--no-local")
        assert_one_line_error(refused, 1, "meshagent-trio call agent: error:")


def test_a_called_service_host_serves_its_toolkit_in_the_room(cli: Callable[..., CliResult], cli_env: InProcessServer, room_name: str) -> None:
    @tool
    async def shout(text: str) -> str:
        return text.upper() + "!"

    host = ServiceHost(host="127.0.0.1", port=0)
    host.add_path("/tools", cls=Toolkit(name="shouter", tools=[shout]), identity="shouter-agent")

    async def serve(task_status: Any) -> None:
        async with host:
            task_status.started()
            await trio.sleep_forever()

    with in_background(serve):
        url = f"http://127.0.0.1:{host.bound_port}/tools"
        called = cli("room", "agent", "call", "toolkit", "--room", room_name, "--participant-name", "shouter-agent", "--url", url)
        assert called.exit_code == 0, called
        answered = cli("room", "agents", "invoke-tool", "--room", room_name, "--toolkit", "shouter", "--tool", "shout", "--arguments", '{"text": "hi"}')
        assert answered.exit_code == 0 and answered.stdout == "HI!\n", answered


def test_call_errors(cli: Callable[..., CliResult], cli_env: InProcessServer, monkeypatch: Any, room_name: str) -> None:
    base = ("call", "agent", "--room", room_name)
    assert_one_line_error(cli(*base, "--url", "http://127.0.0.1:9/x"), 2, "--participant-name")
    assert_one_line_error(cli(*base, "--participant-name", "a", "--url", "ftp://x"), 2, "--url")
    assert_one_line_error(cli(*base, "--participant-name", "a", "--url", "http://127.0.0.1:9/x", "--arguments", "[1]"), 2, "--arguments")
    assert_one_line_error(cli("call", "agent", "--participant-name", "a", "--url", "http://127.0.0.1:9/x"), 2, "--room")
    assert_one_line_error(cli(*base, "--participant-name", "a", "--url", "http://127.0.0.1:9/x"), 1, "meshagent-trio call agent: error:", "127.0.0.1:9")

    monkeypatch.delenv("MESHAGENT_API_KEY")
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope(agents=AgentsGrant(call=False))))
    refused = cli("call", "agent", "--participant-name", "a", "--url", "http://127.0.0.1:9/x", "--no-local")
    assert_one_line_error(refused, 1, "meshagent-trio call agent: error:")


# --- room connect ----------------------------------------------------------------------------------

#: A child that writes what it was given to argv[1], joins the room as its environment says,
#: leaves a file there, and exits with status 3.
CHILD = """
import json, os, sys, trio
from meshagent_trio import RoomClient
names = ["MESHAGENT_API_URL", "MESHAGENT_PROJECT_ID", "MESHAGENT_ROOM", "MESHAGENT_ROOM_URL", "MESHAGENT_TOKEN", "OPENAI_API_KEY", "OPENAI_BASE_URL", "FOO"]
open(sys.argv[1], "w").write(json.dumps({name: os.environ.get(name) for name in names}))
async def main():
    async with RoomClient() as room:
        await room.storage.upload(path="from-connect.txt", data=b"hi", overwrite=True)
if len(sys.argv) > 2:
    trio.run(main)
sys.exit(3)
"""


def test_room_connect_runs_a_command_that_joins_the_room(cli: Callable[..., CliResult], cli_env: InProcessServer, tmp_path: Path, room_name: str) -> None:
    (tmp_path / "child.py").write_text(CHILD)
    ran = cli("room", "connect", "--room", room_name, "-e", "FOO=bar=baz", "--", sys.executable, "child.py", "seen.json", "join")
    assert ran.exit_code == 3, ran
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["MESHAGENT_API_URL"] == cli_env.api_url and seen["MESHAGENT_ROOM"] == room_name and seen["FOO"] == "bar=baz"
    assert seen["MESHAGENT_PROJECT_ID"] == cli_env.credentials.project_id
    assert seen["MESHAGENT_ROOM_URL"] + f"/rooms/{room_name}" == cli_env.room_url(room_name)
    assert seen["OPENAI_API_KEY"] == seen["MESHAGENT_TOKEN"] and seen["OPENAI_BASE_URL"] == cli_env.api_url + "/openai/v1"
    assert decode(cli_env, seen["MESHAGENT_TOKEN"]).grant_scope("room") == room_name

    async def joined() -> bool:
        async with connect(cli_env.room_url(room_name), cli_env.token(room_name)) as room:
            return await room.storage.exists(path="from-connect.txt")

    assert trio.run(joined)


def test_room_connect_mints_for_an_identity(cli: Callable[..., CliResult], cli_env: InProcessServer, tmp_path: Path, room_name: str) -> None:
    (tmp_path / "child.py").write_text(CHILD)
    # `rooms connect` (the name the REST group gives it) is the same command.
    ran = cli("rooms", "connect", "--room", room_name, "--identity", "helper", "--meshagent-token", "full", "--", sys.executable, "child.py", "seen.json")
    assert ran.exit_code == 3, ran
    token = decode(cli_env, json.loads((tmp_path / "seen.json").read_text())["MESHAGENT_TOKEN"])
    assert (token.name, token.role, token.get_api_grant()) == ("helper", "agent", ApiScope.full())

    bare = cli("room", "connect", "--room", room_name, "--template", "none", "--identity", "u", "--role", "user", sys.executable, "child.py", "bare.json")
    assert bare.exit_code == 3, bare
    seen = json.loads((tmp_path / "bare.json").read_text())
    assert seen["MESHAGENT_TOKEN"] is None and seen["MESHAGENT_ROOM"] is None  # template none: nothing unless asked


def test_room_connect_errors(cli: Callable[..., CliResult], cli_env: InProcessServer, monkeypatch: Any, room_name: str) -> None:
    assert_one_line_error(cli("room", "connect", "--room", room_name), 2, "after --")
    assert_one_line_error(cli("room", "connect", "--room", room_name, "-e", "NOEQUALS", "--", "true"), 2, "--env")
    assert_one_line_error(cli("room", "connect", "--room", room_name, "--role", "agent", "--", "true"), 2, "--identity")
    assert_one_line_error(cli("room", "connect", "--room", room_name, "--template", "fancy", "--", "true"), 2, "--template")
    assert_one_line_error(cli("room", "connect", "--", "true"), 2, "--room")
    assert_one_line_error(cli("room", "connect", "--room", room_name, "--", "/no/such/program"), 1, "cannot run /no/such/program")
    assert cli("room", "connect", "--room", room_name, "--", "true").exit_code == 0

    monkeypatch.delenv("MESHAGENT_API_KEY")
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope(storage=StorageGrant())))
    assert cli("room", "connect", "--", "true").exit_code == 0  # a participant may connect as itself

