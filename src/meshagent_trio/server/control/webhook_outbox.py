"""The outbox of project webhooks (protocol/webhooks.md §7): one row per event and webhook,
written in the transaction that records the event, so a delivery exists exactly when its event
does, whatever happens to the process afterwards.

A row is unique per (webhook, event, occurrence) — the occurrence of a session event is the
session's id — so an event is never queued twice for a webhook. Rows are `pending` until the
receiver answers 2xx (`delivered`) or the delivery has been failing for longer than the server
retries (`failed`, with the last error kept). Each webhook gets its events in order: only its
oldest pending row is ever due. `services.project_webhooks` sends them.

Which webhooks match: those of the project whose `events` name the event, or `*`.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
import trio

from .common import now_iso

if TYPE_CHECKING:
    from .plane import ControlPlane

#: The table (a migration of the webhooks component, `control.webhooks.MIGRATIONS`).
TABLE = """CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    event TEXT NOT NULL,
    room_name TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    created_at TEXT NOT NULL,
    queued_at REAL NOT NULL,
    delivered_at TEXT,
    last_error TEXT,
    UNIQUE (webhook_id, event, occurrence)
)"""
INDEX = "CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (state, webhook_id, queued_at)"

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class Delivery:
    id: str
    webhook_id: str
    project_id: str
    url: str
    event: str
    room_name: str
    attempts: int
    next_attempt_at: float
    queued_at: float


def enqueue_deliveries(db: sqlite3.Connection, project_id: str, room_name: str, event: str, occurrence: str, *, now: float | None = None) -> int:
    """Queue `event` for every matching webhook of the project (inside the caller's
    transaction); returns how many were queued."""
    queued_at = time.time() if now is None else now
    queued = 0
    for webhook_id, events in db.execute("SELECT id, events FROM webhooks WHERE project_id = ?", (project_id,)).fetchall():
        names = msgspec.json.decode(events)
        if event not in names and "*" not in names:
            continue
        inserted = db.execute(
            "INSERT OR IGNORE INTO webhook_deliveries (id, webhook_id, project_id, event, room_name, occurrence, state, attempts,"
            " next_attempt_at, created_at, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            (str(uuid.uuid4()), webhook_id, project_id, event, room_name, occurrence, PENDING, queued_at, now_iso(), queued_at),
        )
        queued += inserted.rowcount
    return queued


class WebhookOutbox:
    """Reading and settling the queued deliveries; `wake()` tells the sender there is news."""

    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane
        self._news = trio.Event()

    def wake(self) -> None:
        self._news.set()

    async def wait(self, timeout: float) -> None:
        """Until `wake()` or `timeout` seconds, whichever comes first."""
        with trio.move_on_after(max(0.0, timeout)):
            await self._news.wait()
        self._news = trio.Event()

    async def heads(self) -> list[Delivery]:
        """The oldest pending delivery of each webhook (due or not)."""

        def work(db: sqlite3.Connection) -> list[Delivery]:
            rows = db.execute(
                "SELECT d.id, d.webhook_id, d.project_id, w.url, d.event, d.room_name, d.attempts, d.next_attempt_at, d.queued_at"
                " FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
                " WHERE d.state = ? AND d.rowid = (SELECT e.rowid FROM webhook_deliveries e WHERE e.webhook_id = d.webhook_id"
                " AND e.state = ? ORDER BY e.queued_at, e.rowid LIMIT 1)",
                (PENDING, PENDING),
            ).fetchall()
            return [Delivery(*row) for row in rows]

        return await self.plane.run(work)  # type: ignore[no-any-return]

    async def delivered(self, delivery_id: str) -> None:
        await self.plane.run(
            lambda db: db.execute(
                "UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, delivered_at = ?, last_error = NULL WHERE id = ?",
                (DELIVERED, now_iso(), delivery_id),
            )
        )

    async def failed_attempt(self, delivery_id: str, error: str, *, retry_at: float | None) -> None:
        """An attempt failed: try again at `retry_at`, or give up (None)."""
        if retry_at is None:
            statement, parameters = "UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, last_error = ? WHERE id = ?", (FAILED, error, delivery_id)
        else:
            statement = "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?"
            parameters = (retry_at, error, delivery_id)  # type: ignore[assignment]
        await self.plane.run(lambda db: db.execute(statement, parameters))

    async def states(self, project_id: str) -> list[tuple[str, str, str, str, int, str | None]]:
        """(webhook id, event, room, state, attempts, last error) of the project's deliveries,
        oldest first (what tests and diagnostics read)."""
        return await self.plane.run(  # type: ignore[no-any-return]
            lambda db: db.execute(
                "SELECT webhook_id, event, room_name, state, attempts, last_error FROM webhook_deliveries WHERE project_id = ? ORDER BY queued_at, rowid",
                (project_id,),
            ).fetchall()
        )


__all__ = ["DELIVERED", "Delivery", "FAILED", "INDEX", "PENDING", "TABLE", "WebhookOutbox", "enqueue_deliveries"]
