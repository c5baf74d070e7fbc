"""What the Files API (protocol/rest.md §22) asks of the control plane: whether a target exists.
A room target is a room this server knows (made through REST, or one that has had a session);
an agent target is a managed agent of the project. The files themselves are on disk (see
`rest/files_storage.py`); this component keeps no tables."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from .common import NotFound, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = []


class FilesStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    async def require_target(self, project_id: str, kind: str, name: str) -> None:
        """404 naming an unknown project, room or agent."""

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            if kind == "agent":
                found = db.execute("SELECT 1 FROM agents WHERE project_id = ? AND name = ?", (project_id, name)).fetchone()
            else:
                found = db.execute(
                    "SELECT 1 FROM rooms WHERE project_id = ? AND name = ? UNION ALL SELECT 1 FROM room_sessions WHERE project_id = ? AND room_name = ? LIMIT 1",
                    (project_id, name, project_id, name),
                ).fetchone()
            if found is None:
                raise NotFound(f"{kind} {name!r} does not exist in project {project_id!r}")

        await self.plane.run(work)
