"""The five ingests of the `memory` toolkit end to end: the heuristic strategy (determinism as a
property, idempotence), files of room storage (text, Markdown, JSON, PDF), images kept in
storage, dataset tables, the grants they need, and the `llm` strategy against a local fake
OpenAI-compatible server (`fake_openai`: the one place a stand-in is right, no model runs here)."""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import meshagent_trio
from meshagent_core import RoomException
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import DatasetGrant, LLMGrant, MemoryGrant, StorageGrant, StoragePathGrant, TableGrant
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.toolkits.memory_access import MemoryState
from meshagent_trio.server.toolkits.memory_extract import entity_id_for, source_entity_id
from meshagent_trio.server.toolkits.memory_ingest import sha256
from meshagent_trio.server.toolkits.memory_store import MemoryRef
from fake_openai import fake_model
from roomtest import mint, room_url, running_server

from test_memory import call, create, query, refused

ROOM = "memory-room"
TEXT = "Alice Johnson works at Acme Corporation in Berlin. NASA and Acme Corporation signed a deal."


def connect(server: Server, credentials: Credentials, name: str = "alice", scope: ApiScope | None = None) -> Any:
    return RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name=name, scope=scope))


def heuristic(**fields: Any) -> dict[str, Any]:
    return {"name": "graph", "namespace": None, "strategy": "heuristic", "llm_model": None, "llm_temperature": None, **fields}


def llm(**fields: Any) -> dict[str, Any]:
    return {**heuristic(**fields), "strategy": "llm", "llm_model": "fake-model", "llm_temperature": 0.2}


async def ingest(room: RoomConnection, tool: str, arguments: dict[str, Any]) -> Any:
    return (await room.invoke("memory", tool, arguments)).json


async def versions(server: Server, name: str = "graph") -> tuple[Any, ...]:
    state: MemoryState = server.room(ROOM).toolkit_state("memory", MemoryState)
    store = await state.get()
    return await trio.to_thread.run_sync(store.versions, MemoryRef((), name))


async def graph_of(room: RoomConnection, memory: str = "graph") -> dict[str, Any]:
    """Everything of a memory's graph but the times it was written."""
    entities = await query(
        room, "MATCH (e:Entity) RETURN e.entity_id AS id, e.name AS name, e.entity_type AS type, e.context AS context, e.metadata AS m ORDER BY id", memory
    )
    try:
        relationships = await query(
            room,
            "MATCH (r:RELATIONSHIP) RETURN r.source_entity_id AS s, r.target_entity_id AS t, r.relationship_type AS type, r.description AS d "
            "ORDER BY s, t, type",
            memory,
        )
    except RoomException as error:
        assert "dataset 'relationship' not found" in str(error)
        relationships = []
    return {"entities": entities, "relationships": relationships}


def write_storage(server: Server, path: str, data: bytes) -> None:
    target = server.room(ROOM).storage_dir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text layer holds `lines` (Helvetica), offsets computed."""
    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# --- heuristic text ------------------------------------------------------------------------------


async def test_ingest_text_heuristic(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        await create(room)
        result = await ingest(room, "ingest_text", heuristic(text=TEXT))
        own = source_entity_id(f"text:{sha256(TEXT)}")
        names = ["Alice Johnson", "Acme Corporation", "Berlin", "NASA"]
        assert result == {
            "name": "graph",
            "stats": {"entities": 5, "relationships": 8, "sources": 1},  # 4 MENTIONS + 4 RELATED_TO
            "entity_ids": [own, *(entity_id_for(name) for name in names)],
        }
        graph = await graph_of(room)
        by_name = {row["name"]: row for row in graph["entities"]}
        assert by_name["Acme Corporation"]["type"] == "ORGANIZATION"
        assert by_name[TEXT[:80].rsplit(" ", 1)[0] + "…"]["type"] == "MEMORY"  # the text's own entity, named by its first line
        assert by_name["NASA"]["context"] == "NASA and Acme Corporation signed a deal."
        related = await query(
            room, "MATCH (a:Entity)-[r:RELATED_TO]-(b:Entity {name: 'NASA'}) RETURN a.name AS name, r.description AS d"
        )
        assert related == [{"name": "Acme Corporation", "d": "NASA and Acme Corporation signed a deal."}]
        mentioned = await query(room, "MATCH (m:Entity {entity_type: 'MEMORY'})-[:MENTIONS]->(e:Entity) RETURN e.name AS name ORDER BY name")
        assert [row["name"] for row in mentioned] == sorted(names)

        # the same text again: the same answer, and no dataset changes
        before = await versions(server)
        assert await ingest(room, "ingest_text", heuristic(text=TEXT)) == result
        assert await versions(server) == before
        # recall finds what was ingested
        found = await call(room, "recall", name="graph", namespace=None, query="Acme deal", limit=3, include_relationships=True)
        assert found["items"][0]["name"] in ("Acme Corporation", "NASA")
        assert any(relationship["relationship_type"] == "MENTIONS" for relationship in found["items"][0]["relationships"])

        # a second text mentioning Acme adds to its context and keeps its type
        await ingest(room, "ingest_text", heuristic(text="Acme Corporation opened an office in Paris."))
        [acme] = await query(room, "MATCH (e:Entity {name: 'Acme Corporation'}) RETURN e.context AS context, e.entity_type AS type")
        assert acme["type"] == "ORGANIZATION"
        assert acme["context"] == "Alice Johnson works at Acme Corporation in Berlin. NASA and Acme Corporation signed a deal.\nAcme Corporation opened an office in Paris."
        await refused(1002, call(room, "ingest_text", **heuristic(text="   ")))
        await refused(1002, call(room, "ingest_text", **heuristic(text="x", strategy="magic")))


_WORDS = st.sampled_from(["Alice", "Bob", "Acme Corp", "Berlin", "the", "works", "at", "met", "NASA", "quietly", "University of Oxford", "Dr. Stone", '"deep learning"', "and", "in"])
_SENTENCES = st.lists(_WORDS, min_size=1, max_size=8).map(lambda words: " ".join(words) + ".")
_TEXTS = st.lists(_SENTENCES, min_size=1, max_size=5).map(" ".join).filter(lambda text: text.strip() != ".")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=_TEXTS)
def test_the_heuristic_strategy_is_deterministic_and_idempotent(text: str) -> None:
    """Same text → the same entities, relationships and ids in any memory; ingesting it again
    answers the same and changes no dataset."""
    credentials = Credentials("project", "key", "secret-" + "x" * 20)

    async def run(data_dir: Path) -> None:
        async with running_server(data_dir, credentials) as server:
            async with connect(server, credentials) as room:
                await create(room, "one")
                await create(room, "two")
                first = await ingest(room, "ingest_text", heuristic(name="one", text=text))
                second = await ingest(room, "ingest_text", heuristic(name="two", text=text))
                assert first["entity_ids"] == second["entity_ids"] and first["stats"] == second["stats"]
                assert await graph_of(room, "one") == await graph_of(room, "two")
                before = await versions(server, "one")
                assert await ingest(room, "ingest_text", heuristic(name="one", text=text)) == first
                assert await versions(server, "one") == before

    with tempfile.TemporaryDirectory() as directory:
        trio.run(run, Path(directory) / "data")


# --- files ---------------------------------------------------------------------------------------


async def test_ingest_files_of_every_kind(server: Server, credentials: Credentials) -> None:
    write_storage(server, "docs/notes.txt", b"Grace Hopper wrote the first compiler at Remington Rand.")
    write_storage(server, "docs/readme.md", b"# Project Apollo\n\n* **Neil Armstrong** walked on the [Moon](https://nasa.gov).\n\n```\nIgnored Code Block\n```\n")
    write_storage(server, "docs/team.json", json.dumps({"lead": {"name": "Katherine Johnson", "employer": "NASA"}, "tags": ["orbit"]}).encode())
    write_storage(server, "docs/paper.pdf", minimal_pdf(["Ada Lovelace worked with Charles Babbage.", "The Analytical Engine was their machine."]))
    async with connect(server, credentials) as room:
        await create(room)

        async def names_from(path: str) -> set[str]:
            result = await ingest(room, "ingest_file", heuristic(path=path, text=None, mime_type=None))
            assert result["stats"]["sources"] == 1 and result["entity_ids"][0] == source_entity_id(f"storage:{path}")
            rows = await query(room, f"MATCH (d:Entity {{entity_id: '{result['entity_ids'][0]}'}})-[:MENTIONS]->(e:Entity) RETURN e.name AS name")
            return {row["name"] for row in rows}

        assert await names_from("docs/notes.txt") == {"Grace Hopper", "Remington Rand"}
        assert await names_from("docs/readme.md") == {"Project Apollo", "Neil Armstrong", "Moon"}
        assert {"Katherine Johnson", "NASA"} <= await names_from("docs/team.json")
        assert {"Ada Lovelace", "Charles Babbage", "Analytical Engine"} <= await names_from("docs/paper.pdf")
        [document] = await query(room, "MATCH (d:Entity {name: 'docs/paper.pdf'}) RETURN d.entity_type AS type, d.metadata AS m")
        assert document["type"] == "DOCUMENT" and document["m"]["struct"]["location"] == "docs/paper.pdf"

        # inline text, with a mime type
        result = await ingest(room, "ingest_file", heuristic(path=None, text="## Heading\nMarie Curie won a **Nobel Prize**.", mime_type="text/markdown"))
        assert entity_id_for("Marie Curie") in result["entity_ids"] and entity_id_for("Nobel Prize") in result["entity_ids"]

        # an edited file is a new version of the same source
        before = await versions(server)
        assert (await ingest(room, "ingest_file", heuristic(path="docs/notes.txt", text=None, mime_type=None)))["entity_ids"][1:] == [
            entity_id_for("Grace Hopper"), entity_id_for("Remington Rand"),
        ]  # fmt: skip
        assert await versions(server) == before
        write_storage(server, "docs/notes.txt", b"Grace Hopper also worked on COBOL.")
        edited = await ingest(room, "ingest_file", heuristic(path="docs/notes.txt", text=None, mime_type=None))
        assert entity_id_for("COBOL") in edited["entity_ids"]

        # several at once; a missing one fails the call and writes nothing
        together = await ingest(room, "ingest_from_storage", heuristic(paths=["docs/notes.txt", "docs/readme.md"]))
        assert together["stats"]["sources"] == 2
        before = await versions(server)
        write_storage(server, "docs/new.txt", b"Linus Torvalds wrote Linux.")
        await refused(3001, call(room, "ingest_from_storage", **heuristic(paths=["docs/new.txt", "docs/missing.txt"])))
        await refused(3004, call(room, "ingest_file", **heuristic(path="../outside.txt", text=None, mime_type=None)))
        write_storage(server, "docs/picture.png", b"\x89PNG\r\n\x1a\n")
        await refused(1002, call(room, "ingest_file", **heuristic(path="docs/picture.png", text=None, mime_type=None)), match="ingest_image")
        write_storage(server, "docs/broken.pdf", b"%PDF-1.4 not really")
        await refused(1002, call(room, "ingest_file", **heuristic(path="docs/broken.pdf", text=None, mime_type=None)))
        await refused(1002, call(room, "ingest_file", **heuristic(path=None, text=None, mime_type=None)))
        await refused(1002, call(room, "ingest_from_storage", **heuristic(paths=[])))
        assert await versions(server) == before

    reader = ApiScope(memory=MemoryGrant(), storage=StorageGrant(paths=[StoragePathGrant(path="public", read_only=True)]))
    async with connect(server, credentials, "bob", scope=reader) as room:
        await refused(1001, call(room, "ingest_file", **heuristic(path="docs/notes.txt", text=None, mime_type=None)))
        await refused(1001, call(room, "ingest_from_storage", **heuristic(paths=["docs/notes.txt"])))


# --- images --------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def test_ingest_image(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        await create(room)
        arguments = heuristic(
            caption="Whiteboard from the Acme Corporation planning session",
            data_base64=base64.b64encode(PNG).decode(),
            mime_type="image/png",
            source="whiteboard.png",
            annotations_json=json.dumps({"scene": "planning", "person": "Alice Johnson"}),
        )
        result = await ingest(room, "ingest_image", arguments)
        digest = sha256(PNG)
        stored = f"memories/graph/images/{digest}.png"
        assert (server.room(ROOM).storage_dir / stored).read_bytes() == PNG
        assert result["entity_ids"][0] == source_entity_id(f"image:{digest}")
        assert {entity_id_for("planning"), entity_id_for("Alice Johnson"), entity_id_for("Acme Corporation")} <= set(result["entity_ids"])
        [image] = await query(room, f"MATCH (i:Entity {{entity_id: '{result['entity_ids'][0]}'}}) RETURN i.entity_type AS type, i.metadata AS m, i.name AS name")
        assert image["type"] == "IMAGE" and image["name"] == "Whiteboard from the Acme Corporation planning session"
        assert image["m"]["struct"]["path"] == stored and image["m"]["struct"]["source"] == "whiteboard.png"
        [person] = await query(room, "MATCH (:Entity {entity_type: 'IMAGE'})-[:MENTIONS]->(p:Entity {name: 'Alice Johnson'}) RETURN p.entity_type AS type")
        assert person["type"] == "PERSON"  # the annotation's key

        before = await versions(server)
        assert await ingest(room, "ingest_image", arguments) == result
        assert await versions(server) == before
        # caption only
        only_caption = await ingest(room, "ingest_image", heuristic(caption="Sunset over Lisbon", data_base64=None, mime_type=None, source=None, annotations_json=None))
        assert entity_id_for("Lisbon") in only_caption["entity_ids"]

        for bad in (
            {"data_base64": "!!! not base64"},
            {"annotations_json": "[1, 2]"},
            {"annotations_json": '{"k": 1}'},
            {"caption": None, "data_base64": None, "annotations_json": None},
        ):
            await refused(1002, call(room, "ingest_image", **{**arguments, **bad}))

    no_storage_write = ApiScope(memory=MemoryGrant(), storage=StorageGrant(paths=[StoragePathGrant(path="", read_only=True)]))
    async with connect(server, credentials, "bob", scope=no_storage_write) as room:
        other = base64.b64encode(PNG + b"other").decode()
        await refused(1001, call(room, "ingest_image", **{**arguments, "data_base64": other}))
        assert not (server.room(ROOM).storage_dir / f"memories/graph/images/{sha256(PNG + b'other')}.png").exists()


# --- dataset tables ------------------------------------------------------------------------------


async def test_ingest_from_table(server: Server, credentials: Credentials) -> None:
    rows = [
        {"id": 1, "title": "Kickoff", "notes": "Alice Johnson met the Acme Corporation team."},
        {"id": 2, "title": "Review", "notes": "NASA reviewed the Apollo plan."},
        {"id": 3, "title": "Retro", "notes": None},
    ]
    async with meshagent_trio.connect(room_url(server, ROOM), mint(credentials, ROOM)) as client:
        await client.datasets.create_table_from_json_data(name="meetings", data=rows, namespace=["crm"])
        await client.memory.create(name="graph")
    async with connect(server, credentials) as room:
        result = await ingest(room, "ingest_from_table", heuristic(table="meetings", table_namespace=["crm"], text_columns=["notes"], limit=None))
        assert result["stats"]["sources"] == 2  # the row without text is no source
        assert {entity_id_for(name) for name in ("Alice Johnson", "Acme Corporation", "NASA", "Apollo")} <= set(result["entity_ids"])
        records = await query(room, "MATCH (r:Entity {entity_type: 'RECORD'}) RETURN r.name AS name ORDER BY name")
        assert records == [{"name": "notes: Alice Johnson met the Acme Corporation team."}, {"name": "notes: NASA reviewed the Apollo plan."}]
        before = await versions(server)
        assert await ingest(room, "ingest_from_table", heuristic(table="meetings", table_namespace=["crm"], text_columns=["notes"], limit=None)) == result
        assert await versions(server) == before
        every_string = await ingest(room, "ingest_from_table", heuristic(table="meetings", table_namespace=["crm"], text_columns=None, limit=1))
        assert every_string["stats"]["sources"] == 1 and entity_id_for("Kickoff") in every_string["entity_ids"]

        await refused(1003, call(room, "ingest_from_table", **heuristic(table="missing", table_namespace=["crm"], text_columns=None, limit=None)))
        await refused(1002, call(room, "ingest_from_table", **heuristic(table="meetings", table_namespace=["crm"], text_columns=["nope"], limit=None)))
        await refused(1002, call(room, "ingest_from_table", **heuristic(table="meetings", table_namespace=["crm"], text_columns=["id"], limit=0)))

    other_table = ApiScope(memory=MemoryGrant(), dataset=DatasetGrant(tables=[TableGrant(name="other")]))
    async with connect(server, credentials, "bob", scope=other_table) as room:
        await refused(1001, call(room, "ingest_from_table", **heuristic(table="meetings", table_namespace=["crm"], text_columns=None, limit=None)))


# --- the llm strategy ----------------------------------------------------------------------------


GOOD = {
    "entities": [
        {"name": "Alice Johnson", "entity_type": "person", "context": "An engineer at Acme.", "confidence": 0.9},
        {"name": "Acme Corporation", "entity_type": "ORGANIZATION", "context": "A company.", "confidence": 1.7},
    ],
    "relationships": [
        {"source": "Alice Johnson", "target": "Acme Corporation", "relationship_type": "works at", "description": "Alice works at Acme.", "confidence": 0.8},
        {"source": "Acme Corporation", "target": "Berlin", "relationship_type": "3rd-party!", "description": "Acme is in Berlin."},
    ],
}


async def test_llm_strategy(server: Server, credentials: Credentials, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_model() as (model, base_url):
        async with connect(server, credentials) as room:
            await create(room)
            monkeypatch.delenv("OPENAI_API_KEY", raising=False)
            unconfigured = await refused(1007, call(room, "ingest_text", **llm(text=TEXT)))
            assert "OPENAI_API_KEY" in str(unconfigured)

            monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
            monkeypatch.setenv("OPENAI_BASE_URL", base_url)
            model.completion(json.dumps(GOOD))
            result = await ingest(room, "ingest_text", llm(text=TEXT))
            [request] = model.requests
            assert request["path"] == "/v1/chat/completions" and request["authorization"] == "Bearer sk-test"
            body = request["body"]
            assert body["model"] == "fake-model" and body["temperature"] == 0.2 and body["response_format"] == {"type": "json_object"}
            assert body["messages"][1] == {"role": "user", "content": TEXT}
            assert result["entity_ids"][1:] == [entity_id_for("Alice Johnson"), entity_id_for("Acme Corporation"), entity_id_for("Berlin")]
            assert result["stats"] == {"entities": 4, "relationships": 5, "sources": 1}
            edges = await query(room, "MATCH (a:Entity)-[r]->(b:Entity) WHERE label(r) <> 'MENTIONS' RETURN a.name AS source, label(r) AS type, b.name AS target ORDER BY source")
            assert edges == [
                {"source": "Acme Corporation", "type": "RELATED_TO", "target": "Berlin"},
                {"source": "Alice Johnson", "type": "WORKS_AT", "target": "Acme Corporation"},
            ]
            [alice] = await query(room, "MATCH (e:Entity {name: 'Alice Johnson'}) RETURN e.entity_type AS type, e.confidence AS c")
            assert alice == {"type": "PERSON", "c": 0.9}
            assert await ingest(room, "ingest_text", llm(text=TEXT)) == result and len(model.requests) == 1  # known source: no call

            before = await versions(server)
            garbage = [
                (200, b"not json"),
                (200, json.dumps({"choices": []}).encode()),
                (500, b'{"error": "overloaded"}'),
            ]
            for status, body_bytes in garbage:
                model.answer = (status, body_bytes)
                await refused(1008, call(room, "ingest_text", **llm(text="Grace Hopper")))
            for content in ("here you go: entities...", json.dumps({"entities": [{"name": ""}]}), json.dumps({"entities": "Alice"}), json.dumps([1])):
                model.completion(content)
                error = await refused(1008, call(room, "ingest_text", **llm(text="Grace Hopper")))
                assert "the language model's answer" in str(error)
            image = PNG + b"llm"
            arguments = llm(caption="Grace Hopper at work", data_base64=base64.b64encode(image).decode(), mime_type="image/png", source=None, annotations_json=None)
            await refused(1008, call(room, "ingest_image", **arguments))
            assert not (server.room(ROOM).storage_dir / f"memories/graph/images/{sha256(image)}.png").exists()  # kept only once read
            assert await versions(server) == before

        no_llm = ApiScope(memory=MemoryGrant())
        async with connect(server, credentials, "bob", scope=no_llm) as room:
            await refused(1001, call(room, "ingest_text", **llm(text="Grace Hopper")))
        other_model = ApiScope(memory=MemoryGrant(), llm=LLMGrant(models=["openai/gpt-4o"]))
        async with connect(server, credentials, "carol", scope=other_model) as room:
            await refused(1001, call(room, "ingest_text", **llm(text="Grace Hopper")))


async def test_connection_keeps_working_after_refused_ingests(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        await create(room)
        for tool, arguments in (
            ("ingest_text", {"name": "graph"}),
            ("ingest_file", heuristic(path=5)),
            ("ingest_from_storage", heuristic(paths="docs/a.txt")),
            ("ingest_image", heuristic(caption="x", data_base64=None, mime_type=None, source=None, annotations_json=None, llm_temperature="warm")),
        ):
            with pytest.raises(RoomException) as error:
                await room.invoke("memory", tool, arguments)
            assert error.value.code == 1002, (tool, error.value)
        assert (await ingest(room, "ingest_text", heuristic(text="Ada Lovelace")))["stats"]["sources"] == 1
