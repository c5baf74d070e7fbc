"""Calling the official client's REST methods from a test: `official_scripts/rest_calls.py` run
by the official interpreter against a server, one subprocess for a whole list of calls (the
interpreter is slow to start). What each call returned or raised comes back in order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import trio

SCRIPT = Path(__file__).parent / "official_scripts" / "rest_calls.py"

#: a call: (method, keyword arguments), or the script's own request form (`{"method", "kwargs", "models"?}`)
Call = tuple[str, dict[str, Any]] | dict[str, Any]


def requests(calls: Sequence[Call]) -> bytes:
    return json.dumps([call if isinstance(call, dict) else {"method": call[0], "kwargs": call[1]} for call in calls]).encode()


async def official_rest(official_python: str, api_url: str, token: str, calls: Sequence[Call]) -> list[dict[str, Any]]:
    """The official client's answers to `calls`, in order (from a Trio test)."""
    result = await trio.run_process(
        [official_python, str(SCRIPT), api_url, token], stdin=requests(calls), capture_stdout=True, capture_stderr=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)  # type: ignore[no-any-return]
