"""Memories across SIGKILL: the server (a subprocess) is killed while writers upsert entities,
relationships and ingest texts into one memory, then restarted on the same data directory.
Every acknowledged write is there afterwards; the one in flight at the kill is either all there or
not at all; the memory's datasets read, query, recall and take writes as before. Loops are
bounded; nothing asserts on timing."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import trio

from meshagent_core import JsonContent, RoomException
from meshagent_core.tokens import ApiScope
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server.process import LocalServerProcess
from meshagent_trio.server.toolkits.memory_extract import entity_id_for
from roomtest import mint

ROOM = "durable-memory"
FAILURES = (RoomException, trio.BrokenResourceError, trio.ClosedResourceError)


@asynccontextmanager
async def connect(server: LocalServerProcess, name: str) -> AsyncIterator[RoomConnection]:
    async with RoomConnection.open(server.room_url(ROOM), mint(server.credentials, ROOM, name=name, scope=ApiScope.full())) as room:
        yield room


async def invoke(room: RoomConnection, tool: str, **arguments: object) -> object:
    answer = await room.invoke("memory", tool, {"name": "graph", "namespace": None, **arguments})
    return answer.json if isinstance(answer, JsonContent) else answer


def node(n: int) -> dict:
    return {"entity_id": f"e{n}", "name": f"Entity {n}", "entity_type": "THING", "context": f"number {n}", "confidence": None, "created_at": None, "valid_at": None, "metadata": None}


def edge(n: int) -> dict:
    keys = ["description", "confidence", "created_at", "valid_at", "expired_at", "invalid_at", "source_entity_name", "target_entity_name", "metadata"]
    return {**dict.fromkeys(keys), "source_entity_id": f"e{n}", "target_entity_id": f"e{n + 1}", "relationship_type": "NEXT"}


async def test_acknowledged_memory_writes_survive_sigkill(tmp_path: Path) -> None:
    with LocalServerProcess(tmp_path / "data", log_path=tmp_path / "server.log") as server:
        async with connect(server, "setup") as room:
            await invoke(room, "create", overwrite=False, ignore_exists=False)

        nodes: list[int] = []
        in_flight: list[int] = []
        texts: list[str] = []
        enough = trio.Event()

        async def node_writer(room: RoomConnection) -> None:
            try:
                for n in range(0, 400, 2):  # bounded; the kill normally comes first
                    in_flight[:] = [n, n + 1]
                    try:
                        await invoke(room, "upsert_nodes", records_json=json.dumps([node(n), node(n + 1)]), merge=True)
                        await invoke(room, "upsert_relationships", records_json=json.dumps([edge(n)]), merge=True)
                    except FAILURES:
                        return
                    nodes.extend([n, n + 1])
                    in_flight.clear()
                    if len(nodes) >= 12:
                        enough.set()
            finally:
                enough.set()

        async def ingester(room: RoomConnection) -> None:
            for n in range(100):
                text = f"Person{n} Smith visited Acme Corp{n} in Berlin."
                try:
                    await invoke(room, "ingest_text", strategy="heuristic", llm_model=None, llm_temperature=None, text=text)
                except FAILURES:
                    return
                texts.append(text)

        async def killer() -> None:
            await enough.wait()
            await trio.to_thread.run_sync(server.kill)

        async with connect(server, "nodes") as first, connect(server, "texts") as second:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(node_writer, first)
                nursery.start_soon(ingester, second)
                nursery.start_soon(killer)
        assert len(nodes) >= 12, "the writer stopped before the kill"
        await trio.to_thread.run_sync(server.restart)

        async with connect(server, "verifier") as room:
            rows = (await invoke(room, "query", statement="MATCH (e:Entity {entity_type: 'THING'}) RETURN e.entity_id AS id"))["results"]  # type: ignore[index]
            found = {int(row["id"][1:]) for row in rows}
            assert set(nodes) <= found
            assert found - set(nodes) in (set(), set(in_flight))  # one upsert is one commit: all of it or nothing
            hops = (await invoke(room, "query", statement="MATCH (a:Entity)-[:NEXT]->(b:Entity) RETURN a.entity_id AS a"))["results"]  # type: ignore[index]
            assert {f"e{n}" for n in nodes if n % 2 == 0} <= {row["a"] for row in hops}
            people = (await invoke(room, "query", statement="MATCH (m:Entity {entity_type: 'MEMORY'})-[:MENTIONS]->(p:Entity) RETURN p.entity_id AS id"))["results"]  # type: ignore[index]
            assert {entity_id_for(f"Person{n} Smith") for n in range(len(texts))} <= {row["id"] for row in people}
            # still a working memory: recall, writes, optimize
            recalled = await invoke(room, "recall", query="number 2", limit=5, include_relationships=True)
            assert recalled["items"]  # type: ignore[index]
            await invoke(room, "upsert_nodes", records_json=json.dumps([node(10_000)]), merge=True)
            await invoke(room, "optimize", compact=True, cleanup=True)
            again = (await invoke(room, "query", statement="MATCH (e:Entity {entity_type: 'THING'}) RETURN count(*) AS n"))["results"]  # type: ignore[index]
            assert again == [{"n": len(found) + 1}]
            # ingesting an acknowledged text again changes nothing
            if texts:
                before = await invoke(room, "inspect")
                await invoke(room, "ingest_text", strategy="heuristic", llm_model=None, llm_temperature=None, text=texts[0])
                assert await invoke(room, "inspect") == before
