"""The document model (protocol/documents.md §2) on pycrdt: the element and text API with its errors,
transactions, queries, events, the local-update observer, and the schema checks of
integrated updates (foreign updates are built with plain pycrdt documents)."""

from __future__ import annotations

import random
import re
import uuid
from typing import Any, Callable

import pytest
from pycrdt import Array, Doc, Map, XmlElement, XmlFragment, XmlText

from meshagent_core.sync import (
    DocumentChange,
    DocumentError,
    Element,
    InvalidUpdate,
    MeshDocument,
    MeshSchema,
    SchemaViolation,
    TextNode,
    decode_update,
    encode_update,
)
from meshagent_core.sync.document import struct_ranges, update_clients
from meshagent_core.testing import vectors

VECTORS = vectors.load("sync_vectors")
SCHEMA = MeshSchema.from_json(VECTORS["schema"])


def new_doc(**kwargs: Any) -> MeshDocument:
    return MeshDocument(schema=SCHEMA, **kwargs)


def replica_of(doc: MeshDocument) -> MeshDocument:
    return MeshDocument(schema=SCHEMA, update=doc.get_state())


def cells(doc: MeshDocument) -> list[Element]:
    return [c for c in doc.root.get_children() if isinstance(c, Element)]


def heading_with_text(doc: MeshDocument, label: str = "h") -> tuple[Element, Element, TextNode]:
    heading = doc.root.append_child("heading", {"label": label})
    text = heading.append_child("text")
    (node,) = text.get_children()
    assert isinstance(node, TextNode)
    return heading, text, node


# --- elements --------------------------------------------------------------------------------


def test_append_child_creates_an_element_with_a_uuid4_id() -> None:
    doc = new_doc()
    cell = doc.root.append_child("cell", {"kind": "code", "source": "x", "order": 1})
    assert cell.tag_name == "cell" and cell.schema is SCHEMA.element("cell")
    assert uuid.UUID(cell.id).version == 4
    assert cell.parent is doc.root and cell.doc is doc and doc.root.parent is None and doc.root.id is None
    assert cell["kind"] == "code" and cell.get_attribute("order") == 1
    assert cell.get_attribute("missing", "fallback") == "fallback" and cell["missing"] is None
    assert doc.get_node_by_id(cell.id) is cell
    assert doc.to_json(include_ids=True) == {
        "notebook": {"cells": [{"cell": {"$id": cell.id, "kind": "code", "source": "x", "order": 1, "outputs": []}}]}
    }
    assert replica_of(doc).to_json(include_ids=True) == doc.to_json(include_ids=True)


@pytest.mark.parametrize(
    ("parent", "tag", "attributes", "message"),
    [
        ("root", "output", {}, "'output' is not allowed as a child of 'notebook'"),
        ("root", "ghost", {}, "'ghost' is not allowed"),
        ("cell", "cell", {}, "'cell' is not allowed as a child of 'cell'"),
        ("output", "output", {}, "'output' is not allowed as a child of 'output'"),  # no child property
        ("root", "cell", {"colour": "red"}, "'colour' is not a value property of 'cell'"),
        ("root", "cell", {"order": "first"}, "cell.order is a number"),
        ("root", "cell", {"order": True}, "cell.order is a number"),
        ("root", "cell", {"kind": "prose"}, "cell.kind is a string"),
        ("root", "cell", {"outputs": []}, "'outputs' is not a value property"),
    ],
)
def test_append_child_refuses_what_the_schema_does_not_allow(
    parent: str, tag: str, attributes: dict[str, Any], message: str
) -> None:
    doc = new_doc()
    cell = doc.root.append_child("cell", {"kind": "code"})
    output = cell.append_child("output", {"mime": "text/plain"})
    target = {"root": doc.root, "cell": cell, "output": output}[parent]
    before = doc.get_state()
    with pytest.raises(DocumentError, match=re.escape(message)):
        target.append_child(tag, attributes)
    assert doc.get_state() == before


def test_set_and_remove_attributes() -> None:
    doc = new_doc()
    cell = doc.root.append_child("cell", {"kind": "code"})
    cell.set_attribute("source", "a")
    cell["order"] = 2.5
    assert cell["source"] == "a" and cell["order"] == 2.5
    cell["kind"] = "markdown"
    assert cell["kind"] == "markdown"
    cell["source"] = None  # nullable: stored as null
    assert cell["source"] is None and doc.to_json()["notebook"]["cells"][0]["cell"]["source"] is None
    cell.remove_attribute("order")
    cell.remove_attribute("order")  # removing what is absent is a no-op
    assert "order" not in doc.to_json()["notebook"]["cells"][0]["cell"]
    assert replica_of(doc).to_json() == doc.to_json()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("colour", "red", "'colour' is not a value property of 'cell'"),
        ("outputs", [], "'outputs' is not a value property of 'cell'"),
        ("order", "1", r"cell\.order is a number; '1' does not fit"),
        ("order", float("nan"), r"cell\.order is a number"),
        ("source", 3, r"cell\.source is a string"),
        ("kind", "prose", r"cell\.kind is a string in \['code', 'markdown'\]"),
        ("$id", "other", "'\\$id' is assigned at creation and never changes"),
    ],
)
def test_set_attribute_refuses_bad_names_and_values(name: str, value: Any, message: str) -> None:
    doc = new_doc()
    cell = doc.root.append_child("cell", {"kind": "code", "order": 1})
    before = doc.get_state()
    with pytest.raises(DocumentError, match=message):
        cell.set_attribute(name, value)
    assert doc.get_state() == before


def test_id_cannot_be_removed_and_root_has_no_attributes() -> None:
    doc = new_doc()
    cell = doc.root.append_child("cell", {"kind": "code"})
    with pytest.raises(DocumentError, match="never changes"):
        cell.remove_attribute("$id")
    with pytest.raises(DocumentError, match="root element has no attributes"):
        doc.root.set_attribute("title", "t")
    with pytest.raises(DocumentError, match="root element has no attributes"):
        doc.root["title"] = "t"
    with pytest.raises(DocumentError, match="root element has no attributes"):
        doc.root.remove_attribute("title")
    assert doc.root.get_attribute("title", "none") == "none"
    assert doc.ydoc.get("xml", type=XmlFragment).children[0].attributes.get("$id") == cell.id


def test_delete() -> None:
    doc = new_doc()
    first = doc.root.append_child("cell", {"kind": "code"})
    second = doc.root.append_child("cell", {"kind": "code"})
    output = second.append_child("output", {})
    second.delete()
    assert cells(doc) == [first]
    assert doc.get_node_by_id(second.id) is None and doc.get_node_by_id(output.id) is None
    assert second.parent is None
    with pytest.raises(DocumentError, match="no longer in the document"):
        second.delete()
    with pytest.raises(DocumentError, match="root element cannot be deleted"):
        doc.root.delete()
    assert replica_of(doc).to_json(True) == doc.to_json(True)


def test_insert_child_at_and_after_order_children() -> None:
    doc = new_doc()
    b = doc.root.append_child("cell", {"source": "b"})
    a = doc.root.insert_child_at(0, "cell", {"source": "a"})
    d = doc.root.insert_child_at(2, "cell", {"source": "d"})
    c = doc.root.insert_child_after(b, "heading", {"label": "c"})
    e = doc.root.insert_child_after(d.id, "cell", {"source": "e"})  # by id
    order = [x.get_attribute("source") or x.get_attribute("label") for x in cells(doc)]
    assert order == ["a", "b", "c", "d", "e"]
    assert cells(doc) == [a, b, c, d, e]
    assert [n.id for n in cells(replica_of(doc))] == [a.id, b.id, c.id, d.id, e.id]
    for index in (-1, 6):
        with pytest.raises(DocumentError, match=f"index {index} is outside 0..5"):
            doc.root.insert_child_at(index, "cell")
    output = b.append_child("output")
    with pytest.raises(DocumentError, match="is not a child of this element"):
        doc.root.insert_child_after(output, "cell")
    with pytest.raises(DocumentError, match="is not a child of this element"):
        doc.root.insert_child_after("no-such-id", "cell")


def test_append_json_builds_a_subtree_in_one_transaction() -> None:
    doc = new_doc()
    updates: list[bytes] = []
    doc.observe_updates(updates.append)
    cell = doc.root.append_json(
        {"cell": {"kind": "code", "order": 1, "$id": "ignored", "outputs": [{"output": {"mime": "a"}}, {"output": {}}]}}
    )
    assert len(updates) == 1
    assert cell.id != "ignored"
    outputs = cell.get_children()
    assert [o.get_attribute("mime") for o in outputs if isinstance(o, Element)] == ["a", None]
    # Clean writer: no stale copy of the child list as an attribute (protocol/documents.md §3.3 quirk b).
    assert "outputs" not in dict(doc.ydoc.get("xml", type=XmlFragment).children[0].attributes)
    before = doc.get_state()
    with pytest.raises(DocumentError, match="'bogus' is not a value property of 'output'"):
        doc.root.append_json({"cell": {"outputs": [{"output": {}}, {"output": {"bogus": 1}}]}})
    with pytest.raises(DocumentError, match="exactly one key"):
        doc.root.append_json({"cell": {}, "heading": {}})
    with pytest.raises(DocumentError, match="must be a list"):
        doc.root.append_json({"cell": {"outputs": {"output": {}}}})
    assert doc.get_state() == before


def test_load_json_keeps_root_attributes_out_of_the_crdt() -> None:
    doc = new_doc(initial_json={"notebook": {"title": "T", "cells": [{"cell": {"kind": "code"}}]}})
    assert doc.to_json() == {"notebook": {"cells": [{"cell": {"kind": "code", "outputs": []}}]}}
    assert list(doc.ydoc.keys()) == ["xml"]


@pytest.mark.parametrize(
    ("document_json", "message"),
    [
        ({"cell": {}}, "the root tag is 'notebook', not 'cell'"),
        ({"notebook": {"colour": "x"}}, "'colour' is not a property of 'notebook'"),
        ({"notebook": {"title": 3}}, r"notebook\.title is a string"),
        ({"notebook": {"cells": {"cell": {}}}}, r"notebook\.cells must be a list"),
        ({"notebook": {"cells": [{"cell": {}}, {"output": {}}]}}, "'output' is not allowed as a child of 'notebook'"),
        ({"notebook": {"cells": [{"cell": {}}, {"cell": {"order": "x"}}]}}, r"cell\.order is a number"),
        ({"notebook": {"cells": [{"cell": {}}, "cell"]}}, "exactly one key"),
        ([], "exactly one key"),
    ],
)
def test_load_json_with_a_bad_node_writes_nothing(document_json: Any, message: str) -> None:
    doc = new_doc(initial_json={"notebook": {"cells": [{"cell": {"kind": "code"}}]}})
    before = doc.to_json(include_ids=True)
    vector = doc.get_state_vector()
    with pytest.raises(DocumentError, match=message):
        doc.load_json(document_json)
    assert doc.to_json(include_ids=True) == before
    assert doc.get_state_vector() == vector
    # The id index did not keep elements of the refused JSON either.
    assert [e.id for e in doc.root.get_elements_by_tag_name("cell")] == [cells(doc)[0].id]


def test_closed_document_refuses_edits_but_still_reads() -> None:
    doc = new_doc()
    heading, _, text = heading_with_text(doc)
    other = replica_of(doc)
    other.root.append_child("cell")
    doc.close()
    doc.close()  # idempotent
    assert doc.closed
    edits: list[Callable[[], Any]] = [
        lambda: doc.root.append_child("cell"),
        lambda: doc.root.insert_child_at(0, "cell"),
        lambda: doc.root.append_json({"cell": {}}),
        lambda: heading.set_attribute("label", "x"),
        lambda: heading.remove_attribute("label"),
        lambda: heading.delete(),
        lambda: text.insert(0, "x"),
        lambda: text.delete(0, 0),
        lambda: text.format(0, 0, {"bold": True}),
        lambda: doc.load_json({"notebook": {}}),
        lambda: doc.apply_update(other.get_state()),
    ]
    for edit in edits:
        with pytest.raises(DocumentError, match="closed"):
            edit()
    assert doc.to_json()["notebook"]["cells"][0]["heading"]["label"] == "h"


def test_a_removed_element_or_text_refuses_edits() -> None:
    doc = new_doc()
    peer = new_doc()
    doc.observe_updates(lambda update: peer.apply_update(update))
    heading, text, node = heading_with_text(doc)
    remote_heading = peer.get_node_by_id(heading.id)
    assert remote_heading is not None
    remote_text = remote_heading.get_children()[0]
    assert isinstance(remote_text, Element)
    (remote_node,) = remote_text.get_children()
    assert isinstance(remote_node, TextNode)
    heading.delete()  # locally here, remotely on the peer
    for element, text_node in ((heading, node), (remote_heading, remote_node)):
        for edit in (
            lambda: element.set_attribute("label", "x"),
            lambda: element.remove_attribute("label"),
            lambda: element.append_child("text"),
            lambda: element.append_json({"text": {}}),
            lambda: element.delete(),
            lambda: text_node.insert(0, "x"),
            lambda: text_node.format(0, 0, {"b": True}),
            lambda: text_node.delete(0, 0),
        ):
            with pytest.raises(DocumentError, match="no longer in the document"):
                edit()
    assert doc.to_json() == peer.to_json() == {"notebook": {"cells": []}}


def test_a_removed_element_refuses_edits_inside_the_same_transaction() -> None:
    doc = new_doc()
    cell = doc.root.append_child("cell")
    deleted: list[Any] = []
    doc.on("deleted")(deleted.append)
    with doc.transaction():
        cell.delete()
        with pytest.raises(DocumentError, match="no longer in the document"):
            cell["source"] = "x"
        with pytest.raises(DocumentError, match="no longer in the document"):
            cell.append_child("output")
    assert deleted == [cell]
    assert doc.to_json() == {"notebook": {"cells": []}}


def test_reads_inside_a_transaction_no_longer_show_a_deleted_element() -> None:
    doc = new_doc()
    first = doc.root.append_child("cell", {"source": "1"})
    second = doc.root.append_child("cell", {"source": "2"})
    output = second.append_child("output")
    with doc.transaction():
        second.delete()
        assert doc.root.get_children() == [first]
        assert doc.root.get_elements_by_tag_name("output") == []
        assert doc.get_node_by_id(second.id) is None and doc.get_node_by_id(output.id) is None
        with pytest.raises(DocumentError, match="is not a child of this element"):
            doc.root.insert_child_after(second, "cell")
        third = doc.root.insert_child_after(first, "cell", {"source": "3"})
    assert cells(doc) == [first, third]
    assert [c["source"] for c in cells(replica_of(doc))] == ["1", "3"]


# --- transactions ------------------------------------------------------------------------------


def test_transaction_keeps_append_order_and_makes_one_update_and_one_batch() -> None:
    doc = new_doc()
    updates: list[bytes] = []
    batches: list[list[DocumentChange]] = []
    doc.observe_updates(updates.append)
    doc.observe(batches.append)
    with doc.transaction():
        made = [doc.root.append_child("cell", {"order": i}) for i in range(5)]
        nested = made[2].append_child("output", {"mime": "m"})  # into an element of this transaction
        made[4]["source"] = "last"
        first = doc.root.insert_child_at(0, "heading", {"label": "first"})
    assert len(updates) == 1 and len(batches) == 1
    assert cells(doc) == [first, *made]
    assert made[2].get_children() == [nested] and nested.parent is made[2]
    inserted = [c.node for c in batches[0] if c.kind == "inserted"]
    assert set(map(id, inserted)) == set(map(id, [first, *made, nested]))
    remote = new_doc()
    assert remote.apply_update(updates[0]) == []
    assert remote.to_json(True) == doc.to_json(True)


def test_an_insert_undone_in_the_same_transaction_leaves_no_trace() -> None:
    doc = new_doc()
    kept = doc.root.append_child("cell")
    batches: list[list[DocumentChange]] = []
    doc.observe(batches.append)
    with doc.transaction():
        gone = doc.root.append_child("cell", {"source": "gone"})
        inner = kept.append_child("output")
        gone_inner = gone.append_child("output")
        gone.delete()
        inner.delete()
    assert doc.get_node_by_id(gone.id) is None
    assert doc.get_node_by_id(inner.id) is None and doc.get_node_by_id(gone_inner.id) is None
    assert kept.get_elements_by_tag_name("output") == [] and doc.root.get_elements_by_tag_name("output") == []
    assert cells(doc) == [kept]
    assert all(c.kind != "inserted" for batch in batches for c in batch)


def test_insert_into_an_element_deleted_in_the_same_transaction() -> None:
    doc = new_doc()
    cell = doc.root.append_child("cell")
    with doc.transaction():
        output = cell.append_child("output")
        cell.delete()
    assert doc.get_node_by_id(output.id) is None and doc.get_node_by_id(cell.id) is None
    assert doc.to_json() == {"notebook": {"cells": []}}


def test_apply_update_inside_a_transaction_is_refused() -> None:
    doc = new_doc()
    other = new_doc()
    other.root.append_child("cell")
    sent: list[bytes] = []
    doc.observe_updates(sent.append)
    with doc.transaction():
        with pytest.raises(DocumentError, match="inside transaction"):
            doc.apply_update(other.get_state())
    assert sent == [] and cells(doc) == []
    assert doc.apply_update(other.get_state()) == [] and sent == []


# --- queries ---------------------------------------------------------------------------------


def _query_doc() -> tuple[MeshDocument, dict[str, Element]]:
    doc = new_doc()
    e: dict[str, Element] = {}
    e["c1"] = doc.root.append_child("cell", {"kind": "code", "source": "print(1)"})
    e["o1"] = e["c1"].append_child("output", {"mime": "text/plain", "data": "Hello"})
    e["o2"] = e["c1"].append_child("output", {"mime": "image/png"})
    e["h1"] = doc.root.append_child("heading", {"label": "Intro", "level": 1})
    e["t1"] = e["h1"].append_child("text")
    e["c2"] = doc.root.append_child("cell", {"kind": "markdown", "source": "# hello"})
    e["o3"] = e["c2"].append_child("output", {"data": "x"})
    return doc, e


def test_get_elements_and_children_by_tag_name() -> None:
    doc, e = _query_doc()
    assert doc.root.get_elements_by_tag_name("output") == [e["o1"], e["o2"], e["o3"]]
    assert e["c2"].get_elements_by_tag_name("output") == [e["o3"]]
    assert doc.root.get_children_by_tag_name("cell") == [e["c1"], e["c2"]]
    assert doc.root.get_children_by_tag_name("output") == []
    assert doc.root.get_elements_by_tag_name("nothing") == []


def test_get_node_by_id_on_document_and_element() -> None:
    doc, e = _query_doc()
    for element in e.values():
        assert doc.get_node_by_id(element.id) is element
        assert doc.root.get_node_by_id(element.id) is element
    assert e["c1"].get_node_by_id(e["o2"].id) is e["o2"]
    assert e["c1"].get_node_by_id(e["c1"].id) is e["c1"]
    assert e["c1"].get_node_by_id(e["o3"].id) is None  # not under c1
    assert doc.get_node_by_id("nope") is None


def test_grep() -> None:
    doc, e = _query_doc()
    assert doc.root.grep("hello") == [e["c2"]]  # values
    assert doc.root.grep("hello", ignore_case=True) == [e["o1"], e["c2"]]
    assert doc.root.grep("^heading$") == [e["h1"]]  # tag names
    assert doc.root.grep("mime") == [e["o1"], e["o2"]]  # attribute names
    assert doc.root.grep("png", before=1) == [e["o1"], e["o2"]]
    assert doc.root.grep("Intro", before=1, after=1) == [e["c1"], e["h1"], e["c2"]]
    assert doc.root.grep(r"print\(1\)", after=5) == [e["c1"], e["h1"], e["c2"]]
    assert e["c1"].grep("image") == [e["o2"]]
    assert doc.root.grep("zzz") == []
    assert doc.root.grep(e["c1"].id) == []  # ids are not searched


# --- text ------------------------------------------------------------------------------------


def test_text_element_gets_one_rich_text_child() -> None:
    doc = new_doc()
    heading, text, node = heading_with_text(doc)
    assert node.parent is text and node.id == text.id
    node.insert(0, "Hello world")
    node.format(0, 5, {"bold": True})
    node.delete(5, 1)
    node.insert(5, "!", {"italic": True})
    assert node.delta == [
        {"insert": "Hello", "attributes": {"bold": True}},
        {"insert": "!", "attributes": {"italic": True}},
        {"insert": "world", "attributes": {}},
    ]
    assert node.text == "Hello!world" and len(node) == 11
    assert doc.to_json()["notebook"]["cells"][0] == {
        "heading": {"label": "h", "content": [{"text": {"runs": [{"text": {"delta": node.delta}}]}}]}
    }
    assert replica_of(doc).to_json() == doc.to_json()


def test_text_indices_count_characters_not_utf8_bytes() -> None:
    doc = new_doc()
    _, _, node = heading_with_text(doc)
    node.insert(0, "héllo😀x")
    assert len(node) == 7
    node.insert(2, "Z")
    assert node.text == "héZllo😀x"
    node.format(0, 2, {"bold": True})
    assert node.delta[0] == {"insert": "hé", "attributes": {"bold": True}}
    node.delete(6, 1)  # the emoji
    assert node.text == "héZllox"
    node.insert(len(node), "é")
    assert node.text == "héZlloxé"
    assert replica_of(doc).root.get_elements_by_tag_name("text")[0].get_children()[0].text == "héZlloxé"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda n: n.insert(-1, "x"), "index -1 is outside the text of length 3"),
        (lambda n: n.insert(4, "x"), "index 4 is outside"),
        (lambda n: n.delete(2, 2), r"range 2\+2 is outside the text of length 3"),
        (lambda n: n.delete(-1, 1), "is outside"),
        (lambda n: n.format(0, 4, {"b": True}), "is outside"),
        (lambda n: n.format(1, -1, {"b": True}), "is outside"),
    ],
)
def test_text_range_errors(edit: Callable[[TextNode], Any], message: str) -> None:
    doc = new_doc()
    _, _, node = heading_with_text(doc)
    node.insert(0, "abc")
    before = doc.get_state()
    with pytest.raises(DocumentError, match=message):
        edit(node)
    assert doc.get_state() == before


# --- events ----------------------------------------------------------------------------------


def test_on_handlers_fire_on_the_element_then_the_document() -> None:
    doc = new_doc()
    cell = doc.root.append_child("cell", {"kind": "code"})
    calls: list[tuple[str, str, Any]] = []
    for event in ("inserted", "deleted", "updated"):
        doc.on(event)(lambda *args, event=event: calls.append(("doc", event, args)))
        doc.root.on(event)(lambda *args, event=event: calls.append(("root", event, args)))
        cell.on(event)(lambda *args, event=event: calls.append(("cell", event, args)))

    output = cell.append_child("output")
    assert calls == [("cell", "inserted", (output,)), ("doc", "inserted", (output,))]
    calls.clear()
    cell["source"] = "s"
    assert calls == [("cell", "updated", (cell, "source")), ("doc", "updated", (cell, "source"))]
    calls.clear()
    output.delete()
    assert calls == [("cell", "deleted", (output,)), ("doc", "deleted", (output,))]
    calls.clear()
    cell.delete()
    assert calls == [("root", "deleted", (cell,)), ("doc", "deleted", (cell,))]


def test_nested_inserts_fire_for_every_node_and_text_edits_fire_no_on_event() -> None:
    doc = new_doc()
    inserted: list[Any] = []
    doc.on("inserted")(inserted.append)
    cell = doc.root.append_json({"cell": {"outputs": [{"output": {}}, {"output": {}}]}})
    assert inserted == [cell, *cell.get_children()]
    inserted.clear()
    _, text, node = heading_with_text(doc)
    assert node in inserted and text in inserted
    fired: list[Any] = []
    for event in ("inserted", "deleted", "updated"):
        doc.on(event)(lambda *a: fired.append(a))
    batches: list[list[DocumentChange]] = []
    doc.observe(batches.append)
    node.insert(0, "abc")
    assert fired == []
    assert [(c.kind, c.node, c.local) for c in batches[0]] == [("text", node, True)]


def test_off_and_unsubscribe() -> None:
    doc = new_doc()
    seen: list[Any] = []
    handler = doc.on("inserted")(seen.append)
    batches: list[Any] = []
    unsubscribe = doc.observe(batches.append)
    doc.root.append_child("cell")
    doc.off("inserted", handler)
    unsubscribe()
    doc.root.append_child("cell")
    assert len(seen) == 1 and len(batches) == 1


def test_remote_changes_fire_the_same_events_marked_not_local() -> None:
    writer = new_doc()
    reader = replica_of(writer)
    batches: list[list[DocumentChange]] = []
    reader.observe(batches.append)
    writer.observe_updates(lambda update: reader.apply_update(update))
    inserted: list[Any] = []
    updated: list[Any] = []
    deleted: list[Any] = []
    reader.on("inserted")(inserted.append)
    reader.on("updated")(lambda element, name: updated.append((element.id, name)))
    reader.on("deleted")(deleted.append)

    cell = writer.root.append_child("cell", {"kind": "code"})
    (remote_cell,) = inserted
    assert isinstance(remote_cell, Element) and remote_cell.id == cell.id and remote_cell.doc is reader
    cell["source"] = "x"
    assert updated == [(cell.id, "source")]
    cell.remove_attribute("source")
    assert updated == [(cell.id, "source"), (cell.id, "source")]
    removal = batches[-1][0]
    assert removal.kind == "updated" and removal.value is None and removal.name == "source"
    cell.delete()
    assert deleted == [remote_cell]
    assert all(not change.local for batch in batches for change in batch)
    assert [batch[0].kind for batch in batches] == ["inserted", "updated", "updated", "deleted"]


def test_local_changes_are_marked_local() -> None:
    doc = new_doc()
    batches: list[list[DocumentChange]] = []
    doc.observe(batches.append)
    cell = doc.root.append_child("cell")
    cell["source"] = "s"
    cell.delete()
    kinds = [(c.kind, c.local) for batch in batches for c in batch]
    assert kinds == [("inserted", True), ("updated", True), ("deleted", True)]
    update_change = batches[1][0]
    assert update_change.node is cell and update_change.parent is doc.root and update_change.value == "s"


def test_observe_updates_reports_local_transactions_only() -> None:
    doc = new_doc()
    peer = new_doc()
    local: list[bytes] = []
    unsubscribe = doc.observe_updates(local.append)
    peer.root.append_child("cell", {"source": "from peer"})
    assert doc.apply_update(peer.get_state()) == []
    assert local == []
    cell = doc.root.append_child("heading", {"label": "mine"})
    cell["level"] = 2
    assert len(local) == 2
    for update in local:
        assert peer.apply_update(update) == []
    assert peer.to_json(True) == doc.to_json(True)
    unsubscribe()
    doc.root.append_child("cell")
    assert len(local) == 2


# --- integration checks: foreign updates (plain pycrdt) ------------------------------------------


def yjs_peer() -> Doc:
    """A plain pycrdt document with a client id in 32 bits, as Yjs peers have."""
    return Doc(client_id=random.getrandbits(32))


def foreign(doc: MeshDocument, edit: Callable[[XmlFragment], Any]) -> bytes:
    """The update a plain pycrdt peer that knows `doc` makes with `edit`."""
    peer = yjs_peer()
    peer.apply_update(doc.get_state())
    edit(peer.get("xml", type=XmlFragment))
    return peer.get_update(doc.get_state_vector())


def _base() -> MeshDocument:
    doc = new_doc()
    cell = doc.root.append_child("cell", {"kind": "code"})
    heading = doc.root.append_child("heading", {"label": "h"})
    heading.append_child("text")
    assert cell.id
    return doc


def _new_id() -> str:
    return str(uuid.uuid4())


def _nth(fragment: XmlFragment, index: int) -> XmlElement:
    child = fragment.children[index]
    assert isinstance(child, XmlElement)
    return child


# name: (edit, the violation it brings, the violation a replica loading the result reports
# (None when the result alone is valid: a changed `$id` is only wrong as a change)).
FOREIGN_EDITS: dict[str, tuple[Callable[[XmlFragment], Any], str, str | None]] = {
    "unknown tag": (
        lambda f: f.children.append(XmlElement("ghost", {"$id": _new_id()})),
        "'ghost' is not an element type",
        "'ghost' is not an element type",
    ),
    "tag not allowed under its parent": (
        lambda f: f.children.append(XmlElement("output", {"$id": _new_id()})),
        "'output' is not allowed as a child of 'notebook'",
        "'output' is not allowed as a child of 'notebook'",
    ),
    "tag under an element without child property": (
        lambda f: _nth(f, 0).children.append(XmlElement("output", {"$id": _new_id()}, [XmlElement("output", {"$id": _new_id()})])),
        "'output' is not allowed as a child of 'output'",
        "'output' is not allowed as a child of 'output'",
    ),
    "element without $id": (
        lambda f: f.children.append(XmlElement("cell", {"kind": "code"})),
        "a 'cell' element without a string '$id'",
        "a 'cell' element without a string '$id'",
    ),
    "element with a non-string $id": (
        lambda f: f.children.append(XmlElement("cell", {"$id": 5})),
        "without a string '$id'",
        "without a string '$id'",
    ),
    "duplicate $id": (
        lambda f: f.children.append(XmlElement("cell", {"$id": _nth(f, 0).attributes["$id"]})),
        "duplicate element id",
        "duplicate element id",
    ),
    "undeclared attribute on a new element": (
        lambda f: f.children.append(XmlElement("cell", {"$id": _new_id(), "colour": "red"})),
        "'colour' is not a property of 'cell'",
        "'colour' is not a property of 'cell'",
    ),
    "undeclared attribute on an existing element": (
        lambda f: _nth(f, 0).attributes.__setitem__("colour", "red"),
        "'colour' is not a property of 'cell'",
        "'colour' is not a property of 'cell'",
    ),
    "wrongly typed value": (
        lambda f: _nth(f, 0).attributes.__setitem__("order", "first"),
        "cell.order: 'first' is not a number",
        "cell.order: 'first' is not a number",
    ),
    "value outside the enum": (
        lambda f: f.children.append(XmlElement("cell", {"$id": _new_id(), "kind": "prose"})),
        "cell.kind: 'prose' is not a string",
        "cell.kind: 'prose' is not a string",
    ),
    "$id changed": (
        lambda f: _nth(f, 0).attributes.__setitem__("$id", _new_id()),
        "the '$id' of 'cell' changed",
        None,
    ),
    "$id removed": (
        lambda f: _nth(f, 0).attributes.__delitem__("$id"),
        "the '$id' of 'cell' changed",
        "a 'cell' element without a string '$id'",
    ),
    "text under a non-text element": (
        lambda f: _nth(f, 0).children.append(XmlText("loose")),
        "rich text inside 'cell'",
        "rich text inside 'cell'",
    ),
    "text at the root": (
        lambda f: f.children.append(XmlText("loose")),
        "rich text inside 'notebook'",
        "rich text inside 'notebook'",
    ),
}


@pytest.mark.parametrize("name", list(FOREIGN_EDITS))
def test_foreign_update_breaking_the_schema_is_reported(name: str) -> None:
    edit, message, on_load = FOREIGN_EDITS[name]
    doc = _base()
    update = foreign(doc, edit)
    violations = doc.apply_update(update)
    assert any(message in v for v in violations), violations
    if on_load is None:
        assert MeshDocument(schema=SCHEMA, update=doc.get_state()).to_json() == doc.to_json()
        return
    with pytest.raises(SchemaViolation) as caught:
        MeshDocument(schema=SCHEMA, update=doc.get_state())
    assert any(on_load in v for v in caught.value.violations)


def test_root_attributes_are_a_violation() -> None:
    doc = _base()
    peer = yjs_peer()
    # A map entry on the root type, as a JS peer writes with a root Y.XmlElement's setAttribute.
    peer.get("xml", type=Map)["title"] = "T"
    violations = doc.apply_update(peer.get_update())
    assert violations == ["attribute 'title' written on the root"]
    assert "title" not in doc.to_json()["notebook"]


def test_another_root_type_is_a_violation_reported_once() -> None:
    doc = _base()
    peer = yjs_peer()
    peer["meta"] = Map({"a": 1})
    violations = doc.apply_update(peer.get_update())
    assert violations == ["shared type 'meta' is not part of a MeshAgent document"]
    # Later, valid updates are not blamed for it.
    other = new_doc()
    other.root.append_child("cell")
    assert doc.apply_update(other.get_state()) == []


def test_xml_root_written_as_another_type_is_a_violation() -> None:
    doc = new_doc()
    peer = yjs_peer()
    peer.get("xml", type=Array).extend(["a", 1])
    violations = doc.apply_update(peer.get_update())
    assert violations and all("is not a document node" in v for v in violations)
    assert doc.to_json() == {"notebook": {"cells": []}}


def test_valid_foreign_updates_integrate_without_violations() -> None:
    doc = _base()
    update = foreign(
        doc,
        lambda f: (
            f.children.append(XmlElement("cell", {"$id": _new_id(), "kind": "markdown", "order": 3, "source": None})),
            _nth(f, 0).attributes.__setitem__("outputs", "[stale copy]"),  # quirk b is tolerated
            _nth(f, 0).attributes.__delitem__("kind"),
            _nth(f, 1).children[0].children[0].insert(0, "text"),  # type: ignore[union-attr]
        ),
    )
    assert doc.apply_update(update) == []
    assert doc.to_json()["notebook"]["cells"][0] == {"cell": {"outputs": []}}
    assert doc.to_json()["notebook"]["cells"][2] == {"cell": {"kind": "markdown", "order": 3, "source": None, "outputs": []}}


def test_removing_an_undeclared_attribute_is_not_a_violation() -> None:
    doc = _base()
    assert doc.apply_update(foreign(doc, lambda f: _nth(f, 0).attributes.__setitem__("colour", "red")))
    assert doc.apply_update(foreign(doc, lambda f: _nth(f, 0).attributes.__delitem__("colour"))) == []


def test_an_update_from_a_client_id_wider_than_32_bits_is_a_violation() -> None:
    doc = _base()
    peer = Doc(client_id=2**40 + 5)
    peer.apply_update(doc.get_state())
    peer.get("xml", type=XmlFragment).children.append(XmlElement("cell", {"$id": _new_id()}))
    violations = doc.apply_update(peer.get_update(doc.get_state_vector()))
    assert violations == [f"client id {2**40 + 5} does not fit in 32 bits, as Yjs requires"]


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x00", b"garbage", b"\xff" * 12, b"\x01\x01\x05", encode_update(b"\x01\x02")],
)
def test_garbage_is_an_invalid_update_and_changes_nothing(garbage: bytes) -> None:
    doc = _base()
    before_json = doc.to_json(include_ids=True)
    before_state = doc.get_state()
    batches: list[Any] = []
    doc.observe(batches.append)
    with pytest.raises(InvalidUpdate):
        doc.apply_update(garbage)
    assert doc.to_json(include_ids=True) == before_json
    assert doc.get_state() == before_state
    assert batches == []
    doc.root.append_child("cell")  # still usable
    assert len(cells(doc)) == 3


def test_construction_from_a_breaking_update_raises_schema_violation() -> None:
    doc = new_doc()
    update = foreign(doc, lambda f: f.children.append(XmlElement("ghost", {"$id": "x"})))
    with pytest.raises(SchemaViolation, match="'ghost' is not an element type") as caught:
        MeshDocument(schema=SCHEMA, update=update)
    assert isinstance(caught.value, InvalidUpdate)
    with pytest.raises(InvalidUpdate):
        MeshDocument(schema=SCHEMA, update=b"nonsense")


def test_base64_helpers() -> None:
    doc = _base()
    state = doc.get_state()
    assert decode_update(encode_update(state)) == state
    assert decode_update(encode_update(state).decode("ascii")) == state
    for bad in (b"AQ=", b"not base64!", "AA==\n"):
        with pytest.raises(InvalidUpdate, match="not base64"):
            decode_update(bad)


# --- updates out of order ----------------------------------------------------------------


def _peer_updates(doc: MeshDocument, client_id: int, *edits: Callable[[XmlFragment], Any]) -> list[bytes]:
    """One update per edit, made by a plain pycrdt peer that starts from `doc`'s state."""
    peer = Doc(client_id=client_id)
    peer.apply_update(doc.get_state())
    updates: list[bytes] = []
    peer.observe(lambda event: updates.append(event.update))
    for edit in edits:
        edit(peer.get("xml", type=XmlFragment))
    return updates


def test_an_update_before_the_one_it_follows_is_held_back_until_that_arrives() -> None:
    doc = _base()
    heading_index = 1
    first, second = _peer_updates(
        doc,
        4001,
        lambda f: f.children.append(XmlElement("cell", {"$id": "c-late"})),
        # Inserted at the start of a known element, so yrs would integrate it at once.
        lambda f: _nth(f, heading_index).children[0].children.insert(0, XmlElement("text", {"$id": "t-new"}, [XmlText()])),  # type: ignore[union-attr]
    )
    batches: list[list[DocumentChange]] = []
    doc.observe(batches.append)
    before = doc.to_json(include_ids=True)
    assert doc.apply_update(second) == []
    assert doc.incomplete and batches == [] and doc.to_json(include_ids=True) == before
    assert doc.get_node_by_id("t-new") is None
    # Edits meanwhile are fine (the held items are not in the document yet).
    local = doc.root.append_child("cell", {"source": "meanwhile"})
    assert doc.apply_update(first) == []
    assert not doc.incomplete
    assert doc.get_node_by_id("c-late") is not None and doc.get_node_by_id("t-new") is not None
    inserted = [c.node.id for batch in batches for c in batch if c.kind == "inserted" and isinstance(c.node, Element)]
    assert local.id in inserted and "c-late" in inserted and "t-new" in inserted
    new_text = doc.get_node_by_id("t-new")
    assert new_text is not None and new_text.parent is not None and new_text.parent.tag_name == "text"
    # A local edit inside an element that arrived out of order is seen like any other.
    new_text.append_child("text")
    assert len(new_text.get_children()) == 2
    fresh = replica_of(doc)
    assert fresh.to_json(include_ids=True) == doc.to_json(include_ids=True)


def test_held_items_another_clients_update_depends_on_do_not_deadlock() -> None:
    """p2 (held: p1 is missing) is the origin of q1; q1 waits in yrs for p2, and p2 may be
    integrated as soon as p1 arrives, which then lets q1 in."""
    doc = _base()
    p1, p2 = _peer_updates(
        doc,
        5001,
        lambda f: f.children.append(XmlElement("cell", {"$id": "p1"})),
        lambda f: f.children.append(XmlElement("cell", {"$id": "p2"})),
    )
    q_base = new_doc()
    q_base.apply_update(doc.get_state())
    q_base.apply_update(p1)
    q_base.apply_update(p2)
    (q1,) = _peer_updates(q_base, 5002, lambda f: f.children.append(XmlElement("cell", {"$id": "q1"})))
    merged_late = q_base.get_state()  # everything, as one update
    assert doc.apply_update(p2) == [] and doc.incomplete
    assert doc.apply_update(q1) == []
    assert doc.get_node_by_id("q1") is None
    assert doc.apply_update(p1) == []
    assert not doc.incomplete
    assert [c.id for c in cells(doc)][-3:] == ["p1", "p2", "q1"]
    assert doc.apply_update(merged_late) == []
    assert replica_of(doc).to_json(True) == doc.to_json(True)


# --- listeners run after the transaction ---------------------------------------------------


def test_a_handler_may_edit_the_document() -> None:
    doc = new_doc()
    peer = new_doc()
    doc.observe_updates(lambda update: peer.apply_update(update))

    seen: list[str] = []

    @doc.on("inserted")
    def on_cell(node: Any) -> None:
        if isinstance(node, Element) and node.tag_name == "cell":
            seen.append(node.id)
            node.append_child("output", {"mime": "auto"})

    cell = doc.root.append_child("cell")
    assert seen == [cell.id]
    assert [o.get_attribute("mime") for o in cell.get_children()] == ["auto"]  # type: ignore[union-attr]
    assert peer.to_json(True) == doc.to_json(True)


def test_a_handler_error_comes_out_as_itself_after_the_edit() -> None:
    doc = new_doc()
    sent: list[bytes] = []
    doc.observe_updates(sent.append)

    @doc.on("updated")
    def fail(element: Element, name: str) -> None:
        raise LookupError(f"handler failed on {name}")

    cell = doc.root.append_child("cell")
    with pytest.raises(LookupError, match="handler failed on source"):
        cell["source"] = "x"
    assert cell["source"] == "x" and len(sent) == 2  # the edit happened and went out
    doc.off("updated", fail)
    cell["source"] = "y"
    assert len(sent) == 3


def test_an_error_inside_a_transaction_still_sends_what_was_done() -> None:
    doc = new_doc()
    peer = new_doc()
    doc.observe_updates(lambda update: peer.apply_update(update))
    inserted: list[Any] = []
    doc.on("inserted")(inserted.append)
    with pytest.raises(DocumentError):
        with doc.transaction():
            kept = doc.root.append_child("cell")
            doc.root.append_child("output")  # not allowed here
    assert inserted == [kept]
    assert peer.to_json(True) == doc.to_json(True) and len(cells(peer)) == 1
    doc.root.append_child("cell")  # the document is usable
    assert len(cells(peer)) == 2


def test_update_clients_sees_clients_whose_items_do_not_start_at_clock_0() -> None:
    doc = _base()
    first, second = _peer_updates(
        doc,
        6001,
        lambda f: f.children.append(XmlElement("cell", {"$id": "a"})),
        lambda f: f.children.append(XmlElement("cell", {"$id": "b"})),
    )
    assert update_clients(first) == {6001: 2}
    assert update_clients(second) == {6001: 4}
    assert struct_ranges(second) == {6001: (2, 4, False)}
    assert struct_ranges(b"\x05\x01") is None
    # A wide client id is found also when its items do not start at 0.
    wide = Doc(client_id=2**40 + 1)
    wide.apply_update(doc.get_state())
    wide.get("xml", type=XmlFragment).children.append(XmlElement("cell", {"$id": "w1"}))
    vector = wide.get_state()
    wide.get("xml", type=XmlFragment).children.append(XmlElement("cell", {"$id": "w2"}))
    later = wide.get_update(vector)
    assert 2**40 + 1 in update_clients(later)
    violations = doc.apply_update(later)
    assert violations == [f"client id {2**40 + 1} does not fit in 32 bits, as Yjs requires"]


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64, -(2**80)])
def test_integers_wider_than_64_bits_are_refused_before_they_reach_pycrdt(value: int) -> None:
    doc = new_doc()
    with pytest.raises(DocumentError):
        doc.root.append_child("cell", {"kind": "code", "source": "x", "order": value})
    cell = doc.root.append_child("cell", {"kind": "code", "source": "x", "order": 2**63 - 1})
    with pytest.raises(DocumentError):
        cell["order"] = value
    assert cell["order"] == 2**63 - 1
    with pytest.raises(DocumentError):
        new_doc(initial_json={"notebook": {"cells": [{"cell": {"kind": "code", "source": "x", "order": value}}]}})
    cell["order"] = -(2**63)
    assert cell["order"] == -(2**63)


def test_strings_that_are_not_unicode_text_are_refused() -> None:
    doc = new_doc()
    cell = doc.root.append_child("cell", {"kind": "code", "source": "caf\u00e9", "order": 1})
    with pytest.raises(DocumentError):
        cell["source"] = "lone \ud800 surrogate"
    assert cell["source"] == "caf\u00e9"
