"""The control plane's store of LLM loggers and LLM delegations (protocol/rest.md §12).

A logger names a feed of its project (which must exist; deleting the feed deletes its loggers)
and a filter expression, stored as given (trimmed): the local server runs no LLM proxy, so no
LLM call is logged through it. A delegation is recorded with its token (`signed_tokens`, kind
`llm`), which `verify_delegation` checks as an LLM proxy would: signature, expiry, and that the
delegation is still recorded.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import msgspec

from meshagent_core.rest.access import AccessSubject
from meshagent_core.rest.llm import LLMLogger, LlmDelegation

from . import signed_tokens
from .common import ControlError, NotFound, now_iso, require_project

if TYPE_CHECKING:
    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE llm_loggers (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            destination_feed_id TEXT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
            filter_expression TEXT NOT NULL,
            paused INTEGER NOT NULL,
            annotations TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE llm_delegations (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            delegator TEXT NOT NULL,
            subject TEXT NOT NULL,
            max_budget TEXT NOT NULL,
            providers TEXT,
            models TEXT,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        )""",
    ),
]

TOKEN_KIND = "llm"
DEFAULT_DELEGATION_SECONDS = 3600
_LOGGER_COLUMNS = "id, project_id, destination_feed_id, filter_expression, paused, annotations, created_at"
_DELEGATION_COLUMNS = "id, project_id, delegator, subject, max_budget, providers, models, expires_at"


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _logger(row: tuple[Any, ...]) -> LLMLogger:
    id, project_id, feed_id, expression, paused, annotations, created_at = row
    return LLMLogger(
        id=id, project_id=project_id, destination_feed_id=feed_id, filter_expression=expression, paused=bool(paused),
        annotations=msgspec.json.decode(annotations), created_at=created_at,
    )  # fmt: skip


def _require_logger(db: sqlite3.Connection, project_id: str, logger_id: str) -> tuple[Any, ...]:
    require_project(db, project_id)
    row = db.execute(f"SELECT {_LOGGER_COLUMNS} FROM llm_loggers WHERE project_id = ? AND id = ?", (project_id, logger_id)).fetchone()
    if row is None:
        raise NotFound(f"LLM logger {logger_id!r} does not exist")
    return row  # type: ignore[no-any-return]


def _feed_id(value: str) -> str:
    feed_id = value.strip()
    if not feed_id:
        raise ControlError("destination_feed_id must not be empty")
    return feed_id


def _require_feed(db: sqlite3.Connection, project_id: str, feed_id: str) -> None:
    if db.execute("SELECT 1 FROM feeds WHERE project_id = ? AND id = ?", (project_id, feed_id)).fetchone() is None:
        raise NotFound(f"destination_feed_id: feed {feed_id!r} does not exist")


def budget(value: str) -> str:
    """A budget as a decimal string ("12.50"): a finite number, 0 or more."""
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise ControlError(f"max_budget: {value!r} is not a decimal number") from None
    if not amount.is_finite() or amount < 0:
        raise ControlError(f"max_budget: {value!r} must be a finite amount of 0 or more")
    return str(amount)


class LlmStore:
    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane

    # --- loggers --------------------------------------------------------------------------------

    async def create_logger(self, project_id: str, *, destination_feed_id: str, filter_expression: str, paused: bool, annotations: dict[str, str]) -> LLMLogger:
        feed_id = _feed_id(destination_feed_id)
        row = (str(uuid.uuid4()), project_id, feed_id, filter_expression.strip(), int(paused), _json(annotations), now_iso())

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            _require_feed(db, project_id, feed_id)
            db.execute(f"INSERT INTO llm_loggers ({_LOGGER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row)

        await self.plane.run(work)
        return _logger(row)

    async def update_logger(
        self, project_id: str, logger_id: str, *, destination_feed_id: str, filter_expression: str, paused: bool, annotations: dict[str, str]
    ) -> None:
        feed_id = _feed_id(destination_feed_id)

        def work(db: sqlite3.Connection) -> None:
            _require_logger(db, project_id, logger_id)
            _require_feed(db, project_id, feed_id)
            db.execute(
                "UPDATE llm_loggers SET destination_feed_id = ?, filter_expression = ?, paused = ?, annotations = ? WHERE id = ?",
                (feed_id, filter_expression.strip(), int(paused), _json(annotations), logger_id),
            )

        await self.plane.run(work)

    async def get_logger(self, project_id: str, logger_id: str) -> LLMLogger:
        return _logger(await self.plane.run(lambda db: _require_logger(db, project_id, logger_id)))

    async def list_loggers(self, project_id: str) -> list[LLMLogger]:
        def work(db: sqlite3.Connection) -> list[LLMLogger]:
            require_project(db, project_id)
            rows = db.execute(f"SELECT {_LOGGER_COLUMNS} FROM llm_loggers WHERE project_id = ? ORDER BY created_at, id", (project_id,)).fetchall()
            return [_logger(row) for row in rows]

        return await self.plane.run(work)

    async def delete_logger(self, project_id: str, logger_id: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            _require_logger(db, project_id, logger_id)
            db.execute("DELETE FROM llm_loggers WHERE id = ?", (logger_id,))

        await self.plane.run(work)

    # --- delegations ----------------------------------------------------------------------------

    async def delegate(
        self,
        project_id: str,
        *,
        delegator: AccessSubject,
        subject: AccessSubject,
        max_budget: str,
        providers: list[str] | None,
        models: list[str] | None,
        expires_in_seconds: int | None,
    ) -> LlmDelegation:
        """A delegation to `subject` (a service account of the project, or a user named by id or
        e-mail) of up to `max_budget` on LLM calls, for `expires_in_seconds` (default an hour)."""
        amount = budget(max_budget)
        if subject.type not in ("service_account", "user"):
            raise ControlError(f"subject.type: LLM calls are delegated to a service_account or a user, not a {subject.type}")
        if not (subject.id or (subject.type == "user" and subject.email)):
            raise ControlError("subject.id: the subject needs an id" + (" or an email" if subject.type == "user" else ""))
        seconds = DEFAULT_DELEGATION_SECONDS if expires_in_seconds is None else expires_in_seconds
        if seconds <= 0:
            raise ControlError("expires_in_seconds must be greater than zero")
        issued_at = int(self.plane.config.clock())
        delegation = LlmDelegation(
            id=str(uuid.uuid4()),
            token="",
            expires_at=datetime.fromtimestamp(issued_at + seconds, timezone.utc).isoformat(),
            project_id=project_id,
            delegator=delegator,
            subject=subject,
            max_budget=amount,
            providers=providers,
            models=models,
        )

        def work(db: sqlite3.Connection) -> None:
            require_project(db, project_id)
            if subject.type == "service_account" and db.execute(
                "SELECT 1 FROM service_accounts WHERE project_id = ? AND id = ?", (project_id, subject.id)
            ).fetchone() is None:
                raise NotFound(f"subject: service account {subject.id!r} does not exist")
            db.execute(
                f"INSERT INTO llm_delegations ({_DELEGATION_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    delegation.id, project_id, _json(delegator), _json(subject), amount,
                    None if providers is None else _json(providers), None if models is None else _json(models),
                    delegation.expires_at, now_iso(),
                ),
            )  # fmt: skip

        await self.plane.run(work)
        claims = {"sub": subject.id or subject.email or "", "jti": delegation.id, "project_id": project_id, "max_budget": amount}
        delegation.token = signed_tokens.mint(self._secret, TOKEN_KIND, claims, issued_at=issued_at, expires_at=issued_at + seconds)
        return delegation

    async def verify_delegation(self, token: str) -> LlmDelegation:
        """The delegation a token stands for (`signed_tokens.TokenRefused`, 403, when it is not
        a valid, unexpired LLM delegation token of this server, or the delegation is gone)."""
        claims = signed_tokens.verify(self._secret, TOKEN_KIND, token, now=self.plane.config.clock())
        row = await self.plane.run(
            lambda db: db.execute(f"SELECT {_DELEGATION_COLUMNS} FROM llm_delegations WHERE id = ?", (claims.get("jti"),)).fetchone()
        )
        if row is None:
            raise signed_tokens.TokenRefused("the delegation of this token no longer exists")
        id, project_id, delegator, subject, amount, providers, models, expires_at = row
        return LlmDelegation(
            id=id, token=token, expires_at=expires_at, project_id=project_id,
            delegator=msgspec.json.decode(delegator, type=AccessSubject), subject=msgspec.json.decode(subject, type=AccessSubject),
            max_budget=amount, providers=None if providers is None else msgspec.json.decode(providers),
            models=None if models is None else msgspec.json.decode(models),
        )  # fmt: skip

    @property
    def _secret(self) -> str:
        return self.plane.config.credentials.secret


__all__ = ["LlmStore", "MIGRATIONS", "budget"]
