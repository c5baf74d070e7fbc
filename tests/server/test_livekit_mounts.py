"""The `livekit` and `mounts` toolkits in the in-process server, over real sockets: LiveKit settings
read from the environment at each call, LiveKit room names per project, the answer when
livekit-api is missing, and the raw answers of `mounts.list` and `livekit.connect`."""

from __future__ import annotations

import sys

import jwt
import pytest

from meshagent_core import JsonContent, RoomException
from meshagent_core.client.rest import Meshagent
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.toolkits.livekit import livekit_room_name
from roomtest import mint, room_url

LIVEKIT = {"LIVEKIT_URL": "ws://127.0.0.1:7880", "LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": "a-secret-of-32-characters-or-so!"}


@pytest.fixture
def livekit_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in LIVEKIT.items():
        monkeypatch.setenv(name, value)
    return LIVEKIT


async def connect_answer(connection: RoomConnection, breakout_room: str | None = None) -> dict:
    answer = await connection.invoke("livekit", "connect", {"breakout_room": breakout_room})
    assert isinstance(answer, JsonContent) and set(answer.json) == {"url", "token"}
    return jwt.decode(answer.json["token"], LIVEKIT["LIVEKIT_API_SECRET"], algorithms=["HS256"], issuer=LIVEKIT["LIVEKIT_API_KEY"])


async def test_settings_are_read_at_each_call(server: Server, credentials: Credentials, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LIVEKIT:
        monkeypatch.delenv(name, raising=False)
    async with RoomConnection.open(room_url(server), mint(credentials, name="dora")) as connection:
        with pytest.raises(RoomException, match="livekit is not configured on this server") as missing:
            await connection.invoke("livekit", "connect", {"breakout_room": None})
        assert missing.value.code == 1007
        monkeypatch.setenv("LIVEKIT_URL", LIVEKIT["LIVEKIT_URL"])
        monkeypatch.setenv("LIVEKIT_API_KEY", LIVEKIT["LIVEKIT_API_KEY"])
        with pytest.raises(RoomException) as still_missing:  # the secret is still missing
            await connection.invoke("livekit", "connect", {"breakout_room": None})
        assert still_missing.value.code == 1007
        monkeypatch.setenv("LIVEKIT_API_SECRET", LIVEKIT["LIVEKIT_API_SECRET"])
        claims = await connect_answer(connection)
        assert (claims["sub"], claims["name"], claims["video"]["room"]) == (connection.participant_id, "dora", "test-room")
        # arguments left out altogether: the main session
        answer = await connection.invoke("livekit", "connect", None)
        assert isinstance(answer, JsonContent) and answer.json["url"] == LIVEKIT["LIVEKIT_URL"]
        for bad in ({"breakout_room": 5}, {"breakout_room": "x" * 257}):
            with pytest.raises(RoomException) as invalid:
                await connection.invoke("livekit", "connect", bad)
            assert invalid.value.code == 1002


async def test_rooms_of_another_project_get_their_own_livekit_rooms(server: Server, credentials: Credentials, livekit_env: dict) -> None:
    async with Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=credentials.api_key) as api:
        other = await api.create_project(name="other")
    # the server's own key signs for every project; the token's project is the room's project
    other_credentials = Credentials(other.id, credentials.key_id, credentials.secret)
    async with RoomConnection.open(room_url(server), mint(other_credentials, name="erin")) as connection:
        assert (await connect_answer(connection))["video"]["room"] == f"{other.id}/test-room"
        assert (await connect_answer(connection, "b"))["video"]["room"] == f"{other.id}/test-room:b"
    assert livekit_room_name(server.room("test-room")) == "test-room"
    assert livekit_room_name(server.room("test-room"), "b") == "test-room:b"


async def test_without_livekit_api_the_answer_says_what_to_install(
    server: Server, credentials: Credentials, livekit_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "livekit", None)  # `import livekit` now fails, as when it is not installed
    monkeypatch.setitem(sys.modules, "livekit.api", None)
    async with RoomConnection.open(room_url(server), mint(credentials)) as connection:
        with pytest.raises(RoomException, match="install the livekit-api package") as missing:
            await connection.invoke("livekit", "connect", {"breakout_room": None})
        assert missing.value.code == 1007


async def test_mounts_list_answers_exactly_the_official_keys(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=credentials.api_key) as api:
        await api.create_room(project_id=own, name="vault")
        made = await api.create_room_volume(project_id=own, room="vault", name="data", description="d", metadata={"n": 1.5}, annotations={"a": "b"})
    async with RoomConnection.open(room_url(server, "vault"), mint(credentials, "vault")) as connection:
        for arguments in ({}, None, {"ignored": 1}):
            answer = await connection.invoke("mounts", "list", arguments)
            assert answer == JsonContent(
                json={
                    "volumes": [
                        {
                            "id": made.id, "name": "data", "required": True, "description": "d", "metadata": {"n": 1.5},
                            "annotations": {"a": "b"}, "storage_class": "standard", "max_size_mb": None, "consumers": [{"kind": "room"}],
                        }
                    ]
                }
            )  # fmt: skip
        with pytest.raises(RoomException) as invalid:
            await connection.invoke("mounts", "list", "text")
        assert invalid.value.code == 1002
