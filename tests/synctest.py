"""A raw `sync.open` test client (the protocol by hand, with a core `MeshDocument` replica),
for server tests that must control exactly what goes on the wire and when."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import trio

from meshagent_core import BinaryContent, ControlContent
from meshagent_core.client.connection import RoomConnection
from meshagent_core.sync import MeshDocument, MeshSchema, decode_update, encode_update
from meshagent_core.toolkits.sync import StartHeaders, headers_to_builtins, normalize_path


class OpenDocument:
    """A raw `sync.open` stream with a local replica, as a test client."""

    def __init__(self, stream: Any, document: MeshDocument, path: str) -> None:
        self.stream = stream
        self.document = document
        self.path = path
        self.outgoing: list[bytes] = []
        document.observe_updates(self.outgoing.append)

    def push(self) -> None:
        for update in self.outgoing:
            self.send_update(update)
        self.outgoing.clear()

    def send_update(self, update: bytes) -> None:
        self.stream.send(BinaryContent(headers={"kind": "sync"}, data=encode_update(update)))

    async def catch_up(self, other: "OpenDocument") -> None:
        """Receive until this replica equals `other` (queued updates may arrive merged)."""
        with trio.fail_after(10):
            while self.document.to_json(include_ids=True) != other.document.to_json(include_ids=True):
                await self.receive_update()

    async def receive_update(self) -> None:
        chunk = await self.stream.next_chunk()
        assert isinstance(chunk, BinaryContent), chunk
        assert chunk.headers == {"kind": "sync", "path": self.path}
        assert self.document.apply_update(decode_update(chunk.data)) == []


@asynccontextmanager
async def open_document(room: RoomConnection, path: str, **start: Any) -> AsyncIterator[OpenDocument]:
    async with room.stream_call("sync", "open") as stream:
        stream.send(BinaryContent(headers=headers_to_builtins(StartHeaders(path=path, **start))))
        assert await stream.response() == ControlContent(method="open")
        first = await stream.next_chunk()
        assert isinstance(first, BinaryContent), first
        assert set(first.headers) == {"kind", "path", "schema"} and first.headers["kind"] == "state"
        assert first.headers["path"] == normalize_path(path)
        schema = MeshSchema.from_json(first.headers["schema"])
        document = MeshDocument(schema=schema, update=decode_update(first.data) if first.data else None)
        yield OpenDocument(stream, document, normalize_path(path))
        stream.close_input()
        while await stream.next_chunk() is not None:
            pass  # updates relayed before the server answered the close with a close


def without_empty_runs(node: Any) -> Any:
    """The official client renders an empty rich text as one empty run, we as no run (the real
    Yjs delta); everything else must be identical."""
    if isinstance(node, dict):
        if set(node) == {"delta"}:
            return {"delta": [run for run in node["delta"] if run.get("insert") != ""]}
        return {key: without_empty_runs(value) for key, value in node.items()}
    if isinstance(node, list):
        return [without_empty_runs(item) for item in node]
    return node
