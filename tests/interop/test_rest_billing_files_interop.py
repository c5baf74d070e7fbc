"""The official `Meshagent` client (0.56, out of process) against our server's billing and usage
routes (the 501s it reads as `Failed to …`, the usage of a session real participants made, its
filters with datetimes) and, through its own `client.files`, our Files API: every method on a
room's and an agent's files, binary data both ways, transfers between them, its typed errors,
and a presigned URL that works without credentials."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_trio.connection import RoomConnection
from roomtest import mint

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).parent / "official_scripts" / "billing_files_calls.py"
DATA = bytes(range(256)) * 64 + os.urandom(1000)


async def test_the_official_client_with_billing_usage_and_files(official_python: str, server_process) -> None:
    credentials = server_process.credentials
    own = credentials.project_id
    async with Meshagent(base_url=server_process.api_url, token=server_process.api_key) as client:
        await client.create_room(project_id=own, name="official-files")
        await client.create_agent(project_id=own, configuration={"metadata": {"name": "helper"}, "allowed_models": [{"provider": "openai", "model": "gpt-4.1"}]})
        with trio.fail_after(30):
            async with RoomConnection.open(server_process.room_url("official-files"), mint(credentials, "official-files", name="alice")):
                pass
            while await client.list_active_sessions(own):
                await trio.sleep(0.05)
        recorded = await client.get_usage(own, room="official-files", usage_type="participant_minutes")
        assert recorded and recorded[0]["total"] > 0

    room = {"kind": "room", "project_id": own, "name": "official-files"}
    agent = {"kind": "agent", "project_id": own, "name": "helper"}
    billing = {"project_id": own}
    calls = [
        {"method": "get_pricing", "kwargs": {}},
        {"method": "get_project_status", "kwargs": billing},
        {"method": "get_balance", "kwargs": billing},
        {"method": "get_recent_transactions", "kwargs": billing},
        {"method": "set_auto_recharge", "kwargs": {**billing, "enabled": True, "amount": 5.0, "threshold": 1.0}},
        {"method": "get_checkout_url", "kwargs": {**billing, "success_url": "http://ok", "cancel_url": "http://no"}},  # 5
        {"method": "get_credits_checkout_url", "kwargs": {**billing, "success_url": "http://ok", "cancel_url": "http://no", "quantity": 3.0}},
        {"method": "get_subscription", "kwargs": billing},
        {"method": "get_usage", "kwargs": billing},
        {
            "method": "get_usage",
            "kwargs": {**billing, "start": "2020-01-01T00:00:00+00:00", "end": "2100-01-01T00:00:00+00:00", "interval": "hour", "users": ["alice", "nobody"], "room": " official-files ", "usage_type": "participant_minutes"},
            "datetimes": ["start", "end"],
        },
        {"method": "get_current_user_llm_proxy_usage", "kwargs": billing},  # 10
        {"method": "get_project_status", "kwargs": {"project_id": "nope"}},
        {"method": "upload", "files": room, "kwargs": {"path": "bin/data.bin", "data_hex": DATA.hex(), "content_type": "application/x-test"}},
        {"method": "download", "files": room, "kwargs": {"path": "bin/data.bin"}},
        {"method": "stat", "files": room, "kwargs": {"path": "bin/data.bin"}},
        {"method": "exists", "files": room, "kwargs": {"path": "bin/data.bin"}},  # 15
        {"method": "exists", "files": room, "kwargs": {"path": "missing.txt"}},
        {"method": "permissions", "files": room, "kwargs": {"path": ""}},
        {"method": "mkdir", "files": room, "kwargs": {"path": "bin/empty"}},
        {"method": "list_page", "files": room, "kwargs": {"path": "bin", "limit": 1}},
        {"method": "list", "files": room, "kwargs": {"path": "bin"}},  # 20
        {"method": "copy", "files": room, "kwargs": {"source": {**room, "path": "bin/data.bin"}, "destination": "copy.bin"}},
        {"method": "move", "files": room, "kwargs": {"source": {**room, "path": "copy.bin"}, "destination": "moved.bin"}},
        {"method": "copy", "files": agent, "kwargs": {"source": {**room, "path": "moved.bin"}, "destination": "from-room.bin"}},
        {"method": "download", "files": agent, "kwargs": {"path": "from-room.bin"}},
        {"method": "delete", "files": room, "kwargs": {"path": "bin/empty"}},  # 25
        {"method": "exists", "files": room, "kwargs": {"path": "bin/empty"}},
        {"method": "presign", "files": room, "kwargs": {"path": "moved.bin", "method": "GET", "expires_in": 60}},
        {"method": "download", "files": room, "kwargs": {"path": "missing.txt"}},
        {"method": "upload", "files": room, "kwargs": {"path": "moved.bin", "data_hex": "00", "overwrite": False}},
        {"method": "list_page", "files": {**room, "name": "ghost"}, "kwargs": {}},  # 30
        {"method": "delete", "files": room, "kwargs": {"path": "bin", "recursive": False}},
        {"method": "delete", "files": room, "kwargs": {"path": "bin", "recursive": True}},
        {"method": "list", "files": room, "kwargs": {}},
    ]
    result = await trio.run_process(
        [official_python, str(SCRIPT), server_process.api_url, server_process.api_key],
        stdin=json.dumps(calls).encode(),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    answers = json.loads(result.stdout)
    assert len(answers) == len(calls)

    def failed(index: int, kind: str, text: str) -> None:
        assert answers[index].get("raised") == kind and text in answers[index]["message"], (index, answers[index])

    failed(0, "RoomException", "Failed to fetch pricing data. Status code: 501, body: ")
    assert answers[1] == {"returned": {"enabled": True}}
    for index, action in ((2, "fetch balance"), (3, "fetch transactions"), (4, "update auto recharge settings"), (5, "create subscription checkout"), (6, "create credits checkout"), (7, "fetch subscription")):
        failed(index, "RoomException", f"Failed to {action}. Status code: 501")
        assert "no billing" in answers[index]["message"]
    usage = answers[8]["returned"]
    assert {row["usage_type"] for row in usage} == {"participant_minutes", "storage_bytes"}
    minutes = answers[9]["returned"]
    assert [row["room"] for row in minutes] == ["official-files"] and sum(r["total"] for r in minutes) == pytest.approx(sum(r["total"] for r in recorded), abs=1e-5)
    failed(10, "RoomException", "Failed to retrieve current user LLM proxy usage. Status code: 501")
    failed(11, "RoomException", "Failed to fetch project status. Status code: 404")

    assert answers[12] == {"returned": None}
    assert answers[13] == {"returned": {"hex": DATA.hex()}}
    stat = answers[14]["returned"]
    assert (stat["path"], stat["size"], stat["is_folder"], stat["content_type"]) == ("bin/data.bin", len(DATA), False, "application/x-test") and stat["etag"]
    assert (answers[15], answers[16]) == ({"returned": True}, {"returned": False})
    assert set(answers[17]["returned"]["actions"]) == {"list", "read", "write", "delete", "presign"}
    assert answers[18] == {"returned": None}
    page = answers[19]["returned"]
    assert [e["name"] for e in page["entries"]] == ["data.bin"] and page["continuation_token"]
    assert [(e["name"], e["is_folder"]) for e in answers[20]["returned"]] == [("data.bin", False), ("empty", True)]
    assert answers[21] == answers[22] == answers[23] == {"returned": None}
    assert answers[24] == {"returned": {"hex": DATA.hex()}}
    assert (answers[25], answers[26]) == ({"returned": None}, {"returned": False})
    presigned = answers[27]["returned"]
    assert presigned["method"] == "GET" and presigned["expires_at"]
    async with httpx.AsyncClient() as http:
        assert (await http.get(presigned["url"])).content == DATA
    failed(28, "NotFoundError", "Status=404")
    failed(29, "ConflictError", "Status=409")
    failed(30, "NotFoundError", "room 'ghost'")
    failed(31, "ConflictError", "recursive")
    assert answers[32] == {"returned": None}
    assert [e["name"] for e in answers[33]["returned"]] == ["moved.bin"]
