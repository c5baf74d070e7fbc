"""The control plane's store of mailboxes and their deliveries (protocol/rest.md §18).

A mailbox maps an e-mail address (unique on the server, compared lower-cased) to a room's queue.
A delivery is one message received for a mailbox: recorded `accepted` with an `accepted` event
when it arrives, then `delivered` (event `delivered`) once it is in the room's queue, or `failed`
(event `permanent_failed`, with the reason) when the queue refused it.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from meshagent_core.rest.mailboxes import Mailbox, MailboxDelivery, MailboxDeliveryEvent

from .common import Conflict, ControlError, NotFound, check_room_name, now_iso, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE mailboxes (
            address TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            room TEXT NOT NULL,
            queue TEXT NOT NULL,
            public INTEGER NOT NULL,
            annotations TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX mailboxes_by_room ON mailboxes (project_id, room, address)",
        """CREATE TABLE mailbox_deliveries (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            address TEXT NOT NULL REFERENCES mailboxes(address) ON DELETE CASCADE,
            submission_id TEXT NOT NULL,
            recipient TEXT NOT NULL,
            message_id TEXT NOT NULL,
            status TEXT NOT NULL,
            submitted_at TEXT NOT NULL,
            status_at TEXT NOT NULL,
            attempt_count INTEGER NOT NULL,
            reason TEXT
        )""",
        """CREATE TABLE mailbox_delivery_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            delivery_id TEXT NOT NULL REFERENCES mailbox_deliveries(id) ON DELETE CASCADE,
            event_type TEXT NOT NULL,
            status TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            attempt_no INTEGER NOT NULL,
            reason TEXT
        )""",
    ),
]

#: The provider named in delivery events: this server's own mail endpoint.
PROVIDER = "local"
MAX_QUEUE_NAME = 256
_ADDRESS = re.compile(r"^[^@\s/]{1,64}@[A-Za-z0-9.-]{1,253}$")
_MAILBOX_COLUMNS = "m.address, m.room, r.id, m.queue, m.public, m.annotations"
_MAILBOX_FROM = "mailboxes m LEFT JOIN rooms r ON r.project_id = m.project_id AND r.name = m.room"
_DELIVERY_COLUMNS = "id, submission_id, recipient, message_id, status, submitted_at, status_at, attempt_count, reason"
_EVENT_TYPE = {"accepted": "accepted", "delivered": "delivered", "failed": "permanent_failed"}


def normalize_address(address: str) -> str:
    """The address as stored (lower-cased), or 400 naming it."""
    if not _ADDRESS.match(address):
        raise ControlError(f"address {address!r} is not an e-mail address (local@domain)")
    return address.lower()


def _check(room: str, queue: str) -> None:
    check_room_name(room)
    if not 1 <= len(queue) <= MAX_QUEUE_NAME:
        raise ControlError(f"queue: a queue name is 1 to {MAX_QUEUE_NAME} characters")


def _mailbox(row: tuple[Any, ...]) -> Mailbox:
    address, room, room_id, queue, public, annotations = row
    return Mailbox(address=address, room=room, room_id=room_id, queue=queue, public=bool(public), annotations=msgspec.json.decode(annotations))


def _delivery(row: tuple[Any, ...]) -> MailboxDelivery:
    id, submission_id, recipient, message_id, status, submitted_at, status_at, attempt_count, reason = row
    return MailboxDelivery(
        id=id,
        submission_id=submission_id,
        recipient=recipient,
        message_id=message_id,
        status=status,
        submitted_at=submitted_at,
        status_at=status_at,
        attempt_count=attempt_count,
        reason=reason,
    )


def _require(db: sqlite3.Connection, project_id: str, address: str) -> tuple[Any, ...]:
    require_project(db, project_id)
    row = db.execute(f"SELECT {_MAILBOX_COLUMNS} FROM {_MAILBOX_FROM} WHERE m.project_id = ? AND m.address = ?", (project_id, address.lower())).fetchone()
    if row is None:
        raise NotFound(f"mailbox {address!r} does not exist")
    return row  # type: ignore[no-any-return]


def _require_delivery(db: sqlite3.Connection, project_id: str, address: str, delivery_id: str) -> tuple[Any, ...]:
    _require(db, project_id, address)
    row = db.execute(f"SELECT {_DELIVERY_COLUMNS} FROM mailbox_deliveries WHERE address = ? AND id = ?", (address.lower(), delivery_id)).fetchone()
    if row is None:
        raise NotFound(f"delivery {delivery_id!r} of mailbox {address!r} does not exist")
    return row  # type: ignore[no-any-return]


def _add_event(db: sqlite3.Connection, delivery_id: str, status: str, attempt_no: int, at: str, reason: str | None) -> None:
    db.execute(
        "INSERT INTO mailbox_delivery_events (id, delivery_id, event_type, status, occurred_at, attempt_no, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (str(uuid.uuid4()), delivery_id, _EVENT_TYPE[status], status, at, attempt_no, reason),
    )


class MailboxesStore:
    """Mailboxes, deliveries and delivery events in `control.db`."""

    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    async def create(self, project_id: str, *, address: str, room: str, queue: str, public: bool, annotations: dict[str, str] | None) -> None:
        address = normalize_address(address)
        _check(room, queue)
        row = (address, project_id, room, queue, int(public), msgspec.json.encode(annotations or {}).decode(), now_iso())

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            if db.execute("SELECT 1 FROM mailboxes WHERE address = ?", (address,)).fetchone():
                raise Conflict(f"mailbox {address!r} already exists")
            db.execute("INSERT INTO mailboxes (address, project_id, room, queue, public, annotations, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", row)

        await self.plane.run(work)

    async def update(self, project_id: str, address: str, *, room: str, queue: str, public: bool, annotations: dict[str, str] | None) -> None:
        """Sets the room, queue and `public`; the annotations too unless they are None."""
        _check(room, queue)

        def work(db: sqlite3.Connection) -> None:
            _require(db, project_id, address)
            db.execute("UPDATE mailboxes SET room = ?, queue = ?, public = ? WHERE address = ?", (room, queue, int(public), address.lower()))
            if annotations is not None:
                db.execute("UPDATE mailboxes SET annotations = ? WHERE address = ?", (msgspec.json.encode(annotations).decode(), address.lower()))

        await self.plane.run(work)

    async def get(self, project_id: str, address: str) -> Mailbox:
        return _mailbox(await self.plane.run(lambda db: _require(db, project_id, address)))

    async def delete(self, project_id: str, address: str) -> None:
        """Deletes the mailbox with its deliveries."""

        def work(db: sqlite3.Connection) -> None:
            _require(db, project_id, address)
            db.execute("DELETE FROM mailboxes WHERE address = ?", (address.lower(),))

        await self.plane.run(work)

    async def list(self, project_id: str, *, room: str | None = None, after: str = "", limit: int, offset: int = 0) -> tuple[list[Mailbox], int, str | None]:
        """Mailboxes by address, of the project or of one of its rooms: those after the address
        `after`, skipping `offset`; (page, total, the last address when more follow)."""

        def work(db: sqlite3.Connection) -> tuple[list[Mailbox], int, str | None]:
            require_project(db, project_id)
            where, parameters = "m.project_id = ?", [project_id]
            if room is not None:
                where, parameters = where + " AND m.room = ?", [*parameters, room]
            total = db.execute(f"SELECT COUNT(*) FROM mailboxes m WHERE {where}", parameters).fetchone()[0]
            rows = db.execute(
                f"SELECT {_MAILBOX_COLUMNS} FROM {_MAILBOX_FROM} WHERE {where} AND m.address > ? ORDER BY m.address LIMIT ? OFFSET ?",
                (*parameters, after, limit + 1, offset),
            ).fetchall()
            page = [_mailbox(row) for row in rows[:limit]]
            return page, total, page[-1].address if len(rows) > limit else None

        return await self.plane.run(work)

    # --- deliveries ------------------------------------------------------------------------

    async def mailbox_by_address(self, address: str) -> tuple[str, Mailbox, bool]:
        """(project id, mailbox, whether its room is enabled) of an address, in any project (404
        naming it). A room the control plane does not have is enabled (it is made on first use)."""

        def work(db: sqlite3.Connection) -> tuple[str, Mailbox, bool]:
            row = db.execute(
                f"SELECT m.project_id, COALESCE(r.enabled, 1), {_MAILBOX_COLUMNS} FROM {_MAILBOX_FROM} WHERE m.address = ?", (address.lower(),)
            ).fetchone()
            if row is None:
                raise NotFound(f"mailbox {address!r} does not exist")
            return row[0], _mailbox(row[2:]), bool(row[1])

        return await self.plane.run(work)

    async def accept(self, address: str, *, message_id: str) -> str:
        """Records a message received for the mailbox (`accepted`); its delivery id."""
        delivery_id, now = str(uuid.uuid4()), now_iso()

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                f"INSERT INTO mailbox_deliveries ({_DELIVERY_COLUMNS}, address) VALUES (?, ?, ?, ?, 'accepted', ?, ?, 1, NULL, ?)",
                (delivery_id, str(uuid.uuid4()), address.lower(), message_id, now, now, address.lower()),
            )
            _add_event(db, delivery_id, "accepted", 1, now, None)

        await self.plane.run(work)
        return delivery_id

    async def settle(self, delivery_id: str, *, delivered: bool, reason: str | None = None) -> MailboxDelivery:
        """Records the outcome of a delivery: `delivered`, or `failed` with the reason."""
        status, now = ("delivered" if delivered else "failed"), now_iso()

        def work(db: sqlite3.Connection) -> tuple[Any, ...]:
            db.execute("UPDATE mailbox_deliveries SET status = ?, status_at = ?, reason = ? WHERE id = ?", (status, now, reason, delivery_id))
            _add_event(db, delivery_id, status, 1, now, reason)
            return db.execute(f"SELECT {_DELIVERY_COLUMNS} FROM mailbox_deliveries WHERE id = ?", (delivery_id,)).fetchone()  # type: ignore[no-any-return]

        return _delivery(await self.plane.run(work))

    async def list_deliveries(self, project_id: str, address: str, *, count: int, offset: int, filters: dict[str, str]) -> tuple[list[MailboxDelivery], int]:
        """Deliveries, oldest first, filtered by equal `status`, `recipient`, `message_id`."""

        def work(db: sqlite3.Connection) -> tuple[list[MailboxDelivery], int]:
            _require(db, project_id, address)
            where = " AND ".join(["address = ?", *(f"{name} = ?" for name in filters)])
            parameters = (address.lower(), *filters.values())
            total = db.execute(f"SELECT COUNT(*) FROM mailbox_deliveries WHERE {where}", parameters).fetchone()[0]
            rows = db.execute(f"SELECT {_DELIVERY_COLUMNS} FROM mailbox_deliveries WHERE {where} ORDER BY seq LIMIT ? OFFSET ?", (*parameters, count, offset)).fetchall()
            return [_delivery(row) for row in rows], total

        return await self.plane.run(work)

    async def get_delivery(self, project_id: str, address: str, delivery_id: str) -> MailboxDelivery:
        return _delivery(await self.plane.run(lambda db: _require_delivery(db, project_id, address, delivery_id)))

    async def list_events(self, project_id: str, address: str, delivery_id: str, *, count: int, offset: int) -> tuple[list[MailboxDeliveryEvent], int]:
        def work(db: sqlite3.Connection) -> tuple[list[MailboxDeliveryEvent], int]:
            _require_delivery(db, project_id, address, delivery_id)
            total = db.execute("SELECT COUNT(*) FROM mailbox_delivery_events WHERE delivery_id = ?", (delivery_id,)).fetchone()[0]
            rows = db.execute(
                "SELECT id, event_type, status, occurred_at, attempt_no, reason FROM mailbox_delivery_events WHERE delivery_id = ? ORDER BY seq LIMIT ? OFFSET ?",
                (delivery_id, count, offset),
            ).fetchall()
            events = [
                MailboxDeliveryEvent(
                    id=id,
                    delivery_id=delivery_id,
                    provider=PROVIDER,
                    provider_event_id=id,
                    event_type=event_type,
                    status=status,
                    occurred_at=at,
                    received_at=at,
                    attempt_no=attempt_no,
                    reason=reason,
                )
                for id, event_type, status, at, attempt_no, reason in rows
            ]
            return events, total

        return await self.plane.run(work)


__all__ = ["MIGRATIONS", "PROVIDER", "MailboxesStore", "normalize_address"]
