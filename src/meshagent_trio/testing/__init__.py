"""`meshagent_trio.testing`: a pytest plugin and helpers for testing code against a real local
MeshAgent server, running inside the test process.

Installing `meshagent-trio` registers the plugin (entry point `pytest11`: `meshagent`); it
adds two fixtures and nothing else (no hooks, no autouse fixtures, no markers):

* `meshagent_server`: an `InProcessServer` on 127.0.0.1 and a free port, with a fresh data
  directory and fresh credentials, for one test (`.api_url`, `.api_key`, `.room_url(room)`,
  `.token(room, name=…, scope=…)`, `.credentials`, `.environ()`);
* `meshagent_room`: `async with meshagent_room("room", name="alice") as room:` joins that
  server's room as a new participant (a `meshagent_trio.RoomClient` under Trio, a
  `meshagent_anyio.RoomClient` under asyncio).

Works under pytest-trio (`@pytest.mark.trio`), AnyIO's plugin (`@pytest.mark.anyio`, on
asyncio or Trio) and in synchronous tests. The names below are imported on first use, so
importing this package (as pytest does at startup) costs nothing more than `meshagent_trio`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import InProcessServer, ServerError
    from .tokens import new_credentials, participant_token

__all__ = ["InProcessServer", "ServerError", "new_credentials", "participant_token"]

_WHERE = {
    "InProcessServer": "server",
    "ServerError": "server",
    "new_credentials": "tokens",
    "participant_token": "tokens",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
