"""The control plane's store of routes and custom domains (protocol/rest.md §10).

A route's domain, and a custom domain, belong to one project of the whole server (a request's
`Host` can only go to one place): a domain taken anywhere is a 409. The server's own host names
(`reserved_route_domains`, which `get_config` reports) and their subdomains are refused.

Routes are stored as their validated `RouteSpec` (an agent backend must name a managed agent
of the project; a room backend's room may be made later); sending requests whose `Host` matches one to
the room's service is the job of the service runner (not here). Custom domains are recorded
only: the local server provisions no DNS record and no certificate, so a custom domain stays
`pending_dns` with a condition saying so.
"""

from __future__ import annotations

import ipaddress
import sqlite3
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from meshagent_core.rest.domains import CustomDomain, CustomDomainCondition, RouteInfo, RouteSpec, check_route_spec, is_under, normalize_domain

from ..config import ServerConfig
from .common import Conflict, ControlError, NotFound, check_room_name, key_page, now_iso, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE http_routes (
            domain TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            room_name TEXT,
            agent_name TEXT,
            spec TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX http_routes_by_room ON http_routes (project_id, room_name)",
        """CREATE TABLE custom_domains (
            domain TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL
        )""",
    ),
]

NOT_PROVISIONED = "the local server provisions no DNS records or certificates: point the domain at this server yourself"


def reserved_route_domains(config: ServerConfig) -> list[str]:
    """The host names of this server (`localhost`, and the names of its host and public URL
    that are not IP addresses): no route or custom domain may be one of them or under one."""
    names = ["localhost"]
    hosts = [config.host, urlsplit(config.public_url).hostname if config.public_url else None]
    for host in hosts:
        if not host:
            continue
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host.lower() not in names:
                names.append(host.lower())
    return names


def _spec(value: str) -> RouteSpec:
    return msgspec.json.decode(value, type=RouteSpec)


def _route(row: tuple[Any, ...]) -> RouteInfo:
    return RouteInfo(domain=row[0], spec=_spec(row[1]))


def _custom_domain(domain: str, project_id: str, created_at: str) -> CustomDomain:
    condition = CustomDomainCondition(type="Ready", status="false", reason="NotProvisioned", message=NOT_PROVISIONED, observed_at=created_at)
    return CustomDomain(domain=domain, project_id=project_id, phase="pending_dns", available=False, created_at=created_at, conditions=[condition])


def _like(filter: str | None) -> str:
    """`filter` as a case-insensitive substring of the domain (LIKE pattern, escaped)."""
    text = (filter or "").strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{text}%"


class DomainsStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    @property
    def reserved(self) -> list[str]:
        return reserved_route_domains(self.plane.config)

    def _domain(self, value: str, field: str, *, wildcard: bool = False) -> str:
        """The domain normalized, unless it is malformed or reserved (ControlError naming `field`)."""
        reserved = is_under(value.strip().lower().rstrip("."), self.reserved)
        if reserved is not None:
            raise ControlError(f"{field}: {value!r} is reserved by this server ({reserved}; see get_config's reserved_route_domains)")
        try:
            return normalize_domain(value, field=field, wildcard=wildcard)
        except ValueError as error:
            raise ControlError(str(error)) from None

    def _checked_spec(self, spec: RouteSpec) -> RouteSpec:
        self._domain(spec.domain, "spec.domain")
        try:
            check_route_spec(spec)
        except ValueError as error:
            raise ControlError(str(error)) from None
        spec.domain = self._domain(spec.domain, "spec.domain")
        if spec.backend.room is not None:
            try:
                check_room_name(spec.backend.room.name)
            except ControlError as error:
                raise ControlError(f"spec.backend.room.name: {error}") from None
        return spec

    # --- routes ---------------------------------------------------------------------------------

    async def create_route(self, project_id: str, spec: RouteSpec) -> RouteInfo:
        spec = self._checked_spec(spec)
        now = now_iso()

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            _require_agent_backend(db, project_id, spec)
            if db.execute("SELECT 1 FROM http_routes WHERE domain = ?", (spec.domain,)).fetchone():
                raise Conflict(f"a route for {spec.domain!r} already exists")
            db.execute(
                "INSERT INTO http_routes (domain, project_id, room_name, agent_name, spec, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (spec.domain, project_id, _room_of(spec), _agent_of(spec), msgspec.json.encode(spec).decode(), now, now),
            )

        await self.plane.run(work)
        return RouteInfo(domain=spec.domain, spec=spec)

    async def update_route(self, project_id: str, domain: str, spec: RouteSpec) -> None:
        """Replaces the route's spec; the spec's domain is the path's (a route is not renamed)."""
        spec = self._checked_spec(spec)
        if spec.domain != domain.strip().lower():
            raise ControlError(f"spec.domain {spec.domain!r} differs from the route's domain {domain!r}")

        def work(db: sqlite3.Connection) -> None:
            self._require_route(db, project_id, spec.domain)
            _require_agent_backend(db, project_id, spec)
            db.execute(
                "UPDATE http_routes SET room_name = ?, agent_name = ?, spec = ?, updated_at = ? WHERE domain = ?",
                (_room_of(spec), _agent_of(spec), msgspec.json.encode(spec).decode(), now_iso(), spec.domain),
            )

        await self.plane.run(work)

    def _require_route(self, db: sqlite3.Connection, project_id: str, domain: str) -> tuple[Any, ...]:
        require_project(db, project_id)
        row = db.execute("SELECT domain, spec FROM http_routes WHERE project_id = ? AND domain = ?", (project_id, domain.strip().lower())).fetchone()
        if row is None:
            raise NotFound(f"route {domain!r} does not exist")
        return row  # type: ignore[no-any-return]

    async def get_route(self, project_id: str, domain: str) -> RouteInfo:
        return _route(await self.plane.run(lambda db: self._require_route(db, project_id, domain)))

    async def delete_route(self, project_id: str, domain: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            row = self._require_route(db, project_id, domain)
            db.execute("DELETE FROM http_routes WHERE domain = ?", (row[0],))

        await self.plane.run(work)

    async def list_routes(self, project_id: str, *, page_size: int, after: str | None, filter: str | None) -> tuple[list[RouteInfo], int, str | None]:
        """One page, by domain, after the domain `after`; (routes, total, next token or None)."""

        def work(db: sqlite3.Connection) -> tuple[list[RouteInfo], int, str | None]:
            require_project(db, project_id)
            return key_page(
                db, "http_routes", "domain, spec", _route, project_id=project_id, after=after, page_size=page_size,
                key="domain", where=" AND domain LIKE ? ESCAPE '\\'", parameters=(_like(filter),),
            )  # fmt: skip

        return await self.plane.run(work)

    async def list_room_routes(self, project_id: str, room_name: str, *, count: int, offset: int, filter: str | None) -> tuple[list[RouteInfo], int]:
        """The routes to the room, by domain: `count` of them from `offset`; (routes, total)."""

        def work(db: sqlite3.Connection) -> tuple[list[RouteInfo], int]:
            require_project(db, project_id)
            where = "project_id = ? AND room_name = ? AND domain LIKE ? ESCAPE '\\'"
            parameters = (project_id, room_name, _like(filter))
            total = db.execute(f"SELECT count(*) FROM http_routes WHERE {where}", parameters).fetchone()[0]
            rows = db.execute(f"SELECT domain, spec FROM http_routes WHERE {where} ORDER BY domain LIMIT ? OFFSET ?", (*parameters, count, offset)).fetchall()
            return [_route(row) for row in rows], total

        return await self.plane.run(work)

    # --- custom domains -------------------------------------------------------------------------

    async def create_custom_domain(self, project_id: str, domain: str) -> CustomDomain:
        normalized = self._domain(domain, "domain", wildcard=True)
        created_at = now_iso()

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            if db.execute("SELECT 1 FROM custom_domains WHERE domain = ?", (normalized,)).fetchone():
                raise Conflict(f"custom domain {normalized!r} already exists")
            db.execute("INSERT INTO custom_domains (domain, project_id, created_at) VALUES (?, ?, ?)", (normalized, project_id, created_at))

        await self.plane.run(work)
        return _custom_domain(normalized, project_id, created_at)

    def _require_custom_domain(self, db: sqlite3.Connection, project_id: str, domain: str) -> tuple[Any, ...]:
        require_project(db, project_id)
        row = db.execute(
            "SELECT domain, project_id, created_at FROM custom_domains WHERE project_id = ? AND domain = ?", (project_id, domain.strip().lower())
        ).fetchone()
        if row is None:
            raise NotFound(f"custom domain {domain!r} does not exist")
        return row  # type: ignore[no-any-return]

    async def get_custom_domain(self, project_id: str, domain: str) -> CustomDomain:
        return _custom_domain(*await self.plane.run(lambda db: self._require_custom_domain(db, project_id, domain)))

    async def delete_custom_domain(self, project_id: str, domain: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            row = self._require_custom_domain(db, project_id, domain)
            db.execute("DELETE FROM custom_domains WHERE domain = ?", (row[0],))

        await self.plane.run(work)

    async def list_custom_domains(self, project_id: str, *, page_size: int, after: str | None, filter: str | None) -> tuple[list[CustomDomain], str | None]:
        def work(db: sqlite3.Connection) -> tuple[list[CustomDomain], str | None]:
            require_project(db, project_id)
            domains, _, next_token = key_page(
                db, "custom_domains", "domain, project_id, created_at", lambda row: _custom_domain(*row), project_id=project_id,
                after=after, page_size=page_size, key="domain", where=" AND domain LIKE ? ESCAPE '\\'", parameters=(_like(filter),),
            )  # fmt: skip
            return domains, next_token

        return await self.plane.run(work)


def _require_agent_backend(db: sqlite3.Connection, project_id: str, spec: RouteSpec) -> None:
    """An agent backend names a managed agent of the project (a room backend's room may be made
    later: rooms come into being when first joined)."""
    agent = spec.backend.agent
    if agent is not None and db.execute("SELECT 1 FROM agents WHERE project_id = ? AND name = ?", (project_id, agent.name)).fetchone() is None:
        raise NotFound(f"spec.backend.agent.name: agent {agent.name!r} does not exist")


def _room_of(spec: RouteSpec) -> str | None:
    return spec.backend.room.name if spec.backend.room is not None else None


def _agent_of(spec: RouteSpec) -> str | None:
    return spec.backend.agent.name if spec.backend.agent is not None else None


__all__ = ["DomainsStore", "MIGRATIONS", "NOT_PROVISIONED", "reserved_route_domains"]
