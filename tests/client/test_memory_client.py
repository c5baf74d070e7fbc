"""`room.memory` against the real local server, on Trio and on AnyIO (asyncio and Trio): every
tool of the official `MemoryClient` with its names, arguments and return types, the errors it
raises, and the reading of answers the local server never gives (code 1100)."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from typing import Any

import msgspec
import pytest

from meshagent_core import EmptyContent, JsonContent, RoomException, TextContent
from meshagent_core.client.memory import memories_from_list_answer, rows_from_query_answer
from meshagent_core.toolkits.records import DatasetStruct
from meshagent_core.toolkits.memory import (
    MemoryDetails,
    MemoryEntityRecord,
    MemoryIngestResult,
    MemoryRecallResult,
    MemoryRelationshipRecord,
    MemoryRelationshipSelector,
)
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import MessagingGrant
from roomtest import mint

pytestmark = pytest.mark.anyio


def _room(name: str, client_variant: tuple[str, str]) -> str:
    return f"memory-{name}-{'-'.join(client_variant)}"


async def test_every_tool(client_module, client_variant, local_server) -> None:
    room_name = _room("tools", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        memory = room.memory
        assert await memory.list() == []
        await memory.create(name="graph")
        await memory.create(name="graph", ignore_exists=True)
        await memory.create(name="notes", namespace=["team"])
        assert await memory.list() == ["graph"] and await memory.list(namespace=["team"]) == ["notes"]

        await memory.upsert_nodes(
            name="graph",
            records=[
                MemoryEntityRecord(entity_id="ada", name="Ada Lovelace", entity_type="PERSON", context="Wrote the first program.", metadata={"era": "1840s"}),
                {"entity_id": "engine", "name": "Analytical Engine", "entity_type": "MACHINE", "context": "A mechanical computer."},
            ],
        )
        await memory.upsert_relationships(
            name="graph", records=[MemoryRelationshipRecord(source_entity_id="ada", target_entity_id="engine", relationship_type="PROGRAMMED", description="notes on the engine")]
        )
        seen = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        await memory.upsert_table(name="graph", table="facts", records=[{"entity_id": "ada", "note": "first programmer", "seen_at": seen, "raw": b"\x00\x01", "tags": ["a", "b"]}])

        details = await memory.inspect(name="graph")
        assert isinstance(details, MemoryDetails) and details.name == "graph" and details.path == "/memories/graph"
        assert [(dataset.name, dataset.rows) for dataset in details.datasets] == [("entity", 2), ("relationship", 1), ("facts", 1)]

        rows = await memory.query(name="graph", statement="MATCH (a:Entity)-[r:PROGRAMMED]->(b:Entity) RETURN a.name AS who, b.name AS what, a.metadata AS m, r.description AS d")
        [row] = rows
        assert isinstance(row["m"], DatasetStruct) and row["m"].fields == {"era": "1840s"}  # as the official client decodes a struct
        assert {**row, "m": None} == {"who": "Ada Lovelace", "what": "Analytical Engine", "m": None, "d": "notes on the engine"}
        [fact] = await memory.query(name="graph", statement="MATCH (f:facts) RETURN f.note AS note, f.seen_at AS seen, f.raw AS raw, f.tags AS tags")
        assert fact == {"note": "first programmer", "seen": seen, "raw": b"\x00\x01", "tags": ["a", "b"]}

        recalled = await memory.recall(name="graph", query="first program", limit=5)
        assert isinstance(recalled, MemoryRecallResult) and recalled.items[0].entity_id == "ada" and recalled.items[0].score > 0
        assert recalled.items[0].relationships[0].relationship_type == "PROGRAMMED"
        assert (await memory.recall(name="graph", query="first program", include_relationships=False)).items[0].relationships == []

        ingested = await memory.ingest_text(name="graph", text="Charles Babbage designed the Analytical Engine.")
        assert isinstance(ingested, MemoryIngestResult) and ingested.stats.sources == 1 and len(ingested.entity_ids) == 3
        await room.storage.upload(path="docs/grace.md", data=b"# Notes\nGrace Hopper built the **Mark I** compiler.", overwrite=True)
        from_file = await memory.ingest_file(name="graph", path="docs/grace.md")
        assert from_file.stats.entities == 3  # the document, Grace Hopper, Mark I
        inline = await memory.ingest_file(name="graph", text='{"lead": "Katherine Johnson"}', mime_type="application/json")
        assert inline.stats.entities == 2
        both = await memory.ingest_from_storage(name="graph", paths=["docs/grace.md"])
        assert both.entity_ids == from_file.entity_ids  # already ingested: the same answer
        png = b"\x89PNG\r\n\x1a\nfake"
        image = await memory.ingest_image(name="graph", caption="Ada Lovelace portrait", data=png, mime_type="image/png", annotations={"person": "Ada Lovelace"})
        assert image.stats.sources == 1 and await room.storage.exists(path=f"memories/graph/images/{hashlib.sha256(png).hexdigest()}.png")
        await room.datasets.create_table_from_json_data(name="meetings", data=[{"notes": "Alan Turing visited Bletchley Park."}])
        from_table = await memory.ingest_from_table(name="graph", table="meetings", text_columns=["notes"], limit=10)
        assert from_table.stats.sources == 1 and from_table.stats.entities == 3

        deleted = await memory.delete_entities(name="graph", entity_ids=["engine"])
        assert (deleted.name, deleted.deleted_entities) == ("graph", 1) and deleted.deleted_relationships >= 1
        removed = await memory.delete_relationships(name="graph", relationships=[MemoryRelationshipSelector(source_entity_id="ada", target_entity_id="nobody")])
        assert removed.deleted_relationships == 0
        optimized = await memory.optimize(name="graph")
        assert [dataset.dataset for dataset in optimized.datasets] == ["entity", "relationship", "facts"]

        await memory.drop(name="graph")
        await memory.drop(name="graph", ignore_missing=True)
        assert await memory.list() == []


async def test_errors(client_module, client_variant, local_server) -> None:
    room_name = _room("errors", client_variant)
    url = local_server.room_url(room_name)
    async with client_module.connect(url, mint(local_server.credentials, room_name)) as room:
        memory = room.memory

        async def code_of(awaitable: Any) -> tuple[int, str]:
            with pytest.raises(RoomException) as error:
                await awaitable
            return error.value.code, str(error.value)

        assert await code_of(memory.inspect(name="graph")) == (2001, "memory does not exist: graph")
        await memory.create(name="graph")
        assert await code_of(memory.create(name="graph")) == (2002, "memory already exists: graph")
        code, text = await code_of(memory.query(name="graph", statement="MATCH (e:Entity) RETURN e.entity_id AS entity_id"))
        assert code == 1003 and "dataset 'entity' not found" in text
        assert (await code_of(memory.query(name="graph", statement="MATCH (e:Entity) DELETE e")))[0] == 1002
        assert (await code_of(memory.upsert_table(name="graph", table="entity", records=[{"x": 1}])))[0] == 1002
        assert (await code_of(memory.recall(name="graph", query="x", limit=0)))[0] == 1002
        with pytest.raises(msgspec.ValidationError):  # checked before sending, as the official request models do
            await memory.recall(name="graph", query="x", limit=None)  # type: ignore[arg-type]
        assert await memory.list() == ["graph"]  # still connected, nothing changed
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="eve", scope=ApiScope(messaging=MessagingGrant()))) as room:
        code, text = await code_of(room.memory.list())
        assert (code, text) == (1001, "you do not have permission to perform the requested action")


# --- reading answers (no server needed) ---------------------------------------------------------


def test_list_answers_are_read_as_the_official_client_reads_them() -> None:
    assert memories_from_list_answer(JsonContent(json={})) == []
    assert memories_from_list_answer(JsonContent(json={"memories": ["a"], "extra": 1})) == ["a"]
    for bad in (JsonContent(json={"memories": ["graph", 123]}), JsonContent(json={"memories": None}), JsonContent(json=[]), EmptyContent(), TextContent(text="x")):
        with pytest.raises(RoomException, match="unexpected return type from memory.list") as error:
            memories_from_list_answer(bad)
        assert error.value.code == 1100


def test_query_answers_are_read_as_the_official_client_reads_them() -> None:
    assert rows_from_query_answer(JsonContent(json={"results": [{"n": 1, "b": {"binary": base64.b64encode(b"x").decode()}}]})) == [{"n": 1, "b": b"x"}]
    typed = {"kind": "rows", "rows": [{"columns": [{"name": "n", "value": 2}, {"name": "tags", "value": {"list": ["a"]}}]}]}
    assert rows_from_query_answer(JsonContent(json=typed)) == [{"n": 2, "tags": ["a"]}]
    with pytest.raises(ValueError):
        rows_from_query_answer(JsonContent(json={"results": [{"bad": {"nope": 1}}]}))
    for bad, message in (
        ({"rows": []}, "memory.query"),
        ({"kind": "rows", "rows": [{"columns": [{"name": 1}]}]}, "memory.query"),
        ({"kind": "rows", "rows": [{"columns": [{"name": "x", "value": {"binary": 5}}]}]}, "datasets.memory.query"),
    ):
        with pytest.raises(RoomException, match=f"unexpected return type from {message}$") as error:
            rows_from_query_answer(JsonContent(json=bad))
        assert error.value.code == 1100


def test_models_port_from_the_official_client() -> None:
    record = MemoryEntityRecord(name="Alice", entity_type="PERSON", metadata={"role": "admin"})
    assert record.model_dump() == {
        "entity_id": None, "name": "Alice", "entity_type": "PERSON", "context": None, "confidence": None,
        "created_at": None, "valid_at": None, "metadata": {"role": "admin"},
    }  # fmt: skip
    assert MemoryIngestResult.model_validate({"name": "g", "stats": {"entities": "2"}, "extra": True}).stats.entities == 2
    assert MemoryRelationshipRecord(source_entity_id="a", target_entity_id="b").relationship_type == "RELATED_TO"
