"""Delivering project webhooks (`create_webhook(events=[...])`, protocol/webhooks.md §7): the
outbox's rows (`control.webhook_outbox`), sent signed with the project's secret, with retries.

Each webhook is a queue of its own: its oldest pending event is sent, and the next only once
that one is settled, so a receiver sees `room.started` before the `room.ended` of the same
session. Webhooks are served concurrently: a slow or dead receiver delays its own events only.
A failed attempt is retried after `webhook_retry_initial` seconds, doubling up to
`webhook_retry_max`; an event still undelivered `webhook_give_up_after` seconds after it
happened is marked failed (its last error kept) and the webhook's next event goes.

Every request carries `Meshagent-Webhook-Id: <delivery id>`, the same on every attempt: a
receiver that crashed after answering 2xx but before we recorded it gets that event again (the
one case of a second delivery; the window is the time between its answer and our write), and
can tell by the id.
"""

from __future__ import annotations

import logging
import time

import trio

from meshagent_core.webhooks import webhook_body

from ..config import ServerConfig
from ..control import ControlPlane
from ..control.webhook_outbox import Delivery
from .delivery import DeliveryFailed, post_webhook

log = logging.getLogger("meshagent_trio.server.webhooks")

#: The header naming a delivery (the same on each of its attempts).
DELIVERY_ID_HEADER = "Meshagent-Webhook-Id"
#: Seconds between looks at the outbox when nothing wakes the sender.
IDLE_POLL = 5.0


def event_data(config: ServerConfig, delivery: Delivery) -> dict[str, str]:
    """The `data` of a lifecycle event, as the official receiver reads it."""
    if delivery.event == "room.started":
        return {"room_name": delivery.room_name, "room_url": config.room_url(delivery.room_name)}
    return {"room_name": delivery.room_name}


def retry_delay(config: ServerConfig, attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones."""
    return min(config.webhook_retry_max, config.webhook_retry_initial * 2 ** max(0, attempts - 1))


class ProjectWebhooks:
    """The sender: `run` in the server's nursery."""

    def __init__(self, config: ServerConfig, control: ControlPlane) -> None:
        self.config = config
        self.control = control
        self._in_flight: set[str] = set()  # webhook ids with an attempt under way

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        outbox = self.control.webhooks.outbox
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                try:
                    heads = await outbox.heads()
                except Exception:
                    log.exception("could not read the webhook outbox")
                    heads = []
                now = time.time()
                next_due = now + IDLE_POLL
                for delivery in heads:
                    if delivery.webhook_id in self._in_flight:
                        continue
                    if delivery.next_attempt_at <= now:
                        self._in_flight.add(delivery.webhook_id)
                        nursery.start_soon(self._attempt, delivery)
                    else:
                        next_due = min(next_due, delivery.next_attempt_at)
                await outbox.wait(next_due - time.time())

    async def _attempt(self, delivery: Delivery) -> None:
        outbox = self.control.webhooks.outbox
        try:
            try:
                secret = await self.control.webhooks.project_secret(delivery.project_id)
                body = webhook_body(delivery.event, event_data(self.config, delivery))
                await post_webhook(delivery.url, body, secret=secret, timeout=self.config.webhook_timeout, headers={DELIVERY_ID_HEADER: delivery.id})
            except DeliveryFailed as failure:
                now = time.time()
                give_up = now - delivery.queued_at >= self.config.webhook_give_up_after
                retry_at = None if give_up else now + retry_delay(self.config, delivery.attempts + 1)
                (log.warning if give_up else log.info)(
                    "webhook %s of %s (%s): %s; %s", delivery.event, delivery.room_name, delivery.url, failure, "giving up" if give_up else "will retry"
                )
                await outbox.failed_attempt(delivery.id, str(failure), retry_at=retry_at)
            else:
                await outbox.delivered(delivery.id)
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", delivery.id)
            await trio.sleep(1)  # do not spin on a broken database
        finally:
            self._in_flight.discard(delivery.webhook_id)
            outbox.wake()


__all__ = ["DELIVERY_ID_HEADER", "ProjectWebhooks", "event_data", "retry_delay"]
