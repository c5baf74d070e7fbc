"""Connect with the official RoomClient; report the room name, session id and local participant.
Also: tokens our server must refuse (another room, a wrong key) fail the official connect."""

from __future__ import annotations

import os

from _official import connect, error_info, mint, observed, room_name, run, step, timed

from meshagent.api import RoomClient, WebSocketClientProtocol
from meshagent.api.urls import websocket_room_url


async def refused(name: str, token: str) -> dict:
    step(name)
    client = RoomClient(
        protocol_factory=WebSocketClientProtocol(url=websocket_room_url(room_name=room_name()), token=token).create_factory(),
        reconnect_timeout=0,
    )
    try:
        async with client:
            return {"connected": True}
    except Exception as error:  # noqa: BLE001
        return error_info(error)


async def main() -> dict:
    room = room_name()
    step("connect")
    async with connect("alice") as client:
        observed["room_url"] = websocket_room_url(room_name=room)
        observed["room_name"] = client.room_name
        observed["session_id"] = client.session_id
        observed["server_room_url"] = client.room_url
        observed["participant_id"] = client.local_participant.id
        observed["attributes"] = client.local_participant.attributes
        observed["is_connected"] = client.is_connected
        step("second participant")
        async with connect("bob") as other:
            observed["second_participant_id"] = other.local_participant.id
            observed["second_session_id"] = other.session_id
        # The connection still works after another participant came and went.
        await timed("developer.log", client.developer.log(type="still-here", data={}))
        observed["works_after"] = True
    observed["closed_cleanly"] = True

    observed["other_room_token"] = await refused("token for another room", mint("some-other-room", "mallory"))
    # Same key id and project, another secret (made by the test).
    wrong_key = os.environ["SCENARIO_WRONG_API_KEY"]
    observed["bad_key_token"] = await refused("token signed with a wrong secret", mint(room, "mallory", api_key=wrong_key))
    return observed


run(main)
