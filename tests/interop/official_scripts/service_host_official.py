"""The official 0.56 `ServiceHost`, called into rooms of our server by `room.call`; driven by
tests/interop/test_room_call_interop.py. Runs under the OFFICIAL interpreter only.

argv: port, webhook secret, marker directory. Serves `/agent` (an agent that, once in the
room, uploads `joined-<its name>.txt` to room storage, and on stop writes
`<marker dir>/stopped-<its name>`). Prints `ready` once listening; runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from meshagent.api.services import ServiceHost

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
port, secret, markers = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
host = ServiceHost(host="127.0.0.1", port=port, webhook_secret=secret, name="official-host")


@host.path("/agent", identity="official-agent")
class Agent:
    async def start(self, *, room) -> None:
        self.name = room.local_participant.get_attribute("name")
        room.messaging.on("message", lambda message: logging.info("message %s", message.type))
        await room.storage.upload(path=f"joined-{self.name}.txt", data=b"hello from the official host", overwrite=True)

    async def stop(self) -> None:
        (markers / f"stopped-{self.name}").write_text("stopped")


async def main() -> None:
    await host.start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await host.stop()


if __name__ == "__main__":
    import signal

    loop = asyncio.new_event_loop()
    task = loop.create_task(main())
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
