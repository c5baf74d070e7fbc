"""Access control on the local server (protocol/rest.md §6 and the seed's grants), over real sockets with
our `Meshagent` client: groups and members, IAM resource policies, `test_access` and
`get_effective_access` through groups, usersets and `everyone`, the seed's room, agent and
agent-room grants, the refusals (400, 403, 404, 409, 501), and the grants enforced: the token
`connect_room` mints carries the user's `ApiScope`, and the room refuses what it does not grant."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core import BinaryContent, JsonContent, RoomException
from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import RouteError, ConflictError, NotFoundError, PermissionDeniedError, RestError, ValidationErrorResponse
from meshagent_core.rest.access import FILE_ROLES, ROOM_ROLES, AccessResource, AccessSubject
from meshagent_core.tokens import ApiScope, MessagingGrant, ParticipantToken, StorageGrant, StoragePathGrant
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server, ServerConfig
from meshagent_trio.server.control import ControlPlane, Forbidden
from meshagent_trio.server.control.access_rules import compat_room_scope


def api(server: Server, token: str) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=token)


def user(email: str) -> dict[str, Any]:
    return {"type": "user", "email": email}


def room_resource(room_id: str) -> dict[str, Any]:
    return {"type": "room", "id": room_id}


def read_only_storage() -> ApiScope:
    return ApiScope(storage=StorageGrant(paths=[StoragePathGrant(path="", read_only=True)]), messaging=MessagingGrant())


def scope_of(jwt: str) -> ApiScope:
    token = ParticipantToken.from_jwt(jwt, validate=False)
    return token.get_api_grant()


async def test_groups_and_their_members(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        crew = await client.create_group(project_id=own, name="crew", metadata={"k": 1}, annotations={"a": "b"})
        assert (crew.name, crew.metadata, crew.annotations) == ("crew", {"k": 1}, {"a": "b"})
        with pytest.raises(ConflictError, match="group 'crew' already exists"):
            await client.create_group(project_id=own, name="crew")
        assert await client.get_group(project_id=own, group_id=crew.id) == crew
        assert await client.get_group_by_name(project_id=own, name="crew") == crew
        with pytest.raises(RestError, match="group not found") as missing:
            await client.get_group(project_id=own, group_id="nope")
        assert missing.value.http_status == 404 and "nope" in missing.value.body
        with pytest.raises(ValidationErrorResponse, match="name"):
            await client.create_group(project_id=own, name=" ")

        await client.update_group(project_id=own, group_id=crew.id, name="team", metadata={"k": 2})
        team = await client.get_group(project_id=own, group_id=crew.id)
        assert (team.name, team.metadata, team.annotations) == ("team", {"k": 2}, {"a": "b"})
        for name in ("alpha", "beta", "gamma"):
            await client.create_group(project_id=own, name=name)
        with pytest.raises(ConflictError):
            await client.update_group(project_id=own, group_id=crew.id, name="alpha")
        first = await client.list_groups_page(project_id=own, page_size=2)
        second = await client.list_groups_page(project_id=own, page_size=2, continuation_token=first.continuation_token)
        assert [g.name for g in first.groups + second.groups] == ["alpha", "beta", "gamma", "team"] and second.continuation_token is None
        assert [g.name for g in await client.list_groups(project_id=own, filter="MM")] == ["gamma"]

        await client.set_group_member(project_id=own, group_id=crew.id, subject=user("Ann@Example.com"))
        await client.set_group_member(project_id=own, group_id=crew.id, subject=user("bob@example.com"), role="manager")
        alpha = await client.get_group_by_name(project_id=own, name="alpha")
        await client.set_group_member(project_id=own, group_id=crew.id, subject={"type": "group", "id": alpha.id})
        page = await client.list_group_members_page(project_id=own, group_id=crew.id, page_size=2)
        rest = await client.list_group_members(project_id=own, group_id=crew.id, continuation_token=page.continuation_token)
        members = page.members + rest
        assert [(m.subject.type, m.subject.email or m.subject.name, m.direct_roles) for m in members] == [
            ("user", "ann@example.com", ["member"]),
            ("user", "bob@example.com", ["manager"]),
            ("group", "alpha", ["member"]),
        ]
        ann = members[0].subject.id
        with pytest.raises(ValidationErrorResponse, match="itself"):
            await client.set_group_member(project_id=own, group_id=crew.id, subject={"type": "group", "id": crew.id})
        with pytest.raises(ValidationErrorResponse, match="member is one of"):
            await client.set_group_member(project_id=own, group_id=crew.id, subject={"type": "everyone"})
        with pytest.raises(NotFoundError, match="user 'ghost' does not exist"):
            await client.set_group_member(project_id=own, group_id=crew.id, subject={"type": "user", "id": "ghost"})
        await client.delete_group_member(project_id=own, group_id=crew.id, subject_type="user", subject_id=ann)
        with pytest.raises(NotFoundError, match="is not a member"):
            await client.delete_group_member(project_id=own, group_id=crew.id, subject_type="user", subject_id=ann)
        assert len(await client.list_group_members(project_id=own, group_id=crew.id)) == 2

        await client.delete_group(project_id=own, group_id=alpha.id)
        assert len(await client.list_group_members(project_id=own, group_id=crew.id)) == 1  # alpha's membership went with it
        with pytest.raises(NotFoundError, match="group 'nope' does not exist"):
            await client.delete_group(project_id=own, group_id="nope")
        with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
            await client.list_groups_page(project_id="nope")


async def test_resource_policies_are_granted_listed_and_revoked(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        room = await client.create_room(project_id=own, name="lobby")
        await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject=user("ann@example.com"), roles=["viewer"])
        await client.grant_resource_policy(
            project_id=own, resource_type="room", resource_id="lobby", subject=AccessSubject(type="user", email="ann@example.com", first_name="A"), roles=["files_read"]
        )  # by name too; roles add up
        await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject={"type": "everyone"}, roles=["guest"])
        grants = await client.get_resource_policy(project_id=own, resource_type="room", resource_id=room.id, page_size=1)
        assert [(g.subject.type, g.subject.email, g.direct_roles) for g in grants] == [("user", "ann@example.com", ["viewer", "files_read"]), ("everyone", None, ["guest"])]
        assert grants[0].resource.name == "lobby" and grants[0].resource.id == room.id
        page = await client.get_resource_policy_page(project_id=own, resource_type="room", resource_id=room.id, page_size=1)
        assert len(page.access_grants) == 1 and page.continuation_token and page.resource.id == room.id

        # the project's policy is its member list
        await client.grant_resource_policy(project_id=own, resource_type="project", resource_id=own, subject=user("ann@example.com"), roles=["member"])
        project_policy = await client.get_resource_policy(project_id=own, resource_type="project", resource_id=own)
        assert {(g.subject.email, tuple(g.direct_roles)) for g in project_policy} == {("owner@localhost", ("admin",)), ("ann@example.com", ("member",))}

        ann = grants[0].subject.id
        bindings = await client.list_access_bindings(project_id=own, subject={"type": "user", "id": ann})
        assert [(b.resource.type, b.direct_roles) for b in bindings] == [("project", ["member"]), ("room", ["viewer", "files_read"])]
        assert (await client.list_access_bindings_page(project_id=own, subject={"type": "user", "id": ann})).access_grants == bindings

        await client.revoke_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject={"type": "user", "id": ann})
        with pytest.raises(NotFoundError, match="has no grant on room"):
            await client.revoke_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject={"type": "user", "id": ann})
        assert [g.subject.type for g in await client.get_resource_policy(project_id=own, resource_type="room", resource_id=room.id)] == ["everyone"]

        # refusals
        with pytest.raises(ValidationErrorResponse, match="roles"):
            await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject=user("a@b.c"), roles=["feed_manager"])
        with pytest.raises(RouteError, match=r"roles\[0\]"):  # our client checks the roles first
            await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject=user("a@b.c"), roles=["king"])
        async with httpx.AsyncClient(base_url=client.base_url, headers={"Authorization": f"Bearer {credentials.api_key}"}) as http:
            answer = await http.post(f"/accounts/projects/{own}/iam/room/{room.id}/policy:grant", json={"subject": user("a@b.c"), "roles": ["king"]})
        assert answer.status_code == 400 and "roles[0]" in answer.json()["error"]["message"]
        with pytest.raises(ValidationErrorResponse, match="at least one role"):
            await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject=user("a@b.c"), roles=[])
        with pytest.raises(NotFoundError, match="room 'nowhere' does not exist"):
            await client.grant_resource_policy(project_id=own, resource_type="room", resource_id="nowhere", subject=user("a@b.c"), roles=["guest"])
        with pytest.raises(NotFoundError, match="group 'ghosts' does not exist"):
            await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject={"type": "group", "id": "ghosts"}, roles=["guest"])
        with pytest.raises(ValidationErrorResponse, match="userset"):
            await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject={"type": "userset", "id": "elsewhere", "object_type": "project", "relation": "member"}, roles=["guest"])
        with pytest.raises(RestError, match="holds no feed resources") as unserved:
            await client.get_resource_policy_page(project_id=own, resource_type="feed", resource_id="news")
        assert unserved.value.http_status == 501
        with pytest.raises(ValidationErrorResponse, match="continuation_token"):
            await client.get_resource_policy_page(project_id=own, resource_type="room", resource_id=room.id, continuation_token="x")

        await client.delete_room(project_id=own, room_id=room.id)
        with pytest.raises(NotFoundError):
            await client.get_resource_policy(project_id=own, resource_type="room", resource_id=room.id)


async def test_access_is_tested_through_groups_usersets_and_everyone(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        room = await client.create_room(project_id=own, name="lab")
        outer = await client.create_group(project_id=own, name="outer")
        inner = await client.create_group(project_id=own, name="inner")
        await client.set_group_member(project_id=own, group_id=inner.id, subject=user("ann@example.com"))
        await client.set_group_member(project_id=own, group_id=outer.id, subject={"type": "group", "id": inner.id})
        ann = (await client.list_group_members(project_id=own, group_id=inner.id))[0].subject
        ann_ref = {"type": "user", "id": ann.id}
        lab = room_resource(room.id)

        async def allowed(relation: str, subject: Any = ann_ref) -> bool:
            return (await client.test_access(project_id=own, subject=subject, resource=lab, relation=relation)).allowed

        assert not await allowed("can_use")
        await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject={"type": "group", "id": outer.id}, roles=["developer"])
        assert await allowed("can_use") and await allowed("can_develop") and not await allowed("can_manage")
        summary = await client.get_effective_access(project_id=own, subject=ann_ref, resource=lab, relations=["can_use", "can_manage", "files_write"])
        assert (summary.effective_roles, summary.capabilities) == (["developer"], {"can_use": True, "can_manage": False, "files_write": True})
        assert (summary.subject.email, summary.resource.name) == ("ann@example.com", "lab")

        # a project member is in the project's `member` userset; `everyone` is everyone
        carl = {"type": "user", "email": "carl@example.com"}
        await client.grant_resource_policy(project_id=own, resource_type="project", resource_id=own, subject=carl, roles=["member"])
        userset = {"type": "userset", "id": own, "object_type": "project", "relation": "member"}
        await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject=userset, roles=["viewer"])
        assert await allowed("can_use", carl) and not await allowed("can_develop", carl)
        dave = {"type": "user", "email": "dave@example.com"}
        await client.grant_resource_policy(project_id=own, resource_type="project", resource_id=own, subject=dave, roles=["room_manager"])
        assert await allowed("can_manage", dave)  # a room manager of the project manages every room
        await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject={"type": "everyone"}, roles=["files_read"])
        assert (await client.get_effective_access(project_id=own, subject=carl, resource=lab)).effective_roles == ["files_read", "viewer"]
        erin = {"type": "user", "email": "erin@example.com"}
        await client.set_group_member(project_id=own, group_id=outer.id, subject=erin)  # invited, and in the group now
        assert await allowed("can_develop", erin)

        # service accounts: by id, and through the project's `service_account` userset
        bot = await client.create_service_account(project_id=own, name="bot")
        bot_ref = {"type": "service_account", "id": bot.id}
        assert not await allowed("can_develop", bot_ref)
        sa_userset = {"type": "userset", "id": own, "object_type": "project", "relation": "service_account"}
        await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject=sa_userset, roles=["developer"])
        assert await allowed("can_develop", bot_ref)
        await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject=bot_ref, roles=["admin"])
        assert await allowed("can_manage", bot_ref)
        with pytest.raises(NotFoundError, match="service account 'ghost' does not exist"):
            await allowed("can_use", {"type": "service_account", "id": "ghost"})

        owner = {"type": "user", "email": "owner@localhost"}
        full = await client.get_effective_access(project_id=own, subject=owner, resource=lab)
        assert "admin" in full.effective_roles and all(full.capabilities.values())
        assert await allowed("can_manage", owner)
        assert (await client.test_access(project_id=own, subject=owner, resource={"type": "project", "id": own}, relation="can_manage")).allowed

        with pytest.raises(ValidationErrorResponse, match="relation 'can_fly'"):
            await allowed("can_fly")
        with pytest.raises(NotFoundError, match="no user has the e-mail"):
            await allowed("can_use", {"type": "user", "email": "stranger@example.com"})
        with pytest.raises(NotFoundError, match="room 'nope' does not exist"):
            await client.test_access(project_id=own, subject=ann_ref, resource=room_resource("nope"), relation="can_use")


async def test_the_seed_room_grants(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        lobby = await client.create_room(project_id=own, name="lobby")
        hall = await client.create_room(project_id=own, name="hall")
        made = await client.create_room_grant_by_email(project_id=own, room_id=lobby.id, email="ann@example.com", permissions=read_only_storage())
        ann = made.user_id
        assert (made.room, made.email, ApiScope.from_json(made.permissions)) == (lobby, "ann@example.com", read_only_storage())
        with pytest.raises(ConflictError, match="already has a grant"):
            await client.create_room_grant(project_id=own, room_id=lobby.id, user_id=ann, permissions=ApiScope.full())
        await client.create_room_grant(project_id=own, room_id=hall.id, user_id=ann, permissions=ApiScope.full())
        bob = (await client.create_room_grant_by_email(project_id=own, room_id=lobby.id, email="bob@example.com", permissions=ApiScope.user_default())).user_id

        assert await client.get_room_grant(project_id=own, room_id=lobby.id, user_id=ann) == made
        updated = await client.update_room_grant(project_id=own, room_id=lobby.id, user_id=ann, permissions=ApiScope.agent_default())
        assert updated.id == made.id and ApiScope.from_json(updated.permissions) == ApiScope.agent_default()
        await client.update_room_grant(project_id=own, room_id=lobby.id, user_id=ann, permissions=read_only_storage(), grant_id=made.id)
        with pytest.raises(NotFoundError, match="grant 'other'"):
            await client.update_room_grant(project_id=own, room_id=lobby.id, user_id=ann, permissions=read_only_storage(), grant_id="other")
        # the official client's view of the role: admin, developer, or operator
        policy = await client.get_resource_policy(project_id=own, resource_type="room", resource_id=hall.id)
        assert [g.direct_roles for g in policy] == [["admin"]]

        every = await client.list_room_grants(project_id=own)
        assert [(g.room.name, g.user_id) for g in every.room_grants] == sorted([("hall", ann), ("lobby", ann), ("lobby", bob)])
        assert len((await client.list_room_grants(project_id=own, limit=1, offset=2)).room_grants) == 1
        assert [g.room.name for g in (await client.list_room_grants_by_user(project_id=own, user_id=ann)).room_grants] == ["hall", "lobby"]
        assert {g.user_id for g in (await client.list_room_grants_by_room(project_id=own, room_name="lobby")).room_grants} == {ann, bob}
        assert [(r.room.name, r.count) for r in (await client.list_unique_rooms_with_grants(project_id=own)).rooms] == [("hall", 1), ("lobby", 2)]
        assert [(u.email, u.count) for u in (await client.list_unique_users_with_grants(project_id=own)).users] == [("ann@example.com", 2), ("bob@example.com", 1)]

        await client.delete_room_grant(project_id=own, room_id=lobby.id, user_id=bob)
        with pytest.raises(NotFoundError, match="has no grant to the room 'lobby'"):
            await client.get_room_grant(project_id=own, room_id=lobby.id, user_id=bob)
        with pytest.raises(NotFoundError, match="has no grant"):
            await client.delete_room_grant(project_id=own, room_id=lobby.id, user_id=bob)
        with pytest.raises(NotFoundError, match="room 'nope' does not exist"):
            await client.create_room_grant(project_id=own, room_id="nope", user_id=ann, permissions=ApiScope.full())
        with pytest.raises(NotFoundError, match="user 'ghost' does not exist"):
            await client.create_room_grant(project_id=own, room_id=lobby.id, user_id="ghost", permissions=ApiScope.full())
        with pytest.raises(NotFoundError, match="user 'ghost' does not exist"):
            await client.list_room_grants_by_user(project_id=own, user_id="ghost")
        with pytest.raises(ValidationErrorResponse, match="permissions: not an ApiScope"):
            await client.create_room_grant(project_id=own, room_id=hall.id, user_id=bob, permissions={"storage": 5})
        with pytest.raises(ValidationErrorResponse, match="limit"):
            await client.list_room_grants(project_id=own, limit=0)
        async with httpx.AsyncClient(base_url=client.base_url, headers={"Authorization": f"Bearer {credentials.api_key}"}) as http:
            answer = await http.get(f"/accounts/projects/{own}/room-grants", params={"order_by": "colour"})
        assert answer.status_code == 400 and "order_by" in answer.json()["error"]["message"]


async def test_the_seed_agent_grants_and_agent_room_grants(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        planner = await client.create_agent(project_id=own, configuration={"metadata": {"name": "planner"}, "allowed_models": [{"provider": "openai", "model": "gpt-4.1"}]})
        lobby = await client.create_room(project_id=own, name="lobby")
        grant = await client.create_agent_grant_by_email(project_id=own, agent_id=planner.id, email="ann@example.com")
        assert (grant.agent.name, grant.email, grant.permissions) == ("planner", "ann@example.com", None)
        with pytest.raises(ConflictError):
            await client.create_agent_grant(project_id=own, agent_id=planner.id, user_id=grant.user_id)
        updated = await client.update_agent_grant(project_id=own, agent_id="planner", user_id=grant.user_id, permissions=ApiScope.agent_default())
        assert updated.id == grant.id and ApiScope.from_json(updated.permissions) == ApiScope.agent_default()
        assert await client.get_agent_grant(project_id=own, agent_id=planner.id, user_id=grant.user_id) == updated
        assert (await client.test_access(project_id=own, subject={"type": "user", "id": grant.user_id}, resource={"type": "agent", "id": planner.id}, relation="can_use")).allowed
        await client.delete_agent_grant(project_id=own, agent_id=planner.id, user_id=grant.user_id)
        with pytest.raises(NotFoundError, match="has no grant to the agent 'planner'"):
            await client.get_agent_grant(project_id=own, agent_id=planner.id, user_id=grant.user_id)

        room_grant = await client.create_agent_room_grant(project_id=own, agent_id=planner.id, room_id=lobby.id, permissions=read_only_storage())
        assert (room_grant.agent.name, room_grant.room, ApiScope.from_json(room_grant.permissions)) == ("planner", lobby, read_only_storage())
        with pytest.raises(ConflictError):
            await client.create_agent_room_grant(project_id=own, agent_id=planner.id, room_id=lobby.id)
        assert await client.get_agent_room_grant(project_id=own, agent_id=planner.id, room_id=lobby.id) == room_grant
        assert await server.control.access.agent_room_scope(own, "lobby", planner.id) == read_only_storage()
        replaced = await client.update_agent_room_grant(project_id=own, agent_id=planner.id, room_id=lobby.id)
        assert replaced.permissions is None
        policy = await client.get_resource_policy(project_id=own, resource_type="room", resource_id=lobby.id)
        assert [(g.subject.type, g.subject.name, g.direct_roles) for g in policy] == [("agent", "planner", ["operator"])]
        assert [g.room.name for g in (await client.list_agent_room_grants_by_agent(project_id=own, agent_name="planner")).agent_room_grants] == ["lobby"]
        assert [g.agent.name for g in (await client.list_agent_room_grants_by_room(project_id=own, room_name="lobby")).agent_room_grants] == ["planner"]
        await client.delete_agent_room_grant(project_id=own, agent_id=planner.id, room_id=lobby.id)
        assert (await client.list_agent_room_grants_by_room(project_id=own, room_name="lobby")).agent_room_grants == []
        with pytest.raises(NotFoundError, match="agent 'ghost' does not exist"):
            await client.list_agent_room_grants_by_agent(project_id=own, agent_name="ghost")
        with pytest.raises(NotFoundError, match="has no grant"):
            await client.delete_agent_room_grant(project_id=own, agent_id=planner.id, room_id=lobby.id)


async def test_connect_room_carries_the_scope_the_grants_give(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        room = await client.create_room(project_id=own, name="studio")
        assert scope_of((await client.connect_room(project_id=own, room="studio")).jwt) == ApiScope.full()  # the owner

        async def scope_for(email: str) -> ApiScope:
            info = await client.connect_room(project_id=own, room="studio", email=email)
            assert ParticipantToken.from_jwt(info.jwt, validate=False).name == email
            return scope_of(info.jwt)

        with pytest.raises(PermissionDeniedError, match="stranger@example.com is not a member of project"):
            await scope_for("stranger@example.com")
        member = {"type": "user", "email": "mia@example.com"}
        await client.grant_resource_policy(project_id=own, resource_type="project", resource_id=own, subject=member, roles=["member"])
        assert await scope_for("mia@example.com") == ApiScope.user_default()
        group = await client.create_group(project_id=own, name="devs")
        await client.set_group_member(project_id=own, group_id=group.id, subject=member)
        await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject={"type": "group", "id": group.id}, roles=["developer"])
        assert await scope_for("mia@example.com") == ApiScope.agent_default(tunnels=True)
        await client.create_room_grant_by_email(project_id=own, room_id=room.id, email="mia@example.com", permissions=read_only_storage())
        assert await scope_for("mia@example.com") == read_only_storage()  # her own grant wins

        # a grant without project membership is enough; files roles alone give no room API
        await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject=user("fay@example.com"), roles=["files_read"])
        assert await scope_for("fay@example.com") == ApiScope()
        await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject=user("fay@example.com"), roles=["admin"])
        assert await scope_for("fay@example.com") == ApiScope.full()
        await client.grant_resource_policy(project_id=own, resource_type="project", resource_id=own, subject=user("ada@example.com"), roles=["admin"])
        assert await scope_for("ada@example.com") == ApiScope.full()

        # create_room's permissions are room grants
        mia = (await client.get_room_grant(project_id=own, room_id=room.id, user_id=(await client.list_room_grants_by_room(project_id=own, room_name="studio")).room_grants[0].user_id))
        made = await client.create_room(project_id=own, name="annex", permissions={mia.user_id: ApiScope.user_default().model_dump()})
        assert ApiScope.from_json((await client.get_room_grant(project_id=own, room_id=made.id, user_id=mia.user_id)).permissions) == ApiScope.user_default()
        with pytest.raises(NotFoundError, match="user 'ghost' does not exist"):
            await client.create_room(project_id=own, name="never", permissions={"ghost": {}})
        with pytest.raises(RestError, match="room not found"):
            await client.get_room(project_id=own, name="never")  # nothing half-written


async def test_another_projects_key_is_refused(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as owner:
        other = await owner.create_project(name="other")
        account = await owner.create_service_account(project_id=other.id, name="bot")
        key = await owner.create_api_key(project_id=other.id, service_account_id=account.id, name="k", description="")
    async with api(server, key.value) as intruder:
        with pytest.raises(PermissionDeniedError, match="another project"):
            await intruder.list_groups_page(project_id=own)
        with pytest.raises(PermissionDeniedError, match="another project"):
            await intruder.create_room_grant_by_email(project_id=own, room_id="x", email="a@b.c", permissions={})
        assert (await intruder.list_groups_page(project_id=other.id)).groups == []


async def test_a_read_only_storage_grant_is_enforced_in_the_room(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        room = await client.create_room(project_id=own, name="vault")
        await client.create_room_grant_by_email(project_id=own, room_id=room.id, email="rita@example.com", permissions=read_only_storage())
        info = await client.connect_room(project_id=own, room="vault", email="rita@example.com")
    storage = server.config.room_data_dir(own, "vault") / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "kept.txt").write_bytes(b"kept")
    with trio.fail_after(20):
        async with RoomConnection.open(info.room_url, info.jwt) as rita:
            listed = await rita.invoke("storage", "list", {"path": ""})
            assert isinstance(listed, JsonContent) and [entry["name"] for entry in listed.json["files"]] == ["kept.txt"]
            with pytest.raises(RoomException) as refused:
                await rita.invoke("storage", "delete", {"path": "kept.txt"})
            assert refused.value.code == 1001 and "you do not have permission to delete 'kept.txt'" in refused.value.message
            with pytest.raises(RoomException) as refused:
                async with rita.stream_call("storage", "upload") as upload:
                    start = {"kind": "start", "path": "new.txt", "overwrite": False, "name": "new.txt", "mime_type": "text/plain", "size": 3}
                    upload.send(BinaryContent(headers=start))
                    await upload.response()
            assert refused.value.code == 1001 and "you do not have permission to write 'new.txt'" in refused.value.message
    assert sorted(p.name for p in storage.iterdir()) == ["kept.txt"] and (storage / "kept.txt").read_bytes() == b"kept"


# --- the evaluation, against a model ---------------------------------------------------------------

GRANTABLE = [*ROOM_ROLES, *FILE_ROLES]


@settings(max_examples=30, deadline=None)
@given(
    steps=st.lists(st.tuples(st.sampled_from(["grant", "revoke"]), st.sampled_from(["user", "group", "everyone"]), st.sampled_from(GRANTABLE)), max_size=8),
    in_group=st.booleans(),
)
def test_a_users_roles_are_the_union_of_what_its_principals_were_granted(steps: list[tuple[str, str, str]], in_group: bool) -> None:
    """After any grants and revokes to a user, a group and `everyone`, the user's effective roles
    on the room are the union of the grants of the principals it acts as, and its room scope is
    the compat scope of those roles (refused when there are none: it is not a project member)."""

    async def scenario(data_dir: Path) -> None:
        credentials = Credentials(str(uuid.uuid4()), str(uuid.uuid4()), "secret")
        plane = ControlPlane(ServerConfig(data_dir=data_dir, credentials=credentials, port=0))
        store, project = plane.access, credentials.project_id
        room = await plane.create_room(project, "r", if_not_exists=False, metadata=None, annotations=None)
        group = await store.create_group(project, "g", None, None)
        ann = AccessSubject(type="user", email="ann@example.com")
        await plane.accounts.ensure_user_by_email("ann@example.com")
        subjects = {"user": ann, "group": AccessSubject(type="group", id=group.id), "everyone": AccessSubject(type="everyone")}
        if in_group:
            await store.set_group_member(project, group.id, ann, "member")
        model: dict[str, set[str]] = {}
        for action, who, role in steps:
            if action == "grant":
                await store.grant(project, "room", room.id, subjects[who], [role])
                model.setdefault(who, set()).add(role)
            elif who in model:
                await store.revoke(project, "room", room.id, subjects[who])
                del model[who]
        expected = model.get("user", set()) | model.get("everyone", set()) | (model.get("group", set()) if in_group else set())
        found, _, roles, capabilities = await store.effective(project, ann, AccessResource(type="room", id=room.id), None)
        assert set(roles) == expected
        assert capabilities["can_use"] == bool(expected & set(ROOM_ROLES))
        if expected:
            assert await store.room_scope(project, "r", found.id or "") == compat_room_scope(expected)
        else:
            with pytest.raises(Forbidden):
                await store.room_scope(project, "r", found.id or "")

    with tempfile.TemporaryDirectory() as directory:
        trio.run(scenario, Path(directory))


async def test_deleting_an_agent_or_a_service_account_deletes_their_policies(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    spec = {"metadata": {"name": "helper"}, "allowed_models": [{"provider": "openai", "model": "gpt-4.1"}]}
    async with api(server, credentials.api_key) as client:
        room = await client.create_room(project_id=own, name="desk")
        crew = await client.create_group(project_id=own, name="crew")
        agent = await client.create_agent(project_id=own, configuration=spec)
        account = await client.create_service_account(project_id=own, name="worker")
        for kind, subject_id in (("agent", agent.id), ("service_account", account.id)):
            subject = {"type": kind, "id": subject_id}
            await client.grant_resource_policy(project_id=own, resource_type="room", resource_id=room.id, subject=subject, roles=["viewer"])
            await client.set_group_member(project_id=own, group_id=crew.id, subject=subject)
        await client.grant_resource_policy(project_id=own, resource_type="agent", resource_id=agent.id, subject=user("ann@example.com"), roles=["operator"])

        await client.delete_agent(project_id=own, agent_id=agent.id)
        await client.delete_service_account(project_id=own, service_account_id=account.id)
        assert await client.get_resource_policy(project_id=own, resource_type="room", resource_id=room.id) == []
        assert await client.list_group_members(project_id=own, group_id=crew.id) == []
        bindings = await client.list_access_bindings(project_id=own, subject=user("ann@example.com"))
        assert [grant for grant in bindings if grant.resource.type == "agent"] == []
