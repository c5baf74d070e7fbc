"""Room sessions, their participants and events, and room volumes (protocol/rest.md §4, §19).

A session is one run of a room: it starts when the first participant joins the room and ends
when the last one leaves, or when REST terminates or kills it. The server's top floor records
every join and leave (`participant_joined`, `participant_left`); this store decides from its
live sessions (in memory, one per room of a project) whether a join starts a session and
whether a leave ends it, and writes each step to `control.db` in one transaction: the session,
its participants (name, role from the token's role grant, join and leave times) and its
events, which are also the room's events (`list_room_events`).

Joins, leaves and ends of sessions run one at a time (`_lock`), the live state changing only
once their transaction is written, so a join never lands in a session that a leave or a
terminate is ending. `participant_joined` returns with no checkpoint after the live state
changed: a caller that enters the room right away (no checkpoint either) is in the room
before a terminate can look for the session's participants.

A session that was still active when the server stopped is ended by the first use of the store
after the next start (`room.lifecycle.stop`, "the server stopped").

Room volumes are records of this store and directories under the room's data directory
(`volumes/<name>`). The local server does not enforce `max_size_mb`: it is recorded and
reported, and `expand_room_volume` only lets it grow.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import msgspec
import trio

from meshagent_core.rest.models import RoomEvent, RoomStatus, StorageVolume
from meshagent_core.rest.sessions import RoomSession

from .common import Conflict, ControlError, NotFound, is_valid_room_name, now_iso, require_project
from .webhook_outbox import enqueue_deliveries

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE room_sessions (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL,
            room_name TEXT NOT NULL,
            room_id TEXT,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            end_reason TEXT
        )""",
        "CREATE INDEX room_sessions_by_room ON room_sessions (project_id, room_name, started_at)",
        "CREATE INDEX room_sessions_by_project ON room_sessions (project_id, started_at)",
        """CREATE TABLE session_participants (
            id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES room_sessions(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            joined_at TEXT NOT NULL,
            left_at TEXT
        )""",
        "CREATE INDEX session_participants_by_session ON session_participants (session_id)",
        """CREATE TABLE room_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            project_id TEXT NOT NULL,
            room_name TEXT NOT NULL,
            session_id TEXT,
            type TEXT NOT NULL,
            message TEXT NOT NULL,
            severity TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX room_events_by_room ON room_events (project_id, room_name, seq)",
        "CREATE INDEX room_events_by_session ON room_events (session_id, seq)",
        """CREATE TABLE room_volumes (
            id TEXT PRIMARY KEY,
            room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            subpath TEXT NOT NULL,
            description TEXT NOT NULL,
            metadata TEXT NOT NULL,
            annotations TEXT NOT NULL,
            storage_class TEXT NOT NULL,
            max_size_mb INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (room_id, name)
        )""",
    ),
]

#: Event types (the official examples: `room.lifecycle.start.failed`).
SESSION_STARTED = "room.lifecycle.start"
SESSION_ENDED = "room.lifecycle.stop"
PARTICIPANT_JOINED = "room.participant.joined"
PARTICIPANT_LEFT = "room.participant.left"
SESSION_TERMINATED = "room.session.terminated"
SESSION_KILLED = "room.session.killed"

#: The project webhook event each session event is announced as.
LIFECYCLE_WEBHOOKS = {SESSION_STARTED: "room.started", SESSION_ENDED: "room.ended"}

#: The close frame participants of a terminated or killed session get.
TERMINATED_CLOSE = (1000, "the session was terminated")
KILLED_CLOSE = (1000, "the session was killed")
#: Seconds `terminate` waits for the session's participants to be gone.
TERMINATE_WAIT = 10.0
MAX_LIMIT = 1000

#: Closes the connections of every participant of a room (code, reason): given by the top floor.
Disconnect = Callable[[int, str], None]


@dataclass
class LiveSession:
    id: str
    key: tuple[str, str]  # (project_id, room_name)
    disconnect: Disconnect
    participants: set[str] = field(default_factory=set)
    #: terminated or killed, while some of its participants are still leaving
    ended: bool = False
    emptied: trio.Event = field(default_factory=trio.Event)


@dataclass(frozen=True)
class Attendance:
    """One participant's place in a session (what `participant_left` needs)."""

    session_id: str
    participant_id: str
    name: str
    #: this participant's join started the session
    started_session: bool = False


_SESSION_COLUMNS = "s.id, s.room_id, s.room_name, s.started_at, s.ended_at"
_EVENT_COLUMNS = "id, room_name, session_id, type, message, severity, created_at"
_VOLUME_COLUMNS = (
    "v.id, v.room_id, v.name, v.subpath, v.description, v.metadata, v.annotations, v.storage_class, v.max_size_mb, v.created_at, v.updated_at"
)


def _limit(limit: int) -> int:
    if limit < 1:
        raise ControlError(f"limit must be at least 1, not {limit}")
    return min(limit, MAX_LIMIT)


def _event(db: sqlite3.Connection, project_id: str, room_name: str, session_id: str | None, type: str, message: str, severity: str = "info") -> None:
    db.execute(
        "INSERT INTO room_events (id, project_id, room_name, session_id, type, message, severity, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (str(uuid.uuid4()), project_id, room_name, session_id, type, message, severity, now_iso()),
    )
    webhook_event = LIFECYCLE_WEBHOOKS.get(type)
    if webhook_event is not None and session_id is not None:
        # In the same transaction as the event: a delivery is recorded exactly when the
        # session start or end is (protocol/webhooks.md §7).
        enqueue_deliveries(db, project_id, room_name, webhook_event, session_id)


def _end(db: sqlite3.Connection, session_id: str, reason: str, severity: str = "info") -> None:
    project_id, room_name = db.execute("SELECT project_id, room_name FROM room_sessions WHERE id = ?", (session_id,)).fetchone()
    db.execute("UPDATE room_sessions SET ended_at = ?, end_reason = ? WHERE id = ?", (now_iso(), reason, session_id))
    _event(db, project_id, room_name, session_id, SESSION_ENDED, f"session ended: {reason}", severity)


def _counts(db: sqlite3.Connection, session_id: str) -> dict[str, int]:
    rows = db.execute("SELECT role, count(*) FROM session_participants WHERE session_id = ? GROUP BY role ORDER BY role", (session_id,))
    return {role: count for role, count in rows}


def _sessions(db: sqlite3.Connection, where: str, parameters: tuple[Any, ...], limit: int | None = None) -> list[RoomSession]:
    """Sessions of the project that is `parameters[0]` (`where` starts with `s.project_id = ?`)."""
    require_project(db, parameters[0])
    query = f"SELECT {_SESSION_COLUMNS} FROM room_sessions s WHERE {where} ORDER BY s.started_at DESC, s.rowid DESC"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    return [
        RoomSession(
            id=id, room_id=room_id, room_name=room_name, created_at=started_at, is_active=ended_at is None, ended_at=ended_at, participants=_counts(db, id)
        )
        for id, room_id, room_name, started_at, ended_at in db.execute(query, parameters).fetchall()
    ]


def _session(db: sqlite3.Connection, project_id: str, session_id: str) -> RoomSession:
    found = _sessions(db, "s.project_id = ? AND s.id = ?", (project_id, session_id))
    if not found:
        raise NotFound(f"session {session_id!r} does not exist")
    return found[0]


def _require_room(db: sqlite3.Connection, project_id: str, room_name: str) -> None:
    """A room this server knows: made through REST, or one that has had a session."""
    require_project(db, project_id)
    known = db.execute(
        "SELECT 1 FROM rooms WHERE project_id = ? AND name = ? UNION ALL SELECT 1 FROM room_sessions WHERE project_id = ? AND room_name = ? LIMIT 1",
        (project_id, room_name, project_id, room_name),
    ).fetchone()
    if known is None:
        raise NotFound(f"room {room_name!r} does not exist")


def _remove_tree(path: Path) -> None:
    """Remove a directory and what it holds (a failure raises: the transaction is rolled back)."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass


def _events(rows: list[tuple[Any, ...]]) -> list[RoomEvent]:
    return [RoomEvent(id=i, room_name=r, session_id=s, type=t, message=m, severity=v, created_at=c) for i, r, s, t, m, v, c in rows]


class SessionStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane
        self._live: dict[tuple[str, str], LiveSession] = {}  # the active session of each room
        self._by_id: dict[str, LiveSession] = {}  # also ended ones whose participants are leaving
        self._lock = trio.Lock()
        self._recovered = False
        self.volumes = VolumeStore(plane)

    async def _run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """`work` in one transaction; the first one after a start first ends the sessions an
        earlier run of the server left active (any session not live in this process)."""
        if self._recovered:
            return await self.plane.run(work)
        live = set(self._by_id)

        def recover_then_work(db: sqlite3.Connection) -> Any:
            leftovers = db.execute("SELECT id FROM room_sessions WHERE ended_at IS NULL").fetchall()
            for (session_id,) in leftovers:
                if session_id not in live:
                    db.execute("UPDATE session_participants SET left_at = ? WHERE session_id = ? AND left_at IS NULL", (now_iso(), session_id))
                    _end(db, session_id, "the server stopped while the session was active", "warning")
            return work(db)

        result = await self.plane.run(recover_then_work)
        self._recovered = True
        return result

    async def recover(self) -> None:
        """End the sessions an earlier run of the server left active (at start: their
        `room.ended` webhooks then go out without waiting for the next join)."""
        await self._run(lambda db: None)
        self.plane.webhooks.outbox.wake()

    # --- recording (the top floor) ------------------------------------------------------

    async def participant_joined(self, project_id: str, room_name: str, *, name: str, role: str, disconnect: Disconnect) -> Attendance:
        """Record a participant entering a room; starts the room's session if it has none."""
        key = (project_id, room_name)
        participant_id = str(uuid.uuid4())
        async with self._lock:
            live = self._live.get(key)
            started = live is None
            session_id = live.id if live is not None else str(uuid.uuid4())

            def work(db: sqlite3.Connection) -> None:
                now = now_iso()
                if live is None:
                    room = db.execute("SELECT id FROM rooms WHERE project_id = ? AND name = ?", key).fetchone()
                    db.execute(
                        "INSERT INTO room_sessions (id, project_id, room_name, room_id, started_at) VALUES (?, ?, ?, ?, ?)",
                        (session_id, project_id, room_name, room and room[0], now),
                    )
                    _event(db, project_id, room_name, session_id, SESSION_STARTED, f"session started in room {room_name!r}")
                db.execute(
                    "INSERT INTO session_participants (id, session_id, name, role, joined_at) VALUES (?, ?, ?, ?, ?)",
                    (participant_id, session_id, name, role, now),
                )
                _event(db, project_id, room_name, session_id, PARTICIPANT_JOINED, f"{name} joined as {role}")

            await self._run(work)
            if live is None:
                live = self._live[key] = self._by_id[session_id] = LiveSession(session_id, key, disconnect)
            live.participants.add(participant_id)
        self.plane.webhooks.outbox.wake()
        return Attendance(session_id, participant_id, name, started_session=started)

    async def participant_left(self, attendance: Attendance) -> bool:
        """Record a participant leaving; ends its session when it was the last one in it.
        Returns True when the session is over and empty now (it ended with this leave, or was
        terminated and this was its last participant to go)."""
        async with self._lock:
            live = self._by_id.get(attendance.session_id)
            ends = live is not None and not live.ended and live.participants <= {attendance.participant_id}

            def work(db: sqlite3.Connection) -> None:
                db.execute("UPDATE session_participants SET left_at = ? WHERE id = ?", (now_iso(), attendance.participant_id))
                project_id, room_name = db.execute("SELECT project_id, room_name FROM room_sessions WHERE id = ?", (attendance.session_id,)).fetchone()
                _event(db, project_id, room_name, attendance.session_id, PARTICIPANT_LEFT, f"{attendance.name} left")
                if ends:
                    _end(db, attendance.session_id, "the last participant left")

            try:
                await self._run(work)
            finally:
                emptied = False
                if live is not None:
                    live.participants.discard(attendance.participant_id)
                    if not live.participants:
                        self._forget(live)
                        emptied = True
        self.plane.webhooks.outbox.wake()
        return emptied

    def _forget(self, live: LiveSession) -> None:
        self._by_id.pop(live.id, None)
        if self._live.get(live.key) is live:
            del self._live[live.key]
        live.emptied.set()

    async def end_session(self, project_id: str, session_id: str, *, kill: bool) -> None:
        """Terminate (or kill) an active session: it is marked ended and its participants are
        disconnected with a close frame. `terminate` then waits (up to `TERMINATE_WAIT`) until
        they are gone; `kill` answers at once."""
        async with self._lock:
            session = await self._run(lambda db: _session(db, project_id, session_id))
            live = self._by_id.get(session_id)
            if not session.is_active or live is None or live.ended:
                raise Conflict(f"session {session_id!r} has already ended")
            how = "killed" if kill else "terminated"

            def work(db: sqlite3.Connection) -> None:
                _event(db, project_id, session.room_name, session_id, SESSION_KILLED if kill else SESSION_TERMINATED, f"session {how} through the REST API", "warning")
                _end(db, session_id, f"{how} through the REST API")

            await self._run(work)
            live.ended = True
            if self._live.get(live.key) is live:
                del self._live[live.key]
            live.disconnect(*(KILLED_CLOSE if kill else TERMINATED_CLOSE))
        self.plane.webhooks.outbox.wake()
        if not kill:
            with trio.move_on_after(TERMINATE_WAIT):
                await live.emptied.wait()

    # --- reading ------------------------------------------------------------------------

    async def get_session(self, project_id: str, session_id: str) -> RoomSession:
        return await self._run(lambda db: _session(db, project_id, session_id))

    async def active_sessions(self, project_id: str) -> list[RoomSession]:
        return await self._run(lambda db: _sessions(db, "s.project_id = ? AND s.ended_at IS NULL", (project_id,)))

    async def recent_sessions(self, project_id: str, *, limit: int, room_id: str | None = None) -> list[RoomSession]:
        """The latest sessions first; with `room_id`, those of that room (also the ones it had
        before it was created through REST, under its current name)."""
        limit = _limit(limit)

        def work(db: sqlite3.Connection) -> list[RoomSession]:
            if room_id is None:
                return _sessions(db, "s.project_id = ?", (project_id,), limit)
            room = db.execute("SELECT name FROM rooms WHERE project_id = ? AND id = ?", (project_id, room_id)).fetchone()
            if room is None:
                raise NotFound(f"room id {room_id!r} does not exist")
            where = "s.project_id = ? AND (s.room_id = ? OR (s.room_id IS NULL AND s.room_name = ?))"
            return _sessions(db, where, (project_id, room_id, room[0]), limit)

        return await self._run(work)

    async def recent_room_sessions(self, project_id: str, room_name: str, *, limit: int) -> list[RoomSession]:
        limit = _limit(limit)

        def work(db: sqlite3.Connection) -> list[RoomSession]:
            _require_room(db, project_id, room_name)
            return _sessions(db, "s.project_id = ? AND s.room_name = ?", (project_id, room_name), limit)

        return await self._run(work)

    async def participant_counts(self, project_id: str, session_id: str) -> dict[str, int]:
        """Everyone who joined the session, by role (also those who have left)."""
        return (await self.get_session(project_id, session_id)).participants or {}

    async def session_events(self, project_id: str, session_id: str) -> list[RoomEvent]:
        """The session's events, oldest first."""

        def work(db: sqlite3.Connection) -> list[RoomEvent]:
            _session(db, project_id, session_id)
            return _events(db.execute(f"SELECT {_EVENT_COLUMNS} FROM room_events WHERE session_id = ? ORDER BY seq", (session_id,)).fetchall())

        return await self._run(work)

    async def require_session(self, project_id: str, session_id: str) -> None:
        await self.get_session(project_id, session_id)

    async def room_events(self, project_id: str, room_name: str, *, limit: int) -> list[RoomEvent]:
        """The room's latest events, newest first, across its sessions."""
        limit = _limit(limit)

        def work(db: sqlite3.Connection) -> list[RoomEvent]:
            _require_room(db, project_id, room_name)
            rows = db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM room_events WHERE project_id = ? AND room_name = ? ORDER BY seq DESC LIMIT ?",
                (project_id, room_name, limit),
            ).fetchall()
            return _events(rows)

        return await self._run(work)

    async def room_status(self, project_id: str, room_name: str, *, now: datetime | None = None) -> RoomStatus:
        """`Allocated` (since when, for how long) while the room has an active session."""

        def work(db: sqlite3.Connection) -> RoomStatus:
            _require_room(db, project_id, room_name)
            row = db.execute(
                "SELECT started_at FROM room_sessions WHERE project_id = ? AND room_name = ? AND ended_at IS NULL ORDER BY started_at DESC LIMIT 1",
                (project_id, room_name),
            ).fetchone()
            if row is None:
                return RoomStatus(status="Unallocated")
            running = (now or datetime.now(timezone.utc)) - datetime.fromisoformat(row[0])
            return RoomStatus(status="Allocated", allocated_at=row[0], running_for_seconds=max(0, int(running.total_seconds())))

        return await self._run(work)


class VolumeStore:
    """Room volumes: a record per volume (names unique in a room) and its directory,
    `<room data dir>/volumes/<name>`. `max_size_mb` is recorded, not enforced."""

    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    def _room(self, db: sqlite3.Connection, project_id: str, room: str) -> tuple[str, str]:
        """(id, name) of a room made through REST, given its name (or its id)."""
        require_project(db, project_id)
        row = db.execute("SELECT id, name FROM rooms WHERE project_id = ? AND name = ?", (project_id, room)).fetchone()
        row = row or db.execute("SELECT id, name FROM rooms WHERE project_id = ? AND id = ?", (project_id, room)).fetchone()
        if row is None:
            raise NotFound(f"room {room!r} does not exist")
        return row

    def _directory(self, project_id: str, room_name: str, subpath: str) -> Path:
        return self.plane.config.room_data_dir(project_id, room_name) / subpath

    def _volumes(self, db: sqlite3.Connection, where: str, parameters: tuple[Any, ...]) -> list[StorageVolume]:
        rows = db.execute(f"SELECT {_VOLUME_COLUMNS} FROM room_volumes v WHERE {where} ORDER BY v.name", parameters).fetchall()
        return [
            StorageVolume(
                id=id, room_id=room_id, name=name, subpath=subpath, description=description, metadata=msgspec.json.decode(metadata),
                annotations=msgspec.json.decode(annotations), storage_class=storage_class, max_size_mb=max_size_mb, phase="bound",
                provisioned=True, created_at=created_at, updated_at=updated_at,
            )
            for id, room_id, name, subpath, description, metadata, annotations, storage_class, max_size_mb, created_at, updated_at in rows
        ]  # fmt: skip

    def _volume(self, db: sqlite3.Connection, room_id: str, volume_id: str) -> StorageVolume:
        found = self._volumes(db, "v.room_id = ? AND v.id = ?", (room_id, volume_id))
        if not found:
            raise NotFound(f"volume {volume_id!r} does not exist")
        return found[0]

    async def list(self, project_id: str, room: str) -> list[StorageVolume]:
        def work(db: sqlite3.Connection) -> list[StorageVolume]:
            room_id, _ = self._room(db, project_id, room)
            return self._volumes(db, "v.room_id = ?", (room_id,))

        return await self.plane.run(work)

    async def create(
        self,
        project_id: str,
        room: str,
        *,
        name: str,
        description: str,
        metadata: dict[str, Any] | None,
        storage_class: str,
        max_size_mb: int | None,
        annotations: dict[str, str] | None,
    ) -> StorageVolume:
        if not is_valid_room_name(name):
            raise ControlError(f"invalid volume name {name!r}: a letter or digit, then up to 127 letters, digits, '_', '.' or '-'")
        if max_size_mb is not None and max_size_mb < 1:
            raise ControlError(f"max_size_mb must be at least 1, not {max_size_mb}")

        def work(db: sqlite3.Connection) -> StorageVolume:
            room_id, room_name = self._room(db, project_id, room)
            if db.execute("SELECT 1 FROM room_volumes WHERE room_id = ? AND name = ?", (room_id, name)).fetchone():
                raise Conflict(f"volume {name!r} already exists in room {room_name!r}")
            now, subpath, volume_id = now_iso(), f"volumes/{name}", str(uuid.uuid4())
            db.execute(
                "INSERT INTO room_volumes (id, room_id, name, subpath, description, metadata, annotations, storage_class, max_size_mb, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    volume_id, room_id, name, subpath, description, msgspec.json.encode(metadata or {}).decode(),
                    msgspec.json.encode(annotations or {}).decode(), storage_class, max_size_mb, now, now,
                ),
            )  # fmt: skip
            directory = self._directory(project_id, room_name, subpath)
            # A directory without a record is what a deleted room's volume left: not this one's.
            _remove_tree(directory)
            directory.mkdir(parents=True)
            return self._volume(db, room_id, volume_id)

        return await self.plane.run(work)

    async def expand(self, project_id: str, room: str, volume_id: str, *, max_size_mb: int) -> StorageVolume:
        """A volume's size only grows (a volume created without one may be given any)."""

        def work(db: sqlite3.Connection) -> StorageVolume:
            room_id, _ = self._room(db, project_id, room)
            volume = self._volume(db, room_id, volume_id)
            if max_size_mb < 1 or (volume.max_size_mb is not None and max_size_mb < volume.max_size_mb):
                raise ControlError(f"max_size_mb: a volume only grows ({volume.max_size_mb} MB now, {max_size_mb} MB asked)")
            db.execute("UPDATE room_volumes SET max_size_mb = ?, updated_at = ? WHERE id = ?", (max_size_mb, now_iso(), volume_id))
            return self._volume(db, room_id, volume_id)

        return await self.plane.run(work)

    def remove_room_volumes(self, db: sqlite3.Connection, project_id: str, room_id: str, room_name: str) -> None:
        """Inside the transaction that deletes a room: its volumes' records and directories."""
        for volume in self._volumes(db, "v.room_id = ?", (room_id,)):
            db.execute("DELETE FROM room_volumes WHERE id = ?", (volume.id,))
            _remove_tree(self._directory(project_id, room_name, volume.subpath))

    async def delete(self, project_id: str, room: str, volume_id: str) -> StorageVolume:
        """Remove the record and the directory with what it holds; answers the volume as it was."""

        def work(db: sqlite3.Connection) -> StorageVolume:
            room_id, room_name = self._room(db, project_id, room)
            volume = self._volume(db, room_id, volume_id)
            db.execute("DELETE FROM room_volumes WHERE id = ?", (volume_id,))
            _remove_tree(self._directory(project_id, room_name, volume.subpath))
            return volume

        return await self.plane.run(work)


__all__ = ["Attendance", "MIGRATIONS", "SessionStore", "VolumeStore"]
