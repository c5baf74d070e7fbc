"""Service accounts, API keys, participant tokens and `whoami` (protocol/rest.md §14, §3) with the
official `Meshagent` client against our server, and the official `RoomClient` joining with
tokens signed by a key made through REST, before and after the key is deleted.

Run by tests/interop/test_rest_keys_interop.py under the OFFICIAL interpreter (see
`_official.py`); prints one JSON line of observations. Environment: MESHAGENT_API_URL,
MESHAGENT_API_KEY (the server's key: the owner), SCENARIO_ROOM.
"""

from __future__ import annotations

import asyncio
import os

from _official import STEP_TIMEOUT, connect, error_info, expect_error, mint, observed, room_name, run, step, timed

from meshagent.api import Meshagent
from meshagent.api.keys import parse_api_key


def dump(value):
    return value.model_dump(mode="json", exclude_none=True) if hasattr(value, "model_dump") else value


async def join(name: str, token: str, room: str | None = None) -> dict:
    """{"joined": True} if the official RoomClient gets in with `token`, else its error."""
    step(name)
    try:
        await asyncio.wait_for(_join(token, room), STEP_TIMEOUT)
    except Exception as error:  # noqa: BLE001 - the refusal is what we observe
        return error_info(error)
    return {"joined": True}


async def _join(token: str, room: str | None) -> None:
    async with connect("joiner", token=token, room=room):
        pass


async def main() -> dict:
    url, owner_key = os.environ["MESHAGENT_API_URL"], os.environ["MESHAGENT_API_KEY"]
    own, room = parse_api_key(owner_key).project_id, room_name()
    async with Meshagent(base_url=url, token=owner_key) as owner:
        observed["whoami_owner"] = dump(await timed("whoami owner", owner.whoami()))
        other = await timed("create_project", owner.create_project(name="keys-other"))

        # --- service accounts
        worker = await timed(
            "create_service_account",
            owner.create_service_account(own, name="worker", key="wk", display_name="Worker", description="d", metadata={"a": 1}, annotations={"b": "c"}),
        )
        observed["created_account"] = dump(worker)
        await timed("create second", owner.create_service_account(own, name="second"))
        observed["duplicate_account"] = await expect_error("duplicate", owner.create_service_account(own, name="worker"))
        observed["got_account"] = dump(await timed("get_service_account", owner.get_service_account(own, worker.id)))
        observed["got_by_name"] = dump(await timed("get_service_account_by_name", owner.get_service_account_by_name(own, "worker")))
        observed["update_answer"] = await timed(
            "update_service_account", owner.update_service_account(own, worker.id, name="builder", display_name="Builder", description="new")
        )
        observed["updated_account"] = dump(await timed("get updated", owner.get_service_account(own, worker.id)))
        first = await timed("list page 1", owner.list_service_accounts(own, page_size=1))
        second = await timed("list page 2", owner.list_service_accounts(own, page_size=1, continuation_token=first.continuation_token))
        observed["account_pages"] = [dump(first), dump(second)]
        observed["unknown_account"] = await expect_error("unknown account", owner.get_service_account(own, "nope"))

        # --- API keys
        key = await timed("create_api_key", owner.create_api_key(own, "ci", "for CI", worker.id))
        observed["created_key"] = dump(key)
        parsed = parse_api_key(key.value)
        observed["parsed_key"] = {"id": parsed.id, "project_id": parsed.project_id}
        observed["listed_keys"] = dump(await timed("list_api_keys", owner.list_api_keys(own, worker.id)))
        observed["revoke_by_msid"] = await expect_error("revoke_api_keys_by_msid", owner.revoke_api_keys_by_msid(own, worker.id, "some-msid"))

        # --- participant tokens
        minted = await timed("mint short form", owner.mint_participant_token(own, name="ann", room_name=room, role="agent", api={"messaging": {}}))
        validated = await timed("validate", owner.validate_participant_token(token=minted))
        observed["validated_owner_token"] = validated.to_json()
        observed["validate_garbage"] = await expect_error("validate garbage", owner.validate_participant_token(token="not-a-jwt"))

        async with Meshagent(base_url=url, token=key.value) as bot:
            observed["whoami_key"] = dump(await timed("whoami key", bot.whoami()))
            observed["key_in_other_project"] = await expect_error("other project", bot.list_service_accounts(other.id))
            grants = [{"name": "room", "scope": room}, {"name": "role", "scope": "agent"}, {"name": "api", "scope": {"messaging": {}}}]
            by_key = await timed("mint with key", bot.mint_participant_token(own, email="bob@example.com", grants=grants))
            observed["validated_key_token"] = (await timed("validate key token", bot.validate_participant_token(token=by_key))).to_json()

            # a participant token as the REST bearer
            async with Meshagent(base_url=url, token=by_key) as participant:
                observed["whoami_participant"] = dump(await timed("whoami participant", participant.whoami()))
                observed["participant_list_projects"] = await expect_error("participant list_projects", participant.list_projects())

            # tokens signed locally with the new key join; after deletion they do not
            signed = mint(room, "keyed", api_key=key.value)
            async with connect("host", room=room):
                observed["join_with_key"] = await join("join with key", signed)
                observed["join_with_minted"] = await join("join with minted", by_key)
                await timed("delete_api_key", owner.delete_api_key(own, key.id, worker.id))
                observed["join_after_delete"] = await join("join after delete", signed)
                observed["rest_after_delete"] = await expect_error("rest after delete", bot.whoami())
                observed["validate_after_delete"] = await expect_error("validate after delete", owner.validate_participant_token(token=by_key))
        observed["listed_after_delete"] = dump(await timed("list after delete", owner.list_api_keys(own, worker.id)))
        observed["delete_key_again"] = await expect_error("delete key again", owner.delete_api_key(own, key.id, worker.id))

        # --- a room of another project
        await timed("create room in other", owner.create_room(project_id=other.id, name=room))
        info = await timed("connect_room other", owner.connect_room(project_id=other.id, room=room))
        observed["other_connection"] = {"project_id": info.project_id, "room_name": info.room_name, "same_project": info.project_id == other.id}
        observed["join_other_project"] = await join("join other project", info.jwt)

        await timed("delete_service_account", owner.delete_service_account(own, worker.id))
        observed["deleted_account"] = await expect_error("get deleted", owner.get_service_account(own, worker.id))
    return observed


run(main)
