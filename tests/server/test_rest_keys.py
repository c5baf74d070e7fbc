"""Service accounts, API keys, participant tokens and `whoami` over REST (protocol/rest.md §14, §3),
against a real server on a real socket with our `Meshagent` client: keys made through REST are
trusted from the moment they are made and refused from the moment they are deleted, as REST
bearers and for signing participant tokens, while connected rooms go on."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core.client.rest import Meshagent
from meshagent_core.errors import RoomException
from meshagent_core.rest import ConflictError, NotFoundError, PermissionDeniedError, RestError, ValidationErrorResponse
from meshagent_core.tokens import ApiKey, ApiScope, ParticipantToken, encode_api_key, parse_api_key
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server, ServerConfig
from meshagent_trio.server.auth import KeyRing, Refused, TrustedKey, verify_api_key, verify_token
from meshagent_trio.websocket import HandshakeRejected


def base(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


def api(server: Server, token: str | None) -> Meshagent:
    return Meshagent(base_url=base(server), token=token)


def room_token(api_key: str, room: str, *, name: str = "worker") -> str:
    """A participant JWT signed locally with `api_key` (as the official ParticipantToken does)."""
    token = ParticipantToken(name=name)
    token.add_role_grant("agent")
    token.add_room_grant(room)
    token.add_api_grant(ApiScope.agent_default())
    return token.to_jwt(api_key=api_key)


async def refused_join(server: Server, room: str, jwt: str) -> HandshakeRejected:
    with pytest.raises(HandshakeRejected) as refused:
        with trio.fail_after(10):
            async with RoomConnection.open(server.config.room_url(room), jwt):
                pass
    return refused.value


async def test_service_accounts(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        worker = await client.create_service_account(
            project_id=own, name="worker", key="wk", display_name="Worker", description="does work", metadata={"a": 1}, annotations={"b": "c"}
        )
        assert (worker.project_id, worker.key, worker.display_name, worker.description) == (own, "wk", "Worker", "does work")
        assert (worker.metadata, worker.annotations, worker.email) == ({"a": 1}, {"b": "c"}, f"worker@service.{own}.local")
        assert worker.created_at and worker.updated_at
        plain = await client.create_service_account(project_id=own, name="plain")
        assert (plain.key, plain.description, plain.metadata, plain.display_name) == ("plain", "", {}, None)
        with pytest.raises(ConflictError, match="service account 'worker' already exists"):
            await client.create_service_account(project_id=own, name="worker")
        with pytest.raises(ConflictError, match="key 'wk'"):
            await client.create_service_account(project_id=own, name="other", key="wk")

        assert await client.get_service_account(project_id=own, service_account_id=worker.id) == worker
        assert await client.get_service_account_by_name(project_id=own, name="worker") == worker

        await client.update_service_account(project_id=own, service_account_id=worker.id, name="builder", display_name="Builder")
        builder = await client.get_service_account(project_id=own, service_account_id=worker.id)
        assert (builder.name, builder.display_name, builder.description, builder.metadata, builder.key) == ("builder", "Builder", "", {"a": 1}, "wk")
        assert builder.email == f"builder@service.{own}.local"
        with pytest.raises(ConflictError, match="'plain' already exists"):
            await client.update_service_account(project_id=own, service_account_id=worker.id, name="plain")

        for name in ("c1", "c2", "c3"):
            await client.create_service_account(project_id=own, name=name)
        first = await client.list_service_accounts(project_id=own, page_size=2)
        assert [a.name for a in first.service_accounts] == ["builder", "c1"] and first.continuation_token
        rest = await client.list_service_accounts(project_id=own, page_size=10, continuation_token=first.continuation_token)
        assert [a.name for a in rest.service_accounts] == ["c2", "c3", "plain"] and rest.continuation_token is None
        assert len((await client.list_service_accounts(project_id=own)).service_accounts) == 5

        await client.delete_service_account(project_id=own, service_account_id=worker.id)
        with pytest.raises(NotFoundError, match=f"service account '{worker.id}' does not exist"):
            await client.get_service_account(project_id=own, service_account_id=worker.id)
        with pytest.raises(NotFoundError, match="service account 'builder' does not exist"):
            await client.get_service_account_by_name(project_id=own, name="builder")
        for call in (client.delete_service_account, client.list_api_keys):
            with pytest.raises(NotFoundError, match="does not exist"):
                await call(project_id=own, service_account_id=worker.id)
        with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
            await client.create_service_account(project_id="nope", name="x")
        for bad in ("", "a b", "a@b", "../x"):
            with pytest.raises(ValidationErrorResponse, match="invalid service account name"):
                await client.create_service_account(project_id=own, name=bad)
        with pytest.raises(ValidationErrorResponse, match="invalid service account name"):
            await client.update_service_account(project_id=own, service_account_id=plain.id, name="with space")
        with pytest.raises(RestError, match="filter and view are not implemented") as info:
            await client.list_service_accounts(project_id=own, filter="x")
        assert info.value.http_status == 501


async def test_api_keys_are_live_rest_credentials(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as owner:
        other = await owner.create_project(name="other")
        account = await owner.create_service_account(project_id=own, name="bot")
        created = await owner.create_api_key(project_id=own, service_account_id=account.id, name="ci", description="for CI")
        parsed = parse_api_key(created.value)
        assert (parsed.id, parsed.project_id) == (created.id, own)
        assert (created.name, created.description, created.service_account_id, created.project_id) == ("ci", "for CI", account.id, own)
        second = await owner.create_api_key(project_id=own, service_account_id=account.id, name="spare", description="")
        listed = (await owner.list_api_keys(project_id=own, service_account_id=account.id)).keys
        assert {k.id for k in listed} == {created.id, second.id} and all(k.value is None for k in listed)

        async with api(server, created.value) as bot:
            who = await bot.whoami()
            assert (who.type, who.id, who.email, who.service_account) == ("service_account", account.id, account.email, account)
            await bot.create_room(project_id=own, name="bots-room")
            with pytest.raises(PermissionDeniedError, match="another project"):
                await bot.list_rooms_page(project_id=other.id)
            with pytest.raises(PermissionDeniedError, match="another project"):
                await bot.create_service_account(project_id=other.id, name="intruder")

            await owner.delete_api_key(project_id=own, service_account_id=account.id, id=created.id)
            with pytest.raises(PermissionDeniedError, match="not known to this server"):
                await bot.whoami()
        assert [k.id for k in (await owner.list_api_keys(project_id=own, service_account_id=account.id)).keys] == [second.id]
        with pytest.raises(NotFoundError, match=f"API key '{created.id}' does not exist"):
            await owner.delete_api_key(project_id=own, service_account_id=account.id, id=created.id)
        forged = created.value.rsplit("-", 1)[0] + "-forged"
        async with api(server, second.value[:-3] + "xyz") as wrong_secret, api(server, forged) as wrong:
            for impostor in (wrong_secret, wrong):
                with pytest.raises(PermissionDeniedError):
                    await impostor.whoami()

        with pytest.raises(RestError, match="msid") as info:
            await owner.revoke_api_keys_by_msid(project_id=own, service_account_id=account.id, msid="m")
        assert info.value.http_status == 501
        with pytest.raises(NotFoundError):
            await owner.revoke_api_keys_by_msid(project_id=own, service_account_id="nope", msid="m")

        # deleting the account deletes its keys: refused from then on
        await owner.delete_service_account(project_id=own, service_account_id=account.id)
        async with api(server, second.value) as orphan:
            with pytest.raises(PermissionDeniedError):
                await orphan.whoami()


async def test_whoami_of_the_owner(server: Server, credentials: Credentials) -> None:
    async with api(server, credentials.api_key) as owner:
        who = await owner.whoami()
    assert who.type == "user" and who.user is not None and (who.id, who.email) == (who.user.id, who.user.email)
    assert who.email == "owner@localhost"


async def test_minted_tokens_and_their_validation(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as owner, api(server, None) as anonymous:
        account = await owner.create_service_account(project_id=own, name="minter")
        key = await owner.create_api_key(project_id=own, service_account_id=account.id, name="k", description="")

        short = await owner.mint_participant_token(project_id=own, name="ann", room_name="hall", role="agent", api={"messaging": {}})
        claims = await anonymous.validate_participant_token(token=short)
        assert (claims.name, claims.project_id, claims.api_key_id, claims.role, claims.grant_scope("room")) == ("ann", own, credentials.key_id, "agent", "hall")
        assert claims.get_api_grant() == ApiScope.from_json({"messaging": {}})

        async with api(server, key.value) as minter:
            grants = [{"name": "room", "scope": "hall"}, {"name": "api", "scope": {"storage": {}}}]
            long = await minter.mint_participant_token(project_id=own, email="bob@example.com", grants=grants)
            defaulted = await minter.mint_participant_token(project_id=own)
            with pytest.raises(PermissionDeniedError, match="another project"):
                await minter.mint_participant_token(project_id=(await owner.create_project(name="p2")).id)
        claims = await anonymous.validate_participant_token(token=long)
        assert (claims.name, claims.api_key_id, claims.extra_payload) == ("bob@example.com", key.id, {"email": "bob@example.com"})
        assert claims.get_api_grant() == ApiScope.from_json({"storage": {}})
        assert (await anonymous.validate_participant_token(token=defaulted)).name == account.email
        assert (await anonymous.validate_participant_token(token=room_token(key.value, "hall"))).api_key_id == key.id

        with pytest.raises(NotFoundError, match="project 'nope'"):
            await owner.mint_participant_token(project_id="nope", name="x")
        with pytest.raises(RestError, match="invalid grant") as info:
            await owner.mint_participant_token(project_id=own, grants=[{"name": "api", "scope": {"storage": 5}}])
        assert info.value.http_status == 400
        for bad, why in (("not-a-jwt", "invalid participant token"), (short[:-2] + "xx", "Signature verification failed")):
            with pytest.raises(PermissionDeniedError, match=why):
                await anonymous.validate_participant_token(token=bad)

        await owner.delete_api_key(project_id=own, service_account_id=account.id, id=key.id)
        with pytest.raises(PermissionDeniedError, match="Unknown API key id"):
            await anonymous.validate_participant_token(token=long)


async def test_a_participant_token_as_rest_bearer(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as owner:
        await owner.create_room(project_id=own, name="hall")
        jwt = await owner.mint_participant_token(project_id=own, name="pat", room_name="hall", api={"messaging": {}})
    async with api(server, jwt) as participant:
        who = await participant.whoami()
        assert (who.type, who.id, who.email) == ("user", "pat", "pat")
        info = await participant.connect_room(project_id=own, room="hall")
        assert info.room_name == "hall"
        minted, own_token = ParticipantToken.from_jwt(info.jwt, token=credentials.secret), ParticipantToken.from_jwt(jwt, validate=False)
        # no more than its own token gives (the owner's connect_room would give full access)
        assert (minted.name, minted.role, minted.get_api_grant().to_json()) == ("pat", own_token.role, own_token.get_api_grant().to_json())
        with pytest.raises(PermissionDeniedError, match="may not connect as another user"):
            await participant.connect_room(project_id=own, room="hall", email="owner@localhost")
        with pytest.raises(PermissionDeniedError, match="does not grant access to room 'lobby'"):
            await participant.connect_room(project_id=own, room="lobby")
        with pytest.raises(PermissionDeniedError, match="list_projects: a participant token may only call connect_room, whoami"):
            await participant.list_projects()
    async with api(server, jwt[:-2] + "xx") as forged:
        with pytest.raises(PermissionDeniedError, match="Signature verification failed"):
            await forged.whoami()


async def test_rooms_of_other_projects(server: Server, credentials: Credentials) -> None:
    async with api(server, credentials.api_key) as owner:
        other = await owner.create_project(name="other")
        await owner.create_room(project_id=other.id, name="hall")
        info = await owner.connect_room(project_id=other.id, room="hall")
        assert info.project_id == other.id
        account = await owner.create_service_account(project_id=other.id, name="native")
        key = await owner.create_api_key(project_id=other.id, service_account_id=account.id, name="k", description="")
        with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
            await owner.connect_room(project_id="nope", room="hall")
    async with api(server, key.value) as native:  # a service account connects as itself
        as_account = ParticipantToken.from_jwt((await native.connect_room(project_id=other.id, room="hall")).jwt, token=credentials.secret)
        assert (as_account.name, as_account.role, as_account.get_api_grant()) == ("native", "agent", ApiScope.agent_default())
    async with api(server, credentials.api_key) as owner:

        # the owner key signs for the other project; the other project's key for its own only
        with trio.fail_after(10):
            async with RoomConnection.open(info.room_url, info.jwt) as via_owner, RoomConnection.open(info.room_url, room_token(key.value, "hall")) as via_key:
                room = server.project_rooms[other.id]["hall"]
                assert {via_owner.participant_id, via_key.participant_id} <= set(room.participants)
                assert "hall" not in server.rooms  # the server's own project has no such room
        assert room.data_dir == server.config.room_data_dir(other.id, "hall") == server.config.data_dir / "projects" / other.id / "rooms" / "hall"
        refused = await refused_join(server, "hall", _cross_project_token(key.value, credentials.project_id, "hall"))
        assert refused.status == 403 and "another project than the key that signed it" in refused.body

        # a disabled room of the other project refuses joins (the token's project is checked)
        room_record = await owner.get_room(project_id=other.id, name="hall")
        await owner.update_room(project_id=other.id, room_id=room_record.id, name="hall", enabled=False)
        assert (await refused_join(server, "hall", info.jwt)).status == 423


def _cross_project_token(api_key: str, project_id: str, room: str) -> str:
    """A token claiming `project_id`, signed with a key of another project."""
    parsed = parse_api_key(api_key)
    token = ParticipantToken(name="mallory", project_id=project_id, api_key_id=parsed.id)
    token.add_room_grant(room)
    token.add_api_grant(ApiScope.agent_default())
    return token.to_jwt(token=parsed.secret)


async def test_keys_made_and_deleted_while_a_room_is_live(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as owner:
        account = await owner.create_service_account(project_id=own, name="live")
        with trio.fail_after(20):
            async with RoomConnection.open(server.config.room_url("live"), room_token(credentials.api_key, "live", name="host")) as host:
                key = await owner.create_api_key(project_id=own, service_account_id=account.id, name="k", description="")
                jwt = room_token(key.value, "live", name="guest")
                async with RoomConnection.open(server.config.room_url("live"), jwt) as guest:
                    async with api(server, key.value) as bot:
                        assert (await bot.whoami()).type == "service_account"
                        await owner.delete_api_key(project_id=own, service_account_id=account.id, id=key.id)
                        with pytest.raises(PermissionDeniedError, match="not known"):
                            await bot.whoami()
                    refused = await refused_join(server, "live", jwt)
                    assert refused.status == 403 and "Unknown API key id" in refused.body
                    # the connected room goes on: both are still in it and still answered
                    assert {host.participant_id, guest.participant_id} <= set(server.rooms["live"].participants)
                    for connection in (host, guest):
                        with pytest.raises(RoomException, match="unknown request type"):
                            await connection.request("room.ping", {})


async def test_keys_survive_a_restart(tmp_path: Path, credentials: Credentials) -> None:
    value = ""
    for round in range(2):
        server = Server(ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0))
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            if round == 0:
                async with api(server, credentials.api_key) as owner:
                    account = await owner.create_service_account(project_id=credentials.project_id, name="kept")
                    value = (await owner.create_api_key(project_id=credentials.project_id, service_account_id=account.id, name="k", description="")).value
            async with api(server, value) as bot:
                assert (await bot.whoami()).service_account.name == "kept"
            nursery.cancel_scope.cancel()


# --- the key ring, as a model: accepted iff live, for REST and for tokens ---------------------

PROJECTS = ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222")


@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "remove"]), st.integers(0, 5), st.sampled_from(PROJECTS), st.sampled_from([None, *PROJECTS])),
        max_size=30,
    )
)
@settings(max_examples=60, deadline=None)
def test_the_ring_trusts_exactly_the_live_keys(operations: list[tuple[str, int, str, str | None]]) -> None:
    owner = Credentials(PROJECTS[0], "00000000-0000-4000-8000-000000000000", "owner-secret")
    ring = KeyRing(owner)
    made: dict[int, TrustedKey] = {}
    live: set[int] = set()
    for operation, number, project, claimed in operations:
        if operation == "add":
            made.setdefault(number, TrustedKey(str(uuid.UUID(int=number + 1)), project, f"secret-{number}", f"account-{number}"))
            ring.add([made[number]])
            live.add(number)
        else:
            ring.remove([made[number].id] if number in made else [])
            live.discard(number)
        for index, key in made.items():
            value = encode_api_key(ApiKey(id=key.id, project_id=key.project_id, secret=key.secret))
            token = ParticipantToken(name="p", project_id=claimed, api_key_id=key.id)
            jwt = token.to_jwt(token=key.secret)
            if index in live:
                assert verify_api_key(value, ring) == key
                if claimed in (None, key.project_id):
                    assert verify_token(ring, jwt, None) == (token, key)
                else:
                    with pytest.raises(Refused, match="another project"):
                        verify_token(ring, jwt, None)
            else:
                with pytest.raises(Refused, match="not known"):
                    verify_api_key(value, ring)
                with pytest.raises(Refused, match="Unknown API key id"):
                    verify_token(ring, jwt, None)
    # the owner key signs for any project, with or without `kid`
    for claimed in (None, *PROJECTS):
        signed = ParticipantToken(name="o", project_id=claimed, api_key_id=owner.key_id).to_jwt(token=owner.secret)
        assert verify_token(ring, signed, None)[1] is ring.owner
    assert verify_api_key(owner.api_key, ring) is ring.owner


async def test_a_project_key_sees_its_own_project_and_makes_none(server: Server, credentials: Credentials) -> None:
    async with api(server, credentials.api_key) as owner:
        other = await owner.create_project(name="other")
        account = await owner.create_service_account(project_id=other.id, name="worker")
        key = await owner.create_api_key(project_id=other.id, service_account_id=account.id, name="k", description="")
        assert {p.id for p in (await owner.list_projects()).projects} == {credentials.project_id, other.id}
        me = await owner.whoami()
        await owner.update_user_profile(user_id=me.id, first_name="Grace")
        assert (await owner.whoami()).user.first_name == "Grace"  # the owner's profile as it is now
    async with api(server, key.value) as worker:
        assert [p.id for p in (await worker.list_projects()).projects] == [other.id]
        with pytest.raises(PermissionDeniedError, match="only the owner's key makes projects"):
            await worker.create_project(name="mine")
