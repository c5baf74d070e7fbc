"""Project members, profiles, settings documents, sysadmin users and `get_project_by_key` on the
local server (protocol/rest.md §3), over real sockets with our `Meshagent` client: what each route
stores in the control plane, and the 400/403/404/409 answers of bad input."""

from __future__ import annotations

import httpx
import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import ConflictError, NotFoundError, PermissionDeniedError, ValidationErrorResponse
from meshagent_trio.server import Credentials, Server, ServerConfig


def client(server: Server, credentials: Credentials) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=credentials.api_key)


async def test_the_owner_is_an_admin_member_of_every_project(server: Server, credentials: Credentials) -> None:
    owner = server.control.accounts.owner_user()
    async with client(server, credentials) as api:
        own = credentials.project_id
        page = await api.get_users_in_project_page(project_id=own)
        assert [(m.user.id, m.user.email, m.direct_roles) for m in page.users] == [(owner.id, "owner@localhost", ["admin"])]
        later = await api.create_project(name="later")
        members = (await api.get_users_in_project_page(project_id=later.id)).users
        assert [(m.user.id, m.direct_roles) for m in members] == [(owner.id, ["admin"])]
        assert await server.control.accounts.project_roles(later.id, owner.id) == ["admin"]
        with pytest.raises(PermissionDeniedError, match="owner cannot be removed"):
            await api.remove_user_from_project(project_id=own, user_id=owner.id)
        with pytest.raises(PermissionDeniedError, match="stays admin"):
            await api.update_project_user(project_id=own, user_id=owner.id, roles=["member"])
        with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
            await api.get_users_in_project_page(project_id="nope")


async def test_members_are_added_changed_paged_filtered_and_removed(server: Server, credentials: Credentials) -> None:
    accounts = server.control.accounts
    ada = await accounts.ensure_user_by_email("Ada@Example.com")
    assert ada.email == "ada@example.com" and (await accounts.ensure_user_by_email("ada@EXAMPLE.com")).id == ada.id
    bob = await accounts.ensure_user_by_email("bob@example.com")
    own = credentials.project_id
    async with client(server, credentials) as api:
        assert await api.add_user_to_project(project_id=own, user_id=ada.id, roles=["member", "room_creator", "member"]) == {"ok": True}
        await api.add_user_to_project(project_id=own, user_id=bob.id, roles=["developer"])
        with pytest.raises(ConflictError, match="already a member"):
            await api.add_user_to_project(project_id=own, user_id=bob.id, roles=["member"])
        with pytest.raises(NotFoundError, match="user 'ghost' does not exist"):
            await api.add_user_to_project(project_id=own, user_id="ghost", roles=["member"])
        with pytest.raises(ValidationErrorResponse, match="at least one role"):
            await api.add_user_to_project(project_id=own, user_id="ghost", roles=[])
        assert await accounts.project_roles(own, ada.id) == ["member", "room_creator"]

        first = await api.get_users_in_project_page(project_id=own, page_size=2)
        assert [m.user.email for m in first.users] == ["ada@example.com", "bob@example.com"] and first.continuation_token
        rest = await api.get_users_in_project_page(project_id=own, page_size=2, continuation_token=first.continuation_token)
        assert [m.user.email for m in rest.users] == ["owner@localhost"] and rest.continuation_token is None
        filtered = await api.get_users_in_project_page(project_id=own, filter="BOB")
        assert [m.user.email for m in filtered.users] == ["bob@example.com"]
        assert (await api.get_users_in_project(own))["users"][0]["user"]["email"] == "ada@example.com"

        await api.update_project_user(project_id=own, user_id=bob.id, roles=["admin"])
        assert await accounts.project_roles(own, bob.id) == ["admin"]
        await api.remove_user_from_project(project_id=own, user_id=bob.id)
        assert await accounts.project_roles(own, bob.id) == []
        with pytest.raises(NotFoundError, match="not a member"):
            await api.remove_user_from_project(project_id=own, user_id=bob.id)
        with pytest.raises(NotFoundError, match="not a member"):
            await api.update_project_user(project_id=own, user_id=bob.id, roles=["member"])


async def test_unknown_roles_and_unknown_body_keys_are_refused_naming_the_field(server: Server, credentials: Credentials) -> None:
    own, base = credentials.project_id, f"http://127.0.0.1:{server.port}"
    headers = {"Authorization": f"Bearer {credentials.api_key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers) as http:
        answer = await http.post(f"/accounts/projects/{own}/users", json={"project_id": own, "user_id": "u", "roles": ["emperor"]})
        assert answer.status_code == 400 and "roles[0]" in answer.json()["error"]["message"]
        answer = await http.put("/accounts/profiles/me", json={"first_name": "A", "nickname": "a"})
        assert answer.status_code == 400 and "nickname" in answer.json()["error"]["message"]
        answer = await http.get(f"/accounts/projects/{own}/users", params={"view": "everything"})
        assert answer.status_code == 400 and "view" in answer.json()["error"]["message"]


async def test_profiles_global_and_per_project(server: Server, credentials: Credentials) -> None:
    accounts = server.control.accounts
    owner = accounts.owner_user()
    own = credentials.project_id
    async with client(server, credentials) as api:
        me = await api.get_user_profile("me")
        assert me == {"id": owner.id, "email": "owner@localhost", "first_name": "Local", "last_name": "Owner", "metadata": {}, "annotations": {}}
        await api.update_user_profile("me", first_name="Grace", metadata={"team": "core"})
        assert (await api.get_user_profile(owner.id))["first_name"] == "Grace"
        assert (await api.get_user_profile(owner.id))["last_name"] == "Owner"  # omitted: kept

        # the project profile: overrides over the user's own
        assert await api.get_user_profile("me", project_id=own, view="project") == {"id": owner.id, "email": "owner@localhost"}
        await api.update_user_profile("me", project_id=own, last_name="Hopper", annotations={"role": "lead"})
        assert await api.get_user_profile("me", project_id=own, view="project") == {
            "id": owner.id, "email": "owner@localhost", "last_name": "Hopper", "annotations": {"role": "lead"}
        }  # fmt: skip
        merged = await api.get_user_profile("me", project_id=own)
        assert (merged["first_name"], merged["last_name"], merged["metadata"], merged["annotations"]) == ("Grace", "Hopper", {"team": "core"}, {"role": "lead"})
        assert (await api.get_user_profile("me", project_id=own, view="user"))["last_name"] == "Owner"
        page = await api.get_users_in_project_page(project_id=own, view="project")
        assert (page.users[0].user.first_name, page.users[0].user.last_name) == (None, "Hopper")

        await api.update_user_profile("me", project_id=own, inherit=["last_name"])
        assert (await api.get_user_profile("me", project_id=own))["last_name"] == "Owner"
        with pytest.raises(ValidationErrorResponse, match="cannot be supplied and inherited"):
            await api.update_user_profile("me", project_id=own, annotations={}, inherit=["annotations"])

        with pytest.raises(NotFoundError, match="user 'ghost' does not exist"):
            await api.get_user_profile("ghost")
        with pytest.raises(NotFoundError, match="user 'ghost' does not exist"):
            await api.update_user_profile("ghost", first_name="x")
        stranger = await accounts.ensure_user_by_email("stranger@example.com")
        with pytest.raises(NotFoundError, match="not a member"):
            await api.get_user_profile(stranger.id, project_id=own)
        with pytest.raises(NotFoundError, match="not a member"):
            await api.update_user_profile(stranger.id, project_id=own, first_name="x")


async def test_settings_documents(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials) as api:
        assert await api.get_project_settings_document(own, "room_roles") is None
        assert await api.set_project_settings_document(own, "room_roles", {"roles": ["a"]}) == {"ok": True}
        await api.set_project_settings_document(own, "openai", {"model": "gpt"})
        assert await api.get_project_settings_document(own, "room_roles") == {"roles": ["a"]}
        await api.set_project_settings_document(own, "room_roles", {"roles": ["b"]})
        assert await api.get_project_settings_document(own, "room_roles") == {"roles": ["b"]}
        await api.delete_project_settings_document(own, "room_roles")
        assert await api.get_project_settings_document(own, "room_roles") is None
        assert await api.get_project_settings_document(own, "openai") == {"model": "gpt"}
        with pytest.raises(NotFoundError, match="not set"):
            await api.delete_project_settings_document(own, "room_roles")
        with pytest.raises(NotFoundError, match="project 'nope'"):
            await api.set_project_settings_document("nope", "otel", {})
        with pytest.raises(ValidationErrorResponse, match="unknown settings document 'colours'"):
            await api.call("set_project_settings_document", project_id=own, document="colours", document_body={})
        with pytest.raises(ValidationErrorResponse, match="must be a JSON object"):
            await api.call("set_project_settings_document", project_id=own, document="otel", document_body=[1])


async def test_sysadmin_users_and_projects_by_key(server: Server, credentials: Credentials) -> None:
    accounts = server.control.accounts
    for name in ("carol", "dave", "erin"):
        await accounts.ensure_user_by_email(f"{name}@example.com")
    async with client(server, credentials) as api:
        first = await api.search_sysadmin_users(page_size=2)
        second = await api.search_sysadmin_users(page_size=2, continuation_token=first.continuation_token)
        assert [u.email for u in first.users + second.users] == ["carol@example.com", "dave@example.com", "erin@example.com", "owner@localhost"]
        assert second.continuation_token is None
        assert [u.email for u in (await api.search_sysadmin_users(filter="DAV")).users] == ["dave@example.com"]
        dave = (await api.search_sysadmin_users(filter="dave")).users[0]
        assert await api.update_sysadmin_user_profile(user_id=dave.id, first_name="Dave", annotations={"k": "v"}) == {"ok": True}
        got = await api.get_sysadmin_user_profile(user_id=dave.id)
        assert (got.first_name, got.annotations, got.email) == ("Dave", {"k": "v"}, "dave@example.com")
        with pytest.raises(NotFoundError, match="user 'ghost'"):
            await api.get_sysadmin_user_profile(user_id="ghost")
        with pytest.raises(NotFoundError, match="user 'ghost'"):
            await api.update_sysadmin_user_profile(user_id="ghost", first_name="x")

        own = credentials.project_id
        project = await api.get_project_by_key(project_key=own)
        assert (project.id, project.project_key, project.owner_user_id) == (own, own, accounts.owner_user().id)
        other = await api.create_project(name="other")
        assert (await api.get_project_by_key(project_key=other.id)).name == "other"
        with pytest.raises(NotFoundError, match="no project has the key 'nope'"):
            await api.get_project_by_key(project_key="nope")


async def test_a_restart_keeps_members_profiles_and_documents(tmp_path, credentials: Credentials) -> None:
    own = credentials.project_id
    for round in range(2):
        server = Server(ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0))
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            async with client(server, credentials) as api:
                if round == 0:
                    user = await server.control.accounts.ensure_user_by_email("kept@example.com")
                    await api.add_user_to_project(project_id=own, user_id=user.id, roles=["member"])
                    await api.set_project_settings_document(own, "otel", {"on": True})
                    await api.update_user_profile(user.id, first_name="Kept")
                else:
                    members = (await api.get_users_in_project_page(project_id=own)).users
                    assert [(m.user.email, m.user.first_name) for m in members] == [("kept@example.com", "Kept"), ("owner@localhost", "Local")]
                    assert await api.get_project_settings_document(own, "otel") == {"on": True}
            nursery.cancel_scope.cancel()


async def test_a_service_account_acts_in_its_project_and_is_no_sysadmin(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials) as api:
        other = await api.create_project(name="other")
        account = await api.create_service_account(project_id=own, name="robot")
        key = await api.create_api_key(project_id=own, service_account_id=account.id, name="k", description="")
    base = f"http://127.0.0.1:{server.port}"
    async with Meshagent(base_url=base, token=key.value) as robot:
        assert [m.direct_roles for m in (await robot.get_users_in_project_page(project_id=own)).users] == [["admin"]]
        with pytest.raises(PermissionDeniedError, match="another project"):
            await robot.get_users_in_project_page(project_id=other.id)
        with pytest.raises(PermissionDeniedError, match="only the local server's owner is a sysadmin"):
            await robot.search_sysadmin_users()
        with pytest.raises(PermissionDeniedError, match="sysadmin"):
            await robot.get_sysadmin_user_profile(user_id=server.control.accounts.owner_user().id)
        with pytest.raises(NotFoundError, match="no user profile"):
            await robot.get_user_profile("me")
        with pytest.raises(PermissionDeniedError, match="its own profile only"):
            await robot.update_user_profile(server.control.accounts.owner_user().id, first_name="Mallory")
        assert (await robot.get_project_by_key(project_key=own)).id == own
        with pytest.raises(NotFoundError, match="no project has the key"):
            await robot.get_project_by_key(project_key=other.id)
