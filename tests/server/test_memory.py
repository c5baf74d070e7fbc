"""The `memory` toolkit end to end on the wire: memories, upserts with merge semantics, Cypher
over the graph the upserts build, recall ranking, deletes, optimize, grants, and bad input that
is refused, changes nothing and leaves the connection working."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshagent_core import EmptyContent, JsonContent, RoomException
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import MemoryEntryGrant, MemoryGrant, MemoryPermissions, MessagingGrant
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.toolkits.memory_access import MemoryState
from meshagent_trio.server.toolkits.memory_extract import entity_id_for
from roomtest import mint, room_url

ROOM = "memory-room"


def connect(server: Server, credentials: Credentials, name: str = "alice", scope: ApiScope | None = None) -> Any:
    return RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name=name, scope=scope))


async def call(room: RoomConnection, tool: str, **arguments: Any) -> Any:
    answer = await room.invoke("memory", tool, arguments)
    return answer.json if isinstance(answer, JsonContent) else answer


async def refused(code: int, awaitable: Any, match: str | None = None) -> RoomException:
    with pytest.raises(RoomException, match=match) as info:
        await awaitable
    assert info.value.code == code, info.value
    return info.value


def entity(name: str, **fields: Any) -> dict[str, Any]:
    """A record as the official client sends it: every key, nulls included."""
    record = dict.fromkeys(["entity_id", "entity_type", "context", "confidence", "created_at", "valid_at", "metadata"])
    return {**record, "name": name, **fields}


def relationship(source: str, target: str, kind: str = "RELATED_TO", **fields: Any) -> dict[str, Any]:
    keys = ["description", "confidence", "created_at", "valid_at", "expired_at", "invalid_at", "source_entity_name", "target_entity_name", "metadata"]
    return {**dict.fromkeys(keys), "source_entity_id": source, "target_entity_id": target, "relationship_type": kind, **fields}


async def upsert_nodes(room: RoomConnection, records: list[dict[str, Any]], memory: str = "graph", merge: bool = True) -> Any:
    return await call(room, "upsert_nodes", name=memory, namespace=None, records_json=json.dumps(records), merge=merge)


async def upsert_relationships(room: RoomConnection, records: list[dict[str, Any]], memory: str = "graph", merge: bool = True) -> Any:
    return await call(room, "upsert_relationships", name=memory, namespace=None, records_json=json.dumps(records), merge=merge)


async def query(room: RoomConnection, statement: str, memory: str = "graph") -> list[dict[str, Any]]:
    answer = await call(room, "query", name=memory, namespace=None, statement=statement)
    return answer["results"]


async def create(room: RoomConnection, name: str = "graph", namespace: list[str] | None = None, **flags: Any) -> Any:
    return await call(room, "create", name=name, namespace=namespace, overwrite=flags.get("overwrite", False), ignore_exists=flags.get("ignore_exists", False))


def state(server: Server) -> MemoryState:
    return server.room(ROOM).toolkit_state("memory", MemoryState)


# --- memories ----------------------------------------------------------------------------------


async def test_create_list_inspect_drop(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        assert await call(room, "list", namespace=None) == {"memories": []}
        assert await create(room) == EmptyContent()
        await create(room, "notes", ["team"])
        assert await call(room, "list", namespace=None) == {"memories": ["graph"]}
        assert await call(room, "list", namespace=["team"]) == {"memories": ["notes"]}

        existing = await refused(2002, create(room))
        assert str(existing) == "memory already exists: graph"
        await create(room, ignore_exists=True)  # kept
        assert await call(room, "inspect", name="graph", namespace=None) == {"name": "graph", "namespace": None, "path": "/memories/graph", "datasets": []}

        await upsert_nodes(room, [entity("Alice")])
        details = await call(room, "inspect", name="graph", namespace=None)
        assert details["datasets"] == [
            {"name": "entity", "rows": 1, "columns": ["entity_id", "name", "entity_type", "context", "confidence", "created_at", "valid_at", "metadata"]}
        ]
        await create(room, overwrite=True)  # an empty memory again
        assert (await call(room, "inspect", name="graph", namespace=None))["datasets"] == []
        assert (await call(room, "inspect", name="notes", namespace=["team"]))["namespace"] == ["team"]

        assert await call(room, "drop", name="graph", namespace=None, ignore_missing=False) == EmptyContent()
        missing = await refused(2001, call(room, "drop", name="graph", namespace=None, ignore_missing=False))
        assert str(missing) == "memory does not exist: graph"
        await call(room, "drop", name="graph", namespace=None, ignore_missing=True)
        assert str(await refused(2001, call(room, "inspect", name="notes", namespace=["other"]))) == "memory does not exist: other/notes"
        assert await call(room, "list", namespace=None) == {"memories": []}


async def test_every_tool_refuses_a_missing_memory_with_2001(server: Server, credentials: Credentials) -> None:
    named = {"name": "nothing", "namespace": None}
    ingest = {**named, "strategy": "heuristic", "llm_model": None, "llm_temperature": None}
    calls = {
        "inspect": named,
        "query": {**named, "statement": "MATCH (e:Entity) RETURN e"},
        "upsert_table": {**named, "table": "facts", "records_json": "[]", "merge": True},
        "upsert_nodes": {**named, "records_json": json.dumps([entity("A")]), "merge": True},
        "upsert_relationships": {**named, "records_json": "[]", "merge": True},
        "ingest_text": {**ingest, "text": "Alice met Bob."},
        "ingest_file": {**ingest, "path": None, "text": "Alice", "mime_type": None},
        "ingest_image": {**ingest, "caption": "x", "data_base64": None, "mime_type": None, "source": None, "annotations_json": None},
        "ingest_from_table": {**ingest, "table": "t", "table_namespace": None, "text_columns": None, "limit": None},
        "ingest_from_storage": {**ingest, "paths": ["a.txt"]},
        "recall": {**named, "query": "x", "limit": 5, "include_relationships": True},
        "delete_entities": {**named, "entity_ids": ["a"]},
        "delete_relationships": {**named, "relationships": []},
        "optimize": {**named, "compact": True, "cleanup": True},
    }
    async with connect(server, credentials) as room:
        for tool, arguments in calls.items():
            error = await refused(2001, room.invoke("memory", tool, arguments))
            assert "memory does not exist: nothing" in str(error), tool
        assert await call(room, "list", namespace=None) == {"memories": []}


async def test_names_are_checked(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        for name in ["", "../x", ".hidden", "_x", "a/b", "x" * 129]:
            await refused(1002, create(room, name))
        await refused(1002, create(room, "ok", ["_private"]))
        await refused(1002, room.invoke("memory", "create", {"namespace": None}))  # no name
        assert await call(room, "list", namespace=None) == {"memories": []}


# --- upserts and the graph ---------------------------------------------------------------------


async def test_upserts_merge_and_replace(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        await create(room)
        written = await upsert_nodes(
            room, [entity("Alice", entity_type="PERSON", context="first", confidence=0.5, metadata={"role": "admin", "team": "a"})]
        )
        assert written == {"name": "graph", "rows_written": 1}
        alice = entity_id_for("Alice")
        # merge: null fields keep what is stored, metadata maps merge
        await upsert_nodes(room, [entity("alice ", entity_type=None, context="second", metadata={"team": "b"})])
        [row] = await query(room, "MATCH (e:Entity) RETURN e.entity_id AS id, e.name AS name, e.entity_type AS type, e.context AS context, e.confidence AS c, e.metadata AS m, e.created_at AS created")
        assert row["id"] == alice and row["type"] == "PERSON" and row["context"] == "second" and row["c"] == 0.5
        assert row["m"] == {"struct": {"role": "admin", "team": "b"}}
        created = row["created"]
        assert created.endswith("Z")
        # merge false: the record replaces the row (created_at is kept)
        await upsert_nodes(room, [entity("Alice", entity_id=alice, context="third")], merge=False)
        [row] = await query(room, "MATCH (e:Entity) RETURN e.entity_type AS type, e.context AS context, e.confidence AS c, e.metadata AS m, e.created_at AS created")
        assert row == {"type": "ENTITY", "context": "third", "c": None, "m": None, "created": created}

        await upsert_relationships(room, [relationship(alice, "acme", "WORKS_AT", description="since 2020", target_entity_name="Acme")])
        await upsert_relationships(room, [relationship(alice, "acme", "WORKS_AT", confidence=0.9)])
        [edge] = await query(room, "MATCH (a:Entity)-[r:WORKS_AT]->(b:Entity) RETURN a.name AS a, b.name AS b, r.description AS d, r.confidence AS c")
        assert edge == {"a": "Alice", "b": "Acme", "d": "since 2020", "c": 0.9}  # the named target became an entity
        [node] = await query(room, "MATCH (r:RELATIONSHIP) RETURN r.source_entity_id AS s, r.relationship_type AS t")
        assert node == {"s": alice, "t": "WORKS_AT"}


async def test_cypher_over_a_graph_built_by_upserts(server: Server, credentials: Credentials) -> None:
    people = ["Ada", "Grace", "Alan", "Edsger", "Barbara"]
    async with connect(server, credentials) as room:
        await create(room)
        await upsert_nodes(room, [entity(name, entity_id=name.lower(), entity_type="PERSON", confidence=0.1 * index) for index, name in enumerate(people)])
        await upsert_nodes(room, [entity("Acme", entity_id="acme", entity_type="ORGANIZATION"), entity("Initech", entity_id="initech", entity_type="ORGANIZATION")])
        chain = [relationship(a.lower(), b.lower(), "KNOWS") for a, b in zip(people, people[1:])]
        jobs = [relationship("ada", "acme", "WORKS_AT"), relationship("grace", "acme", "WORKS_AT"), relationship("alan", "initech", "WORKS_AT")]
        await upsert_relationships(room, chain + jobs + [relationship("ada", "ghost", "KNOWS")])  # ghost: no such entity, no edge

        assert await query(room, "MATCH (e:Entity) RETURN count(*) AS n") == [{"n": 7}]
        assert await query(room, "MATCH (e:Entity) WHERE e.entity_type = 'PERSON' AND e.confidence >= 0.2 RETURN e.name AS name ORDER BY name") == [
            {"name": "Alan"}, {"name": "Barbara"}, {"name": "Edsger"},
        ]  # fmt: skip
        employees = await query(room, "MATCH (p:Entity)-[:WORKS_AT]->(o:Entity) RETURN o.name AS org, count(p) AS n ORDER BY org")
        assert employees == [{"org": "Acme", "n": 2}, {"org": "Initech", "n": 1}]
        reachable = await query(room, "MATCH (a:Entity {entity_id: 'ada'})-[:KNOWS*1..3]->(b:Entity) RETURN b.name AS name ORDER BY name")
        assert reachable == [{"name": "Alan"}, {"name": "Edsger"}, {"name": "Grace"}]
        [path] = await query(room, "MATCH p = (a:Entity {entity_id: 'ada'})-[:KNOWS*4..4]->(b:Entity) RETURN length(p) AS hops, b.name AS last, nodes(p) AS nodes")
        assert path["hops"] == 4 and path["last"] == "Barbara"
        assert [node["struct"]["name"] for node in path["nodes"]["list"]] == people
        colleagues = await query(room, "MATCH (a:Entity)-[:WORKS_AT]->(:Entity)<-[:WORKS_AT]-(b:Entity) WHERE a.name < b.name RETURN a.name AS a, b.name AS b")
        assert colleagues == [{"a": "Ada", "b": "Grace"}]
        # every type at once, and the relationships as rows (what the official memories tools read)
        assert await query(room, "MATCH ()-[r]->() RETURN count(r) AS n") == [{"n": 7}]
        assert await query(room, "MATCH (r:RELATIONSHIP) WHERE r.target_entity_id = 'ghost' RETURN r.relationship_type AS t") == [{"t": "KNOWS"}]
        # the official GetRecentMemoriesTool's statement
        recent = await query(
            room,
            "MATCH (e:Entity) WHERE e.entity_type = 'ORGANIZATION' RETURN e.entity_id as entity_id, e.name as name, e.entity_type as entity_type, "
            "e.context as memory, e.confidence as confidence, e.created_at as created_at, e.valid_at as valid_at "
            "ORDER BY e.valid_at DESC, e.created_at DESC, e.name LIMIT 50",
        )
        assert [row["name"] for row in recent] == ["Acme", "Initech"]
        # a label with no data
        error = await refused(1003, query(room, "MATCH (p:Person) RETURN p"))
        assert "dataset 'person' not found" in str(error)


async def test_empty_memory_says_dataset_entity_not_found(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        await create(room)
        error = await refused(1003, query(room, "MATCH (e:Entity) RETURN e.entity_id as entity_id LIMIT 1"))
        assert "dataset 'entity' not found" in str(error)
        await upsert_nodes(room, [entity("Alice")])
        error = await refused(1003, query(room, "MATCH (r:RELATIONSHIP) RETURN r LIMIT 1"))
        assert "dataset 'relationship' not found" in str(error)


async def test_query_results_in_the_record_wire_form(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        await create(room)
        await call(
            room,
            "upsert_table",
            name="graph",
            namespace=None,
            table="facts",
            merge=True,
            records_json=json.dumps(
                [
                    {"id": 1, "payload": {"binary": "aGVsbG8="}, "seen": {"timestamp": "2025-01-02T03:04:05Z"}, "day": {"date": "2025-01-02"},
                     "tags": {"list": ["a", "b"]}, "info": {"struct": {"owner": "sales"}}, "score": 1.5, "ok": True},
                ]
            ),
        )  # fmt: skip
        [row] = await query(room, "MATCH (f:Facts) RETURN f.id AS id, f.payload AS payload, f.seen AS seen, f.day AS day, f.tags AS tags, f.info AS info, f.score AS score, f.ok AS ok")
        assert row == {
            "id": 1,
            "payload": {"binary": "aGVsbG8="},
            "seen": {"timestamp": "2025-01-02T03:04:05Z"},
            "day": {"date": "2025-01-02"},
            "tags": {"list": ["a", "b"]},
            "info": {"struct": {"owner": "sales"}},
            "score": 1.5,
            "ok": True,
        }
        # merge appends (a new column is added), merge false replaces
        await call(room, "upsert_table", name="graph", namespace=None, table="facts", merge=True, records_json=json.dumps([{"id": 2, "extra": "x"}]))
        assert await query(room, "MATCH (f:facts) RETURN f.id AS id, f.extra AS extra ORDER BY id") == [{"id": 1, "extra": None}, {"id": 2, "extra": "x"}]
        await call(room, "upsert_table", name="graph", namespace=None, table="facts", merge=False, records_json=json.dumps([{"id": 3}]))
        assert await query(room, "MATCH (f:facts) RETURN f.id AS id") == [{"id": 3}]
        # the TypeScript client's encoding: bare arrays, plain objects, 0.8.3 bytes
        ts_rows = [{"entity_id": "acme", "tags": ["x"], "info": {"owner": "sales", "n": 2}, "blob": {"encoding": "base64", "data": "aGk="}}]
        await call(room, "upsert_table", name="graph", namespace=None, table="ts", merge=True, records_json=json.dumps(ts_rows))
        [row] = await query(room, "MATCH (t:ts) RETURN t.tags AS tags, t.info AS info, t.blob AS blob")
        assert row == {"tags": {"list": ["x"]}, "info": {"struct": {"owner": "sales", "n": 2}}, "blob": {"binary": "aGk="}}


async def test_the_graph_is_cached_until_a_write(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        await create(room)
        await upsert_nodes(room, [entity("Alice"), entity("Bob")])
        graphs = state(server).graphs
        loads = graphs.loads
        for _ in range(3):
            assert await query(room, "MATCH (e:Entity) RETURN count(*) AS n") == [{"n": 2}]
        assert graphs.loads == loads + 1
        await upsert_nodes(room, [entity("Carol")])
        assert await query(room, "MATCH (e:Entity) RETURN count(*) AS n") == [{"n": 3}]
        assert graphs.loads == loads + 2
        # dropped and made again: never the old graph
        await call(room, "drop", name="graph", namespace=None, ignore_missing=False)
        await create(room)
        await refused(1003, query(room, "MATCH (e:Entity) RETURN count(*) AS n"))


async def test_query_refuses_writes_and_stays_unchanged(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        await create(room)
        await upsert_nodes(room, [entity("Alice", entity_id="a")])
        statements = [
            "CREATE (e:Entity {entity_id: 'x', name: 'X'})",
            "MATCH (e:Entity) SET e.name = 'Mallory'",
            "MATCH (e:Entity) DETACH DELETE e",
            "MERGE (e:Entity {entity_id: 'y'})",
            "MATCH (e:Entity) REMOVE e.context",
            "COPY (MATCH (e:Entity) RETURN e.name) TO '/tmp/leak.csv'",
            "LOAD FROM '/etc/passwd' (header=false) RETURN *",
            "DROP TABLE Entity",
            "CALL show_tables() RETURN *",
            "match (e:Entity) set e.name = 'lower case'",
            "MATCH (e:Entity) RETURN e.name; MATCH (e:Entity) DELETE e",
        ]
        for statement in statements:
            await refused(1002, query(room, statement), match="read-only|one statement")
        # words inside strings, comments and property names are not statements
        assert await query(room, "MATCH (e:Entity) WHERE e.name <> 'CREATE or DELETE' RETURN e.name AS name // SET") == [{"name": "Alice"}]
        await refused(1002, query(room, "MATCH (e:Entity RETURN e"), match="invalid graph query")
        await refused(1002, query(room, "   "))
        assert await query(room, "MATCH (e:Entity) RETURN e.name AS name;") == [{"name": "Alice"}]


# --- recall ------------------------------------------------------------------------------------

CORPUS = [
    ("Solar Panels", "Photovoltaic solar panels on the roof produce electricity from sunlight."),
    ("Wind Turbine", "A wind turbine turns wind into electricity; the farm has twelve turbines."),
    ("Battery Storage", "Lithium battery storage keeps solar electricity for the night."),
    ("Sourdough", "Sourdough bread rises with wild yeast and a long fermentation."),
    ("Espresso", "Espresso is coffee brewed by forcing hot water through fine grounds."),
    ("Solar Eclipse", "During a solar eclipse the moon hides the sun."),
]


async def test_recall_ranks_by_bm25_over_name_and_context(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        await create(room)
        await upsert_nodes(room, [entity(name, entity_id=name.lower().replace(" ", "-"), entity_type="TOPIC", context=context) for name, context in CORPUS])
        await upsert_relationships(room, [relationship("battery-storage", "solar-panels", "STORES", description="batteries store solar power")])

        async def recall(text: str, limit: int = 5, include: bool = True) -> Any:
            return await call(room, "recall", name="graph", namespace=None, query=text, limit=limit, include_relationships=include)

        found = await recall("solar electricity")
        ids = [item["entity_id"] for item in found["items"]]
        assert found["name"] == "graph" and found["query"] == "solar electricity"
        assert set(ids[:2]) == {"solar-panels", "battery-storage"}  # both words
        assert "solar-eclipse" in ids and "wind-turbine" in ids  # one word each
        assert "sourdough" not in ids and "espresso" not in ids
        scores = [item["score"] for item in found["items"]]
        assert scores == sorted(scores, reverse=True) and all(score > 0 for score in scores)
        battery = next(item for item in found["items"] if item["entity_id"] == "battery-storage")
        assert battery["relationships"] == [
            {"source_entity_id": "battery-storage", "target_entity_id": "solar-panels", "relationship_type": "STORES", "description": "batteries store solar power",
             "created_at": battery["relationships"][0]["created_at"], "valid_at": None, "expired_at": None, "invalid_at": None}
        ]  # fmt: skip
        assert battery["entity_type"] == "TOPIC" and battery["context"].startswith("Lithium")

        assert [item["entity_id"] for item in (await recall("coffee"))["items"]] == ["espresso"]
        assert [item["entity_id"] for item in (await recall("Espresso", include=False))["items"]] == ["espresso"]
        assert len((await recall("solar", limit=1))["items"]) == 1
        assert (await recall("quantum chromodynamics"))["items"] == []
        assert (await recall("the of and"))["items"] == []  # stop words only
        # written after the index was made: found too
        await upsert_nodes(room, [entity("Tea", entity_id="tea", context="Green tea and coffee are drinks.")])
        assert {item["entity_id"] for item in (await recall("coffee"))["items"]} == {"espresso", "tea"}
        await refused(1002, recall("solar", limit=0))
        await refused(1002, recall("solar", limit=101))


async def test_recall_on_a_memory_without_entities(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        await create(room)
        assert await call(room, "recall", name="graph", namespace=None, query="x", limit=5, include_relationships=True) == {"name": "graph", "query": "x", "items": []}


# --- deletes and optimize ----------------------------------------------------------------------


async def test_deletes_and_optimize(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        await create(room)
        await upsert_nodes(room, [entity(name, entity_id=name) for name in "abcd"])
        await upsert_relationships(room, [relationship("a", "b"), relationship("b", "c"), relationship("c", "a", "KNOWS"), relationship("c", "d"), relationship("c", "d", "KNOWS")])
        assert await call(room, "delete_entities", name="graph", namespace=None, entity_ids=["a", "missing"]) == {
            "name": "graph", "deleted_entities": 1, "deleted_relationships": 2,
        }  # fmt: skip
        assert await call(room, "delete_relationships", name="graph", namespace=None, relationships=[{"source_entity_id": "c", "target_entity_id": "d", "relationship_type": None}]) == {
            "name": "graph", "deleted_relationships": 2,
        }  # fmt: skip
        selector = {"source_entity_id": "b", "target_entity_id": "c", "relationship_type": "KNOWS"}
        assert (await call(room, "delete_relationships", name="graph", namespace=None, relationships=[selector]))["deleted_relationships"] == 0
        assert await query(room, "MATCH (a:Entity)-[r]->(b:Entity) RETURN a.entity_id AS a, b.entity_id AS b") == [{"a": "b", "b": "c"}]

        result = await call(room, "optimize", name="graph", namespace=None, compact=True, cleanup=True)
        assert result["name"] == "graph" and [item["dataset"] for item in result["datasets"]] == ["entity", "relationship"]
        assert all(item["old_versions_removed"] > 0 for item in result["datasets"])
        assert (await call(room, "optimize", name="graph", namespace=None, compact=False, cleanup=False))["datasets"][0]["old_versions_removed"] == 0
        assert await query(room, "MATCH (e:Entity) RETURN e.entity_id AS id ORDER BY id") == [{"id": "b"}, {"id": "c"}, {"id": "d"}]
        assert len((await call(room, "recall", name="graph", namespace=None, query="b", limit=5, include_relationships=True))["items"]) == 1


# --- bad input ---------------------------------------------------------------------------------


async def test_bad_input_changes_nothing_and_the_connection_keeps_working(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as room:
        await create(room)
        await upsert_nodes(room, [entity("Alice", entity_id="a")])
        await upsert_relationships(room, [relationship("a", "a")])
        before = await call(room, "inspect", name="graph", namespace=None)
        bad_records = ["not json", "{}", "[1, 2]", '[{"name": 5}]', "[{}]", '[{"name": ""}]', '[{"name": "x", "confidence": "high"}]', '[{"name": "x", "metadata": {"k": 1}}]']
        for records_json in bad_records:
            await refused(1002, call(room, "upsert_nodes", name="graph", namespace=None, records_json=records_json, merge=True))
        for records in (
            [relationship("a", "b", "works at")],
            [relationship("a", "", "X")],
            [relationship("a", "b", "ENTITY")],
            [{"source_entity_id": "a"}],
        ):
            await refused(1002, upsert_relationships(room, records))
        for table, records_json in (
            ("facts", '[{"x": {"binary": 5}}]'),
            ("facts", '[{"x": {"timestamp": "not a time"}}]'),
            ("facts", '[{"x": {"expression": "uuid()"}}]'),
            ("entity", '[{"x": 1}]'),
            ("bad name", '[{"x": 1}]'),
            ("RELATED_TO", '[{"x": 1}]'),
            ("facts", '[{"x": 1}, {"x": "one"}]'),
        ):
            await refused(1002, call(room, "upsert_table", name="graph", namespace=None, table=table, records_json=records_json, merge=True))
        await refused(1002, room.invoke("memory", "recall", {"name": "graph", "namespace": None, "query": 5}))
        await refused(1002, room.invoke("memory", "create", "not json arguments"))
        assert await call(room, "inspect", name="graph", namespace=None) == before
        assert await query(room, "MATCH (e:Entity) RETURN e.name AS name") == [{"name": "Alice"}]


# --- grants ------------------------------------------------------------------------------------


async def test_grants(server: Server, credentials: Credentials) -> None:
    async with connect(server, credentials) as owner:
        await create(owner)
        await create(owner, "secret")
        await create(owner, "team", ["x"])
        await upsert_nodes(owner, [entity("Alice")])

    no_memory = ApiScope(messaging=MessagingGrant())
    async with connect(server, credentials, "eve", scope=no_memory) as room:
        for tool, arguments in [("list", {"namespace": None}), ("inspect", {"name": "graph", "namespace": None}), ("create", {"name": "new", "namespace": None})]:
            error = await refused(1001, room.invoke("memory", tool, arguments))
            assert str(error) == "you do not have permission to perform the requested action"

    read_only = MemoryPermissions(create=False, drop=False, upsert=False, ingest=False, optimize=False)
    grant = MemoryGrant(list=True, memories=[MemoryEntryGrant(name="graph", permissions=read_only), MemoryEntryGrant(name="team", namespace=["x"])])
    async with connect(server, credentials, "bob", scope=ApiScope(memory=grant)) as room:
        assert await call(room, "list", namespace=None) == {"memories": ["graph"]}  # not "secret"
        assert await call(room, "list", namespace=["x"]) == {"memories": ["team"]}
        assert await query(room, "MATCH (e:Entity) RETURN e.name AS name") == [{"name": "Alice"}]
        assert (await call(room, "recall", name="graph", namespace=None, query="Alice", limit=5, include_relationships=False))["items"]
        assert (await call(room, "inspect", name="graph", namespace=None))["datasets"]
        for awaitable in (
            upsert_nodes(room, [entity("Mallory")]),
            call(room, "drop", name="graph", namespace=None, ignore_missing=False),
            call(room, "delete_entities", name="graph", namespace=None, entity_ids=[entity_id_for("Alice")]),
            call(room, "optimize", name="graph", namespace=None, compact=True, cleanup=True),
            call(room, "ingest_text", name="graph", namespace=None, strategy="heuristic", llm_model=None, llm_temperature=None, text="Mallory"),
            create(room, "graph", overwrite=True),
            query(room, "MATCH (e:Entity) RETURN e", memory="secret"),
            call(room, "inspect", name="team", namespace=["y"]),
        ):
            await refused(1001, awaitable)
        assert await query(room, "MATCH (e:Entity) RETURN count(*) AS n") == [{"n": 1}]

    no_listing = MemoryGrant(list=False)
    async with connect(server, credentials, "carol", scope=ApiScope(memory=no_listing)) as room:
        await refused(1001, call(room, "list", namespace=None))
        assert await query(room, "MATCH (e:Entity) RETURN count(*) AS n") == [{"n": 1}]
