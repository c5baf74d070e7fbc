"""A room service written with our `ServiceHost`, as a user would write one; run by the server as
a local command in tests/server/test_room_services_host.py. The port comes from MESHAGENT_PORT,
the webhook secret from MESHAGENT_WEBHOOK_SECRET (both set by the server). The agent at
`/greeter` writes `greeting-<its name>.txt` to room storage when it joins, and
`stopped-<its name>.txt` into the directory named by argv[1] when it stops."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import trio

from meshagent_trio import ServiceHost

markers = Path(sys.argv[1])
host = ServiceHost(host="127.0.0.1", name="greeter-service", webhook_secret=os.environ["MESHAGENT_WEBHOOK_SECRET"])


@host.path("/greeter", identity="greeter")
class Greeter:
    async def start(self, *, room) -> None:
        self.name = room.local_participant.get_attribute("name")
        await room.storage.upload(path=f"greeting-{self.name}.txt", data=b"hello", overwrite=True)

    async def stop(self) -> None:
        (markers / f"stopped-{self.name}.txt").write_text("stopped")


trio.run(host.run)
