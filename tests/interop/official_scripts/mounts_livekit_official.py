"""The official 0.56 `room.mounts`, `room.livekit` and `room.services` (runs under the OFFICIAL
interpreter, never ours).

`python mounts_livekit_official.py live`: against our server (MESHAGENT_API_URL,
MESHAGENT_API_KEY, SCENARIO_ROOM as in `_official.py`; the test made the room's volumes through
REST first): `mounts.list` with and without the `containers` grant, `livekit.get_connection_info`
for the main session and breakout rooms, with a limited grant and without one. One JSON line of
observations. `… unconfigured`: `livekit.get_connection_info` on a server without LiveKit.

`python mounts_livekit_official.py answers`: reads a JSON list of cases from stdin, each
`{"op": "mounts" | "livekit" | "services", "content": <content>}` where content is
`{"type": "json", "json": ...}`, `{"type": "empty"}` or `{"type": "text", "text": ...}`; hands
each answer to the official sub-client (its room's `invoke` returns it) and prints one JSON
line: per case `{"ok": <what the sub-client returned, as JSON>}` or `{"error": [message, code]}`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from meshagent.api import ApiScope, RoomException
from meshagent.api.messaging import EmptyContent, JsonContent, TextContent
from meshagent.api.participant_token import ContainersGrant, LivekitGrant, MessagingGrant
from meshagent.api.room_server_client import LivekitClient, MountsClient, ServicesClient


def _volumes(volumes: list[Any]) -> list[dict[str, Any]]:
    return [volume.model_dump(mode="json") for volume in volumes]


async def live() -> dict:
    from _official import connect, expect_error, observed, timed

    observed["volumes"] = _volumes(await timed("mounts.list", _list_mounts(connect("alice"))))
    observed["mounts_without_containers"] = await expect_error(
        "mounts.list without containers", _list_mounts(connect("bob", scope=ApiScope(messaging=MessagingGrant())))
    )
    observed["mounts_containers_only"] = _volumes(
        await timed("mounts.list with containers only", _list_mounts(connect("carol", scope=ApiScope(containers=ContainersGrant()))))
    )
    async with connect("dave", scope=ApiScope(livekit=LivekitGrant(breakout_rooms=["team"]))) as room:
        main = await timed("livekit main", room.livekit.get_connection_info())
        team = await timed("livekit team", room.livekit.get_connection_info(breakout_room="team"))
        observed["livekit_main"] = {"url": main.url, "token": main.token, "participant_id": room.local_participant.id}
        observed["livekit_team"] = {"url": team.url, "token": team.token}
        observed["livekit_outside_grant"] = await expect_error("livekit other", room.livekit.get_connection_info(breakout_room="other"))
    async with connect("erin", scope=ApiScope(messaging=MessagingGrant())) as room:
        observed["livekit_without_grant"] = await expect_error("livekit without grant", room.livekit.get_connection_info())
    return observed


async def unconfigured() -> dict:
    from _official import connect, expect_error, observed

    async with connect("frank") as room:
        observed["livekit_unconfigured"] = await expect_error("livekit unconfigured", room.livekit.get_connection_info())
    return observed


async def _list_mounts(connection: Any) -> list[Any]:
    async with connection as room:
        return await room.mounts.list()


class _AnsweringRoom:
    """Stands in for a RoomClient: every `invoke` is answered with one prepared content."""

    def __init__(self, content: Any) -> None:
        self.content = content

    async def invoke(self, **_: Any) -> Any:
        return self.content


def _content(data: dict[str, Any]) -> Any:
    if data["type"] == "json":
        return JsonContent(json=data["json"])
    if data["type"] == "text":
        return TextContent(text=data["text"])
    return EmptyContent()


async def _answer(case: dict[str, Any]) -> dict[str, Any]:
    room = _AnsweringRoom(_content(case["content"]))
    try:
        if case["op"] == "mounts":
            return {"ok": _volumes(await MountsClient(room=room).list())}
        if case["op"] == "livekit":
            info = await LivekitClient(room=room).get_connection_info(breakout_room=None)
            return {"ok": {"url": info.url, "token": info.token}}
        result = await ServicesClient(room=room).list()
        return {
            "ok": {
                "services": [service.model_dump(mode="json") for service in result.services],
                "service_states": {key: state.model_dump(mode="json") for key, state in result.service_states.items()},
            }
        }
    except RoomException as error:
        return {"error": [str(error), int(error.code) if error.code is not None else None]}


async def answers() -> list[dict[str, Any]]:
    return [await _answer(case) for case in json.loads(sys.stdin.read())]


if __name__ == "__main__":
    if sys.argv[1:] in (["live"], ["unconfigured"]):
        from _official import run

        run(live if sys.argv[1] == "live" else unconfigured)
    else:
        print(json.dumps(asyncio.run(asyncio.wait_for(answers(), 60))), flush=True)
