"""What every control-plane store uses: the errors REST turns into statuses, timestamps, and
the checks of names and projects."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timezone


_ROOM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def is_valid_room_name(name: str) -> bool:
    """The room names this server serves: a letter or digit, then up to 127 letters, digits,
    `_`, `.` or `-`, never `..` (a room name is a folder of the data directory)."""
    return bool(_ROOM_NAME.match(name)) and ".." not in name


class ControlError(Exception):
    """A request the control plane refuses; `status` is its HTTP status."""

    status = 400
    code = "invalid_request"


class NotFound(ControlError):
    status = 404
    code = "not_found"


class Conflict(ControlError):
    status = 409
    code = "conflict"


class Forbidden(ControlError):
    status = 403
    code = "forbidden"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def check_room_name(name: str) -> None:
    if not is_valid_room_name(name):
        raise ControlError(f"invalid room name {name!r}: a letter or digit, then up to 127 letters, digits, '_', '.' or '-'")


def require_project(db: sqlite3.Connection, project_id: str) -> None:
    if db.execute("SELECT 1 FROM projects WHERE id = ?", (project_id,)).fetchone() is None:
        raise NotFound(f"project {project_id!r} does not exist")


__all__ = ["Conflict", "ControlError", "Forbidden", "NotFound", "check_room_name", "is_valid_room_name", "now_iso", "require_project"]
