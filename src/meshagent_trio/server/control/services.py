"""The control plane's store of services and room services (protocol/rest.md §8): each service's
`ServiceSpec` as JSON, with its id inside, by project and (for a room service) room name.

A service's name (`metadata.name`) is unique among the project's services, and among the
services of one room; a project service and a room service may share a name. Room services are
kept by room name, whether or not the room was made through REST (rooms also begin with their
first participant); deleting a room through REST deletes its services (a trigger).

Storing a service does not run it: `services.room_services` runs it when its room starts.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from .common import Conflict, ControlError, NotFound, check_room_name, now_iso, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

#: The room name of project services (room services have their room's name).
PROJECT_SCOPE = ""

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE service_specs (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            room_name TEXT NOT NULL,
            name TEXT NOT NULL,
            spec TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (project_id, room_name, name)
        )""",
        """CREATE TRIGGER service_specs_of_deleted_rooms AFTER DELETE ON rooms BEGIN
            DELETE FROM service_specs WHERE project_id = OLD.project_id AND room_name = OLD.name;
        END""",
    ),
]


def _what(room_name: str, name: str) -> str:
    return f"service {name!r}" if room_name == PROJECT_SCOPE else f"service {name!r} of room {room_name!r}"


def _check_scope(room_name: str) -> None:
    if room_name != PROJECT_SCOPE:
        check_room_name(room_name)


class ServicesStore:
    """Services by project and room (`room_name` `PROJECT_SCOPE` for the project's own). A spec
    is a `ServiceSpec` as JSON, already checked; the store sets its `id`."""

    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    async def create(self, project_id: str, room_name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """The stored spec, with a new id (409 when its name is taken)."""
        _check_scope(room_name)
        stored = {**spec, "id": str(uuid.uuid4())}
        name = stored["metadata"]["name"]

        def work(db: sqlite3.Connection) -> dict[str, Any]:
            require_project(db, project_id)
            self._check_name_free(db, project_id, room_name, name, stored["id"])
            now = now_iso()
            db.execute(
                "INSERT INTO service_specs (id, project_id, room_name, name, spec, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (stored["id"], project_id, room_name, name, _json(stored), now, now),
            )
            return stored

        return await self.plane.run(work)

    async def update(self, project_id: str, room_name: str, service_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Replace the spec of the service `service_id` (404 when there is none; 409 when its new
        name is another service's; 400 when the spec names another id)."""
        _check_scope(room_name)
        if spec.get("id") not in (None, service_id):
            raise ControlError(f"service: id {spec['id']!r} differs from the path's {service_id!r}")
        stored = {**spec, "id": service_id}
        name = stored["metadata"]["name"]

        def work(db: sqlite3.Connection) -> dict[str, Any]:
            self._find(db, project_id, room_name, service_id)
            self._check_name_free(db, project_id, room_name, name, service_id)
            db.execute("UPDATE service_specs SET name = ?, spec = ?, updated_at = ? WHERE id = ?", (name, _json(stored), now_iso(), service_id))
            return stored

        return await self.plane.run(work)

    async def get(self, project_id: str, room_name: str, service_id: str) -> dict[str, Any]:
        return await self.plane.run(lambda db: self._find(db, project_id, room_name, service_id))

    async def get_by_name(self, project_id: str, room_name: str, name: str) -> dict[str, Any]:
        def work(db: sqlite3.Connection) -> dict[str, Any]:
            require_project(db, project_id)
            row = db.execute(
                "SELECT spec FROM service_specs WHERE project_id = ? AND room_name = ? AND name = ?", (project_id, room_name, name)
            ).fetchone()
            if row is None:
                raise NotFound(f"{_what(room_name, name)} does not exist")
            return msgspec.json.decode(row[0])

        return await self.plane.run(work)

    async def list(self, project_id: str, room_name: str) -> list[dict[str, Any]]:
        """The services, by name."""

        def work(db: sqlite3.Connection) -> list[dict[str, Any]]:
            require_project(db, project_id)
            rows = db.execute("SELECT spec FROM service_specs WHERE project_id = ? AND room_name = ? ORDER BY name", (project_id, room_name))
            return [msgspec.json.decode(row[0]) for row in rows]

        return await self.plane.run(work)

    async def delete(self, project_id: str, room_name: str, service_id: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            self._find(db, project_id, room_name, service_id)
            db.execute("DELETE FROM service_specs WHERE id = ?", (service_id,))

        await self.plane.run(work)

    @staticmethod
    def _find(db: sqlite3.Connection, project_id: str, room_name: str, service_id: str) -> dict[str, Any]:
        require_project(db, project_id)
        row = db.execute(
            "SELECT spec FROM service_specs WHERE project_id = ? AND room_name = ? AND id = ?", (project_id, room_name, service_id)
        ).fetchone()
        if row is None:
            where = "" if room_name == PROJECT_SCOPE else f" in room {room_name!r}"
            raise NotFound(f"service id {service_id!r} does not exist{where}")
        return msgspec.json.decode(row[0])

    @staticmethod
    def _check_name_free(db: sqlite3.Connection, project_id: str, room_name: str, name: str, service_id: str) -> None:
        clash = db.execute(
            "SELECT 1 FROM service_specs WHERE project_id = ? AND room_name = ? AND name = ? AND id != ?", (project_id, room_name, name, service_id)
        ).fetchone()
        if clash is not None:
            raise Conflict(f"{_what(room_name, name)} already exists")


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


__all__ = ["MIGRATIONS", "PROJECT_SCOPE", "ServicesStore"]
