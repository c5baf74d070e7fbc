"""The pytest plugin of `meshagent_trio.testing` (entry point `pytest11`: `meshagent`).

Two fixtures, nothing else: no hooks, no autouse fixtures, no markers, and nothing of the
server or the clients is imported until a test asks for a fixture.

* `meshagent_server` — a local MeshAgent server for one test, in this process
  (`meshagent_trio.testing.InProcessServer`: `trio.run` in a thread of its own; see
  `meshagent_trio/testing/server.py` for why), listening on 127.0.0.1 and a free port, with a
  fresh data directory (from `tmp_path_factory`) and fresh credentials. It sets no environment
  variable; `monkeypatch.setenv` what `meshagent_server.environ()` returns to have clients find
  it through `MESHAGENT_API_URL` / `MESHAGENT_API_KEY`. Teardown stops it, waiting at most
  `stop_timeout` seconds (10), and fails the test's teardown if the server crashed.
* `meshagent_room` — `async with meshagent_room("room", name="alice", scope=…) as room:` joins
  `meshagent_server`'s room with a freshly minted token. The client is the one for the running
  event loop: `meshagent_trio` under Trio (pytest-trio, or AnyIO's plugin with the "trio"
  backend) and `meshagent_anyio` otherwise (asyncio), so a test exercises the same client
  class the code under test uses; both are the same shared client over different backends.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator

import pytest

if TYPE_CHECKING:
    from meshagent_core.client.room import RoomClient
    from meshagent_core.tokens import ApiScope

    from .server import InProcessServer


@pytest.fixture
def meshagent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator["InProcessServer"]:
    """A local MeshAgent server running in this process for this test (see the module
    docstring): `.api_url`, `.api_key`, `.room_url(room)`, `.token(room, name=…, scope=…)`,
    `.credentials`, `.environ()`."""
    from .server import InProcessServer

    server = InProcessServer(tmp_path_factory.mktemp("meshagent-server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def meshagent_room(meshagent_server: "InProcessServer") -> Callable[..., Any]:
    """A factory: `async with meshagent_room(room, name="participant", scope=None,
    expires=None, role="agent", **connect_kwargs) as client:` joins `meshagent_server`'s
    `room` (`connect_kwargs` go to `connect`, e.g. `reconnect_timeout=`)."""

    @asynccontextmanager
    async def join(
        room: str,
        *,
        name: str = "participant",
        scope: "ApiScope | None" = None,
        expires: datetime | int | None = None,
        role: str = "agent",
        **connect_kwargs: Any,
    ) -> AsyncIterator["RoomClient"]:
        token = meshagent_server.token(room, name=name, scope=scope, expires=expires, role=role)
        async with _client_module().connect(meshagent_server.room_url(room), token, **connect_kwargs) as client:
            yield client

    return join


def _client_module() -> Any:
    """`meshagent_trio` inside a Trio run, else `meshagent_anyio` (asyncio)."""
    import trio

    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        import meshagent_anyio

        return meshagent_anyio
    import meshagent_trio

    return meshagent_trio
