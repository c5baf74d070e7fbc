"""The command line against one local server running in a thread of the test process; each
test gets its own room name and an environment holding only that server's URL and key."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from clirun import CliResult, invoke
from meshagent_trio.testing import InProcessServer

#: Variables a developer's shell might carry that would change what the commands do.
CLEARED = (
    "MESHAGENT_API_URL",
    "MESHAGENT_API_KEY",
    "MESHAGENT_TOKEN",
    "MESHAGENT_ROOM",
    "MESHAGENT_ROOM_URL",
    "MESHAGENT_PROFILE_API_URL",
    "MESHAGENT_PROJECT_ID",
    "MESHAGENT_SECRET",
    "MESHAGENT_PARTICIPANT_NAME",
    "MESHAGENT_CLI_TRACEBACK",
)


@pytest.fixture(scope="session")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with InProcessServer(tmp_path_factory.mktemp("cli-server")) as server:
        yield server


@pytest.fixture
def cli_env(cli_server: InProcessServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> InProcessServer:
    """The environment points at the test server; the working directory is an empty temporary
    one (so no stray `.env` is read)."""
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in cli_server.environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    return cli_server


@pytest.fixture
def room_name() -> str:
    return f"cli-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def cli(cli_env: InProcessServer) -> Callable[..., CliResult]:
    """`cli("room", "storage", "ls", "--room", name)` runs the command line in this process."""
    return invoke
