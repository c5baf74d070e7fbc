"""Client tests run three ways: meshagent_trio on Trio, meshagent_anyio on asyncio and on Trio,
against the local server in a subprocess (an asyncio loop cannot host the Trio server).
Test modules here set `pytestmark = pytest.mark.anyio` and take the `client_module` fixture."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Iterator

import pytest

from meshagent_trio.server import LocalServerProcess

VARIANTS = [("meshagent_trio", "trio"), ("meshagent_anyio", "asyncio"), ("meshagent_anyio", "trio")]


@pytest.fixture(params=VARIANTS, ids=[f"{m}-{b}" for m, b in VARIANTS])
def client_variant(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


@pytest.fixture
def anyio_backend(client_variant: tuple[str, str]) -> str:
    return client_variant[1]


@pytest.fixture
def client_module(client_variant: tuple[str, str]) -> ModuleType:
    return importlib.import_module(client_variant[0])


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServerProcess]:
    with LocalServerProcess() as server:
        yield server
