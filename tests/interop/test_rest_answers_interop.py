"""REST answers read the way the official client reads them: for each status and body a real HTTP
server sends, the official `Meshagent` (0.56, out of process) and our `read_answer` raise the
same exception class with the same message, `status_code` and `code`, or return the same value."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote

import msgspec
import pytest

from meshagent_core.rest import ROUTES, RestError, read_answer
from meshagent_core.errors import RoomException
from httptest import QuietHandler, serve_http

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).parent / "official_scripts" / "rest_calls.py"
ROOM = {"id": "r1", "name": "lobby", "metadata": {"topic": "x"}, "annotations": {"a": "b"}, "enabled": False}
PROJECT = {"id": "p1", "name": "Project", "project_key": "k"}
BODIES: dict[str, bytes] = {
    "text": b"something went wrong",
    "json": b'{"error": {"code": "room_disabled", "message": "closed for repairs"}}',
    "empty": b"",
    "room": json.dumps(ROOM).encode(),
    "project": json.dumps(PROJECT).encode(),
    "invalid": b'{"id": 1}',
    "settings": b'{"model": "gpt"}',
}
#: (status, body kind) of each case; the value the server answers is encoded in the path
CASES = [(status, "text") for status in (400, 401, 403, 404, 409, 422, 429, 500, 503)] + [
    (423, "json"),
    (423, "text"),
    (404, "empty"),
    (200, "invalid"),
]
SUCCESSES = {"get_room": "room", "get_project": "project", "get_project_settings_document": "settings"}


class Answers(QuietHandler):
    """Answers `…/<status>-<kind>` (the last path value of the call) with that status and body."""

    def _answer(self) -> None:
        segments = [unquote(s) for s in self.path.split("?")[0].split("/") if s]
        key = next(s for s in reversed(segments) if "-" in s and s.split("-")[0].isdigit())
        status, kind = key.split("-", 1)
        self.send_json(int(status), BODIES[kind])

    do_GET = do_POST = do_PUT = do_DELETE = _answer


@pytest.fixture(scope="module")
def answering_server() -> Iterator[str]:
    with serve_http(Answers) as url:
        yield url


def calls() -> list[tuple[str, dict[str, str], int, str]]:
    """(method, kwargs, status, body kind) for every case of every method."""
    out = []
    for status, kind in CASES + [(200, kind) for kind in SUCCESSES.values()]:
        key = f"{status}-{kind}"
        if kind in SUCCESSES.values() or kind == "invalid":
            methods = [m for m, k in SUCCESSES.items() if k == kind] or ["get_room", "get_project"]
        else:
            methods = ["get_room", "get_project", "get_project_settings_document"]
        for method in methods:
            kwargs = {
                "get_room": {"project_id": "p", "name": key},
                "get_project": {"project_id": key},
                "get_project_settings_document": {"project_id": key, "name": "room_roles"},
            }[method]
            out.append((method, kwargs, status, kind))
    return out


def ours(method: str, status: int, kind: str) -> dict[str, Any]:
    try:
        value = read_answer(ROUTES[method], status, BODIES[kind])
    except RoomException as error:
        raised = type(error).__name__
        if isinstance(error, RestError) and type(error) is RestError:
            raised = "RoomException"  # the official client raises its base class here
        return {"raised": raised, "message": str(error), "status_code": error.status_code, "code": error.code}
    dumped = msgspec.to_builtins(value) if isinstance(value, msgspec.Struct) else value
    return {"returned": dumped}


def test_statuses_and_bodies_are_read_as_the_official_client_reads_them(official_python: str, answering_server: str) -> None:
    cases = calls()
    payload = json.dumps([{"method": method, "kwargs": kwargs} for method, kwargs, _, _ in cases])
    result = subprocess.run(
        [official_python, str(SCRIPT), answering_server], input=payload, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    official = json.loads(result.stdout)
    mismatches = []
    for (method, _, status, kind), theirs in zip(cases, official):
        mine = ours(method, status, kind)
        if "message" in theirs and theirs["message"].startswith("Invalid "):
            # pydantic and msgspec word a bad payload differently; the class and the prefix agree
            theirs["message"] = theirs["message"].split(":", 1)[0]
            mine["message"] = mine.get("message", "").split(":", 1)[0]
        if mine != theirs:
            mismatches.append((method, status, kind, theirs, mine))
    assert not mismatches, "\n".join(map(repr, mismatches))
    assert len(official) == len(cases) >= 30


def test_the_official_client_against_our_rest_front(official_python: str, server_process) -> None:
    """What the local server serves so far works for the official client, and what it does not
    serve yet fails there with the method named."""
    project = server_process.credentials.project_id
    calls = [
        {"method": "get_config", "kwargs": {}},
        {"method": "create_room", "kwargs": {"project_id": project, "name": "official-room", "metadata": {"k": 1}}},
        {"method": "create_room", "kwargs": {"project_id": project, "name": "official-room", "if_not_exists": True}},
        {"method": "get_room", "kwargs": {"project_id": project, "name": "official-room"}},
        {"method": "list_rooms", "kwargs": {"project_id": project}},
        {"method": "connect_room", "kwargs": {"project_id": project, "room": "official-room"}},
        {"method": "list_projects", "kwargs": {}},
        {"method": "create_room", "kwargs": {"project_id": project, "name": "official-room"}},
        {"method": "get_room", "kwargs": {"project_id": project, "name": "missing"}},
        {"method": "list_rooms_page", "kwargs": {"project_id": project, "filter": "name:official"}},
        {"method": "get_project_info", "kwargs": {"project_id": project}},
        {"method": "update_room", "kwargs": {"project_id": project, "room_id": "$1.id", "name": "renamed", "metadata": {"k": 2}, "enabled": False}},
        {"method": "get_room", "kwargs": {"project_id": project, "name": "renamed"}},
        {"method": "connect_room", "kwargs": {"project_id": project, "room": "renamed"}},
        {"method": "delete_room", "kwargs": {"project_id": project, "room_id": "$1.id"}},
        {"method": "get_room", "kwargs": {"project_id": project, "name": "renamed"}},
    ]
    result = subprocess.run(
        [official_python, str(SCRIPT), server_process.api_url, server_process.api_key],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    config, created, again, got, listed, connected, projects, duplicate, missing, unserved, *rest = json.loads(result.stdout)
    info, updated, renamed, disabled, deleted, gone = rest
    assert config["returned"]["domains"]["api"] == server_process.api_url and config["returned"]["version"]
    assert created["returned"]["name"] == "official-room" and created["returned"]["metadata"] == {"k": 1}
    assert again["returned"] == created["returned"] == got["returned"]
    assert [room["name"] for room in listed["returned"]] == ["official-room"]
    assert connected["returned"]["room_name"] == "official-room"
    assert connected["returned"]["room_url"] == server_process.room_url("official-room")
    assert [p["id"] for p in projects["returned"]["projects"]] == [project]
    assert duplicate["raised"] == "ConflictError" and "already exists" in duplicate["message"]
    assert missing == {"raised": "RoomException", "message": "room not found", "status_code": 400, "code": 1002}
    assert unserved["raised"] == "ServerError" and unserved["message"].startswith("Status=501, body=")
    assert "list_rooms: filter and view are not implemented" in unserved["message"]
    assert info["returned"]["id"] == project
    assert "raised" not in updated and "raised" not in deleted
    assert renamed["returned"] == {**created["returned"], "name": "renamed", "metadata": {"k": 2}, "enabled": False}
    assert (disabled["raised"], disabled["message"], disabled["status_code"]) == ("RoomDisabledError", "This room is currently disabled.", 423)
    assert gone == missing
