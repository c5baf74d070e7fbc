"""Helpers for tests against the real local server: tokens and room URLs."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator

import trio

from meshagent_core.tokens import ApiScope
from meshagent_trio.server import Credentials, Server, ServerConfig
from meshagent_trio.testing import participant_token


def mint(
    credentials: Credentials,
    room: str = "test-room",
    *,
    name: str = "alice",
    scope: ApiScope | None = None,
    expires: datetime | None = None,
    role: str = "agent",
) -> str:
    return participant_token(credentials, room, name=name, scope=scope, expires=expires, role=role)


def room_url(server: Server, room: str = "test-room") -> str:
    return f"ws://127.0.0.1:{server.port}/rooms/{room}"


@asynccontextmanager
async def running_server(data_dir: Path, credentials: Credentials) -> AsyncIterator[Server]:
    """A server that is stopped (all its tasks finished) when the block ends."""
    server = Server(ServerConfig(data_dir=data_dir, credentials=credentials, port=0))
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


def record_own_reads(connection: Any) -> list[Any]:
    """Record each call on `connection` that reads its own answer (wraps the connection's
    `_read_until`; see `RoomConnection`'s module docstring)."""
    reads: list[Any] = []
    read_until = connection._read_until

    async def recording(outcome: Any) -> None:
        reads.append(outcome)
        await read_until(outcome)

    connection._read_until = recording
    return reads
