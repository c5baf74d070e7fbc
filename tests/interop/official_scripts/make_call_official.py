"""The official 0.56 `room.agents.make_call` against our server; driven by
tests/interop/test_room_call_interop.py. Runs under the OFFICIAL interpreter only.

argv: room URL, participant token, then one or more target URLs. Prints one JSON line: for each
target, {"ok": true} or {"error": text, "code": code}.
"""

from __future__ import annotations

import asyncio
import json
import sys

from meshagent.api import RoomClient, RoomException, WebSocketClientProtocol


async def main() -> None:
    room_url, token, *targets = sys.argv[1:]
    results = []
    client = RoomClient(protocol_factory=WebSocketClientProtocol(url=room_url, token=token).create_factory(), reconnect_timeout=0)
    async with client:
        for target in targets:
            try:
                await asyncio.wait_for(client.agents.make_call(name="called-by-official", url=target, arguments={"from": "official"}), 30)
                results.append({"ok": True})
            except RoomException as error:
                results.append({"error": str(error), "code": error.code})
    print(json.dumps(results), flush=True)


asyncio.run(main())
