"""`room.livekit` against the real local server, on Trio and on AnyIO (asyncio and Trio): a server
configured with LiveKit credentials mints tokens that LiveKit would accept (checked with pyjwt
and with livekit-api's own verifier), the `livekit` grant restricts breakout rooms, a server
without LiveKit says so; and the strict reading of answers (code 1100)."""

from __future__ import annotations

import time
from typing import Iterator

import jwt
import pytest

from meshagent_core import EmptyContent, JsonContent, RoomException, TextContent
from meshagent_core.client.livekit import LivekitConnectionInfo, connection_info_from_answer
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import LivekitGrant, MessagingGrant
from meshagent_trio.server import LocalServerProcess
from roomtest import mint

pytestmark = pytest.mark.anyio

LIVEKIT = {"LIVEKIT_URL": "wss://media.example.test", "LIVEKIT_API_KEY": "APIkey123", "LIVEKIT_API_SECRET": "s" * 40}


@pytest.fixture(scope="module")
def livekit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServerProcess]:
    with LocalServerProcess(tmp_path_factory.mktemp("livekit") / "data", env=LIVEKIT) as server:
        yield server


@pytest.fixture(scope="module")
def unconfigured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServerProcess]:
    """LiveKit variables set but empty (whatever the caller's environment holds): not configured."""
    with LocalServerProcess(tmp_path_factory.mktemp("no-livekit") / "data", env=dict.fromkeys(LIVEKIT, "")) as server:
        yield server


def _room(name: str, client_variant: tuple[str, str]) -> str:
    return f"livekit-{name}-{'-'.join(client_variant)}"


def claims(info: LivekitConnectionInfo) -> dict:
    """The token's claims, verified as LiveKit verifies them (HS256 with the API secret, issued by the key)."""
    return jwt.decode(info.token, LIVEKIT["LIVEKIT_API_SECRET"], algorithms=["HS256"], issuer=LIVEKIT["LIVEKIT_API_KEY"])


async def test_connection_info_for_the_room_and_its_breakout_rooms(client_module, client_variant, livekit_server) -> None:
    room_name = _room("join", client_variant)
    token = mint(livekit_server.credentials, room_name, name="alice")
    async with client_module.connect(livekit_server.room_url(room_name), token) as room:
        info = await room.livekit.get_connection_info()
        assert isinstance(info, LivekitConnectionInfo)
        assert info.url == LIVEKIT["LIVEKIT_URL"]
        main = claims(info)
        assert main["sub"] == room.local_participant.id and main["name"] == "alice"
        assert main["video"]["roomJoin"] is True and main["video"]["room"] == room_name
        assert main["video"]["canPublish"] is True and main["video"]["canSubscribe"] is True
        assert main["nbf"] <= time.time() + 5 and main["exp"] > time.time() + 3600

        breakout = claims(await room.livekit.get_connection_info(breakout_room="side"))
        assert breakout["video"]["room"] == f"{room_name}:side" and breakout["sub"] == room.local_participant.id

        from livekit import api  # LiveKit's own verifier accepts the token

        verified = api.TokenVerifier(LIVEKIT["LIVEKIT_API_KEY"], LIVEKIT["LIVEKIT_API_SECRET"]).verify(info.token)
        assert (verified.identity, verified.video.room, verified.video.room_join) == (room.local_participant.id, room_name, True)
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(info.token, "another secret" * 3, algorithms=["HS256"])

        with pytest.raises(RoomException) as empty_name:
            await room.livekit.get_connection_info(breakout_room="")
        assert empty_name.value.code == 1002


async def test_the_livekit_grant(client_module, client_variant, livekit_server) -> None:
    room_name = _room("grant", client_variant)
    url = livekit_server.room_url(room_name)
    limited = ApiScope(livekit=LivekitGrant(breakout_rooms=["team"]))
    async with client_module.connect(url, mint(livekit_server.credentials, room_name, name="bob", scope=limited)) as room:
        assert claims(await room.livekit.get_connection_info())["video"]["room"] == room_name  # the main session: any holder
        assert claims(await room.livekit.get_connection_info(breakout_room="team"))["video"]["room"] == f"{room_name}:team"
        for outside in ("other", "Team", "team2"):
            with pytest.raises(RoomException) as refused:
                await room.livekit.get_connection_info(breakout_room=outside)
            assert refused.value.code == 1001, outside

    no_livekit = ApiScope(messaging=MessagingGrant())
    async with client_module.connect(url, mint(livekit_server.credentials, room_name, name="carol", scope=no_livekit)) as room:
        for breakout_room in (None, "team"):
            with pytest.raises(RoomException) as refused:
                await room.livekit.get_connection_info(breakout_room=breakout_room)
            assert refused.value.code == 1001


async def test_a_server_without_livekit_says_so(client_module, client_variant, unconfigured_server) -> None:
    room_name = _room("unconfigured", client_variant)
    async with client_module.connect(unconfigured_server.room_url(room_name), mint(unconfigured_server.credentials, room_name)) as room:
        with pytest.raises(RoomException) as missing:
            await room.livekit.get_connection_info()
        assert missing.value.code == 1007
        assert str(missing.value) == "livekit is not configured on this server: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET"


# --- reading answers (no server) ----------------------------------------------------------------


def test_an_answer_is_read_and_extra_keys_are_ignored() -> None:
    read = connection_info_from_answer(JsonContent(json={"url": "wss://x", "token": "t", "room": "ignored"}))
    assert read == LivekitConnectionInfo(url="wss://x", token="t")


@pytest.mark.parametrize(
    "response",
    [
        EmptyContent(),
        TextContent(text="t"),
        JsonContent(json=["wss://x", "t"]),
        JsonContent(json={"url": "wss://x"}),
        JsonContent(json={"token": "t"}),
        JsonContent(json={"url": "wss://x", "token": None}),
        JsonContent(json={"url": 5, "token": "t"}),
    ],
)
def test_what_the_official_client_refuses_is_code_1100(response: object) -> None:
    with pytest.raises(RoomException) as error:
        connection_info_from_answer(response)
    assert (str(error.value), error.value.code) == ("unexpected return type from livekit.connect", 1100)
