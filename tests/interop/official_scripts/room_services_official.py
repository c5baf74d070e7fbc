"""`room.services` with the official client against our server's room services (driven by
tests/interop/test_services_interop.py): `list()` (which
validates every spec and state strictly) until the local service runs, then `restart` of an
unknown id, of a service that cannot be restarted, and of the local one.

Environment (besides _official's): SERVICES_LOCAL_ID, SERVICES_IMAGE_ID — the ids the test
stored. Prints the observations as one JSON line (see _official.run).
"""

from __future__ import annotations

import asyncio
import os

from _official import connect, expect_error, observed, run, timed


def dump(result) -> dict:
    return {
        "services": [service.model_dump(mode="json") for service in result.services],
        "service_states": {key: state.model_dump(mode="json") for key, state in result.service_states.items()},
    }


async def main() -> dict:
    local_id = os.environ["SERVICES_LOCAL_ID"]
    image_id = os.environ["SERVICES_IMAGE_ID"]
    async with connect("alice") as room:
        result = await timed("list", room.services.list())
        observed["first"] = dump(result)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while loop.time() < deadline:
            result = await timed("list until running", room.services.list())
            state = result.service_states.get(local_id)
            if state is not None and state.state == "running" and any(event.reason == "Called" for event in state.events):
                break
            await asyncio.sleep(0.1)
        observed["running"] = dump(result)
        observed["restart_unknown"] = await expect_error("restart unknown", room.services.restart(service_id="no-such-service"))
        observed["restart_image"] = await expect_error("restart image", room.services.restart(service_id=image_id))
        observed["restart_local"] = await expect_error("restart local", room.services.restart(service_id=local_id))
        after = await timed("list after restart", room.services.list())
        observed["restart_count_after"] = after.service_states[local_id].restart_count
    return observed


run(main)
