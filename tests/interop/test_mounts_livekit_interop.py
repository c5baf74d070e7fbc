"""`room.mounts` and `room.livekit` of the official 0.56 client against our server (a subprocess
with LiveKit credentials in its environment, and one without), side by side with our client;
and the official `mounts`, `livekit` and `services` sub-clients reading the same answers as ours
(`official_scripts/mounts_livekit_official.py`): what one accepts the other accepts with the
same values, what one refuses the other refuses with the same message and code."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

import jwt
import msgspec
import pytest

import meshagent_trio
from meshagent_core import EmptyContent, JsonContent, RoomException, TextContent
from meshagent_core.client.livekit import connection_info_from_answer
from meshagent_core.client.mounts import volumes_from_list_answer
from meshagent_core.client.rest import Meshagent
from meshagent_core.client.services import services_from_list_answer
from meshagent_core.rest.service_spec import service_json
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import ContainersGrant, LivekitGrant, MessagingGrant
from meshagent_trio.server.process import LocalServerProcess
from roomtest import mint

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).resolve().parent / "official_scripts" / "mounts_livekit_official.py"
LIVEKIT = {"LIVEKIT_URL": "wss://media.example.test", "LIVEKIT_API_KEY": "APIinterop", "LIVEKIT_API_SECRET": "i" * 40}
ROOM = "interop-mounts-livekit"


def run_official(python: str, mode: str, *, server: LocalServerProcess | None = None, cases: list | None = None) -> Any:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the official interpreter must not see our src/
    for variable in ("MESHAGENT_ROOM_URL", "MESHAGENT_PROFILE_API_URL", "MESHAGENT_ROOM", "MESHAGENT_TOKEN"):
        env.pop(variable, None)
    if server is not None:
        env.update({"MESHAGENT_API_URL": server.api_url, "MESHAGENT_API_KEY": server.api_key, "SCENARIO_ROOM": ROOM})
    done = subprocess.run(
        [python, str(SCRIPT), mode], input=json.dumps(cases or []), capture_output=True, text=True, timeout=120, env=env, cwd=SCRIPT.parent
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n{server.log() if server else ''}"
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def livekit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServerProcess]:
    with LocalServerProcess(tmp_path_factory.mktemp("livekit") / "data", env=LIVEKIT) as server:
        yield server


def claims(token: str) -> dict:
    decoded = jwt.decode(token, LIVEKIT["LIVEKIT_API_SECRET"], algorithms=["HS256"], issuer=LIVEKIT["LIVEKIT_API_KEY"])
    return {key: value for key, value in decoded.items() if key not in ("nbf", "exp")}


def error_of(error: RoomException) -> dict:
    return {"type": "RoomException", "code": error.code, "message": str(error)}


async def test_the_official_client_against_our_server(official_python: str, livekit_server: LocalServerProcess) -> None:
    server = livekit_server
    project = server.credentials.project_id
    async with Meshagent(base_url=server.api_url, token=server.api_key) as api:
        await api.create_room(project_id=project, name=ROOM)
        data = await api.create_room_volume(project_id=project, room=ROOM, name="data", description="d", metadata={"m": [1]}, max_size_mb=3)
        logs = await api.create_room_volume(project_id=project, room=ROOM, name="logs", annotations={"k": "v"})
    seen = run_official(official_python, "live", server=server)

    room_consumer = [{"kind": "room", "container_id": None}]  # as the official model dumps it
    expected_volumes = [
        {
            "id": data.id, "name": "data", "required": True, "description": "d", "metadata": {"m": [1]}, "annotations": {},
            "storage_class": "standard", "max_size_mb": 3, "consumers": room_consumer,
        },
        {
            "id": logs.id, "name": "logs", "required": True, "description": "", "metadata": {}, "annotations": {"k": "v"},
            "storage_class": "standard", "max_size_mb": None, "consumers": room_consumer,
        },
    ]  # fmt: skip
    assert seen["volumes"] == expected_volumes
    assert seen["mounts_containers_only"] == expected_volumes
    assert seen["mounts_without_containers"]["code"] == 1001

    assert seen["livekit_main"]["url"] == seen["livekit_team"]["url"] == LIVEKIT["LIVEKIT_URL"]
    main, team = claims(seen["livekit_main"]["token"]), claims(seen["livekit_team"]["token"])
    dave = seen["livekit_main"]["participant_id"]
    assert (main["sub"], main["name"], main["video"]["room"], main["video"]["roomJoin"]) == (dave, "dave", ROOM, True)
    assert (team["sub"], team["video"]["room"]) == (dave, f"{ROOM}:team")
    assert seen["livekit_outside_grant"]["code"] == seen["livekit_without_grant"]["code"] == 1001

    # our client, same room, same grants: the same answers
    url = server.room_url(ROOM)
    async with meshagent_trio.connect(url, mint(server.credentials, ROOM, name="alice")) as room:
        ours = [msgspec.to_builtins(volume) for volume in await room.mounts.list()]
        assert [{**v, "consumers": [{"container_id": None, **c} for c in v["consumers"]]} for v in ours] == seen["volumes"]
    async with meshagent_trio.connect(url, mint(server.credentials, ROOM, name="bob", scope=ApiScope(messaging=MessagingGrant()))) as room:
        with pytest.raises(RoomException) as refused:
            await room.mounts.list()
        assert error_of(refused.value) == seen["mounts_without_containers"]
    async with meshagent_trio.connect(url, mint(server.credentials, ROOM, name="dave", scope=ApiScope(livekit=LivekitGrant(breakout_rooms=["team"])))) as room:
        ours_main = claims((await room.livekit.get_connection_info()).token)
        ours_team = claims((await room.livekit.get_connection_info(breakout_room="team")).token)
        assert ours_main["sub"] == ours_team["sub"] == room.local_participant.id  # each participant its own identity
        assert _but_identity(ours_main) == _but_identity(main) and _but_identity(ours_team) == _but_identity(team)
        with pytest.raises(RoomException) as refused:
            await room.livekit.get_connection_info(breakout_room="other")
        assert error_of(refused.value) == seen["livekit_outside_grant"]
    async with meshagent_trio.connect(url, mint(server.credentials, ROOM, name="carol", scope=ApiScope(containers=ContainersGrant()))) as room:
        assert len(await room.mounts.list()) == 2


def _but_identity(claims: dict) -> dict:
    return {key: value for key, value in claims.items() if key != "sub"}


async def test_the_official_client_on_a_server_without_livekit(official_python: str, tmp_path: Path) -> None:
    with LocalServerProcess(tmp_path / "data", env=dict.fromkeys(LIVEKIT, "")) as server:
        seen = run_official(official_python, "unconfigured", server=server)
        async with meshagent_trio.connect(server.room_url(ROOM), mint(server.credentials, ROOM)) as room:
            with pytest.raises(RoomException) as missing:
                await room.livekit.get_connection_info()
    expected = "livekit is not configured on this server: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET"
    assert seen["livekit_unconfigured"] == error_of(missing.value) == {"type": "RoomException", "code": 1007, "message": expected}


# --- the same answers read by both clients ------------------------------------------------------

VOLUME = {"id": "v", "name": "n", "required": False, "consumers": [{"kind": "container", "container_id": "c"}, {"kind": "room"}]}
SPEC = {"version": "v1", "kind": "Service", "id": "s1", "metadata": {"name": "w"}, "container": {"image": "img:1"}, "ports": [{"num": 80}]}
STATE = {"service_id": "s1", "state": "running", "status": {"ports": [{"num": "*", "liveness_status": "ready"}]}, "events": []}


def spec_json(**changes: Any) -> str:
    return json.dumps({**SPEC, **changes})


def content(value: Any) -> dict:
    return {"type": "json", "json": value}


CASES: list[tuple[str, dict]] = [
    # mounts
    ("mounts", content({"volumes": [VOLUME]})),
    ("mounts", content({})),
    ("mounts", content({"volumes": [], "extra": 1})),
    # lax values (pydantic also takes "yes" and "on" for a bool; msgspec only "true"/"false", 0/1)
    ("mounts", content({"volumes": [{**VOLUME, "required": "true", "max_size_mb": "7", "storage_class": "juice"}]})),
    ("mounts", content({"volumes": [{**VOLUME, "required": 1, "max_size_mb": 7.0}]})),
    ("mounts", content({"volumes": [{**VOLUME, "max_size_mb": 7.5}]})),
    ("mounts", content({"volumes": [{**VOLUME, "mount_path": "/x"}]})),
    ("mounts", content({"volumes": [{**VOLUME, "consumers": [{"kind": "room", "container_id": "c"}]}]})),
    ("mounts", content({"volumes": [{**VOLUME, "consumers": [{"kind": "container"}]}]})),
    ("mounts", content({"volumes": [{**VOLUME, "storage_class": "ssd"}]})),
    ("mounts", content({"volumes": [{**VOLUME, "metadata": {"a": {"b": [1, None]}}, "annotations": {"x": "y"}}]})),
    ("mounts", content({"volumes": None})),
    ("mounts", content([])),
    ("mounts", {"type": "empty"}),
    ("mounts", {"type": "text", "text": "{}"}),
    # livekit
    ("livekit", content({"url": "wss://u", "token": "t", "more": 1})),
    ("livekit", content({"url": "wss://u"})),
    ("livekit", content({"token": "t"})),
    ("livekit", content({"url": "wss://u", "token": 5})),
    ("livekit", content("wss://u")),
    ("livekit", {"type": "empty"}),
    # services
    ("services", content({"services_json": [spec_json()], "service_states": [STATE]})),
    ("services", content({})),
    ("services", content({"services_json": [], "service_states": [{**STATE, "restart_count": "3", "started_at": 5}], "x": 1})),
    ("services", content({"services_json": [spec_json(extra=1)]})),
    ("services", content({"services_json": [spec_json(kind="Other")]})),
    ("services", content({"services_json": [spec_json(ports=[{"num": 8078}])]})),
    ("services", content({"services_json": ["not json"]})),
    ("services", content({"services_json": [SPEC]})),
    ("services", content({"service_states": [{"state": "running"}]})),
    ("services", content({"service_states": [{**STATE, "status": {"ports": [{"num": 0}]}}]})),
    ("services", content({"service_states": [{**STATE, "status": {"ports": [{"num": "8080"}]}}]})),
    ("services", content({"service_states": [{**STATE, "events": [{"type": "t", "reason": "r", "message": "m", "first_timestamp": 1, "last_timestamp": 2}]}]})),
    ("services", content({"service_states": {"s1": STATE}})),
    ("services", {"type": "text", "text": "x"}),
]


def ours(op: str, data: dict) -> dict:
    response = {"json": lambda: JsonContent(json=data.get("json")), "empty": EmptyContent, "text": lambda: TextContent(text=data["text"])}[data["type"]]()
    try:
        if op == "mounts":
            volumes = [msgspec.to_builtins(volume) for volume in volumes_from_list_answer(response)]
            return {"ok": [{**v, "consumers": [{"container_id": None, **c} for c in v["consumers"]]} for v in volumes]}
        if op == "livekit":
            return {"ok": msgspec.to_builtins(connection_info_from_answer(response))}
        result = services_from_list_answer(response)
        return {
            "ok": {
                "services": [service_json(spec) for spec in result.services],
                "service_states": {key: msgspec.to_builtins(state) for key, state in result.service_states.items()},
            }
        }
    except RoomException as error:
        return {"error": [str(error), error.code]}


def test_both_clients_read_answers_alike(official_python: str) -> None:
    official = run_official(official_python, "answers", cases=[{"op": op, "content": data} for op, data in CASES])
    assert len(official) == len(CASES)
    mismatches = [(case, theirs, ours(*case)) for case, theirs in zip(CASES, official) if ours(*case) != theirs]
    assert not mismatches, json.dumps(mismatches, indent=1, default=str)[:6000]
    refused = sum("error" in outcome for outcome in official)
    assert 0 < refused < len(CASES)  # the cases exercise both sides
