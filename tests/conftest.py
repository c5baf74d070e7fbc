"""Shared fixtures: a real local server on a free port (helpers in roomtest.py)."""

from __future__ import annotations

import inspect
import secrets
import uuid
from pathlib import Path
from typing import AsyncIterator

import pytest
import trio
from hypothesis import settings

from meshagent_trio.server import Credentials, Server, ServerConfig

# Property tests check what is generated, not how fast: on a shared two-core CI machine an
# example that first touches a cold import or a page-in can take 400 ms, which Hypothesis'
# default 200 ms deadline reports as a flaky failure. No test here relies on the deadline.
settings.register_profile("meshagent", deadline=None)
settings.load_profile("meshagent")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Async tests run on Trio, except those marked `anyio` (which choose their backend)."""
    for item in items:
        function = getattr(item, "function", None)
        if inspect.iscoroutinefunction(function) and item.get_closest_marker("anyio") is None:
            item.add_marker(pytest.mark.trio)


@pytest.fixture
def credentials() -> Credentials:
    return Credentials(str(uuid.uuid4()), str(uuid.uuid4()), secrets.token_urlsafe(24))


@pytest.fixture
async def server(tmp_path: Path, credentials: Credentials, nursery: trio.Nursery) -> AsyncIterator[Server]:
    config = ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0)
    server = Server(config)
    await nursery.start(server.serve)
    yield server
