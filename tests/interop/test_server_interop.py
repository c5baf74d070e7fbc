"""The OFFICIAL meshagent-api 0.56 client (and meshagent-tools 0.56) against OUR local server.

Our server runs as a subprocess (`python -m meshagent_trio serve --port <free> --data-dir <tmp>`,
with a fresh MESHAGENT_API_KEY); each scenario is a script in `official_scripts/` run under the
official interpreter with MESHAGENT_API_URL pointing at our server, so the official client derives
the room URL itself (ws://127.0.0.1:<port>/rooms/<room>) and signs its own tokens with the key.
All scenarios start together (one room each); each test asserts on its scenario's JSON output.

These tests skip only when the official environment is absent (see conftest.py); a scenario that
fails because a server feature is missing is a failure.
"""

from __future__ import annotations

import subprocess

import pytest

from synctest import without_empty_runs

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def official_tools(official_python: str) -> str:
    """The official interpreter, if it also has meshagent-tools (skips with the reason if not)."""
    probe = subprocess.run(
        [official_python, "-c", "import meshagent.tools; from meshagent.tools import start_hosted_toolkit"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"meshagent-tools 0.56 is not importable in the official environment ({last}): run `make official-env`")
    return official_python


def test_connect(official_scenarios):
    seen = official_scenarios.result("connect").observed
    assert seen["room_name"] == "interop-connect"
    assert seen["room_url"].startswith("ws://127.0.0.1:") and seen["room_url"].endswith("/rooms/interop-connect")
    assert seen["server_room_url"] == seen["room_url"]
    assert seen["session_id"] and isinstance(seen["session_id"], str)
    assert seen["participant_id"] and seen["participant_id"] != seen["second_participant_id"]
    assert seen["attributes"].get("name") == "alice"
    assert seen["is_connected"] is True
    assert seen["works_after"] is True and seen["closed_cleanly"] is True
    # Tokens the server must refuse make the official connect fail (HTTP 403 on the upgrade).
    for key in ("other_room_token", "bad_key_token"):
        refused = seen[key]
        assert refused.get("connected") is not True, f"{key}: the server let the official client in"
        assert "403" in refused["message"] or "denied" in refused["message"].lower(), refused


def test_storage(official_scenarios):
    seen = official_scenarios.result("storage").observed
    assert seen["exists_before"] is False
    assert seen["stat_missing"] is None
    assert seen["exists_after"] is True
    assert seen["exists_folder"] is True

    stat = seen["stat"]
    assert stat["name"] == "hello.txt" and stat["is_folder"] is False
    assert stat["size"] == len(b"hello, local meshagent\n")
    assert seen["stat_folder"]["is_folder"] is True and seen["stat_folder"]["name"] == "docs"

    root = {e["name"]: e for e in seen["list_root"]}
    assert root["docs"]["is_folder"] is True
    assert root["empty.txt"]["is_folder"] is False and root["empty.txt"]["size"] == 0
    docs = {e["name"]: e for e in seen["list_docs"]}
    assert set(docs) == {"hello.txt", "big.bin", "streamed.bin"}
    assert docs["big.bin"]["size"] == 300 * 1024 + 17
    assert docs["streamed.bin"]["size"] == 110_001
    assert not any(".meshagent-upload" in name for name in list(root) + list(docs)), "temporary upload files are visible"

    assert seen["download_small"] == {"data": "hello, local meshagent\n", "name": "hello.txt", "mime_type": "text/plain"}
    assert seen["download_big_ok"] is True and seen["download_big_size"] == 300 * 1024 + 17
    assert seen["download_streamed_ok"] is True
    assert seen["download_empty"] == {"size": 0, "name": "empty.txt"}
    kinds = seen["download_stream_kinds"]
    assert kinds[0] == ["start", 0]
    assert all(kind == "data" and size <= 100_000 for kind, size in kinds[1:])
    assert sum(size for _, size in kinds[1:]) == 300 * 1024 + 17

    # Bad input gets a clear error and loses nothing.
    assert seen["upload_exists_error"].get("code") == 3005, seen["upload_exists_error"]
    assert seen["after_refused_overwrite"] == "hello, local meshagent\n"
    assert seen["after_overwrite"] == "v2"
    assert seen["download_missing_error"].get("code") == 3001, seen["download_missing_error"]
    assert seen["escape_error"].get("code") is not None, seen["escape_error"]
    assert seen["exists_escape_error"].get("code") is not None, seen["exists_escape_error"]

    assert seen["moved_source_exists"] is False and seen["moved_ok"] is True
    assert seen["move_onto_existing_error"].get("code") is not None, seen["move_onto_existing_error"]
    assert seen["move_missing_error"].get("code") is not None, seen["move_missing_error"]
    assert seen["deleted_exists"] is False
    assert seen["delete_missing_error"].get("code") is not None, seen["delete_missing_error"]
    assert seen["delete_folder_error"].get("code") is not None, seen["delete_folder_error"]
    assert seen["folder_exists_after_recursive_delete"] is False
    assert seen["list_root_final"] == ["archive", "empty.txt"]

    # The second official participant received the file events, attributed to the writer.
    assert seen["all_events_arrived"] is True, seen["events"]
    writer = seen["writer_id"]
    for event in seen["events"]:
        assert event["participant_id"] == writer, event
    moved = [e for e in seen["events"] if e["event"] == "file.moved"]
    assert {"source_path": "docs/big.bin", "destination_path": "archive/big-moved.bin"}.items() <= moved[0].items()


def test_messaging(official_scenarios):
    seen = official_scenarios.result("messaging").observed
    ids = seen["ids"]
    assert seen["alice_online"] is True and seen["bob_online"] is True
    assert seen["alice_presence_alone"] == []  # nobody else enabled yet (carol never enables)
    assert [p["id"] for p in seen["bob_presence"]] == [ids["alice"]]
    assert seen["bob_presence"][0]["name"] == "alice" and seen["bob_presence"][0]["role"] == "agent"
    assert seen["alice_sees_bob"] is True and ids["bob"] in seen["added"]
    assert [p["id"] for p in seen["alice_presence"]] == [ids["bob"]]

    assert seen["bob_got_direct"] is True
    direct = [m for m in seen["inbox"]["bob"] if m["type"] == "greeting"]
    assert direct[0] == {"from": ids["alice"], "type": "greeting", "message": {"text": "hi bob", "n": 1}, "attachment": b"\x00\x01binary\xff".hex()}
    assert direct[1]["message"] == {"text": "again", "n": 2} and direct[1]["attachment"] is None

    assert seen["bob_got_pipelined"] is True
    assert sorted(seen["pipelined_order"]) == list(range(30)), "pipelined sends were lost or duplicated"
    assert seen["pipelined_order"] == list(range(30)), "pipelined sends were delivered out of order"

    assert seen["alice_got_broadcast"] is True
    news = [m for m in seen["inbox"]["alice"] if m["type"] == "news"]
    assert news == [{"from": ids["bob"], "type": "news", "message": {"headline": "broadcast"}, "attachment": b"att".hex()}]
    assert seen["carol_inbox"] == []  # not messaging-enabled: no broadcast

    assert seen["bob_sees_attribute"] is True
    assert seen["alice_sees_attribute"] is True
    assert any(u["id"] == ids["bob"] and u["attributes"].get("status") == {"busy": True} for u in seen["updated"])

    assert seen["send_to_nobody"].get("code") == 1003, seen["send_to_nobody"]
    assert seen["alice_sees_bob_leave"] is True
    assert seen["alice_presence_after_disable"] == []
    # A direct send to a participant that disabled messaging fails (it must not vanish silently).
    assert seen["send_to_disabled"].get("code") == 1003, seen["send_to_disabled"]


def test_queues(official_scenarios):
    seen = official_scenarios.result("queues").observed
    assert {"name": "jobs", "size": 3} in seen["list_after_send"]
    assert seen["received"] == [{"n": n, "text": f"job {n}", "nested": {"ok": True}} for n in range(3)]
    assert seen["receive_empty_nowait"] is None
    assert seen["receive_waited"] == {"late": True}
    assert seen["after_drain"] is None
    assert {"name": "drainme", "size": 0} in seen["list_after_drain"] or "drainme" not in [q["name"] for q in seen["list_after_drain"]]
    assert seen["send_missing_no_create"].get("code") == 5001, seen["send_missing_no_create"]
    assert seen["receive_missing_no_create"].get("code") == 5001, seen["receive_missing_no_create"]
    # `open` on an open queue: `empty` is the documented safer choice; 5002 is tolerated by callers.
    assert "no_error" in seen["open_again"] or seen["open_again"].get("code") == 5002, seen["open_again"]
    assert seen["send_after_close"].get("code") is not None, seen["send_after_close"]
    assert seen["order"] == list(range(50))


def test_developer_logs(official_scenarios):
    seen = official_scenarios.result("developer").observed
    assert seen["subscribed"] is True
    assert seen["all_arrived"] is True, seen["entries"]
    expected = [{"type": "custom.event", "data": {"k": "v", "n": 1, "list": [1, 2]}}]
    for round in range(3):
        expected += [
            {"type": "info", "data": {"message": "an info line", "extra": {"user": "writer", "round": round}}},
            {"type": "warning", "data": {"message": "careful", "extra": {}}},
            {"type": "error", "data": {"message": "it broke", "extra": {"code": 7}}},
        ]
    entries = seen["entries"]
    key = lambda e: repr(e)  # noqa: E731
    assert sorted(entries, key=key) == sorted(expected, key=key), "log entries lost or changed"
    assert entries == expected, "log entries written in order on one connection arrived out of order"
    assert seen["works_after"] is True


def test_hosted_toolkit(official_tools, official_scenarios):
    seen = official_scenarios.result("hosted_toolkit").observed
    assert seen["toolkits"] == {"calc": ["add", "count", "crash", "fail"]}
    assert seen["add"] == {"sum": 5.5, "caller": seen["caller_id"]}
    # A tool that raises: the caller gets an error (with the host's code), the room survives.
    assert seen["fail"].get("code") == 1005 and "on purpose" in seen["fail"]["message"], seen["fail"]
    assert "plain python error" in seen["crash"].get("message", ""), seen["crash"]
    # meshagent-tools validates with jsonschema and answers `error` without a code: relayed as is.
    assert "is a required property" in seen["bad_arguments"].get("message", ""), seen["bad_arguments"]
    assert "message" in seen["unknown_tool"], seen["unknown_tool"]
    assert seen["count"][:3] == ["chunk 0", "chunk 1", "chunk 2"], seen["count"]
    assert seen["count"][3:] in ([], ["<close None>"], ["<close 1000>"]), seen["count"]
    assert seen["add_again"]["sum"] == 2
    assert seen["room_alive"] is True
    assert seen["after_unregister"].get("code") == 1003, seen["after_unregister"]
    assert seen["add_reregistered"]["sum"] == 8
    # Either "not available" (1003) or, if the server has not yet seen the host go, the routed
    # call fails; in both cases the error must carry a code.
    assert "calc" in seen["after_host_left"].get("message", ""), seen["after_host_left"]
    assert seen["after_host_left"].get("code") is not None, seen["after_host_left"]
    assert seen["room_alive_after_host_left"] is True


def test_sync(official_scenarios):
    seen = official_scenarios.result("sync").observed
    # bob (no schema given) gets the document alice created, without the root attribute
    assert seen["bob_initial"] == {"notebook": {"cells": [{"cell": {"kind": "code", "source": "print(1)", "order": 1.0, "outputs": []}}]}}
    assert seen["bob_schema_root"] == "notebook"
    # concurrent edits from two official clients converge through our server
    assert seen["converged"] is True
    assert seen["alice_final"] == seen["bob_final"]
    cells = seen["alice_final"]["notebook"]["cells"]
    assert len(cells) == 32 and cells[0]["cell"]["source"] == "print(2)"
    sources = sorted(c["cell"]["source"] for c in cells[1:] if "cell" in c)
    assert sources == sorted([f"alice {n}" for n in range(15)] + [f"bob {n}" for n in range(15)])
    # our describe and a later client see the same document
    assert without_empty_runs(seen["described"]) == without_empty_runs(seen["alice_final"])
    assert seen["carol_json"] == seen["alice_final"]
    assert seen["open_missing"]["code"] == 1003
    assert seen["create_existing"]["code"] == 1004
    assert seen["open_without_schema"]["code"] == 1002 and ".schemas/noschema.json" in seen["open_without_schema"]["message"]
    assert seen["describe_other"] == {"notebook": {"cells": [{"cell": {"kind": "code", "source": "print(1)", "order": 1.0, "outputs": []}}]}}
