"""Shared helpers of the scenario scripts. These run under the OFFICIAL interpreter
(`.venv-official`, Python 3.13, meshagent-api 0.56 + meshagent-tools 0.56), never under ours.

Environment (set by tests/interop/conftest.py):
  MESHAGENT_API_URL  http://127.0.0.1:<port> of our server: the official client derives the
                     room URL from it (ws://127.0.0.1:<port>/rooms/<room>, protocol/wire.md §2.1)
  MESHAGENT_API_KEY  the server's API key: the official ParticipantToken signs with it
  SCENARIO_ROOM      the room this scenario uses

A script builds a dict of observations and `run(main)` prints it as ONE JSON line on stdout
(the test asserts on it). Any unexpected exception prints `{"failed_at": <step>, "error": ...,
"observed": <what was gathered so far>}` and exits 1. Every step is bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

from meshagent.api import ApiScope, ParticipantToken, RoomClient, RoomException, WebSocketClientProtocol
from meshagent.api.urls import websocket_room_url

STEP_TIMEOUT = 20.0
SCRIPT_TIMEOUT = 90.0

observed: dict[str, Any] = {}
_current_step = ["start"]


def room_name() -> str:
    return os.environ["SCENARIO_ROOM"]


def mint(room: str, name: str, *, scope: ApiScope | None = None, role: str = "agent", api_key: str | None = None) -> str:
    """A participant JWT made by the official ParticipantToken, signed with MESHAGENT_API_KEY."""
    token = ParticipantToken(name=name)
    token.add_role_grant(role)
    token.add_room_grant(room)
    token.add_api_grant(scope if scope is not None else ApiScope.full())
    return token.to_jwt(api_key=api_key)  # None: MESHAGENT_API_KEY from the environment


@asynccontextmanager
async def connect(
    name: str,
    *,
    room: str | None = None,
    scope: ApiScope | None = None,
    token: str | None = None,
) -> AsyncIterator[RoomClient]:
    """An official RoomClient connected to `room` (default SCENARIO_ROOM) on our server."""
    room = room or room_name()
    url = websocket_room_url(room_name=room)  # from MESHAGENT_API_URL
    token = token or mint(room, name, scope=scope)
    client = RoomClient(protocol_factory=WebSocketClientProtocol(url=url, token=token).create_factory(), reconnect_timeout=0)
    async with client:
        yield client


def step(name: str) -> None:
    """Name the step that is running (reported if the script fails)."""
    _current_step[0] = name


async def timed(name: str, awaitable: Awaitable[Any], timeout: float = STEP_TIMEOUT) -> Any:
    step(name)
    return await asyncio.wait_for(awaitable, timeout)


def error_info(error: BaseException) -> dict[str, Any]:
    code = getattr(error, "code", None)
    return {"type": type(error).__name__, "code": int(code) if code is not None else None, "message": str(error)}


async def expect_error(name: str, awaitable: Awaitable[Any], timeout: float = STEP_TIMEOUT) -> dict[str, Any]:
    """Run a call that should fail: its error as a dict, or {"no_error": repr(result)}."""
    step(name)
    try:
        result = await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        return {"timeout": True}
    except Exception as error:  # noqa: BLE001 - the error is what we observe
        return error_info(error)
    return {"no_error": repr(result)}


async def wait_until(name: str, predicate: Callable[[], bool], timeout: float = STEP_TIMEOUT) -> bool:
    """Poll `predicate` (bounded); False if it never held."""
    step(name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def run(main: Callable[[], Awaitable[dict[str, Any] | None]]) -> None:
    try:
        result = asyncio.run(asyncio.wait_for(main(), SCRIPT_TIMEOUT))
    except BaseException as error:  # noqa: BLE001 - report everything as JSON
        print(
            json.dumps(
                {
                    "failed_at": _current_step[0],
                    "error": error_info(error),
                    "traceback": traceback.format_exc()[-4000:],
                    "observed": observed,
                },
                default=repr,
            ),
            flush=True,
        )
        sys.exit(1)
    print(json.dumps(result if result is not None else observed, default=repr), flush=True)


__all__ = [
    "RoomException",
    "connect",
    "error_info",
    "expect_error",
    "mint",
    "observed",
    "room_name",
    "run",
    "step",
    "timed",
    "wait_until",
]
