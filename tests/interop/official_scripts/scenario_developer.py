"""Developer logs with the official client: one participant writes log/info/warning/error, another
reads them through the `developer.logs` stream."""

from __future__ import annotations

import asyncio

from _official import connect, observed, run, timed, wait_until


async def main() -> dict:
    async with connect("writer") as writer, connect("reader") as reader:
        received: list[dict] = []

        async def read():
            async for event in reader.developer.logs():
                received.append({"type": event.type, "data": event.data})

        task = asyncio.create_task(read())
        # The subscription is live once the server answered the stream; until we know, write
        # probes (bounded) until one arrives, then the real entries.
        subscribed = False
        for _ in range(200):
            await timed("probe log", writer.developer.log(type="probe", data={}))
            if await wait_until("probe arrives", lambda: bool(received), timeout=0.05):
                subscribed = True
                break
        observed["subscribed"] = subscribed
        start = len(received)

        def entries() -> list:
            return [e for e in received[start:] if e["type"] != "probe"]

        await timed("log", writer.developer.log(type="custom.event", data={"k": "v", "n": 1, "list": [1, 2]}))
        # info/warning/error are fire-and-forget in the official client (each its own task, sent
        # in order on one socket). Three rounds, each waited for: a server that starts the calls
        # of one read in an arbitrary order passes one round by chance, not three.
        arrived = True
        for round in range(3):
            writer.developer.info("an info line", extra={"user": "writer", "round": round})
            writer.developer.warning("careful")
            writer.developer.error("it broke", extra={"code": 7})
            arrived &= await wait_until("entries arrive", lambda: len(entries()) >= 1 + 3 * (round + 1))
        observed["all_arrived"] = arrived
        observed["entries"] = entries()

        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        # The room is fine after the reader stopped its stream.
        await timed("log after unsubscribe", writer.developer.log(type="after", data={}))
        toolkits = await timed("list_toolkits after", reader.agents.list_toolkits())
        observed["works_after"] = isinstance(toolkits, list)
    return observed


run(main)
