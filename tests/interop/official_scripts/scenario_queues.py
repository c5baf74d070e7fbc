"""Queues with the official client: send, receive (waiting and not), list, drain, close, and the
error answers for a missing queue."""

from __future__ import annotations

import asyncio

from _official import connect, expect_error, observed, run, timed


async def main() -> dict:
    async with connect("producer") as producer, connect("consumer") as consumer:
        for n in range(3):
            await timed(f"send {n}", producer.queues.send(name="jobs", message={"n": n, "text": f"job {n}", "nested": {"ok": True}}))
        queues = await timed("list", consumer.queues.list())
        observed["list_after_send"] = sorted(({"name": q.name, "size": q.size} for q in queues), key=lambda q: q["name"])
        observed["received"] = [await timed(f"receive {n}", consumer.queues.receive(name="jobs", wait=True)) for n in range(3)]
        observed["receive_empty_nowait"] = await timed("receive wait=false on empty", consumer.queues.receive(name="jobs", wait=False))

        # A waiting receive is answered by a send that happens after it started.
        async def later():
            await asyncio.sleep(0.3)
            await producer.queues.send(name="later", message={"late": True})

        sender = asyncio.create_task(later())
        observed["receive_waited"] = await timed("receive wait=true answered by a later send", consumer.queues.receive(name="later", wait=True))
        await sender

        # drain
        for n in range(4):
            await timed(f"send drain {n}", producer.queues.send(name="drainme", message={"n": n}))
        await timed("drain", producer.queues.drain(name="drainme"))
        observed["after_drain"] = await timed("receive after drain", consumer.queues.receive(name="drainme", wait=False))
        observed["list_after_drain"] = sorted(({"name": q.name, "size": q.size} for q in await timed("list 2", consumer.queues.list())), key=lambda q: q["name"])

        # create=false on a queue that does not exist
        observed["send_missing_no_create"] = await expect_error(
            "send create=false", producer.queues.send(name="ghost", message={"x": 1}, create=False)
        )
        observed["receive_missing_no_create"] = await expect_error(
            "receive create=false", consumer.queues.receive(name="ghost2", create=False, wait=False)
        )

        # open, close
        await timed("open", producer.queues.open(name="opened"))
        observed["open_again"] = await expect_error("open existing", producer.queues.open(name="opened"))
        await timed("send to opened", producer.queues.send(name="opened", message={"kept": 1}))
        await timed("close", producer.queues.close(name="opened"))
        observed["send_after_close"] = await expect_error("send after close", producer.queues.send(name="opened", message={"x": 2}, create=False))
        observed["list_final"] = sorted(({"name": q.name, "size": q.size} for q in await timed("list final", consumer.queues.list())), key=lambda q: q["name"])

        # Many messages keep their order.
        for n in range(50):
            await producer.queues.send(name="order", message={"n": n})
        observed["order"] = [(await timed("receive order", consumer.queues.receive(name="order", wait=False)))["n"] for _ in range(50)]
    return observed


run(main)
