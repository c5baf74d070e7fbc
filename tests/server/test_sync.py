"""The sync toolkit end to end over the raw protocol (protocol/documents.md §4, §5): open streams, relays,
validation, grants, persistence across a restart."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from pycrdt import Doc, Map, XmlElement, XmlFragment

from meshagent_core import BinaryContent, EmptyContent, ErrorCode, JsonContent, RoomException
from meshagent_core.sync import MeshDocument, MeshSchema, decode_update, encode_update
from meshagent_core.testing import vectors
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import SyncGrant, SyncPathGrant
from meshagent_core.toolkits.sync import StartHeaders, headers_to_builtins
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server, ServerConfig
from meshagent_trio.server.toolkits import sync as sync_toolkit
from roomtest import mint, room_url
from synctest import OpenDocument, open_document

ROOM = "test-room"
VECTORS = vectors.load("sync_vectors")
SCHEMA_JSON: dict[str, Any] = VECTORS["schema"]
SCHEMA = MeshSchema.from_json(SCHEMA_JSON)
INITIAL = {"notebook": {"cells": [{"cell": {"kind": "code", "source": "print(1)", "order": 1}}]}}


def connect(server: Server, credentials: Credentials, name: str = "alice", scope: ApiScope | None = None):
    return RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name=name, scope=scope))


def sync_scope(*paths: SyncPathGrant) -> ApiScope:
    scope = ApiScope.agent_default()
    scope.sync = SyncGrant(paths=list(paths))
    return scope


async def test_two_participants_edit_one_document(server, credentials) -> None:
    async with connect(server, credentials, "alice") as alice, connect(server, credentials, "bob") as bob:
        async with open_document(alice, "notes/a.notebook", schema=SCHEMA_JSON, initial_json=INITIAL) as a:
            assert a.document.to_json()["notebook"]["cells"][0]["cell"]["source"] == "print(1)"
            async with open_document(bob, "/notes/a.notebook") as b:
                assert b.document.to_json() == a.document.to_json()
                cell = a.document.root.get_children()[0]
                cell["source"] = "print(2)"
                a.push()
                await b.receive_update()
                assert b.document.to_json() == a.document.to_json()
                heading = b.document.root.append_child("heading", {"level": 2, "label": "x"})
                text = heading.append_child("text")
                text.get_children()[0].insert(0, "hello")
                b.push()
                await a.catch_up(b)
                assert a.document.root.get_children()[1].get_children()[0].get_children()[0].text == "hello"
        described = await bob.invoke("sync", "describe", {"path": "notes/a.notebook", "schema_path": None})
        assert isinstance(described, JsonContent)
        assert described.json == a.document.to_json()


async def test_updates_are_not_echoed_and_redundant_ones_not_relayed(server, credentials) -> None:
    async with connect(server, credentials, "alice") as alice, connect(server, credentials, "bob") as bob:
        async with open_document(alice, "e.notebook", schema=SCHEMA_JSON) as a, open_document(bob, "e.notebook") as b:
            a.document.root.append_child("cell", {"kind": "code", "order": 1})
            update = a.outgoing[0]
            a.push()
            a.send_update(update)  # the same update again: known, so not relayed twice
            a.send_update(b.document.get_state())  # an echo of what the server has
            b.document.root.append_child("cell", {"kind": "markdown", "order": 2})
            b.push()
            await b.receive_update()  # alice's cell, once
            await a.receive_update()  # bob's cell; nothing of alice's own came back before it
            assert a.document.to_json(include_ids=True) == b.document.to_json(include_ids=True)
            with trio.move_on_after(0.2):
                await b.stream.next_chunk()
                pytest.fail("a redundant update was relayed")


async def test_reopen_with_state_vector_gets_only_the_difference(server, credentials) -> None:
    async with connect(server, credentials) as alice:
        async with open_document(alice, "v.notebook", schema=SCHEMA_JSON, initial_json=INITIAL) as a:
            replica = a.document
        vector = replica.get_state_vector()
        async with open_document(alice, "v.notebook") as again:
            full = again.document.get_state()
        replica.close()
        async with connect(server, credentials, "bob") as bob:
            async with open_document(bob, "v.notebook") as b:
                b.document.root.append_child("cell", {"kind": "code", "order": 9})
                b.push()
        async with alice.stream_call("sync", "open") as stream:
            stream.send(BinaryContent(headers=headers_to_builtins(StartHeaders(path="v.notebook", vector=encode_update(vector).decode()))))
            await stream.response()
            state = await stream.next_chunk()
            assert isinstance(state, BinaryContent)
            diff = decode_update(state.data)
            assert len(diff) < len(full)
            base = MeshDocument(schema=SCHEMA, update=full)
            assert base.apply_update(diff) == []
            assert len(base.root.get_children()) == 2


@pytest.mark.parametrize(
    "make_update, message",
    [
        (lambda: _foreign(lambda f: f.children.append(XmlElement("output", {"$id": "x"}))), "not allowed as a child"),
        (lambda: _foreign(lambda f: f.children.append(XmlElement("nope", {"$id": "x"}))), "not an element type"),
        (lambda: _foreign(lambda f: f.children.append(XmlElement("cell", {"kind": "code"}))), "without a string '$id'"),
        (lambda: _foreign(lambda f: f.children.append(XmlElement("cell", {"$id": "x", "colour": "red"}))), "not a property"),
        (lambda: _foreign(lambda f: f.children.append(XmlElement("cell", {"$id": "x", "order": "first"}))), "is not a number"),
        (lambda: _foreign(lambda f: f.children.append(XmlElement("cell", {"$id": "x", "kind": "poem"}))), "is not a string"),
        (lambda: _foreign_root_attribute(), "written on the root"),
        # pycrdt >= 0.13 picks 53-bit client ids; Yjs and the official clients cannot read them
        (lambda: _foreign(lambda f: f.children.append(XmlElement("cell", {"$id": "x"})), client_id=2**40), "does not fit in 32 bits"),
        (lambda: _foreign_other_root(), "not part of a MeshAgent document"),
    ],
)
async def test_an_update_that_breaks_the_schema_is_refused_and_changes_nothing(server, credentials, make_update, message) -> None:
    async with connect(server, credentials, "alice") as alice, connect(server, credentials, "bob") as bob:
        async with open_document(bob, "s.notebook", schema=SCHEMA_JSON, initial_json=INITIAL) as b:
            before = (await alice.invoke("sync", "describe", {"path": "s.notebook"})).json
            async with alice.stream_call("sync", "open") as stream:
                stream.send(BinaryContent(headers=headers_to_builtins(StartHeaders(path="s.notebook"))))
                await stream.response()
                await stream.next_chunk()
                stream.send(BinaryContent(headers={"kind": "sync"}, data=encode_update(make_update())))
                error = await stream.next_chunk()
                assert error is not None and getattr(error, "code", None) == ErrorCode.INVALID_REQUEST, error
                assert message in error.text
                assert await stream.next_chunk() is None
            assert (await alice.invoke("sync", "describe", {"path": "s.notebook"})).json == before
            # the document still works for everyone else
            b.document.root.append_child("cell", {"kind": "code", "order": 3})
            b.push()
            with trio.fail_after(5):
                while len((await alice.invoke("sync", "describe", {"path": "s.notebook"})).json["notebook"]["cells"]) != 2:
                    await trio.sleep(0.01)


def _foreign(edit: Any, client_id: int = 7) -> bytes:
    doc = Doc(client_id=client_id)
    edit(doc.get("xml", type=XmlFragment))
    return doc.get_update()


def _foreign_root_attribute() -> bytes:
    return decode_update(VECTORS["hazards"]["root_attribute_update"]["update_b64"])


def _foreign_other_root() -> bytes:
    doc = Doc(client_id=8)
    doc.get("other", type=Map)["a"] = 1
    return doc.get_update()


@pytest.mark.parametrize(
    "payload, message",
    [(b"%%% not base64", "not base64"), (encode_update(b"\x05\x01garbage"), "not a Yjs v1 update")],
)
async def test_undecodable_updates_are_refused(server, credentials, payload, message) -> None:
    async with connect(server, credentials) as alice:
        await alice.invoke("sync", "create", {"path": "g.notebook", "json": INITIAL, "schema": SCHEMA_JSON})
        async with alice.stream_call("sync", "open") as stream:
            stream.send(BinaryContent(headers=headers_to_builtins(StartHeaders(path="g.notebook"))))
            await stream.response()
            await stream.next_chunk()
            stream.send(BinaryContent(headers={"kind": "sync"}, data=payload))
            error = await stream.next_chunk()
            assert getattr(error, "code", None) == ErrorCode.INVALID_REQUEST and message in error.text, error
        described = await alice.invoke("sync", "describe", {"path": "g.notebook"})
        assert described.json["notebook"]["cells"][0]["cell"]["source"] == "print(1)"


@pytest.mark.parametrize(
    "chunks, message",
    [
        ([BinaryContent(headers={"kind": "sync"})], "must be a 'start' chunk"),
        ([JsonContent(json={"path": "x"})], "must be binary content"),
        ([BinaryContent(headers={"kind": "start"})], "invalid start chunk"),
        ([BinaryContent(headers={"kind": "start", "path": "x.notebook", "vector": "%%"})], "state vector"),
    ],
)
async def test_malformed_start_chunks(server, credentials, chunks, message) -> None:
    async with connect(server, credentials) as alice:
        async with alice.stream_call("sync", "open") as stream:
            for chunk in chunks:
                stream.send(chunk)
            with pytest.raises(RoomException) as caught:
                await stream.response()
            assert caught.value.code == ErrorCode.INVALID_REQUEST and message in caught.value.message


async def test_create_describe_and_their_errors(server, credentials) -> None:
    async with connect(server, credentials) as alice:
        assert await alice.invoke("sync", "create", {"path": "c.notebook", "json": INITIAL, "schema": SCHEMA_JSON, "schema_path": None}) == EmptyContent()
        described = await alice.invoke("sync", "describe", {"path": "./c.notebook", "schema_path": None})
        assert described.json == {"notebook": {"cells": [{"cell": {"kind": "code", "source": "print(1)", "order": 1.0, "outputs": []}}]}}
        cases = [
            ({"path": "c.notebook", "schema": SCHEMA_JSON}, ErrorCode.ALREADY_EXISTS),
            ({"path": "d.unknown"}, ErrorCode.INVALID_REQUEST),  # no schema and none for the extension
            ({"path": "d.notebook", "schema": {"$root_tag_ref": "#/$defs/x", "$defs": {}}}, ErrorCode.INVALID_REQUEST),
            ({"path": "d.notebook", "schema": SCHEMA_JSON, "json": {"notebook": {"cells": [{"output": {}}]}}}, ErrorCode.INVALID_REQUEST),
            # wider than Yjs's signed 64-bit integers: pycrdt would abort the process (a Rust panic)
            ({"path": "d.notebook", "schema": SCHEMA_JSON, "json": {"notebook": {"cells": [{"cell": {"kind": "code", "source": "x", "order": 2**64}}]}}}, ErrorCode.INVALID_REQUEST),
            ({"path": "d.notebook", "schema": SCHEMA_JSON, "json": {"notebook": {"cells": [{"cell": {"kind": "code", "source": "x", "order": -(2**63) - 1}}]}}}, ErrorCode.INVALID_REQUEST),
            ({"path": "../escape.notebook", "schema": SCHEMA_JSON}, ErrorCode.STORAGE_INVALID_PATH),
            ({"path": ".schemas/x.json", "schema": SCHEMA_JSON}, ErrorCode.INVALID_REQUEST),
            ({"path": "", "schema": SCHEMA_JSON}, ErrorCode.INVALID_REQUEST),
            # not canonical: the official client would not recognise the canonical path in the answers
            ({"path": "notes/d.notebook/", "schema": SCHEMA_JSON}, ErrorCode.INVALID_REQUEST),
            ({"path": "notes//d.notebook", "schema": SCHEMA_JSON}, ErrorCode.STORAGE_INVALID_PATH),
        ]
        for arguments, code in cases:
            with pytest.raises(RoomException) as caught:
                await alice.invoke("sync", "create", arguments)
            assert caught.value.code == code, (arguments, caught.value)
        with pytest.raises(RoomException) as caught:
            await alice.invoke("sync", "describe", {"path": "missing.notebook"})
        assert caught.value.code == ErrorCode.NOT_FOUND
        # nothing was left behind by the refused creations, on disk or in memory
        assert (await alice.invoke("storage", "exists", {"path": "d.notebook"})).json == {"exists": False}
        state = server.room(ROOM).toolkit_state("sync", sync_toolkit.SyncState)
        assert "missing.notebook" not in state._locks and "d.notebook" not in state._locks
        with pytest.raises(RoomException) as caught:
            async with open_document(alice, "missing.notebook", create=False):
                pass
        assert caught.value.code == ErrorCode.NOT_FOUND


async def test_schema_from_the_extension(server, credentials) -> None:
    async with connect(server, credentials) as alice:
        root = await server.room(ROOM).toolkit_state("storage", sync_toolkit.StorageState).get_root()
        (root / ".schemas").mkdir()
        (root / ".schemas" / "nb.json").write_text(json.dumps(SCHEMA_JSON))
        async with open_document(alice, "x/y.nb", initial_json=INITIAL) as doc:
            assert doc.document.schema == SCHEMA
            assert doc.document.to_json()["notebook"]["cells"][0]["cell"]["order"] == 1.0
        # or from the schema file the caller names, whatever the extension
        async with open_document(alice, "x/z.other", schema_path="/.schemas/nb.json", initial_json=INITIAL) as doc:
            assert doc.document.schema == SCHEMA
        with pytest.raises(RoomException) as caught:
            await alice.invoke("sync", "create", {"path": "x/w.other", "schema_path": ".schemas/missing.json"})
        assert caught.value.code == ErrorCode.INVALID_REQUEST and ".schemas/missing.json" in caught.value.message


async def test_read_only_paths(server, credentials) -> None:
    reader = sync_scope(SyncPathGrant(path="shared/*", read_only=True))
    async with connect(server, credentials, "writer") as writer, connect(server, credentials, "reader", reader) as read_only:
        await writer.invoke("sync", "create", {"path": "shared/r.notebook", "json": INITIAL, "schema": SCHEMA_JSON})
        with pytest.raises(RoomException) as caught:
            await read_only.invoke("sync", "create", {"path": "shared/new.notebook", "schema": SCHEMA_JSON})
        assert caught.value.code == ErrorCode.PERMISSION_DENIED
        with pytest.raises(RoomException) as caught:
            await read_only.invoke("sync", "describe", {"path": "private.notebook"})
        assert caught.value.code == ErrorCode.PERMISSION_DENIED
        async with open_document(writer, "shared/r.notebook") as w, read_only.stream_call("sync", "open") as stream:
            stream.send(BinaryContent(headers=headers_to_builtins(StartHeaders(path="shared/r.notebook"))))
            await stream.response()
            state = await stream.next_chunk()
            r = OpenDocument(stream, MeshDocument(schema=SCHEMA, update=decode_update(state.data)), "shared/r.notebook")
            r.send_update(r.document.get_state())  # an echo changes nothing: accepted
            w.document.root.append_child("cell", {"kind": "code", "order": 2})
            w.push()
            await r.receive_update()  # a reader still receives the writer's edits
            r.document.root.append_child("cell", {"kind": "code", "order": 3})
            r.push()
            error = await stream.next_chunk()
            assert getattr(error, "code", None) == ErrorCode.PERMISSION_DENIED, error
            assert await stream.next_chunk() is None
        described = await writer.invoke("sync", "describe", {"path": "shared/r.notebook"})
        assert len(described.json["notebook"]["cells"]) == 2


async def test_no_sync_grant(server, credentials) -> None:
    scope = ApiScope.agent_default()
    scope.sync = None
    async with connect(server, credentials, scope=scope) as alice:
        with pytest.raises(RoomException) as caught:
            await alice.invoke("sync", "describe", {"path": "a.notebook"})
        assert caught.value.code == ErrorCode.PERMISSION_DENIED


async def test_a_slow_subscriber_gets_every_update_merged(server, credentials, monkeypatch) -> None:
    monkeypatch.setattr(sync_toolkit, "MAX_QUEUED_UPDATES", 4)
    async with connect(server, credentials, "alice") as alice, connect(server, credentials, "bob") as bob:
        async with open_document(alice, "q.notebook", schema=SCHEMA_JSON) as a, open_document(bob, "q.notebook") as b:
            document = server.room(ROOM).toolkit_state("sync", sync_toolkit.SyncState).documents["q.notebook"]
            for order in range(50):
                a.document.root.append_child("cell", {"kind": "code", "order": order})
            a.push()
            with trio.fail_after(10):
                while len(document.replica.root.get_children()) < 50:
                    await trio.sleep(0.01)
                while len(b.document.root.get_children()) < 50:
                    await b.receive_update()
            assert b.document.to_json(include_ids=True) == a.document.to_json(include_ids=True)


async def test_documents_survive_a_restart(tmp_path, credentials) -> None:
    config = ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0)
    for round in range(2):
        async with trio.open_nursery() as nursery:
            server = Server(config)
            config.port = await nursery.start(server.serve)
            async with connect(server, credentials) as alice:
                async with open_document(alice, "keep/p.notebook", schema=SCHEMA_JSON, initial_json=INITIAL if round == 0 else None) as doc:
                    cells = doc.document.root.get_children()
                    if round == 0:
                        cells[0]["source"] = "kept"
                        doc.document.root.append_child("cell", {"kind": "markdown", "order": 2})
                        doc.push()
                    else:
                        assert [c["source"] for c in cells] == ["kept", None]
            nursery.cancel_scope.cancel()
        config.port = 0
    stored = list(config.data_dir.rglob("p.notebook"))
    assert len(stored) == 1
    body = json.loads(stored[0].read_text())
    assert body["format"] == "meshagent-document" and body["version"] == 1
    assert MeshSchema.from_json(body["schema"]) == SCHEMA
    reloaded = MeshDocument(schema=SCHEMA, update=decode_update(body["state"]))
    assert [c["source"] for c in reloaded.root.get_children()] == ["kept", None]


async def test_a_file_that_is_not_a_document(server, credentials) -> None:
    async with connect(server, credentials) as alice:
        root = await server.room(ROOM).toolkit_state("storage", sync_toolkit.StorageState).get_root()
        (root / "plain.notebook").write_text("hello")
        with pytest.raises(RoomException) as caught:
            await alice.invoke("sync", "describe", {"path": "plain.notebook"})
        assert caught.value.code == ErrorCode.INVALID_REQUEST and "not a MeshAgent document" in caught.value.message


async def test_deleting_the_file_replaces_an_idle_document(server, credentials) -> None:
    """Released documents stay loaded for a quick reopen, but the file decides: a client that
    deletes a document to replace it (as the official CLI does) gets the new one."""
    async with connect(server, credentials) as alice:
        await alice.invoke("sync", "create", {"path": "r.notebook", "json": INITIAL, "schema": SCHEMA_JSON})
        async with open_document(alice, "r.notebook") as first:
            assert first.document.root.get_children()[0]["source"] == "print(1)"
        assert "r.notebook" in server.room(ROOM).toolkit_state("sync", sync_toolkit.SyncState).documents  # kept idle
        async with open_document(alice, "r.notebook", create=False) as again:
            assert again.document.root.get_children()[0]["source"] == "print(1)"
        await alice.invoke("storage", "delete", {"path": "r.notebook"})
        with pytest.raises(RoomException) as caught:
            await alice.invoke("sync", "describe", {"path": "r.notebook"})
        assert caught.value.code == ErrorCode.NOT_FOUND
        replacement = {"notebook": {"cells": [{"cell": {"kind": "markdown", "source": "new", "order": 1}}]}}
        async with open_document(alice, "r.notebook", schema=SCHEMA_JSON, initial_json=replacement) as fresh:
            assert fresh.document.root.get_children()[0]["source"] == "new"


async def test_idle_documents_are_bounded(server, credentials, monkeypatch) -> None:
    monkeypatch.setattr(sync_toolkit, "IDLE_DOCUMENTS", 2)
    async with connect(server, credentials) as alice:
        for n in range(5):
            await alice.invoke("sync", "create", {"path": f"b{n}.notebook", "json": INITIAL, "schema": SCHEMA_JSON})
        state = server.room(ROOM).toolkit_state("sync", sync_toolkit.SyncState)
        assert sorted(state.documents) == ["b3.notebook", "b4.notebook"]
        assert sorted(state._locks) == ["b3.notebook", "b4.notebook"]  # nothing kept per path once unloaded


async def test_an_update_that_skips_its_clients_earlier_items_is_refused(server, credentials) -> None:
    """A client sends its own items in order, so an update whose client's earlier items the
    server never got cannot be completed later: it is refused, and nothing of it is kept."""
    doc = Doc(client_id=11)
    fragment = doc.get("xml", type=XmlFragment)
    fragment.children.append(XmlElement("cell", {"$id": "first", "kind": "code"}))
    vector = doc.get_state()
    fragment.children.append(XmlElement("cell", {"$id": "second", "kind": "code"}))
    second_only = doc.get_update(vector)
    async with connect(server, credentials) as alice:
        await alice.invoke("sync", "create", {"path": "o.notebook", "json": INITIAL, "schema": SCHEMA_JSON})
        async with alice.stream_call("sync", "open") as stream:
            stream.send(BinaryContent(headers=headers_to_builtins(StartHeaders(path="o.notebook"))))
            await stream.response()
            await stream.next_chunk()
            stream.send(BinaryContent(headers={"kind": "sync"}, data=encode_update(second_only)))
            error = await stream.next_chunk()
            assert getattr(error, "code", None) == ErrorCode.INVALID_REQUEST and "does not have" in error.text, error
        described = await alice.invoke("sync", "describe", {"path": "o.notebook"})
        assert len(described.json["notebook"]["cells"]) == 1


async def test_a_burst_of_updates_is_slowed_down_not_refused(server, credentials) -> None:
    """The official client sends one chunk per local transaction, as fast as it edits. The
    server stops reading while the document's input is backed up, instead of failing the
    stream once hundreds of chunks are queued."""
    async with connect(server, credentials, "alice") as alice, connect(server, credentials, "bob") as bob:
        async with open_document(alice, "burst.notebook", schema=SCHEMA_JSON, initial_json=INITIAL) as a, open_document(bob, "burst.notebook") as b:
            cell = a.document.root.get_children()[0]
            for n in range(2000):
                cell["source"] = f"v{n}"
            a.push()  # 2,000 chunks in one go
            with trio.fail_after(30):
                while b.document.root.get_children()[0]["source"] != "v1999":
                    await b.receive_update()


def test_a_subscriber_past_the_queue_limit_gets_one_diff(monkeypatch) -> None:
    """Unit level, so the overflow really happens: past MAX_QUEUED_UPDATES the queue is
    replaced by the state vector it started from, and the subscriber gets one diff that
    brings it exactly to the committed state."""
    monkeypatch.setattr(sync_toolkit, "MAX_QUEUED_UPDATES", 4)
    writer = MeshDocument(schema=SCHEMA, initial_json=INITIAL)
    shared = sync_toolkit.SharedDocument("d.notebook", SCHEMA, writer.get_state())
    reader = MeshDocument(schema=SCHEMA, update=shared.state())
    sender, slow = sync_toolkit._Subscriber(), sync_toolkit._Subscriber()
    shared.subscribers.update({sender, slow})
    updates: list[bytes] = []
    writer.observe_updates(updates.append)
    for order in range(10):
        writer.root.append_child("cell", {"kind": "code", "order": order})
    for update in updates:
        shared.accept(update, sender, writable=True)
    assert slow.since is not None and slow.queue == []
    assert sender.queue == [] and sender.since is None  # nothing goes back to the sender
    assert reader.apply_update(shared.take(slow)) == []
    assert reader.to_json(include_ids=True) == writer.to_json(include_ids=True)
    assert shared.take(slow) is None
