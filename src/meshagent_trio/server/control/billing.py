"""Usage as the server recorded it (protocol/rest.md §21): participant minutes from the sessions
store's tables (`room_sessions`, `session_participants`), cut into hour or day buckets (UTC), and
the bytes each room's storage holds now, walked on disk. The local server has no billing, so
this store keeps no tables of its own.

A participant's time runs from `joined_at` to `left_at` (to now while still in the room); a
stretch that crosses a bucket boundary counts in both buckets, and only the part inside
`[start, end)` counts. Rows are summed per (bucket, room).
"""

from __future__ import annotations

import os
import sqlite3
import stat as stat_module
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from meshagent_core.rest.billing import PARTICIPANT_MINUTES
from meshagent_core.toolkits.storage import UPLOAD_TEMP_PREFIX

from ..config import ServerConfig
from ..signed_downloads import ROOM_STORAGE_FOLDER
from .common import require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = []


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()


def minutes_by_bucket(
    stretches: Iterable[tuple[str, float, float]], *, bucket: int, start: float | None, end: float | None
) -> list[dict[str, Any]]:
    """Rows `{usage_type, room, date, total}` (minutes) of `(room, from, to)` stretches (epoch
    seconds), cut at multiples of `bucket` seconds and clipped to `[start, end)`. Pure."""
    totals: dict[tuple[float, str], float] = {}
    for room, begin, finish in stretches:
        begin = begin if start is None else max(begin, start)
        finish = finish if end is None else min(finish, end)
        while begin < finish:
            bucket_start = begin - begin % bucket
            piece_end = min(finish, bucket_start + bucket)
            totals[(bucket_start, room)] = totals.get((bucket_start, room), 0.0) + (piece_end - begin) / 60
            begin = piece_end
    return [
        {"usage_type": PARTICIPANT_MINUTES, "room": room, "date": _iso(bucket_start), "total": round(total, 6)}
        for (bucket_start, room), total in sorted(totals.items())
    ]


def _folder_bytes(folder: Path) -> int:
    """The bytes of the regular files under `folder` (links not followed; unfinished uploads
    left out). Blocking."""
    total = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            if name.startswith(UPLOAD_TEMP_PREFIX):
                continue
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if stat_module.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def storage_by_room(config: ServerConfig, project_id: str, room: str | None) -> dict[str, int]:
    """Room name -> bytes in its storage now, for every room of the project that has a data
    directory (or only `room`). Blocking."""
    rooms_folder = config.room_data_dir(project_id, "_").parent
    try:
        names = sorted(entry.name for entry in os.scandir(rooms_folder) if entry.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return {}
    if room is not None:
        names = [name for name in names if name == room]
    return {name: _folder_bytes(rooms_folder / name / ROOM_STORAGE_FOLDER) for name in names}


class BillingStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    async def participant_stretches(self, project_id: str, *, room: str | None, users: list[str] | None, now: float) -> list[tuple[str, float, float]]:
        """`(room, joined, left)` in epoch seconds of every participant of the project's sessions
        (of `room`, of the `users` by participant name), `now` for those still in the room; 404
        for an unknown project."""

        def work(db: sqlite3.Connection) -> list[tuple[str, str, str | None]]:
            require_project(db, project_id)
            query = (
                "SELECT s.room_name, p.joined_at, p.left_at FROM session_participants p JOIN room_sessions s ON s.id = p.session_id "
                "WHERE s.project_id = ?"
            )
            parameters: list[Any] = [project_id]
            if room is not None:
                query += " AND s.room_name = ?"
                parameters.append(room)
            if users:
                query += f" AND p.name IN ({', '.join('?' for _ in users)})"
                parameters.extend(users)
            return db.execute(query, parameters).fetchall()

        rows = await self.plane.run(work)
        return [(name, _seconds(joined), _seconds(left) if left else now) for name, joined, left in rows]
