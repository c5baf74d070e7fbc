"""`room.sync` against the real local server, on Trio and on AnyIO (asyncio and Trio): open,
create, describe, two participants converging, the changes iterator, reference counting,
concurrent opens, close flushing, errors, and documents surviving a reconnect.

No sleeps: every wait is on observable state (a change arriving, a `Reconnected` event), under
a deadline."""

from __future__ import annotations

import itertools
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, XmlElement, XmlFragment

from meshagent_core import BinaryContent, ConnectionLost, ControlContent, ErrorContent, RoomException
from meshagent_core.client import sync as sync_module
from meshagent_core.client.room import Disconnected, Reconnected
from meshagent_core.client.sync import DocumentChanges, SyncClient
from meshagent_core.sync import (
    ChildProperty,
    DocumentChange,
    DocumentError,
    ElementType,
    MeshDocument,
    MeshSchema,
    MeshSchemaException,
    encode_update,
)
from meshagent_core.testing import vectors
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import SyncGrant, SyncPathGrant
from meshagent_trio.server import LocalServerProcess
from roomtest import mint

pytestmark = pytest.mark.anyio

VECTORS = vectors.load("sync_vectors")
SCHEMA_JSON: dict[str, Any] = VECTORS["schema"]
SCHEMA = MeshSchema.from_json(SCHEMA_JSON)
INITIAL = {"notebook": {"cells": [{"cell": {"kind": "code", "source": "print(1)", "order": 1, "outputs": []}}]}}
DEADLINE = 15


def _room(name: str, client_variant: tuple[str, str]) -> str:
    return f"sync-{name}-{'-'.join(client_variant)}"


async def until(changes: DocumentChanges, condition: Callable[[], bool]) -> None:
    """Take changes until `condition` holds (it is checked first)."""
    with anyio.fail_after(DEADLINE):
        while not condition():
            await changes.__anext__()


def same(a: MeshDocument, b: MeshDocument) -> Callable[[], bool]:
    return lambda: a.to_json(include_ids=True) == b.to_json(include_ids=True)


def cells(doc: MeshDocument) -> list[dict[str, Any]]:
    return [child.to_json()["cell"] for child in doc.root.get_children_by_tag_name("cell")]


# --- create, describe, open -----------------------------------------------------------------------


async def test_create_describe_and_open(client_module, client_variant, local_server) -> None:
    room_name = _room("basics", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        await room.sync.create(path="/notes/a.notebook", json=INITIAL, schema=SCHEMA)
        described = await room.sync.describe(path="./notes/a.notebook")
        assert described == INITIAL  # 1 == 1.0: pycrdt reads integers back as floats
        with pytest.raises(RoomException) as info:
            await room.sync.create(path="notes/a.notebook", json=INITIAL, schema=SCHEMA)
        assert info.value.code == 1004
        with pytest.raises(RoomException) as info:
            await room.sync.describe(path="notes/missing.notebook")
        assert info.value.code == 1003

        doc = await room.sync.open(path="/notes/a.notebook", create=False)
        assert isinstance(doc, MeshDocument)
        assert doc.schema.to_json() == SCHEMA_JSON  # built from the schema the server sent
        assert doc.to_json() == described
        assert room.sync.get_open_documents() == {"notes/a.notebook": doc}

        # open with create: the server builds the document from initial_json and the schema
        fresh = await room.sync.open(path="b.notebook", initial_json=INITIAL, schema=SCHEMA_JSON)
        assert fresh.to_json() == INITIAL
        await room.sync.close(path="b.notebook")
        await room.sync.close(path="notes/a.notebook")
        assert room.sync.get_open_documents() == {}

        with pytest.raises(RoomException) as info:
            await room.sync.open(path="notes/missing.notebook", create=False)
        assert info.value.code == 1003
        assert room.sync.get_open_documents() == {}


async def test_two_participants_converge(client_module, client_variant, local_server) -> None:
    room_name = _room("converge", client_variant)
    url = local_server.room_url(room_name)
    async with (
        client_module.connect(url, mint(local_server.credentials, room_name, name="alice")) as alice,
        client_module.connect(url, mint(local_server.credentials, room_name, name="bob")) as bob,
    ):
        a = await alice.sync.open(path="shared.notebook", initial_json=INITIAL, schema=SCHEMA)
        b = await bob.sync.open(path="shared.notebook")
        assert b.to_json(include_ids=True) == a.to_json(include_ids=True)
        async with alice.sync.changes(path="shared.notebook") as a_changes, bob.sync.changes(path="shared.notebook") as b_changes:
            # an attribute
            a.root.get_children()[0]["source"] = "print(2)"
            await until(b_changes, same(a, b))
            assert cells(b)[0]["source"] == "print(2)"
            # children, on both sides at once
            heading = b.root.append_child("heading", {"level": 2, "label": "Title"})
            a.root.append_child("cell", {"kind": "markdown", "order": 3})
            await until(a_changes, lambda: len(a.root.get_children()) == 3)
            await until(b_changes, lambda: len(b.root.get_children()) == 3)
            assert a.to_json(include_ids=True) == b.to_json(include_ids=True)
            # rich text inside a nested element
            text = heading.append_child("text")
            text.get_children()[0].insert(0, "hello world")
            await until(a_changes, same(a, b))
            remote_text = a.get_node_by_id(text.id).get_children()[0]
            assert remote_text.text == "hello world"
            remote_text.format(0, 5, {"bold": True})
            remote_text.delete(5, 6)
            await until(b_changes, same(a, b))
            assert text.get_children()[0].delta == [{"insert": "hello", "attributes": {"bold": True}}]
            # delete
            a.get_node_by_id(heading.id).delete()
            await until(b_changes, lambda: b.get_node_by_id(heading.id) is None)
            assert a.to_json(include_ids=True) == b.to_json(include_ids=True)
            assert [child.tag_name for child in b.root.get_children()] == ["cell", "cell"]
        await alice.sync.close(path="shared.notebook")
        await bob.sync.close(path="shared.notebook")
        assert (await alice.sync.describe(path="shared.notebook")) == a.to_json()


async def test_changes_iterator_reports_remote_and_local_changes(client_module, client_variant, local_server) -> None:
    room_name = _room("changes", client_variant)
    url = local_server.room_url(room_name)
    async with (
        client_module.connect(url, mint(local_server.credentials, room_name, name="alice")) as alice,
        client_module.connect(url, mint(local_server.credentials, room_name, name="bob")) as bob,
    ):
        a = await alice.sync.open(path="c.notebook", schema=SCHEMA)
        b = await bob.sync.open(path="c.notebook")
        changes = bob.sync.changes(path="c.notebook")
        cell = a.root.append_child("cell", {"kind": "code"})
        seen: list[DocumentChange] = []
        with anyio.fail_after(DEADLINE):
            async for change in changes:
                seen.append(change)
                if change.kind == "inserted":
                    break
        inserted = seen[-1]
        assert inserted.local is False and inserted.parent is b.root
        assert inserted.node.id == cell.id and inserted.node.tag_name == "cell"
        cell["order"] = 7
        with anyio.fail_after(DEADLINE):
            updated = await changes.__anext__()
        assert (updated.kind, updated.name, updated.value, updated.local) == ("updated", "order", 7, False)
        cell.delete()
        with anyio.fail_after(DEADLINE):
            deleted = await changes.__anext__()
        assert deleted.kind == "deleted" and deleted.node.id == cell.id and deleted.local is False
        # bob's own edits come through the same iterator, marked local
        b.root.append_child("cell", {"kind": "markdown"})
        with anyio.fail_after(DEADLINE):
            mine = await changes.__anext__()
        assert mine.kind == "inserted" and mine.local is True
        # the iterator ends when the document is closed
        await bob.sync.close(path="c.notebook")
        with anyio.fail_after(DEADLINE):
            assert [change async for change in changes] == []
        with pytest.raises(RoomException) as info:
            bob.sync.changes(path="c.notebook")
        assert info.value.code == 4001
        await alice.sync.close(path="c.notebook")


# --- references, concurrency, closing -------------------------------------------------------------


async def test_reopen_counts_references(client_module, client_variant, local_server) -> None:
    room_name = _room("refcount", client_variant)
    url = local_server.room_url(room_name)
    async with (
        client_module.connect(url, mint(local_server.credentials, room_name, name="alice")) as alice,
        client_module.connect(url, mint(local_server.credentials, room_name, name="bob")) as bob,
    ):
        first = await alice.sync.open(path="r.notebook", schema=SCHEMA)
        second = await alice.sync.open(path="/r.notebook")
        assert second is first
        b = await bob.sync.open(path="r.notebook")
        await alice.sync.close(path="r.notebook")
        assert alice.sync.get_open_documents() == {"r.notebook": first}
        async with bob.sync.changes(path="r.notebook") as changes:
            first.root.append_child("cell", {"source": "still open"})  # the stream still runs
            await until(changes, same(first, b))
        await alice.sync.close(path="r.notebook")
        assert alice.sync.get_open_documents() == {}
        assert first.closed
        with pytest.raises(RoomException) as info:
            await alice.sync.close(path="r.notebook")
        assert info.value.code == 4001
        await bob.sync.close(path="r.notebook")


async def test_concurrent_opens_share_the_first(client_module, client_variant, local_server) -> None:
    room_name = _room("concurrent", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        opened: list[MeshDocument] = []
        failures: list[RoomException] = []

        async def open_one(path: str, create: bool) -> None:
            try:
                opened.append(await room.sync.open(path=path, create=create, schema=SCHEMA))
            except RoomException as error:
                failures.append(error)

        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as group:
                for _ in range(4):
                    group.start_soon(open_one, "together.notebook", True)
        assert len(opened) == 4 and all(doc is opened[0] for doc in opened)
        for _ in range(4):
            await room.sync.close(path="together.notebook")
        with pytest.raises(RoomException):
            await room.sync.close(path="together.notebook")

        opened.clear()
        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(open_one, "absent.notebook", False)
        assert opened == [] and [error.code for error in failures] == [1003, 1003, 1003]
        assert room.sync.get_open_documents() == {}


async def test_close_flushes_edits_made_just_before(client_module, client_variant, local_server, monkeypatch) -> None:
    room_name = _room("flush", client_variant)
    url = local_server.room_url(room_name)
    sent: list[bytes] = []
    real_chunk = sync_module._sync_chunk

    def counting_chunk(update: bytes) -> BinaryContent:
        sent.append(update)
        return real_chunk(update)

    monkeypatch.setattr(sync_module, "_sync_chunk", counting_chunk)
    async with (
        client_module.connect(url, mint(local_server.credentials, room_name, name="alice")) as alice,
        client_module.connect(url, mint(local_server.credentials, room_name, name="bob")) as bob,
    ):
        a = await alice.sync.open(path="f.notebook", schema=SCHEMA)
        b = await bob.sync.open(path="f.notebook")
        changes = bob.sync.changes(path="f.notebook")
        sent.clear()
        # Three transactions, then close at once: no task switch in between, so the three
        # updates are still queued and go out merged, in one chunk, before the close.
        for order in range(3):
            a.root.append_child("cell", {"kind": "code", "order": order})
        expected = a.to_json()
        await alice.sync.close(path="f.notebook")
        assert len(sent) == 1
        # the server applied them before it answered the close: a describe sees them at once
        assert await alice.sync.describe(path="f.notebook") == expected
        await until(changes, lambda: b.to_json() == expected)
        # and a fresh open gets them too
        again = await alice.sync.open(path="f.notebook")
        assert again is not a and again.to_json() == expected
        await alice.sync.close(path="f.notebook")
        await bob.sync.close(path="f.notebook")


async def test_leaving_the_room_ends_documents(client_module, client_variant, local_server) -> None:
    room_name = _room("leave", client_variant)
    url = local_server.room_url(room_name)
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="bob")) as bob:
        b = await bob.sync.open(path="l.notebook", schema=SCHEMA)
        async with bob.sync.changes(path="l.notebook") as b_changes:
            async with client_module.connect(url, mint(local_server.credentials, room_name, name="alice")) as alice:
                a = await alice.sync.open(path="l.notebook")
                a_changes = alice.sync.changes(path="l.notebook")
                a.root.append_child("cell", {"source": "before stop"})
                await alice.sync.stop()  # closes every document, flushing first
                assert alice.sync.get_open_documents() == {} and a.closed
                d = await alice.sync.open(path="l.notebook")  # still usable after stop()
                d_changes = alice.sync.changes(path="l.notebook")
                d.root.append_child("cell", {"source": "right before leaving"})
            # left without closing: the edit made just before was sent, then the document was
            # closed and its iterators ended
            assert d.closed
            with anyio.fail_after(DEADLINE):
                assert [(change.kind, change.local) async for change in d_changes] == [("inserted", True)]
                assert [(change.kind, change.local) async for change in a_changes] == [("inserted", True)]
            await until(b_changes, lambda: [c["source"] for c in cells(b)] == ["before stop", "right before leaving"])
        # bob's stream is unaffected by alice leaving
        await bob.sync.close(path="l.notebook")


# --- errors ---------------------------------------------------------------------------------------


async def test_operations_on_a_path_that_is_not_open(client_module, client_variant, local_server) -> None:
    room_name = _room("unopened", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        for operation in (
            lambda: room.sync.close(path="x.notebook"),
            lambda: room.sync.sync(path="x.notebook", data="AAA="),
        ):
            with pytest.raises(RoomException) as info:
                await operation()
            assert info.value.code == 4001
        with pytest.raises(RoomException) as info:
            room.sync.changes(path="x.notebook")
        assert info.value.code == 4001
        with pytest.raises(NotImplementedError, match="changes"):
            room.sync.on("inserted", print)
    # a room client that was never entered (or has been left) opens nothing
    idle = client_module.RoomClient(
        protocol=client_module.WebSocketClientProtocol(
            url=local_server.room_url(room_name), token=mint(local_server.credentials, room_name)
        )
    )
    with pytest.raises(ConnectionLost):
        await idle.sync.open(path="x.notebook", schema=SCHEMA)
    with pytest.raises(ConnectionLost):
        await room.sync.open(path="x.notebook", schema=SCHEMA)


async def test_malformed_input_from_the_user(client_module, client_variant, local_server) -> None:
    room_name = _room("input", client_variant)
    url = local_server.room_url(room_name)
    async with (
        client_module.connect(url, mint(local_server.credentials, room_name, name="alice")) as alice,
        client_module.connect(url, mint(local_server.credentials, room_name, name="bob")) as bob,
    ):
        with pytest.raises(TypeError, match="path must be a string"):
            await alice.sync.open(path=7)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="initial_json"):
            await alice.sync.open(path="i.notebook", initial_json="{}")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="create must be a bool"):
            await alice.sync.open(path="i.notebook", create="yes")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="schema must be a MeshSchema"):
            await alice.sync.open(path="i.notebook", schema="notebook")  # type: ignore[arg-type]
        with pytest.raises(MeshSchemaException):
            await alice.sync.create(path="i.notebook", schema={"not": "a schema"})
        # initial JSON the schema does not allow: the server refuses, nothing is opened
        with pytest.raises(RoomException) as info:
            await alice.sync.open(path="i.notebook", schema=SCHEMA, initial_json={"notebook": {"cells": [{"nope": {}}]}})
        assert info.value.code == 1002
        assert alice.sync.get_open_documents() == {}

        a = await alice.sync.open(path="i.notebook", schema=SCHEMA)
        b = await bob.sync.open(path="i.notebook")
        before = a.to_json(include_ids=True)
        for data, message in (
            ("not base64!", "not base64"),
            (encode_update(b"\xff\xfe garbage"), "not base64 of a Yjs update"),
            (7, "str or bytes"),
        ):
            with pytest.raises((RoomException, TypeError), match=message) as info:
                await alice.sync.sync(path="i.notebook", data=data)  # type: ignore[arg-type]
            if isinstance(info.value, RoomException):
                assert info.value.code == 1002
        # an update the schema does not allow (an element type it does not have)
        other = Doc()
        fragment = other.get("xml", type=XmlFragment)
        fragment.children.append(XmlElement("spreadsheet", {"$id": "s1"}))
        with pytest.raises(RoomException, match="breaks the schema") as info:
            await alice.sync.sync(path="i.notebook", data=encode_update(other.get_update()))
        assert info.value.code == 1002
        # a shared type that is not part of a document
        stray = Doc()
        stray["extra"] = Map({"a": 1})
        with pytest.raises(RoomException, match="breaks the schema"):
            await alice.sync.sync(path="i.notebook", data=encode_update(stray.get_update()).decode())
        assert a.to_json(include_ids=True) == before
        # local edits the schema does not allow fail locally
        with pytest.raises(DocumentError):
            a.root.append_child("output", {"mime": "text/plain"})
        with pytest.raises(DocumentError):
            a.root.append_child("cell", {"colour": "red"})

        # the stream is intact: a valid update given to sync() is applied here and reaches bob
        replica = MeshDocument(schema=SCHEMA, update=a.get_state())
        replica.root.append_child("cell", {"source": "from sync()"})
        async with bob.sync.changes(path="i.notebook") as changes:
            await alice.sync.sync(path="i.notebook", data=encode_update(replica.get_state(a.get_state_vector())))
            assert [c["source"] for c in cells(a)] == ["from sync()"]
            await until(changes, same(a, b))
        await alice.sync.close(path="i.notebook")
        await bob.sync.close(path="i.notebook")


async def test_schema_problems_surface(client_module, client_variant, local_server) -> None:
    room_name = _room("schema", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        # no schema given and none in room storage for the extension
        with pytest.raises(RoomException) as info:
            await room.sync.open(path="n.unknownext")
        assert info.value.code == 1002
        with pytest.raises(RoomException):
            await room.sync.create(path="n.unknownext", json={"notebook": {"cells": []}})
        # a schema in `.schemas/<ext>.json` is used, and the document is built from it;
        # `deploy_schema` puts it there (a name is an extension, so it cannot hold a dot)
        with pytest.raises(RoomException, match="cannot contain"):
            await client_module.deploy_schema(room=room, schema=SCHEMA, name="x.nb")
        await client_module.deploy_schema(room=room, schema=SCHEMA, name="nb")
        assert json.loads((await room.storage.download(path=".schemas/nb.json")).data) == SCHEMA.to_json()
        doc = await room.sync.open(path="x.nb")
        assert doc.schema.root_tag_name == "notebook"
        await room.sync.close(path="x.nb")
        # an existing document keeps its schema: the one a later open passes is not used
        other = MeshSchema(
            root_tag_name="list",
            elements=[
                ElementType(tag_name="list", properties=[ChildProperty(name="items", child_tag_names=["item"])]),
                ElementType(tag_name="item", properties=[]),
            ],
        )
        reopened = await room.sync.open(path="x.nb", schema=other)
        assert reopened.schema.root_tag_name == "notebook"
        with pytest.raises(DocumentError):
            reopened.root.append_child("item")
        await room.sync.close(path="x.nb")


async def test_a_refused_update_fails_the_document(client_module, client_variant, local_server) -> None:
    room_name = _room("readonly", client_variant)
    url = local_server.room_url(room_name)
    scope = ApiScope.agent_default()
    scope.sync = SyncGrant(paths=[SyncPathGrant(path="shared/*", read_only=True)])
    async with (
        client_module.connect(url, mint(local_server.credentials, room_name, name="writer")) as writer,
        client_module.connect(url, mint(local_server.credentials, room_name, name="reader", scope=scope)) as reader,
    ):
        w = await writer.sync.open(path="shared/r.notebook", schema=SCHEMA, initial_json=INITIAL)
        r = await reader.sync.open(path="shared/r.notebook", create=False)
        assert r.to_json() == w.to_json()
        changes = reader.sync.changes(path="shared/r.notebook")
        r.root.append_child("cell", {"source": "not allowed"})  # the server refuses it
        with anyio.fail_after(DEADLINE), pytest.raises(RoomException) as info:
            async for change in changes:
                assert change.local
        assert info.value.code == 1001
        # the document is no longer synchronised: the next operations say why
        for operation in (
            lambda: reader.sync.sync(path="shared/r.notebook", data=encode_update(r.get_state())),
            lambda: reader.sync.open(path="shared/r.notebook"),
        ):
            with pytest.raises(RoomException) as again:
                await operation()
            assert again.value.code == 1001
        with pytest.raises(RoomException) as again:
            await reader.sync.close(path="shared/r.notebook")
        assert again.value.code == 1001
        assert reader.sync.get_open_documents() == {}
        # the writer's document is intact, and the reader can open it again
        assert await writer.sync.describe(path="shared/r.notebook") == w.to_json()
        fresh = await reader.sync.open(path="shared/r.notebook", create=False)
        assert fresh.to_json() == w.to_json()
        await reader.sync.close(path="shared/r.notebook")
        await writer.sync.close(path="shared/r.notebook")


def _binary(headers: dict[str, Any], data: bytes = b"") -> BinaryContent:
    return BinaryContent(headers=headers, data=data)


@pytest.mark.parametrize(
    "chunk",
    [
        _binary({"kind": "sync", "path": "p", "schema": SCHEMA_JSON}),  # not a state chunk
        _binary({"path": "p", "schema": SCHEMA_JSON}),  # no kind
        _binary({"kind": "state", "path": "p", "schema": SCHEMA_JSON, "sender": "x"}),  # an extra key
        _binary({"kind": "state", "path": "other", "schema": SCHEMA_JSON}),  # another document
        _binary({"kind": "state", "path": "p", "schema": "notebook"}),  # schema not an object
        _binary({"kind": "state", "path": "p", "schema": SCHEMA_JSON}, b"%%%"),  # payload not base64
        ControlContent(method="open"),
        ErrorContent(text="unexpected", code=1100),
    ],
)
def test_malformed_state_chunks_are_1100(chunk: Any) -> None:
    with pytest.raises(RoomException) as info:
        SyncClient._state_chunk(chunk, "p")
    assert info.value.code == 1100


@pytest.mark.parametrize(
    "chunk",
    [
        _binary({"kind": "state", "path": "p", "schema": SCHEMA_JSON}),  # a second state
        _binary({"kind": "sync"}),  # no path
        _binary({"kind": "sync", "path": "p", "extra": 1}),
        _binary({"kind": "sync", "path": "/q"}),
        _binary({"kind": "sync", "path": "p"}, b"AA=A=="),
        ControlContent(method="open"),
    ],
)
def test_malformed_relay_chunks_are_1100(chunk: Any) -> None:
    with pytest.raises(RoomException) as info:
        SyncClient._relay_chunk(chunk, "p")
    assert info.value.code == 1100


def test_well_formed_chunks_are_accepted() -> None:
    state, update = SyncClient._state_chunk(_binary({"kind": "state", "path": "./p", "schema": SCHEMA_JSON}, b"AAA="), "p")
    assert state.schema == SCHEMA_JSON and update == b"\x00\x00"
    assert SyncClient._relay_chunk(_binary({"kind": "sync", "path": "/p"}), "p") == b""


# --- reconnect ----------------------------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path):
    with LocalServerProcess(tmp_path / "data") as server:
        yield server


async def _next_event(subscription: Any, kind: type) -> None:
    with anyio.fail_after(30):
        async for event in subscription:
            if isinstance(event, kind):
                return
    raise AssertionError(f"the room closed before {kind.__name__}")


async def test_documents_survive_a_reconnect(client_module, own_server) -> None:
    url = own_server.room_url("resync")
    credentials = own_server.credentials
    with anyio.fail_after(90):
        async with (
            client_module.connect(url, mint(credentials, "resync", name="alice"), reconnect_timeout=30) as alice,
            client_module.connect(url, mint(credentials, "resync", name="bob"), reconnect_timeout=30) as bob,
        ):
            a = await alice.sync.open(path="re.notebook", schema=SCHEMA, initial_json=INITIAL)
            # both give the schema: if the server lost the new document in the crash, either
            # re-creates it on reconnect, and their full states fill it again
            b = await bob.sync.open(path="re.notebook", schema=SCHEMA)
            b_changes = bob.sync.changes(path="re.notebook")
            a_changes = alice.sync.changes(path="re.notebook")
            a_events, b_events = alice.subscribe(Reconnected), bob.subscribe(Reconnected)
            # an edit the server may not have written to disk before it dies
            a.root.append_child("cell", {"source": "just before the crash"})
            await until(b_changes, same(a, b))
            await anyio.to_thread.run_sync(own_server.kill, abandon_on_cancel=True)  # no close frame
            # offline edits on both sides
            a.root.get_children()[0]["source"] = "edited offline by alice"
            b.root.append_child("heading", {"level": 1, "label": "edited offline by bob"})
            assert alice.sync.get_open_documents() == {"re.notebook": a}
            await anyio.to_thread.run_sync(own_server.restart, abandon_on_cancel=True)
            await _next_event(a_events, Reconnected)
            await _next_event(b_events, Reconnected)
            # the reconnect hook waited for each document's state: the rest arrives as relays
            await until(a_changes, lambda: len(a.root.get_children()) == 3)
            await until(b_changes, same(a, b))
            assert [child.tag_name for child in a.root.get_children()] == ["cell", "cell", "heading"]
            assert cells(a)[0]["source"] == "edited offline by alice"
            assert await alice.sync.describe(path="re.notebook") == a.to_json()
            # the documents go on working, and close normally
            b.root.get_children()[0]["order"] = 9
            await until(a_changes, same(a, b))
            await alice.sync.close(path="re.notebook")
            await bob.sync.close(path="re.notebook")


async def test_close_while_disconnected_says_so(client_module, own_server) -> None:
    url = own_server.room_url("offline")
    with anyio.fail_after(60):
        async with client_module.connect(url, mint(own_server.credentials, "offline"), reconnect_timeout=30) as room:
            doc = await room.sync.open(path="o.notebook", schema=SCHEMA)
            events = room.subscribe(Disconnected, Reconnected)
            await anyio.to_thread.run_sync(own_server.kill, abandon_on_cancel=True)
            await _next_event(events, Disconnected)
            doc.root.append_child("cell", {"source": "offline"})
            with pytest.raises(ConnectionLost):
                await room.sync.open(path="other.notebook", schema=SCHEMA)
            with pytest.raises(ConnectionLost, match="disconnected|closed before"):
                await room.sync.close(path="o.notebook")  # what was edited offline cannot be sent
            assert doc.closed and room.sync.get_open_documents() == {}
            await anyio.to_thread.run_sync(own_server.restart, abandon_on_cancel=True)
            await _next_event(events, Reconnected)
            reopened = await room.sync.open(path="o.notebook", schema=SCHEMA)
            assert reopened.to_json() == {"notebook": {"cells": []}}
            await room.sync.close(path="o.notebook")


# --- Hypothesis: participants editing at once through the server converge -----------------------

TEXTS = st.text(alphabet="abcé✓ ", min_size=1, max_size=4)
APPEND = st.tuples(st.just("append"), st.sampled_from(["code", "markdown"]), TEXTS)
INSERT_HEADING = st.tuples(st.just("insert_heading"), st.integers(0, 6), TEXTS)
EDITS = st.one_of(
    APPEND,
    INSERT_HEADING,
    APPEND,
    INSERT_HEADING,
    st.tuples(st.just("set"), st.integers(0, 6), TEXTS),
    st.tuples(st.just("delete"), st.integers(0, 6)),
    st.tuples(st.just("type"), st.integers(0, 6), st.integers(0, 8), TEXTS),
    st.tuples(st.just("erase"), st.integers(0, 6), st.integers(0, 8), st.integers(1, 3)),
)
#: A program: ("edit", participant, edit) steps and ("deliver", n) steps that let the network
#: and the other tasks run for n scheduler turns, so edits interleave with deliveries.
STEPS = st.lists(
    st.one_of(st.tuples(st.just("edit"), st.integers(0, 2), EDITS), st.tuples(st.just("deliver"), st.integers(1, 5))),
    min_size=4,
    max_size=24,
)


def _apply_edit(doc: MeshDocument, edit: tuple[Any, ...]) -> None:
    children = doc.root.get_children()
    kind = edit[0]
    if kind == "append":
        doc.root.append_child("cell", {"kind": edit[1], "source": edit[2], "order": len(children)})
    elif kind == "insert_heading":
        doc.root.insert_child_at(edit[1] % (len(children) + 1), "heading", {"level": 1, "label": edit[2]})
    elif children and kind == "set":
        element = children[edit[1] % len(children)]
        element.set_attribute("source" if element.tag_name == "cell" else "label", edit[2])
    elif children and kind == "delete":
        children[edit[1] % len(children)].delete()
    elif kind in ("type", "erase"):
        headings = doc.root.get_children_by_tag_name("heading")
        if not headings:
            headings = [doc.root.append_child("heading", {"level": 2})]
        heading = headings[edit[1] % len(headings)]
        texts = heading.get_children_by_tag_name("text")
        text = (texts[0] if texts else heading.append_child("text")).get_children()[0]
        size = len(text)
        if kind == "type":
            text.insert(edit[2] % (size + 1), edit[3])
        elif size:
            start = edit[2] % size
            text.delete(start, min(edit[3], size - start))


def _clock_vector(doc: MeshDocument) -> dict[int, int]:
    """The document's state vector, decoded (v1: a count, then (client, clock) varuint pairs),
    so that vectors compare whatever order the encoder wrote them in."""
    data = doc.get_state_vector()
    position = 0

    def varuint() -> int:
        nonlocal position
        value = shift = 0
        while True:
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    return dict((varuint(), varuint()) for _ in range(varuint()))


def _settled(docs: list[MeshDocument]) -> bool:
    """Every document holds every item (equal state vectors) and shows the same content. Then
    what may still be in flight is only deletions each document has already made, which change
    nothing when they arrive (equal JSON alone is not enough: two concurrent inserts of "a" at
    the same place read "a" on both sides until each gets the other's)."""
    first = docs[0]
    return all(
        _clock_vector(doc) == _clock_vector(first) and doc.to_json(include_ids=True) == first.to_json(include_ids=True)
        for doc in docs[1:]
    )


async def _run_program(rooms: list[Any], path: str, steps: list[Any]) -> dict[str, Any]:
    changed = anyio.Event()

    def wake(_: Any) -> None:
        changed.set()

    docs = [await room.sync.open(path=path, schema=SCHEMA) for room in rooms]
    # every transaction, also one that changes nothing visible (an insert deleted in the same
    # merged update), wakes the wait below
    subscriptions = [doc.ydoc.observe(wake) for doc in docs]
    for step in steps:
        if step[0] == "edit":
            _apply_edit(docs[step[1] % len(docs)], step[2])
        else:
            for _ in range(step[1]):
                await anyio.lowlevel.checkpoint()
    with anyio.fail_after(DEADLINE):
        while not _settled(docs):
            changed = anyio.Event()
            await changed.wait()
    for doc, subscription in zip(docs, subscriptions):
        doc.ydoc.unobserve(subscription)
    final = docs[0].to_json()
    for room in rooms:
        await room.sync.close(path=path)  # sends what is queued; returns once the server has it
    assert await rooms[0].sync.describe(path=path) == final
    return final


def test_participants_converge_through_the_server(client_module, client_variant, own_server) -> None:
    """2–3 participants make random edits with random deliveries in between; once everything
    is delivered all documents are equal and equal the server's copy, also after a restart.
    The participants stay connected across examples (an event loop in a portal thread)."""
    finals: dict[str, Any] = {}
    paths = (f"prop/{n}.notebook" for n in itertools.count())  # a fresh document per example
    url = own_server.room_url("converge")
    with anyio.from_thread.start_blocking_portal(client_variant[1]) as portal, ExitStack() as stack:
        connections = [client_module.connect(url, mint(own_server.credentials, "converge", name=f"p{n}")) for n in range(3)]
        rooms = [stack.enter_context(portal.wrap_async_context_manager(connection)) for connection in connections]

        @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
        @given(participants=st.integers(2, 3), steps=STEPS)
        def run(participants: int, steps: list[Any]) -> None:
            path = next(paths)
            finals[path] = portal.call(_run_program, rooms[:participants], path, steps)

        run()
    own_server.restart()  # SIGTERM: the server writes its documents, then starts from them

    async def reload() -> None:
        async with client_module.connect(url, mint(own_server.credentials, "converge")) as room:
            for path, final in finals.items():
                assert await room.sync.describe(path=path) == final, path

    anyio.run(reload, backend=client_variant[1])
