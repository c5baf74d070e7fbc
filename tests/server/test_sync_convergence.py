"""Convergence through the server (protocol/documents.md §5.3), as a property: N participants make random edits
and push and receive at random moments; once everything is delivered every replica, the
server's document and the copy the server persisted (read back after a restart) are the same."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshagent_core.sync import Element, MeshSchema, TextNode
from meshagent_core.testing import vectors
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials
from meshagent_trio.server.toolkits.sync import SyncState
from roomtest import mint, room_url, running_server
from synctest import OpenDocument, open_document

ROOM = "test-room"
PATH = "live/converge.notebook"
SCHEMA_JSON: dict[str, Any] = vectors.load("sync_vectors")["schema"]
SCHEMA = MeshSchema.from_json(SCHEMA_JSON)
INITIAL = {"notebook": {"cells": [{"cell": {"kind": "code", "source": "seed", "order": 0}}]}}

# (participant, operation, two choice numbers used to pick targets and values)
_operation = st.tuples(
    st.integers(0, 2),
    st.sampled_from(["append", "insert", "delete", "set", "heading", "type", "erase", "bold", "push", "receive"]),
    st.integers(0, 1_000),
    st.integers(0, 1_000),
)


def _elements(document: OpenDocument) -> list[Element]:
    return [c for c in document.document.root.get_children() if isinstance(c, Element)]


def _texts(document: OpenDocument) -> list[TextNode]:
    found = []
    for heading in document.document.root.get_elements_by_tag_name("text"):
        found.extend(c for c in heading.get_children() if isinstance(c, TextNode))
    return found


def _edit(document: OpenDocument, operation: str, a: int, b: int) -> None:
    root = document.document.root
    elements = _elements(document)
    if operation == "append":
        root.append_child("cell", {"kind": "code", "source": f"c{a}", "order": b})
    elif operation == "insert":
        root.insert_child_at(a % (len(elements) + 1), "cell", {"kind": "markdown", "order": b})
    elif operation == "delete" and elements:
        elements[a % len(elements)].delete()
    elif operation == "set" and elements:
        target = elements[a % len(elements)]
        if target.tag_name == "cell":
            target["source"] = f"s{b}"
        else:
            target["label"] = f"l{b}"
    elif operation == "heading":
        with document.document.transaction():
            heading = root.append_child("heading", {"level": a % 6, "label": f"h{b}"})
            heading.append_child("text")
    elif operation in ("type", "erase", "bold"):
        texts = _texts(document)
        if not texts:
            return
        text = texts[a % len(texts)]
        size = len(text.text)
        if operation == "type":
            text.insert(b % (size + 1), f"w{a}")
        elif size:
            start = b % size
            length = 1 + a % (size - start)
            if operation == "erase":
                text.delete(start, length)
            else:
                text.format(start, length, {"bold": True})


async def _drain(document: OpenDocument, seconds: float) -> None:
    """Apply whatever the server has sent (waiting at most `seconds` for the first chunk)."""
    with trio.move_on_after(seconds):
        while True:
            await document.receive_update()
            seconds = 0


def _server_json(server: Any) -> dict[str, Any]:
    document = server.room(ROOM).toolkit_state("sync", SyncState).documents[PATH]
    return document.replica.to_json(include_ids=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(_operation, min_size=1, max_size=40))
def test_random_concurrent_edits_converge_and_survive_a_restart(operations: list[tuple[int, str, int, int]]) -> None:
    credentials = Credentials("project", "key", secrets.token_urlsafe(24))

    async def session(data_dir: Path) -> dict[str, Any]:
        async with running_server(data_dir, credentials) as server:
            url = room_url(server, ROOM)
            async with RoomConnection.open(url, mint(credentials, ROOM, name="p0")) as r0, RoomConnection.open(
                url, mint(credentials, ROOM, name="p1")
            ) as r1, RoomConnection.open(url, mint(credentials, ROOM, name="p2")) as r2:
                async with open_document(r0, PATH, schema=SCHEMA_JSON, initial_json=INITIAL) as d0, open_document(
                    r1, PATH
                ) as d1, open_document(r2, PATH) as d2:
                    replicas = [d0, d1, d2]
                    for who, operation, a, b in operations:
                        replica = replicas[who]
                        if operation == "push":
                            replica.push()
                        elif operation == "receive":
                            await _drain(replica, 0.01)
                        else:
                            _edit(replica, operation, a, b)
                    for replica in replicas:
                        replica.push()
                    # The pushes may still be in flight: wait until the server and every replica agree.
                    with trio.fail_after(10):
                        while any(r.document.to_json(include_ids=True) != _server_json(server) for r in replicas):
                            for replica in replicas:
                                await _drain(replica, 0.005)
                    final = _server_json(server)
                    for replica in replicas:
                        assert replica.document.to_json(include_ids=True) == final
                        assert replica.document.apply_update(replica.document.get_state()) == []
            return final

    async def reopened(data_dir: Path) -> dict[str, Any]:
        async with running_server(data_dir, credentials) as server:
            async with RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name="later")) as room:
                async with open_document(room, PATH, create=False) as later:
                    return later.document.to_json(include_ids=True)

    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory) / "data"
        converged = trio.run(session, data_dir)
        assert trio.run(reopened, data_dir) == converged
