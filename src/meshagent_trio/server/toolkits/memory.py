"""The `memory` toolkit: graph memories of a room — entities, relationships and tables kept as
Lance datasets, queried with Cypher, recalled by full-text search, grown by ingesting text,
files, images and dataset tables (protocol/room-apis.md §15).

The parts:

* `memory_store` — where memories live (the room's `memories` folder), create/drop/list/inspect;
* `memory_tables` — the upserts, deletes and `optimize` (merge semantics, keys, limits);
* `memory_graph` — `query`: the datasets loaded into the embedded graph database Kùzu, cached
  per memory version, read-only (why Kùzu, and what it costs, is written there);
* `memory_recall` — `recall`: BM25 over `name` and `context` with Lance's inverted indexes;
* `memory_ingest`, `memory_extract`, `memory_llm`, `memory_documents`, `memory_ingest_tools` —
  the five ingests, the `heuristic` rules and the `llm` strategy;
* `memory_access` — the toolkit object, the per-room state, locks and grants.

Errors the ecosystem expects: a missing memory is 2001 "memory does not exist: <name>" (for
every tool but `list` and `create`, and `drop` with `ignore_missing`); `create` of an existing
memory without `overwrite` or `ignore_exists` is 2002 "memory already exists: <name>"; a missing
grant is 1001 "you do not have permission to perform the requested action"; `query` on a memory
without entities is 1003 "dataset 'entity' not found …". Malformed arguments (`records_json`
that is not a JSON array of objects, a bad name, a write statement in `query`) are 1002. A
refused call changes nothing and leaves the connection working.

Answers: `create` and `drop` answer `empty`; the upserts `{"name", "rows_written"}`; the others
as §15 lists them.
"""

from __future__ import annotations

from meshagent_core import Content
from meshagent_core.toolkits.memory import (
    CreateInput,
    DeleteEntitiesInput,
    DeleteRelationshipsInput,
    DropInput,
    InspectInput,
    ListInput,
    ListOutput,
    OptimizeInput,
    QueryInput,
    QueryOutput,
    RecallInput,
    UpsertNodesInput,
    UpsertOutput,
    UpsertRelationshipsInput,
    UpsertTableInput,
)

from ..toolkit import ToolCall, permission_denied
from . import memory_ingest_tools  # registers the ingest tools
from .memory_access import MemoryState, grant_of, json_answer, listable, require, run, state_of, toolkit
from .memory_graph import check_read_only
from .memory_recall import ensure_text_index, recall as recall_entities
from .memory_store import PERMISSION_DENIED, MemoryRef, check_namespace
from .memory_tables import (
    delete_entities as delete_entity_rows,
    delete_relationships as delete_relationship_rows,
    entity_records,
    optimize as optimize_memory,
    relationship_records,
    table_rows,
    upsert_entities,
    upsert_relationships as upsert_relationship_rows,
    upsert_table as upsert_table_rows,
)

# --- memories ----------------------------------------------------------------------------------


@toolkit.tool("list")
async def list_(call: ToolCall) -> Content:
    arguments = call.json_arguments(ListInput)
    grant = grant_of(call)
    if not grant.list:
        raise permission_denied(PERMISSION_DENIED)
    namespace = check_namespace(arguments.namespace)
    store = await state_of(call).get()
    names = await run(store.list, namespace)
    return json_answer(ListOutput(memories=[name for name in names if listable(grant, namespace, name)]))


@toolkit.tool("create")
async def create(call: ToolCall) -> None:
    arguments = call.json_arguments(CreateInput)
    ref = MemoryRef.of(arguments.name, arguments.namespace)
    require(call, ref, "create")
    state = state_of(call)
    async with state.locked(ref) as store:
        if arguments.overwrite and await run(store.exists, ref):
            require(call, ref, "drop")
        await run(lambda: store.create(ref, overwrite=arguments.overwrite, ignore_exists=arguments.ignore_exists))
        state.graphs.forget(ref)


@toolkit.tool("drop")
async def drop(call: ToolCall) -> None:
    arguments = call.json_arguments(DropInput)
    ref = MemoryRef.of(arguments.name, arguments.namespace)
    require(call, ref, "drop")
    state = state_of(call)
    async with state.locked(ref) as store:
        await run(lambda: store.drop(ref, ignore_missing=arguments.ignore_missing))
        state.graphs.forget(ref)


@toolkit.tool("inspect")
async def inspect(call: ToolCall) -> Content:
    arguments = call.json_arguments(InspectInput)
    ref = MemoryRef.of(arguments.name, arguments.namespace)
    require(call, ref, "inspect")
    async with state_of(call).locked(ref) as store:
        return json_answer(await run(store.inspect, ref))


# --- graph queries and recall --------------------------------------------------------------------


@toolkit.tool("query")
async def query(call: ToolCall) -> Content:
    arguments = call.json_arguments(QueryInput)
    ref = MemoryRef.of(arguments.name, arguments.namespace)
    require(call, ref, "query")
    state = state_of(call)
    statement = check_read_only(arguments.statement)
    async with state.locked(ref) as store:
        await run(store.require, ref)
        graph = await run(state.graphs.graph, store, ref)
    rows = await run(graph.run, statement, ref.show)
    return json_answer(QueryOutput(results=rows))


@toolkit.tool("recall")
async def recall(call: ToolCall) -> Content:
    arguments = call.json_arguments(RecallInput)
    ref = MemoryRef.of(arguments.name, arguments.namespace)
    require(call, ref, "recall")
    async with state_of(call).locked(ref) as store:
        found = await run(recall_entities, store, ref, arguments.query, arguments.limit, arguments.include_relationships)
    return json_answer(found)


# --- writes --------------------------------------------------------------------------------------


@toolkit.tool("upsert_nodes")
async def upsert_nodes(call: ToolCall) -> Content:
    arguments = call.json_arguments(UpsertNodesInput)
    ref = MemoryRef.of(arguments.name, arguments.namespace)
    require(call, ref, "upsert")
    records = await run(entity_records, arguments.records_json)
    async with state_of(call).locked(ref) as store:
        await run(store.require, ref)
        ids = await run(upsert_entities, store, ref, records, arguments.merge)
        await run(ensure_text_index, store, ref)
    return json_answer(UpsertOutput(name=ref.name, rows_written=len(ids)))


@toolkit.tool("upsert_relationships")
async def upsert_relationships(call: ToolCall) -> Content:
    arguments = call.json_arguments(UpsertRelationshipsInput)
    ref = MemoryRef.of(arguments.name, arguments.namespace)
    require(call, ref, "upsert")
    records = await run(relationship_records, arguments.records_json)
    async with state_of(call).locked(ref) as store:
        await run(store.require, ref)
        written = await run(upsert_relationship_rows, store, ref, records, arguments.merge)
        await run(ensure_text_index, store, ref)
    return json_answer(UpsertOutput(name=ref.name, rows_written=written))


@toolkit.tool("upsert_table")
async def upsert_table(call: ToolCall) -> Content:
    arguments = call.json_arguments(UpsertTableInput)
    ref = MemoryRef.of(arguments.name, arguments.namespace)
    require(call, ref, "upsert")
    rows = await run(table_rows, arguments.records_json)
    async with state_of(call).locked(ref) as store:
        await run(store.require, ref)
        written = await run(upsert_table_rows, store, ref, arguments.table, rows, arguments.merge)
    return json_answer(UpsertOutput(name=ref.name, rows_written=written))


@toolkit.tool("delete_entities")
async def delete_entities(call: ToolCall) -> Content:
    arguments = call.json_arguments(DeleteEntitiesInput)
    ref = MemoryRef.of(arguments.name, arguments.namespace)
    require(call, ref, "upsert")
    async with state_of(call).locked(ref) as store:
        await run(store.require, ref)
        return json_answer(await run(delete_entity_rows, store, ref, arguments.entity_ids))


@toolkit.tool("delete_relationships")
async def delete_relationships(call: ToolCall) -> Content:
    arguments = call.json_arguments(DeleteRelationshipsInput)
    ref = MemoryRef.of(arguments.name, arguments.namespace)
    require(call, ref, "upsert")
    async with state_of(call).locked(ref) as store:
        await run(store.require, ref)
        return json_answer(await run(delete_relationship_rows, store, ref, arguments.relationships))


@toolkit.tool("optimize")
async def optimize(call: ToolCall) -> Content:
    arguments = call.json_arguments(OptimizeInput)
    ref = MemoryRef.of(arguments.name, arguments.namespace)
    require(call, ref, "optimize")
    async with state_of(call).locked(ref) as store:
        await run(store.require, ref)
        return json_answer(await run(optimize_memory, store, ref, arguments.compact, arguments.cleanup))


__all__ = ["MemoryState", "memory_ingest_tools", "toolkit"]
