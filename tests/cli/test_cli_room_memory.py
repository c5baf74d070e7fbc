"""`meshagent-trio room memory …` against the local server (heuristic strategy; the llm one is
only checked to refuse clearly without a configured model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clirun import assert_one_line_error
from clirun import Cli, ok


TEXT = "Ada Lovelace worked with Charles Babbage on the Analytical Engine in London."


@pytest.fixture
def notes(cli: Cli, room_name: str) -> tuple[str, ...]:
    """`--room ROOM -m notes` of a room with an empty memory `notes`."""
    where = ("--room", room_name, "-m", "notes")
    ok(cli("room", "memory", "create", *where))
    return where


def entity_names(cli: Cli, where: tuple[str, ...]) -> set[str]:
    rows = ok(cli("room", "memory", "query", *where, "-s", "MATCH (e:Entity) RETURN e.name AS name", "-o", "json")).json()["results"]
    return {row["name"] for row in rows}


def upload(cli_env, room: str, path: str, data: bytes) -> None:
    import trio

    from meshagent_trio import RoomClient

    async def main() -> None:
        async with RoomClient.connect(room, cli_env.token(room)) as client:
            await client.storage.upload(path=path, data=data)

    trio.run(main)


def test_lifecycle(cli: Cli, notes: tuple[str, ...], room_name: str) -> None:
    assert ok(cli("room", "memory", "list", "--room", room_name, "-o", "json")).json() == {"memories": ["notes"]}
    assert ok(cli("room", "memory", "list", "--room", room_name)).stdout.split() == ["notes"]
    assert_one_line_error(cli("room", "memory", "create", *notes), 1, "notes")
    ok(cli("room", "memory", "create", *notes, "--overwrite"))
    details = ok(cli("room", "memory", "inspect", *notes, "-o", "json")).json()
    assert details["name"] == "notes"
    assert ok(cli("room", "memory", "get", *notes, "-o", "json", "--no-pretty")).stdout == json.dumps(details, separators=(",", ":")) + "\n"
    ok(cli("room", "memory", "drop", *notes))
    ok(cli("room", "memory", "drop", *notes, "--ignore-missing"))
    assert ok(cli("room", "memory", "list", "--room", room_name, "-o", "json")).json() == {"memories": []}


def test_upserts_query_recall_and_deletes(cli: Cli, notes: tuple[str, ...], tmp_path: Path) -> None:
    nodes = [{"entity_id": "ada", "name": "Ada", "entity_type": "person", "context": "mathematician"}, {"entity_id": "bab", "name": "Babbage"}]
    ok(cli("room", "memory", "upsert-nodes", *notes, "--records-json", json.dumps(nodes)))
    (tmp_path / "edges.json").write_text(json.dumps([{"source_entity_id": "ada", "target_entity_id": "bab", "relationship_type": "KNOWS"}]))
    ok(cli("room", "memory", "upsert-relationships", *notes, "--records-file", str(tmp_path / "edges.json")))
    ok(cli("room", "memory", "upsert-table", *notes, "-t", "facts", "--records-json", '[{"id": 1, "fact": "sky is blue"}]'))
    assert entity_names(cli, notes) == {"Ada", "Babbage"}
    table = ok(cli("room", "memory", "query", *notes, "-s", "MATCH (a)-[r]->(b) RETURN a.name AS source, b.name AS target"))
    assert table.stdout.split() == ["source", "target", "Ada", "Babbage"]
    datasets = ok(cli("room", "memory", "inspect", *notes)).stdout
    assert "entity" in datasets and "facts" in datasets
    recalled = ok(cli("room", "memory", "recall", *notes, "-q", "mathematician", "-o", "json")).json()
    assert recalled["items"][0]["entity_id"] == "ada" and recalled["items"][0]["relationships"]
    assert "Ada" in ok(cli("room", "memory", "recall", *notes, "-q", "Ada", "--no-include-relationships", "--limit", "1")).stdout
    removed = ok(cli("room", "memory", "delete-relationships", *notes, "--records-json", '[{"source_entity_id": "ada", "target_entity_id": "bab"}]', "-o", "json")).json()
    assert removed["deleted_relationships"] == 1
    deleted = ok(cli("room", "memory", "delete-entities", *notes, "-e", "bab", "-o", "json")).json()
    assert deleted["deleted_entities"] == 1
    assert entity_names(cli, notes) == {"Ada"}
    optimized = ok(cli("room", "memory", "optimize", *notes, "-o", "json")).json()
    assert optimized["name"] == "notes"
    ok(cli("room", "memory", "optimize", *notes, "--no-compact", "--no-cleanup"))


def test_ingests(cli: Cli, cli_env, notes: tuple[str, ...], room_name: str, tmp_path: Path) -> None:
    result = ok(cli("room", "memory", "ingest-text", *notes, "--text", TEXT, "-o", "json")).json()
    assert result["stats"]["sources"] == 1 and result["entity_ids"]
    assert "stats" in ok(cli("room", "memory", "ingest-text", *notes, "--text", "Grace Hopper wrote COBOL.")).stdout
    (tmp_path / "t.md").write_text("# Turing\nAlan Turing studied computability.\n")
    ok(cli("room", "memory", "ingest-file", *notes, "--text-file", str(tmp_path / "t.md"), "--mime-type", "text/markdown"))
    upload(cli_env, room_name, "docs/hopper.txt", b"Grace Hopper worked at Harvard.")
    ok(cli("room", "memory", "ingest-file", *notes, "--path", "docs/hopper.txt"))
    from_storage = ok(cli("room", "memory", "ingest-from-storage", *notes, "-p", "docs/hopper.txt", "-o", "json")).json()
    assert from_storage["stats"]["sources"] == 1
    rows = json.dumps([{"id": 1, "text": "Marie Curie discovered polonium."}, {"id": 2, "text": "Pierre Curie studied magnetism."}])
    ok(cli("room", "dataset", "create", "--room", room_name, "-t", "bios", "--data-json", rows))
    from_table = ok(cli("room", "memory", "ingest-from-table", *notes, "-t", "bios", "--text-column", "text", "-o", "json")).json()
    assert from_table["stats"]["sources"] == 2
    (tmp_path / "p.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    image = ok(cli("room", "memory", "ingest-image", *notes, "-f", str(tmp_path / "p.png"), "--caption", "Ada at her desk", "--annotations-json", '{"origin": "scan"}', "-o", "json")).json()
    assert image["entity_ids"]
    names = entity_names(cli, notes)
    assert any("Ada" in name for name in names) and any("Curie" in name for name in names)


def test_errors(cli: Cli, notes: tuple[str, ...], room_name: str) -> None:
    assert_one_line_error(cli("room", "memory", "list"), 2, "--room")
    assert_one_line_error(cli("room", "memory", "inspect", "--room", room_name, "-m", "nope"), 1, "room memory inspect: error:", "nope")
    assert_one_line_error(cli("room", "memory", "query", *notes, "-s", "MATCH (e:Entity) RETURN"), 1, "room memory query: error:")
    assert_one_line_error(cli("room", "memory", "upsert-nodes", *notes, "--records-json", "[1]"), 2, "--records-json")
    assert_one_line_error(cli("room", "memory", "upsert-nodes", *notes, "--records-json", '[{"entity_type": "x"}]'), 2, "--records-json")
    assert_one_line_error(cli("room", "memory", "ingest-text", *notes), 2, "--text")
    llm = cli("room", "memory", "ingest-text", *notes, "--text", TEXT, "--strategy", "llm")
    assert_one_line_error(llm, 1, "room memory ingest-text: error:")
    assert_one_line_error(cli("room", "memory", "ingest-text", *notes, "--text", "x", "--strategy", "magic"), 2, "magic")


def test_no_permission(cli: Cli, cli_env, room_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from meshagent_core.tokens import ApiScope

    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope(sqlite={}, dataset={})))
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.delenv("MESHAGENT_API_KEY")
    assert_one_line_error(cli("room", "memory", "list"), 1, "room memory list: error:")
    assert_one_line_error(cli("room", "memory", "create", "-m", "x"), 1, "room memory create: error:")
