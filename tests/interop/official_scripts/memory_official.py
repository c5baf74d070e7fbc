"""The official 0.56 `room.memory` and the official memories toolkit (`meshagent.tools.memories`)
against our server (runs under the OFFICIAL interpreter, never ours). Environment as in
`_official.py`; the server's model endpoint is the test's fake one.

`python memory_official.py live`: every tool of `MemoryClient` with the official models, the
`llm` strategy, bad input and missing grants, then every tool of `MemoriesToolkit` as an agent
would call it. Prints one JSON line of observations: values as JSON (bytes as base64, times as
ISO 8601), errors as `{"type", "code", "message"}`.

`python memory_official.py answers`: reads a JSON list of cases from stdin, each `{"op": <a
MemoryClient method>, "content": {"type": "json", "json": ...} | {"type": "empty"} | {"type":
"text", "text": ...}}`, hands each answer to the official client and prints one JSON line: per
case `{"ok": <the result as JSON>}` or `{"error": <the exception's type>, "code": <its code>}`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from datetime import date, datetime, timezone
from typing import Any

from meshagent.api import ApiScope, DatasetStruct
from meshagent.api.messaging import EmptyContent, JsonContent, TextContent
from meshagent.api.participant_token import MemoryEntryGrant, MemoryGrant, MemoryPermissions, MessagingGrant
from meshagent.api.room_server_client import MemoryClient, MemoryEntityRecord, MemoryRelationshipRecord, MemoryRelationshipSelector


def plain(value: Any) -> Any:
    """A value as JSON: models dumped, bytes base64, times ISO 8601, structs as dicts."""
    if hasattr(value, "model_dump"):
        return plain(value.model_dump(mode="json"))
    if isinstance(value, DatasetStruct):
        return {"struct": plain(value.fields)}
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


async def live() -> dict:
    from _official import connect, expect_error, observed, timed

    async with connect("alice") as room:
        memory = room.memory
        observed["list_empty"] = await timed("list", memory.list())
        await timed("create", memory.create(name="graph"))
        observed["create_existing"] = await expect_error("create existing", memory.create(name="graph"))
        await timed("create ignore_exists", memory.create(name="graph", ignore_exists=True))
        await timed("create in namespace", memory.create(name="notes", namespace=["team"]))
        observed["list"] = await timed("list again", memory.list())
        observed["list_team"] = await timed("list team", memory.list(namespace=["team"]))
        observed["empty_query"] = await expect_error("query empty", memory.query(name="graph", statement="MATCH (e:Entity) RETURN e.entity_id as entity_id LIMIT 1"))

        await timed(
            "upsert_nodes",
            memory.upsert_nodes(
                name="graph",
                records=[
                    MemoryEntityRecord(entity_id="ada", name="Ada Lovelace", entity_type="PERSON", context="Wrote the first program.", confidence=0.9, metadata={"era": "1840s"}),
                    MemoryEntityRecord(name="Analytical Engine", entity_type="MACHINE", context="A mechanical general-purpose computer."),
                ],
            ),
        )
        engine = (await memory.query(name="graph", statement="MATCH (e:Entity {name: 'Analytical Engine'}) RETURN e.entity_id AS id"))[0]["id"]
        observed["engine_id"] = engine
        await timed(
            "upsert_relationships",
            memory.upsert_relationships(
                name="graph", records=[MemoryRelationshipRecord(source_entity_id="ada", target_entity_id=engine, relationship_type="PROGRAMMED", description="Notes G")]
            ),
        )
        seen = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        await timed(
            "upsert_table",
            memory.upsert_table(
                name="graph",
                table="facts",
                records=[{"entity_id": "ada", "note": "first programmer", "seen_at": seen, "raw": b"\x00\x01", "tags": ["a", "b"], "info": DatasetStruct({"owner": "sales"})}],
            ),
        )
        observed["inspect"] = plain(await timed("inspect", memory.inspect(name="graph")))
        observed["query_edges"] = plain(
            await timed("query edges", memory.query(name="graph", statement="MATCH (a:Entity)-[r:PROGRAMMED]->(b:Entity) RETURN a.name AS who, b.name AS what, r.description AS d, a.metadata AS m"))
        )
        observed["query_facts"] = plain(
            await timed("query facts", memory.query(name="graph", statement="MATCH (f:facts) RETURN f.note AS note, f.seen_at AS seen, f.raw AS raw, f.tags AS tags, f.info AS info"))
        )
        observed["recall"] = plain(await timed("recall", memory.recall(name="graph", query="first program", limit=3)))

        observed["ingest_text"] = plain(await timed("ingest_text", memory.ingest_text(name="graph", text="Charles Babbage designed the Analytical Engine in London.")))
        observed["ingest_text_again"] = plain(await timed("ingest_text again", memory.ingest_text(name="graph", text="Charles Babbage designed the Analytical Engine in London.")))
        observed["ingest_llm"] = plain(
            await timed("ingest llm", memory.ingest_text(name="graph", text="Grace Hopper worked at Remington Rand.", strategy="llm", llm_model="fake-model", llm_temperature=0.3))
        )
        await timed("upload", room.storage.upload(path="docs/turing.md", data=b"# Alan Turing\nAlan Turing worked at **Bletchley Park**.", overwrite=True))
        observed["ingest_file"] = plain(await timed("ingest_file", memory.ingest_file(name="graph", path="docs/turing.md")))
        observed["ingest_file_text"] = plain(await timed("ingest_file text", memory.ingest_file(name="graph", text="Katherine Johnson computed orbits for NASA.", mime_type="text/plain")))
        observed["ingest_from_storage"] = plain(await timed("ingest_from_storage", memory.ingest_from_storage(name="graph", paths=["docs/turing.md"])))
        observed["ingest_image"] = plain(
            await timed(
                "ingest_image",
                memory.ingest_image(name="graph", caption="Portrait of Ada Lovelace", data=b"\x89PNG\r\n\x1a\nportrait", mime_type="image/png", source="ada.png", annotations={"person": "Ada Lovelace"}),
            )
        )
        observed["ingest_from_table"] = plain(await timed("ingest_from_table", memory.ingest_from_table(name="graph", table="meetings", text_columns=["notes"], table_namespace=["crm"], limit=5)))

        observed["count_before_errors"] = await timed("count before", memory.query(name="graph", statement="MATCH (e:Entity) RETURN count(*) AS n"))
        observed["errors"] = {
            "missing": await expect_error("inspect missing", memory.inspect(name="nothing")),
            "write_statement": await expect_error("write statement", memory.query(name="graph", statement="MATCH (e:Entity) DETACH DELETE e")),
            "unknown_label": await expect_error("unknown label", memory.query(name="graph", statement="MATCH (p:Person) RETURN p")),
            "reserved_table": await expect_error("reserved table", memory.upsert_table(name="graph", table="entity", records=[{"x": 1}])),
            "bad_records_json": await expect_error(
                "bad records_json", room.invoke(toolkit="memory", tool="upsert_nodes", input={"name": "graph", "namespace": None, "records_json": "{not json", "merge": True})
            ),
            "recall_limit": await expect_error("recall limit", memory.recall(name="graph", query="x", limit=0)),
            "bad_relationship_type": await expect_error(
                "bad type", memory.upsert_relationships(name="graph", records=[MemoryRelationshipRecord(source_entity_id="ada", target_entity_id="x", relationship_type="works at")])
            ),
        }
        observed["count_after_errors"] = await timed("count", memory.query(name="graph", statement="MATCH (e:Entity) RETURN count(*) AS n"))

        observed["delete_relationships"] = plain(
            await timed("delete_relationships", memory.delete_relationships(name="graph", relationships=[MemoryRelationshipSelector(source_entity_id="ada", target_entity_id=engine)]))
        )
        observed["delete_entities"] = plain(await timed("delete_entities", memory.delete_entities(name="graph", entity_ids=[engine, "missing"])))
        observed["optimize"] = plain(await timed("optimize", memory.optimize(name="graph")))

    scope = ApiScope(memory=MemoryGrant(memories=[MemoryEntryGrant(name="graph", permissions=MemoryPermissions(query=True, upsert=False, create=False))]))
    async with connect("bob", scope=scope) as room:
        observed["limited_query"] = await timed("limited query", room.memory.query(name="graph", statement="MATCH (e:Entity {entity_id: 'ada'}) RETURN e.name AS name"))
        observed["limited_upsert"] = await expect_error("limited upsert", room.memory.upsert_nodes(name="graph", records=[MemoryEntityRecord(name="Mallory")]))
    async with connect("eve", scope=ApiScope(messaging=MessagingGrant())) as room:
        observed["no_grant"] = await expect_error("no grant", room.memory.list())

    observed["toolkit"] = await toolkit_calls()
    async with connect("alice") as room:
        await timed("drop", room.memory.drop(name="graph"))
        await timed("drop again", room.memory.drop(name="graph", ignore_missing=True))
        observed["drop_missing"] = await expect_error("drop missing", room.memory.drop(name="graph"))
        observed["list_after_drop"] = await timed("list after drop", room.memory.list())
    return observed


async def toolkit_calls() -> dict:
    """The official memories toolkit, each tool as an agent calls it."""
    from _official import connect, timed
    from meshagent.tools import ToolContext
    from meshagent.tools.memories import MemoriesToolkit

    seen: dict[str, Any] = {}
    async with connect("agent") as room:
        toolkit = MemoriesToolkit(room=room, memory_name="agent-memory", llm_model="fake-model", llm_temperature=0.0)
        context = ToolContext(caller=room.local_participant)

        async def tool(name: str, **arguments: Any) -> Any:
            result = await timed(f"toolkit {name}", toolkit.execute(context=context, name=name, input=JsonContent(json=arguments)))
            return result.json

        seen["search_empty"] = await tool("search_memories", query="tea")
        seen["recent_empty"] = await tool("get_recent_memories")
        seen["relationships_empty"] = await tool("get_recent_relationships")
        seen["add"] = await tool("add_memory", memory="Alice Johnson likes green tea.")
        seen["search"] = await tool("search_memories", query="green tea")
        seen["recent"] = await tool("get_recent_memories", limit=10)
        seen["recent_people"] = await tool("get_recent_memories", entity_type="PERSON")
        seen["relationships"] = await tool("get_recent_relationships", limit=10)
        primary = seen["add"]["primary_entity_id"]
        seen["entity"] = await tool("get_entity", entity_id=primary)
        seen["relationships_of"] = await tool("get_recent_relationships", entity_id=primary, relationship_type="MENTIONS")
        other = [entity_id for entity_id in seen["add"]["entity_ids"] if entity_id != primary]
        seen["delete_relationship"] = await tool("delete_relationship", source_entity_id=primary, target_entity_id=other[0], relationship_type=None)
        seen["delete_entity"] = await tool("delete_entity", entity_id=other[0])
        seen["delete_all"] = await tool("delete_all_memories", confirm=True)
        seen["recent_after_delete_all"] = await tool("get_recent_memories")
        await room.memory.drop(name="agent-memory", ignore_missing=True)
    return seen


class _AnsweringRoom:
    """Stands in for a RoomClient: every `invoke` is answered with one prepared content."""

    def __init__(self, content: Any) -> None:
        self.content = content

    async def invoke(self, **_: Any) -> Any:
        return self.content


def _content(data: dict[str, Any]) -> Any:
    if data["type"] == "json":
        return JsonContent(json=data["json"])
    if data["type"] == "text":
        return TextContent(text=data["text"])
    return EmptyContent()


CALLS = {
    "list": {},
    "inspect": {"name": "graph"},
    "query": {"name": "graph", "statement": "MATCH (e) RETURN e"},
    "ingest_text": {"name": "graph", "text": "x"},
    "recall": {"name": "graph", "query": "x"},
    "delete_entities": {"name": "graph", "entity_ids": ["a"]},
    "delete_relationships": {"name": "graph", "relationships": []},
    "optimize": {"name": "graph"},
}


async def answers() -> list:
    cases = json.loads(sys.stdin.read())
    results = []
    for case in cases:
        client = MemoryClient(room=_AnsweringRoom(_content(case["content"])))  # type: ignore[arg-type]
        try:
            value = await getattr(client, case["op"])(**CALLS[case["op"]])
            results.append({"ok": plain(value)})
        except Exception as error:  # noqa: BLE001 - the error is what we observe
            code = getattr(error, "code", None)
            results.append({"error": type(error).__name__, "code": int(code) if code is not None else None})
    return results


if __name__ == "__main__":
    from _official import run

    mode = sys.argv[1] if len(sys.argv) > 1 else "live"
    if mode == "answers":
        print(json.dumps(asyncio.run(answers())), flush=True)
    else:
        run(live)
