"""What every control-plane store uses: the errors REST turns into statuses, timestamps, and
the checks of names and projects."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar


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


T = TypeVar("T")


def key_page(
    db: sqlite3.Connection,
    table: str,
    columns: str,
    read: Callable[[tuple[Any, ...]], T],
    *,
    project_id: str,
    after: str | None,
    page_size: int,
    key: str = "name",
    where: str = "",
    parameters: tuple[Any, ...] = (),
) -> tuple[list[T], int, str | None]:
    """One page of the project's rows of `table` ordered by the unique column `key`, those after
    the key `after` (keyset paging: a row added or removed meanwhile neither repeats nor skips
    another): (`read` of each row's `columns`, how many rows match in all, the page's last key
    when more follow, else None). `where` (`" AND …"` with `parameters`) narrows the rows."""
    condition = f"project_id = ?{where}"
    total = db.execute(f"SELECT count(*) FROM {table} WHERE {condition}", (project_id, *parameters)).fetchone()[0]
    rows = db.execute(
        f"SELECT {columns}, {key} FROM {table} WHERE {condition} AND {key} > ? ORDER BY {key} LIMIT ?",
        (project_id, *parameters, after or "", page_size + 1),
    ).fetchall()
    page = rows[:page_size]
    return [read(row[:-1]) for row in page], total, page[-1][-1] if len(rows) > page_size else None
