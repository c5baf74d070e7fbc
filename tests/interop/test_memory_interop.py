"""The official 0.56 `room.memory` and the official memories toolkit against our server
(`official_scripts/memory_official.py`), with the `llm` strategy answered by a local fake
OpenAI-compatible endpoint (`fake_openai`: the one place a stand-in is right, no model runs
here); and both clients reading the same answers alike."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from datetime import date, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

import meshagent_trio
from meshagent_core import EmptyContent, JsonContent, RoomException, TextContent
from meshagent_core.client.memory import MemoryClient
from meshagent_core.toolkits.records import DatasetStruct
from meshagent_trio.server.process import LocalServerProcess
from meshagent_trio.server.toolkits.memory_extract import entity_id_for, source_entity_id
from meshagent_trio.server.toolkits.memory_ingest import sha256
from fake_openai import fake_model
from roomtest import mint

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).resolve().parent / "official_scripts" / "memory_official.py"
ROOM = "interop-memory"


def run_official(python: str, mode: str, *, server: LocalServerProcess | None = None, cases: list | None = None) -> Any:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the official interpreter must not see our src/
    for variable in ("MESHAGENT_ROOM_URL", "MESHAGENT_PROFILE_API_URL", "MESHAGENT_ROOM", "MESHAGENT_TOKEN"):
        env.pop(variable, None)
    if server is not None:
        env.update({"MESHAGENT_API_URL": server.api_url, "MESHAGENT_API_KEY": server.api_key, "SCENARIO_ROOM": ROOM})
    done = subprocess.run(
        [python, str(SCRIPT), mode], input=json.dumps(cases or []), capture_output=True, text=True, timeout=150, env=env, cwd=SCRIPT.parent
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, f"{done.stdout[-4000:]}\n{done.stderr[-3000:]}\n{server.log() if server else ''}"
    return json.loads(lines[-1])


def graph_for(text: str) -> dict[str, Any]:
    if "Grace Hopper" in text:
        return {
            "entities": [{"name": "Grace Hopper", "entity_type": "PERSON"}, {"name": "Remington Rand", "entity_type": "ORGANIZATION"}],
            "relationships": [{"source": "Grace Hopper", "target": "Remington Rand", "relationship_type": "WORKS_AT", "description": "She worked there."}],
        }
    return {
        "entities": [{"name": "Alice Johnson", "entity_type": "PERSON", "context": "Likes green tea."}, {"name": "green tea", "entity_type": "BEVERAGE"}],
        "relationships": [{"source": "Alice Johnson", "target": "green tea", "relationship_type": "LIKES"}],
    }


def error(code: int, message: str | None = None) -> Any:
    def check(seen: dict) -> bool:
        return seen.get("type") == "RoomException" and seen.get("code") == code and (message is None or message in seen.get("message", ""))

    return check


async def test_the_official_client_against_our_server(official_python: str, tmp_path: Path) -> None:
    with fake_model() as (model, base_url):
        model.graph_for = graph_for
        with LocalServerProcess(tmp_path / "data", env={"OPENAI_API_KEY": "sk-interop", "OPENAI_BASE_URL": base_url}) as server:
            async with meshagent_trio.connect(server.room_url(ROOM), mint(server.credentials, ROOM)) as room:
                await room.datasets.create_table_from_json_data(name="meetings", namespace=["crm"], data=[{"notes": "Alan Turing met Joan Clarke."}])
            seen = run_official(official_python, "live", server=server)

    assert seen["list_empty"] == [] and seen["list"] == ["graph"] and seen["list_team"] == ["notes"]
    assert error(2002, "memory already exists: graph")(seen["create_existing"])
    assert error(1003, "dataset 'entity' not found")(seen["empty_query"])
    engine = entity_id_for("Analytical Engine")
    assert seen["engine_id"] == engine

    inspect = seen["inspect"]
    assert (inspect["name"], inspect["namespace"], inspect["path"]) == ("graph", None, "/memories/graph")
    assert [(dataset["name"], dataset["rows"]) for dataset in inspect["datasets"]] == [("entity", 2), ("relationship", 1), ("facts", 1)]
    assert seen["query_edges"] == [{"who": "Ada Lovelace", "what": "Analytical Engine", "d": "Notes G", "m": {"struct": {"era": "1840s"}}}]
    assert seen["query_facts"] == [
        {"note": "first programmer", "seen": "2025-01-02T03:04:05+00:00", "raw": {"bytes": "AAE="}, "tags": ["a", "b"], "info": {"struct": {"owner": "sales"}}}
    ]
    recall = seen["recall"]
    assert recall["name"] == "graph" and recall["items"][0]["entity_id"] == "ada" and recall["items"][0]["score"] > 0
    assert recall["items"][0]["relationships"][0]["relationship_type"] == "PROGRAMMED"

    text = "Charles Babbage designed the Analytical Engine in London."
    assert seen["ingest_text"]["entity_ids"] == [source_entity_id(f"text:{sha256(text)}"), entity_id_for("Charles Babbage"), engine, entity_id_for("London")]
    assert seen["ingest_text_again"] == seen["ingest_text"]
    assert seen["ingest_llm"]["entity_ids"][1:] == [entity_id_for("Grace Hopper"), entity_id_for("Remington Rand")]
    assert seen["ingest_llm"]["stats"] == {"entities": 3, "relationships": 3, "sources": 1}
    llm_request = next(request for request in model.requests if "Grace Hopper" in request["body"]["messages"][1]["content"])
    assert llm_request["authorization"] == "Bearer sk-interop"
    assert (llm_request["body"]["model"], llm_request["body"]["temperature"]) == ("fake-model", 0.3)
    assert seen["ingest_file"]["entity_ids"][0] == source_entity_id("storage:docs/turing.md")
    assert {entity_id_for("Alan Turing"), entity_id_for("Bletchley Park")} <= set(seen["ingest_file"]["entity_ids"])
    assert {entity_id_for("Katherine Johnson"), entity_id_for("NASA")} <= set(seen["ingest_file_text"]["entity_ids"])
    assert seen["ingest_from_storage"] == seen["ingest_file"]
    portrait = sha256(b"\x89PNG\r\n\x1a\nportrait")
    assert seen["ingest_image"]["entity_ids"][0] == source_entity_id(f"image:{portrait}")
    assert entity_id_for("Ada Lovelace") in seen["ingest_image"]["entity_ids"]
    assert seen["ingest_from_table"]["stats"]["sources"] == 1
    assert {entity_id_for("Alan Turing"), entity_id_for("Joan Clarke")} <= set(seen["ingest_from_table"]["entity_ids"])

    errors = seen["errors"]
    assert error(2001, "memory does not exist: nothing")(errors["missing"])
    assert error(1002, "read-only")(errors["write_statement"])
    assert error(1003, "dataset 'person' not found")(errors["unknown_label"])
    for name in ("reserved_table", "bad_records_json", "recall_limit", "bad_relationship_type"):
        assert error(1002)(errors[name]), (name, errors[name])
    assert seen["count_after_errors"] == seen["count_before_errors"]

    assert seen["delete_relationships"] == {"name": "graph", "deleted_relationships": 1}
    assert seen["delete_entities"]["deleted_entities"] == 1 and seen["delete_entities"]["deleted_relationships"] >= 2
    assert [dataset["dataset"] for dataset in seen["optimize"]["datasets"]] == ["entity", "relationship", "facts"]
    assert seen["limited_query"] == [{"name": "Ada Lovelace"}]
    assert error(1001, "you do not have permission to perform the requested action")(seen["limited_upsert"])
    assert error(1001, "you do not have permission to perform the requested action")(seen["no_grant"])
    assert error(2001)(seen["drop_missing"]) and seen["list_after_drop"] == []

    toolkit = seen["toolkit"]
    assert toolkit["search_empty"] == {"query": "tea", "memories": []}
    assert toolkit["recent_empty"] == {"memories": []} and toolkit["relationships_empty"] == {"relationships": []}
    added = toolkit["add"]
    alice, tea = entity_id_for("Alice Johnson"), entity_id_for("green tea")
    assert added["name"] == "agent-memory" and added["strategy"] == "llm" and added["entity_ids"][1:] == [alice, tea]
    primary = added["primary_entity_id"]
    assert primary == added["entity_ids"][0] == source_entity_id(f"text:{sha256('Alice Johnson likes green tea.')}")
    assert {memory["entity_id"] for memory in toolkit["search"]["memories"]} >= {tea, primary}
    assert all(memory["relationships"] is not None for memory in toolkit["search"]["memories"])
    assert {memory["entity_id"] for memory in toolkit["recent"]["memories"]} == {primary, alice, tea}
    assert [memory["entity_id"] for memory in toolkit["recent_people"]["memories"]] == [alice]
    assert {(r["source_entity_id"], r["relationship_type"], r["target_entity_id"]) for r in toolkit["relationships"]["relationships"]} == {
        (primary, "MENTIONS", alice), (primary, "MENTIONS", tea), (alice, "LIKES", tea),
    }  # fmt: skip
    assert toolkit["entity"]["entity"]["entity_type"] == "MEMORY" and toolkit["entity"]["entity"]["memory"] == "Alice Johnson likes green tea."
    assert {r["target_entity_id"] for r in toolkit["relationships_of"]["relationships"]} == {alice, tea}
    assert toolkit["delete_relationship"]["deleted"] is True and toolkit["delete_relationship"]["deleted_relationships"] == 1
    assert toolkit["delete_entity"]["deleted"] is True
    assert toolkit["delete_all"] == {"ok": True, "name": "agent-memory"}
    assert toolkit["recent_after_delete_all"] == {"memories": []}


# --- the same answers read by both clients ------------------------------------------------------

DETAILS = {"name": "graph", "namespace": ["team"], "path": "/memories/team/graph", "datasets": [{"name": "entity", "rows": 2, "columns": ["entity_id"]}]}
ITEM = {"entity_id": "a", "name": "A", "entity_type": "PERSON", "score": 0.5, "relationships": [{"source_entity_id": "a", "target_entity_id": "b", "relationship_type": "KNOWS"}]}
INGEST = {"name": "graph", "stats": {"entities": 2, "relationships": 1, "sources": 1}, "entity_ids": ["a", "b"]}


def content(value: Any) -> dict:
    return {"type": "json", "json": value}


CASES: list[tuple[str, dict]] = [
    ("list", content({"memories": ["a", "b"]})),
    ("list", content({})),
    ("list", content({"memories": ["a"], "extra": 1})),
    ("list", content({"memories": ["a", 1]})),
    ("list", content({"memories": None})),
    ("list", content([])),
    ("list", {"type": "empty"}),
    ("list", {"type": "text", "text": "{}"}),
    ("inspect", content(DETAILS)),
    ("inspect", content({**DETAILS, "extra": True, "namespace": None})),
    ("inspect", content({"name": "graph", "path": "/p"})),
    ("inspect", content({**DETAILS, "datasets": [{"name": "entity", "rows": "3"}]})),
    ("inspect", content({**DETAILS, "datasets": [{"name": "entity", "rows": 3.0}]})),
    ("inspect", content({"name": "graph"})),
    ("inspect", {"type": "empty"}),
    ("query", content({"results": [{"n": 1, "b": {"binary": "eA=="}, "s": {"struct": {"k": "v"}}, "l": {"list": [1]}, "t": {"timestamp": "2025-01-02T03:04:05Z"}}]})),
    ("query", content({"results": []})),
    ("query", content({"kind": "rows", "rows": [{"columns": [{"name": "n", "value": 2}]}]})),
    ("query", content({"kind": "rows", "rows": [{"columns": [{"name": "n", "value": {"binary": 5}}]}]})),
    ("query", content({"kind": "rows", "rows": [{"columns": [{"value": 1}]}]})),
    ("query", content({"results": [{"bad": {"nope": 1}}]})),
    ("query", content({"rows": []})),
    ("query", {"type": "empty"}),
    ("ingest_text", content(INGEST)),
    ("ingest_text", content({"name": "graph", "stats": {}})),
    ("ingest_text", content({"name": "graph", "stats": {"entities": "2"}, "entity_ids": ["a"], "more": 1})),
    ("ingest_text", content({"name": "graph"})),
    ("ingest_text", content({"name": "graph", "stats": {}, "entity_ids": [1]})),
    ("ingest_text", {"type": "text", "text": "x"}),
    ("recall", content({"name": "graph", "query": "x", "items": [ITEM]})),
    ("recall", content({"name": "graph", "query": "x"})),
    ("recall", content({"name": "graph", "query": "x", "items": [{**ITEM, "score": "0.5"}]})),
    ("recall", content({"name": "graph", "query": "x", "items": [{**ITEM, "entity_type": None}]})),
    ("recall", content({"name": "graph", "query": "x", "items": [{**ITEM, "score": None}]})),
    ("delete_entities", content({"name": "graph", "deleted_entities": 1, "deleted_relationships": 2})),
    ("delete_entities", content({"name": "graph"})),
    ("delete_entities", content({"deleted_entities": 1})),
    ("delete_relationships", content({"name": "graph", "deleted_relationships": 3})),
    ("optimize", content({"name": "graph", "datasets": [{"dataset": "entity", "bytes_removed": 10}]})),
    ("optimize", content({"name": "graph"})),
    ("optimize", content({"name": "graph", "datasets": [{"bytes_removed": 10}]})),
]

CALLS: dict[str, dict[str, Any]] = {
    "list": {},
    "inspect": {"name": "graph"},
    "query": {"name": "graph", "statement": "MATCH (e) RETURN e"},
    "ingest_text": {"name": "graph", "text": "x"},
    "recall": {"name": "graph", "query": "x"},
    "delete_entities": {"name": "graph", "entity_ids": ["a"]},
    "delete_relationships": {"name": "graph", "relationships": []},
    "optimize": {"name": "graph"},
}


class _AnsweringRoom:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def invoke(self, toolkit: str, tool: str, arguments: Any = None, **_: Any) -> Any:
        return self.answer


def plain(value: Any) -> Any:
    """As the official script renders a value."""
    if isinstance(value, msgspec.Struct):
        return plain(msgspec.to_builtins(value))
    if isinstance(value, DatasetStruct):
        return {"struct": plain(value.fields)}
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


async def ours(op: str, data: dict) -> dict:
    answer = {"json": lambda: JsonContent(json=data.get("json")), "empty": EmptyContent, "text": lambda: TextContent(text=data["text"])}[data["type"]]()
    client = MemoryClient(_AnsweringRoom(answer))  # type: ignore[arg-type]
    try:
        return {"ok": plain(await getattr(client, op)(**CALLS[op]))}
    except RoomException as failure:
        return {"error": type(failure).__name__, "code": failure.code}
    except ValueError as failure:
        return {"error": type(failure).__name__, "code": None}


def alike(theirs: dict, mine: dict) -> bool:
    """The same value; or both refused — with the same code when the official client raised a
    RoomException (where it raises pydantic's ValidationError or an AttributeError for an answer
    of the wrong shape, ours is RoomException 1100)."""
    if "ok" in theirs or "ok" in mine:
        return theirs == mine
    if theirs["error"] == "RoomException":
        return mine == theirs
    if theirs["error"] == "ValueError":
        return mine["error"] == "ValueError"
    return mine == {"error": "RoomException", "code": 1100}


async def test_both_clients_read_answers_alike(official_python: str) -> None:
    official = run_official(official_python, "answers", cases=[{"op": op, "content": data} for op, data in CASES])
    assert len(official) == len(CASES)
    mismatches = []
    for case, theirs in zip(CASES, official):
        mine = await ours(*case)
        if not alike(theirs, mine):
            mismatches.append((case, theirs, mine))
    assert not mismatches, json.dumps(mismatches, indent=1, default=str)[:6000]
    refused = sum("error" in outcome for outcome in official)
    assert 0 < refused < len(CASES)  # the cases exercise both sides
