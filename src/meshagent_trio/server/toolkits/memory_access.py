"""What every tool of the `memory` toolkit shares: the toolkit object, the room's store and
graph cache, one lock per memory, and the caller's grant (protocol/room-apis.md §15.1).

Grants (`MemoryGrant` of the caller's `api` scope; none at all is 1001 for every tool, with the
text the official memories tools look for, "you do not have permission to perform the requested
action"): `list` needs the grant's `list` flag and shows only memories the grant names (all when
it names none); the other tools need the permission of their family on the memory — `create`
(and `drop` too when `overwrite` replaces an existing memory), `drop`, `inspect`, `query`,
`upsert` (the three upserts and both deletes), `ingest` (the five ingests), `recall`,
`optimize`. What an ingest reads or keeps elsewhere needs the caller's grant there as well:
`storage` `read` on each file, `dataset` `read` on a table, `storage` `write` where an image is
kept, and `llm` for the `llm` strategy.

**Locking.** Every tool that touches a memory's datasets holds that memory's lock while it does
(queries only while they get the loaded graph, not while the statement runs), so `optimize`
can remove old versions without pulling files from under a reader, and two ingests of one source
do not both write it.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, TypeVar

import msgspec
import trio

from meshagent_core import JsonContent
from meshagent_core.tokens.grants import MemoryGrant

from ..toolkit import Toolkit, ToolCall, permission_denied
from .memory_graph import GraphCache
from .memory_store import MEMORIES_FOLDER, PERMISSION_DENIED, MemoryRef, MemoryStore

T = TypeVar("T")

toolkit = Toolkit("memory")

PERMISSIONS = ("create", "drop", "inspect", "query", "upsert", "ingest", "recall", "optimize")


class MemoryState:
    """A room's memories: the store (prepared in a worker thread on first use), the loaded
    graphs, and a lock per memory in use."""

    def __init__(self, room: Any) -> None:
        self.store = MemoryStore(Path(room.data_dir) / MEMORIES_FOLDER)
        self.graphs = GraphCache()
        self._locks: dict[MemoryRef, tuple[trio.Lock, int]] = {}
        self._ready = False

    async def get(self) -> MemoryStore:
        if not self._ready:
            await trio.to_thread.run_sync(self.store.prepare)
            self._ready = True
        return self.store

    @asynccontextmanager
    async def locked(self, ref: MemoryRef) -> AsyncIterator[MemoryStore]:
        """Hold the memory's lock (the entry goes when no one holds or waits for it)."""
        lock, users = self._locks.get(ref, (trio.Lock(), 0))
        self._locks[ref] = (lock, users + 1)
        try:
            async with lock:
                yield await self.get()
        finally:
            lock, users = self._locks[ref]
            if users == 1:
                del self._locks[ref]
            else:
                self._locks[ref] = (lock, users - 1)


def state_of(call: ToolCall) -> MemoryState:
    state: MemoryState = call.room.toolkit_state("memory", MemoryState)
    return state


async def run(function: Callable[..., T], *args: Any) -> T:
    """Blocking work (Lance, Kùzu, files) in a worker thread."""
    return await trio.to_thread.run_sync(function, *args)


def grant_of(call: ToolCall) -> MemoryGrant:
    grant = call.scope.memory if call.scope is not None else None
    if grant is None:
        raise permission_denied(PERMISSION_DENIED)
    return grant


def require(call: ToolCall, ref: MemoryRef, permission: str) -> None:
    """1001 unless the caller's grant allows `permission` on the memory."""
    grant = grant_of(call)
    if not getattr(grant, f"can_{permission}")(name=ref.name, namespace=ref.namespace_list):
        raise permission_denied(PERMISSION_DENIED)


def listable(grant: MemoryGrant, namespace: tuple[str, ...], name: str) -> bool:
    space = list(namespace) if namespace else None
    return any(getattr(grant, f"can_{permission}")(name=name, namespace=space) for permission in PERMISSIONS)


def json_answer(value: msgspec.Struct) -> JsonContent:
    return JsonContent(json=msgspec.to_builtins(value))


__all__ = ["MemoryState", "grant_of", "json_answer", "listable", "require", "run", "state_of", "toolkit"]
