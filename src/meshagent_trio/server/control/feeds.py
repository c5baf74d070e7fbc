"""The control plane's store of feeds and feed subscriptions (protocol/rest.md §11), in
`control.db`.

A feed's name is unique in its project (409 otherwise) and follows the feed-name rule of
`meshagent_core.rest.feeds`. A subscription names a room (by name: rooms of this server exist
whether or not REST made them; `room_id` is filled when REST knows the room) and a folder of the
room's storage; one feed has at most one subscription per room and folder (409). Deleting a feed
deletes its subscriptions. The paths and formats a subscription stores are checked by the REST
layer (they follow the room storage's path rules, which live above this floor).
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from meshagent_core.rest.feeds import FEED_NAME_RULE, Feed, FeedSubscription, is_valid_feed_name

from .common import Conflict, ControlError, NotFound, check_room_name, key_page, now_iso, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE feeds (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            visibility TEXT NOT NULL,
            paused INTEGER NOT NULL,
            annotations TEXT NOT NULL,
            message_schema TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (project_id, name)
        )""",
        """CREATE TABLE feed_subscriptions (
            id TEXT PRIMARY KEY,
            feed_id TEXT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            room TEXT NOT NULL,
            path TEXT NOT NULL,
            filename_datetime_format TEXT,
            annotations TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (feed_id, room, path)
        )""",
        "CREATE INDEX feed_subscriptions_by_room ON feed_subscriptions (project_id, room)",
    ),
]

_FEED_COLUMNS = "id, project_id, name, description, visibility, paused, annotations, message_schema, created_at"
_SUBSCRIPTION_COLUMNS = "s.id, s.feed_id, s.project_id, s.room, r.id, s.path, s.filename_datetime_format, s.annotations, s.created_at"
#: A subscription with the id of its room when REST knows the room.
_SUBSCRIPTION_SELECT = f"SELECT {_SUBSCRIPTION_COLUMNS} FROM feed_subscriptions s LEFT JOIN rooms r ON r.project_id = s.project_id AND r.name = s.room"


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _feed(row: tuple[Any, ...]) -> Feed:
    id, project_id, name, description, visibility, paused, annotations, message_schema, created_at = row
    return Feed(
        id=id,
        project_id=project_id,
        name=name,
        description=description,
        visibility=visibility,
        paused=bool(paused),
        annotations=msgspec.json.decode(annotations),
        message_schema=None if message_schema is None else msgspec.json.decode(message_schema),
        created_at=created_at,
    )


def _subscription(row: tuple[Any, ...]) -> FeedSubscription:
    id, feed_id, project_id, room, room_id, path, filename_datetime_format, annotations, created_at = row
    return FeedSubscription(
        id=id,
        feed_id=feed_id,
        project_id=project_id,
        room=room,
        room_id=room_id,
        path=path,
        filename_datetime_format=filename_datetime_format,
        annotations=msgspec.json.decode(annotations),
        created_at=created_at,
    )


def check_feed_name(name: str) -> None:
    if not is_valid_feed_name(name):
        raise ControlError(f"invalid feed name {name!r}: {FEED_NAME_RULE}")


def _require_feed(db: sqlite3.Connection, project_id: str, feed_id: str) -> Feed:
    require_project(db, project_id)
    row = db.execute(f"SELECT {_FEED_COLUMNS} FROM feeds WHERE project_id = ? AND id = ?", (project_id, feed_id)).fetchone()
    if row is None:
        raise NotFound(f"feed {feed_id!r} does not exist")
    return _feed(row)


def _check_name_free(db: sqlite3.Connection, project_id: str, name: str, except_id: str = "") -> None:
    if db.execute("SELECT 1 FROM feeds WHERE project_id = ? AND name = ? AND id != ?", (project_id, name, except_id)).fetchone():
        raise Conflict(f"feed {name!r} already exists")


def _schema(value: Any) -> str | None:
    return None if value is None or value is msgspec.UNSET else _json(value)


class FeedsStore:
    """Feeds and their subscriptions; one transaction per mutation."""

    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    # --- feeds ------------------------------------------------------------------------------

    async def create_feed(
        self,
        project_id: str,
        *,
        name: str,
        description: str,
        visibility: str,
        paused: bool,
        annotations: dict[str, str],
        message_schema: Any = None,
    ) -> Feed:
        check_feed_name(name)
        row = (str(uuid.uuid4()), project_id, name, description, visibility, int(paused), _json(annotations), _schema(message_schema), now_iso())

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            _check_name_free(db, project_id, name)
            db.execute(f"INSERT INTO feeds ({_FEED_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row)

        await self.plane.run(work)
        return _feed(row)

    async def get_feed(self, project_id: str, feed_id: str) -> Feed:
        return await self.plane.run(lambda db: _require_feed(db, project_id, feed_id))

    async def get_feed_by_name(self, project_id: str, name: str) -> Feed:
        def work(db: sqlite3.Connection) -> Feed:
            require_project(db, project_id)
            row = db.execute(f"SELECT {_FEED_COLUMNS} FROM feeds WHERE project_id = ? AND name = ?", (project_id, name)).fetchone()
            if row is None:
                raise NotFound(f"feed {name!r} does not exist")
            return _feed(row)

        return await self.plane.run(work)

    async def list_feeds(self, project_id: str, *, page_size: int, after: str | None) -> tuple[list[Feed], int, str | None]:
        """One page, by name, after the name `after`; (feeds, total, next token or None)."""

        def work(db: sqlite3.Connection) -> tuple[list[Feed], int, str | None]:
            require_project(db, project_id)
            return key_page(db, "feeds", _FEED_COLUMNS, _feed, project_id=project_id, after=after, page_size=page_size)

        return await self.plane.run(work)

    async def list_room_feeds(self, project_id: str, room: str, *, count: int, offset: int) -> tuple[list[Feed], int]:
        """The feeds with a subscription into `room`, by name: (`count` of them from `offset`, total)."""
        check_room_name(room)
        subscribed = "SELECT DISTINCT feed_id FROM feed_subscriptions WHERE project_id = ? AND room = ?"

        def work(db: sqlite3.Connection) -> tuple[list[Feed], int]:
            require_project(db, project_id)
            total = db.execute(f"SELECT count(*) FROM ({subscribed})", (project_id, room)).fetchone()[0]
            rows = db.execute(
                f"SELECT {_FEED_COLUMNS} FROM feeds WHERE id IN ({subscribed}) ORDER BY name LIMIT ? OFFSET ?",
                (project_id, room, count, offset),
            ).fetchall()
            return [_feed(row) for row in rows], total

        return await self.plane.run(work)

    async def update_feed(
        self,
        project_id: str,
        feed_id: str,
        *,
        name: str,
        description: str,
        paused: bool,
        annotations: dict[str, str],
        message_schema: Any = None,
        visibility: Any = msgspec.UNSET,
    ) -> None:
        """Replaces the feed's fields (see `UpdateFeedBody`); `visibility` only when given."""
        check_feed_name(name)
        changes: dict[str, Any] = {
            "name": name,
            "description": description,
            "paused": int(paused),
            "annotations": _json(annotations),
            "message_schema": _schema(message_schema),
        }
        if visibility is not msgspec.UNSET:
            changes["visibility"] = visibility

        def work(db: sqlite3.Connection) -> None:
            _require_feed(db, project_id, feed_id)
            _check_name_free(db, project_id, name, except_id=feed_id)
            assignments = ", ".join(f"{column} = ?" for column in changes)
            db.execute(f"UPDATE feeds SET {assignments} WHERE id = ?", (*changes.values(), feed_id))

        await self.plane.run(work)

    async def delete_feed(self, project_id: str, feed_id: str) -> None:
        """Deletes the feed and its subscriptions (the files they delivered stay in the rooms)."""

        def work(db: sqlite3.Connection) -> None:
            _require_feed(db, project_id, feed_id)
            db.execute("DELETE FROM feeds WHERE id = ?", (feed_id,))

        await self.plane.run(work)

    # --- subscriptions ----------------------------------------------------------------------

    async def create_subscription(
        self, project_id: str, feed_id: str, *, room: str, path: str, filename_datetime_format: str | None, annotations: dict[str, str]
    ) -> FeedSubscription:
        """`path` is a canonical storage folder and `filename_datetime_format` a checked format
        (see the REST layer)."""
        check_room_name(room)
        subscription_id = str(uuid.uuid4())

        def work(db: sqlite3.Connection) -> FeedSubscription:
            _require_feed(db, project_id, feed_id)
            if db.execute("SELECT 1 FROM feed_subscriptions WHERE feed_id = ? AND room = ? AND path = ?", (feed_id, room, path)).fetchone():
                raise Conflict(f"feed {feed_id!r} already has a subscription to room {room!r} at path {path!r}")
            db.execute(
                "INSERT INTO feed_subscriptions (id, feed_id, project_id, room, path, filename_datetime_format, annotations, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (subscription_id, feed_id, project_id, room, path, filename_datetime_format, _json(annotations), now_iso()),
            )
            return _require_subscription(db, project_id, feed_id, subscription_id)

        return await self.plane.run(work)

    async def get_subscription(self, project_id: str, feed_id: str, subscription_id: str) -> FeedSubscription:
        return await self.plane.run(lambda db: _require_subscription(db, project_id, feed_id, subscription_id))

    async def list_subscriptions(self, project_id: str, feed_id: str) -> list[FeedSubscription]:
        def work(db: sqlite3.Connection) -> list[FeedSubscription]:
            _require_feed(db, project_id, feed_id)
            rows = db.execute(f"{_SUBSCRIPTION_SELECT} WHERE s.feed_id = ? ORDER BY s.created_at, s.id", (feed_id,)).fetchall()
            return [_subscription(row) for row in rows]

        return await self.plane.run(work)

    async def feed_and_subscriptions(self, project_id: str, feed_id: str) -> tuple[Feed, list[FeedSubscription]]:
        """What a publish needs, read in one transaction."""

        def work(db: sqlite3.Connection) -> tuple[Feed, list[FeedSubscription]]:
            feed = _require_feed(db, project_id, feed_id)
            rows = db.execute(f"{_SUBSCRIPTION_SELECT} WHERE s.feed_id = ? ORDER BY s.created_at, s.id", (feed_id,)).fetchall()
            return feed, [_subscription(row) for row in rows]

        return await self.plane.run(work)

    async def update_subscription(
        self, project_id: str, feed_id: str, subscription_id: str, *, filename_datetime_format: str | None, annotations: dict[str, str]
    ) -> None:
        def work(db: sqlite3.Connection) -> None:
            _require_subscription(db, project_id, feed_id, subscription_id)
            db.execute(
                "UPDATE feed_subscriptions SET filename_datetime_format = ?, annotations = ? WHERE id = ?",
                (filename_datetime_format, _json(annotations), subscription_id),
            )

        await self.plane.run(work)

    async def delete_subscription(self, project_id: str, feed_id: str, subscription_id: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            _require_subscription(db, project_id, feed_id, subscription_id)
            db.execute("DELETE FROM feed_subscriptions WHERE id = ?", (subscription_id,))

        await self.plane.run(work)


def _require_subscription(db: sqlite3.Connection, project_id: str, feed_id: str, subscription_id: str) -> FeedSubscription:
    _require_feed(db, project_id, feed_id)
    row = db.execute(f"{_SUBSCRIPTION_SELECT} WHERE s.feed_id = ? AND s.id = ?", (feed_id, subscription_id)).fetchone()
    if row is None:
        raise NotFound(f"feed subscription {subscription_id!r} does not exist")
    return _subscription(row)


__all__ = ["FeedsStore", "MIGRATIONS", "check_feed_name"]
