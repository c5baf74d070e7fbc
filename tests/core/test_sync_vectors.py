"""Conformance with the official 0.56 runtime (`sync_vectors` of `meshagent_core.testing.vectors`, protocol/documents.md §6).

As `meta.how_to_compare` says: update bytes are never compared across implementations.
Updates are applied and the decoded tree under `xml` (tags, attributes with `$id`, child
order, text deltas) or the document JSON is compared; numbers numerically; an attribute
named after its element's child property (quirk b) is ignored.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import msgspec
import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from meshagent_core import JsonStyle, encode_message, pack_message
from meshagent_core.content import BinaryContent, ControlContent
from meshagent_core.messages import TOOL_CALL_REQUEST_CHUNK, ToolCallChunk
from meshagent_core.session.base import decode_chunk_message
from meshagent_core.sync import Element, MeshDocument, MeshSchema, TextNode
from meshagent_core.testing import vectors
from meshagent_core.toolkits.sync import (
    CreateInput,
    DescribeInput,
    RelayHeaders,
    StartHeaders,
    StateHeaders,
    SyncHeaders,
    headers_to_builtins,
    normalize_path,
    request_headers,
    response_headers,
)

VECTORS = vectors.load("sync_vectors")
SCHEMA = MeshSchema.from_json(VECTORS["schema"])
FROM_JSON = VECTORS["from_json"]
INCREMENTAL = VECTORS["incremental"]


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def xml_tree(ydoc: Doc, schema: MeshSchema = SCHEMA) -> list[dict[str, Any]]:
    """The tree under `xml` read with plain pycrdt, in the vectors' `xml_tree` form, without
    the quirk-b attribute. Independent of the document model's mirror."""

    def node(child: Any) -> dict[str, Any]:
        if isinstance(child, XmlText):
            return {"xmltext": [{"insert": text, "attributes": dict(attrs or {})} for text, attrs in child.diff()]}
        assert isinstance(child, XmlElement)
        tag = child.tag
        attributes = dict(child.attributes)
        element_type = schema.elements_by_tag_name.get(tag or "")
        if element_type is not None and element_type.child_property_name in attributes:
            del attributes[element_type.child_property_name]
        return {"element": tag, "attributes": attributes, "children": [node(c) for c in child.children]}

    return [node(c) for c in ydoc.get("xml", type=XmlFragment).children]


def without_quirk_b(tree: list[dict[str, Any]], schema: MeshSchema = SCHEMA) -> list[dict[str, Any]]:
    out = copy.deepcopy(tree)

    def strip(node: dict[str, Any]) -> None:
        if "element" not in node:
            return
        child_property = schema.element(node["element"]).child_property_name
        node["attributes"].pop(child_property, None)
        for child in node["children"]:
            strip(child)

    for node in out:
        strip(node)
    return out


def ids_replaced(tree: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tree with `$id` values replaced by their order of appearance (ours are random)."""
    out = copy.deepcopy(tree)
    seen: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "element" not in node:
            return
        if "$id" in node["attributes"]:
            seen.append(node["attributes"]["$id"])
            node["attributes"]["$id"] = len(seen)
        for child in node["children"]:
            walk(child)

    for node in out:
        walk(node)
    return out


def document_at(*updates: str) -> MeshDocument:
    doc = MeshDocument(schema=SCHEMA)
    for update in updates:
        assert doc.apply_update(b64(update)) == []
    return doc


def without_root_attributes(document_json: dict[str, Any]) -> dict[str, Any]:
    """protocol/documents.md §3.3 quirk a: the official writer keeps root attributes only in its local model."""
    ((tag, body),) = document_json.items()
    child_property = SCHEMA.element(tag).child_property_name
    return {tag: {child_property: body[child_property]}}


def test_every_section_is_covered() -> None:
    assert set(VECTORS) == {
        "meta", "schema", "schema_from_json_to_json_roundtrip_equal", "schema_notes", "schema_roundtrip_json",
        "from_json", "incremental", "delete", "text", "empty", "wire", "hazards",
    }  # fmt: skip


# --- schema (more in test_sync_schema.py) ----------------------------------------------------


def test_schema_writes_back_exactly_and_reads_the_lossy_official_form() -> None:
    assert json.dumps(MeshSchema.from_json(VECTORS["schema"]).to_json()) == json.dumps(VECTORS["schema"])
    lossy = VECTORS["schema_roundtrip_json"]
    assert MeshSchema.from_json(lossy).to_json() == lossy
    assert MeshSchema.from_json(lossy) != SCHEMA  # only the enum differs
    assert SCHEMA.element("cell").value_property("kind").enum == ["code", "markdown"]  # type: ignore[union-attr]


# --- from_json ---------------------------------------------------------------------------------


def test_from_json_full_state_decodes_to_the_vector_tree_and_json() -> None:
    doc = document_at(FROM_JSON["full_state_update_b64"])
    assert xml_tree(doc.ydoc) == without_quirk_b(FROM_JSON["xml_tree"])
    assert doc.to_json() == FROM_JSON["document_json"]
    assert doc.to_json(include_ids=True) == FROM_JSON["document_json_with_ids"]
    assert base64.b64encode(doc.get_state_vector()).decode() == FROM_JSON["state_vector_b64"]
    assert doc.get_state_vector() == b64(FROM_JSON["state_vector_b64"])
    # Readers let the child list win over the stale attribute (quirk b): it is in the CRDT...
    cell = doc.ydoc.get("xml", type=XmlFragment).children[1]
    assert isinstance(cell, XmlElement) and isinstance(cell.attributes.get("outputs"), list)
    # ... but the element reads as its children.
    (output,) = doc.root.get_elements_by_tag_name("output")
    assert output.id == "00000000-0000-4000-8000-000000000003" and output["mime"] == "text/plain"
    assert doc.get_node_by_id("00000000-0000-4000-8000-000000000004").tag_name == "heading"  # type: ignore[union-attr]


def test_from_json_update_list_applied_one_by_one() -> None:
    updates = FROM_JSON["updates_emitted_while_building_b64"]
    assert len(updates) == FROM_JSON["updates_emitted_count"] == 15
    doc = document_at(*updates)
    assert doc.to_json(include_ids=True) == FROM_JSON["document_json_with_ids"]
    assert xml_tree(doc.ydoc) == without_quirk_b(FROM_JSON["xml_tree"])
    assert doc.get_state_vector() == b64(FROM_JSON["state_vector_b64"])


@pytest.mark.parametrize("order", ["reverse", "forward", "duplicated"])
def test_from_json_state_delivered_in_pieces_out_of_order(order: str) -> None:
    """The full state cut into the updates a peer at clock k lacks (k = 0..18), delivered so
    that most arrive before what they depend on (pending structs) or twice."""
    source = Doc()
    source.apply_update(b64(FROM_JSON["full_state_update_b64"]))
    (client,) = json.loads(json.dumps(FROM_JSON["state_vector_decoded"]))
    clock = FROM_JSON["state_vector_decoded"][client]
    pieces = [source.get_update(_state_vector(int(client), k)) for k in range(clock)]
    if order == "reverse":
        pieces.reverse()
    elif order == "duplicated":
        pieces = [p for piece in reversed(pieces) for p in (piece, piece)]
    doc = MeshDocument(schema=SCHEMA)
    for piece in pieces:
        assert doc.apply_update(piece) == []
    assert doc.to_json(include_ids=True) == FROM_JSON["document_json_with_ids"]
    assert xml_tree(doc.ydoc) == without_quirk_b(FROM_JSON["xml_tree"])


def _state_vector(client: int, clock: int) -> bytes:
    def varuint(n: int) -> bytes:
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    return b"\x01" + varuint(client) + varuint(clock) if clock else b"\x00"


def test_building_the_initial_json_with_our_model_gives_the_same_document() -> None:
    ours = MeshDocument(schema=SCHEMA, initial_json=FROM_JSON["initial_json"])
    assert ours.to_json() == FROM_JSON["document_json"]
    # The official writer's local JSON differs only by the root attribute it kept (quirk a).
    assert ours.to_json() == without_root_attributes(FROM_JSON["writer_local_json"])
    fresh = MeshDocument(schema=SCHEMA, update=ours.get_state())
    assert fresh.to_json(include_ids=True) == ours.to_json(include_ids=True)
    # Same tree as the official writer's once ids are renumbered; no quirk-b attribute written.
    assert ids_replaced(xml_tree(ours.ydoc)) == ids_replaced(without_quirk_b(FROM_JSON["xml_tree"]))
    cell = ours.ydoc.get("xml", type=XmlFragment).children[1]
    assert isinstance(cell, XmlElement) and "outputs" not in dict(cell.attributes)
    assert list(ours.ydoc.keys()) == ["xml"]


# --- incremental -----------------------------------------------------------------------------


def test_incremental_steps_applied_one_by_one() -> None:
    assert INCREMENTAL["base"] == "from_json.full_state_update_b64"
    doc = document_at(FROM_JSON["full_state_update_b64"])
    assert doc.get_state_vector() == b64(INCREMENTAL["base_state_vector_b64"])
    updated: list[tuple[str | None, str]] = []
    inserted: list[Any] = []
    doc.on("updated")(lambda element, name: updated.append((element.id, name)))
    doc.on("inserted")(inserted.append)
    for step in INCREMENTAL["steps"]:
        for update in step["updates_b64"]:
            assert doc.apply_update(b64(update)) == []
    assert updated[0] == ("00000000-0000-4000-8000-000000000001", "source")
    assert [n.id for n in inserted] == ["00000000-0000-4000-8000-000000000005"]
    assert xml_tree(doc.ydoc) == without_quirk_b(INCREMENTAL["xml_tree_after"])
    assert doc.to_json() == INCREMENTAL["document_json_after"]
    assert doc.to_json(include_ids=True) == INCREMENTAL["document_json_with_ids_after"]


def test_incremental_diff_since_base_applied_to_the_base() -> None:
    doc = document_at(FROM_JSON["full_state_update_b64"], INCREMENTAL["diff_since_base_b64"])
    assert xml_tree(doc.ydoc) == without_quirk_b(INCREMENTAL["xml_tree_after"])
    assert doc.to_json(include_ids=True) == INCREMENTAL["document_json_with_ids_after"]


def test_our_diff_since_the_base_vector_brings_a_base_replica_to_the_after_state() -> None:
    after = document_at(FROM_JSON["full_state_update_b64"], *INCREMENTAL["steps"][0]["updates_b64"],
                        *INCREMENTAL["steps"][1]["updates_b64"])  # fmt: skip
    diff = after.get_state(b64(INCREMENTAL["base_state_vector_b64"]))
    assert len(diff) < len(after.get_state())
    base = document_at(FROM_JSON["full_state_update_b64"])
    assert base.apply_update(diff) == []
    assert xml_tree(base.ydoc) == without_quirk_b(INCREMENTAL["xml_tree_after"])
    assert base.to_json(include_ids=True) == INCREMENTAL["document_json_with_ids_after"]
    # Nothing is missing any more: the diff against its own vector (only a delete set) changes nothing.
    batches: list[Any] = []
    base.observe(batches.append)
    vector = base.get_state_vector()
    assert base.apply_update(after.get_state(after.get_state_vector())) == []
    assert batches == [] and base.get_state_vector() == vector


def test_the_incremental_steps_made_with_our_api() -> None:
    doc = document_at(FROM_JSON["full_state_update_b64"])
    peer = document_at(FROM_JSON["full_state_update_b64"])
    doc.observe_updates(lambda update: peer.apply_update(update))
    set_step, append_step = INCREMENTAL["steps"]
    target = doc.get_node_by_id(set_step["target_id"])
    assert target is not None
    target.set_attribute(set_step["name"], set_step["value"])
    assert append_step["parent"] == "root"
    new = doc.root.append_child(append_step["tag_name"], append_step["attributes"])
    expected = json.loads(json.dumps(INCREMENTAL["document_json_with_ids_after"]).replace(
        "00000000-0000-4000-8000-000000000005", new.id))  # fmt: skip
    assert doc.to_json(include_ids=True) == expected
    assert peer.to_json(include_ids=True) == expected


# --- delete ----------------------------------------------------------------------------------


def test_delete_update_applied_to_the_state_after_incremental() -> None:
    doc = document_at(FROM_JSON["full_state_update_b64"], INCREMENTAL["diff_since_base_b64"])
    heading = doc.get_node_by_id(VECTORS["delete"]["op"]["target_id"])
    assert heading is not None and heading.tag_name == "heading"
    deleted: list[Any] = []
    doc.on("deleted")(deleted.append)
    for update in VECTORS["delete"]["updates_b64"]:
        assert doc.apply_update(b64(update)) == []
    assert deleted == [heading]
    assert doc.get_node_by_id(heading.id) is None  # type: ignore[arg-type]
    assert doc.to_json() == without_root_attributes(VECTORS["delete"]["document_json_after"])


def test_delete_made_with_our_api() -> None:
    doc = document_at(FROM_JSON["full_state_update_b64"], INCREMENTAL["diff_since_base_b64"])
    peer = document_at(FROM_JSON["full_state_update_b64"], INCREMENTAL["diff_since_base_b64"])
    updates: list[bytes] = []
    doc.observe_updates(updates.append)
    heading = doc.get_node_by_id(VECTORS["delete"]["op"]["target_id"])
    assert heading is not None
    vector_before = doc.get_state_vector()
    heading.delete()
    (update,) = updates
    assert peer.apply_update(update) == []
    expected = without_root_attributes(VECTORS["delete"]["document_json_after"])
    assert doc.to_json() == peer.to_json() == expected
    # Like the official one, a delete brings no new struct: the state vector does not move.
    assert doc.get_state_vector() == peer.get_state_vector() == vector_before


# --- text ------------------------------------------------------------------------------------


def _text_node(doc: MeshDocument) -> TextNode:
    (text,) = doc.root.get_elements_by_tag_name("text")
    (node,) = text.get_children()
    assert isinstance(node, TextNode)
    return node


def test_text_full_state_has_the_real_delta() -> None:
    text = VECTORS["text"]
    doc = document_at(text["full_state_update_b64"])
    assert xml_tree(doc.ydoc) == without_quirk_b(text["xml_tree"])
    (xmltext,) = text["xml_tree"][0]["children"][0]["children"]
    assert _text_node(doc).delta == xmltext["xmltext"]
    # Our delta is the live one, not the official Python client's flattened rendering (quirk c).
    assert doc.to_json() == text["live_document_json"]
    assert doc.to_json() != text["fresh_document_json_official_python"]


def test_text_updates_applied_one_by_one() -> None:
    text = VECTORS["text"]
    doc = MeshDocument(schema=SCHEMA)
    for update in text["updates_b64"]:
        assert doc.apply_update(b64(update)) == []
    assert xml_tree(doc.ydoc) == without_quirk_b(text["xml_tree"])
    assert doc.to_json() == text["live_document_json"]


def test_text_ops_made_with_our_api() -> None:
    doc = MeshDocument(schema=SCHEMA)
    heading: Element | None = None
    text_element: Element | None = None
    for op in VECTORS["text"]["ops"]:
        if op["op"] == "append_child" and op["parent"] == "root":
            heading = doc.root.append_child(op["tag_name"], op["attributes"])
        elif op["op"] == "append_child":
            assert heading is not None
            text_element = heading.append_child(op["tag_name"], op["attributes"])
        elif op["op"] == "text.insert":
            _text_node(doc).insert(op["index"], op["text"])
        else:
            assert op["op"] == "text.format"
            _text_node(doc).format(op["start"], op["length"], op["attributes"])
    assert text_element is not None
    assert doc.to_json() == VECTORS["text"]["live_document_json"]
    assert ids_replaced(xml_tree(doc.ydoc)) == ids_replaced(VECTORS["text"]["xml_tree"])
    fresh = MeshDocument(schema=SCHEMA, update=doc.get_state())
    assert fresh.to_json() == VECTORS["text"]["live_document_json"]


# --- empty -----------------------------------------------------------------------------------


def test_empty_document() -> None:
    doc = MeshDocument(schema=SCHEMA)
    assert doc.get_state() == b64(VECTORS["empty"]["full_state_update_b64"]) == b"\x00\x00"
    assert doc.get_state_vector() == b64(VECTORS["empty"]["state_vector_b64"]) == b"\x00"
    batches: list[Any] = []
    doc.observe(batches.append)
    assert doc.apply_update(b64(VECTORS["empty"]["full_state_update_b64"])) == []
    assert batches == [] and doc.to_json() == {"notebook": {"cells": []}}
    loaded = MeshDocument(schema=SCHEMA, update=b64(VECTORS["empty"]["full_state_update_b64"]))
    assert loaded.to_json() == doc.to_json()
    # The full state of a non-empty document is its diff against the empty state vector.
    full = document_at(FROM_JSON["full_state_update_b64"])
    assert full.get_state(b64(VECTORS["empty"]["state_vector_b64"])) == full.get_state()


# --- hazards ---------------------------------------------------------------------------------


def test_root_attribute_update_is_reported_and_not_shown() -> None:
    hazard = VECTORS["hazards"]["root_attribute_update"]
    doc = document_at(FROM_JSON["full_state_update_b64"])
    before = doc.to_json(include_ids=True)
    violations = doc.apply_update(b64(hazard["update_b64"]))
    assert violations == ["attribute 'title' written on the root"]
    assert doc.to_json(include_ids=True) == before
    with pytest.raises(ValueError, match="written on the root"):
        MeshDocument(schema=SCHEMA, update=doc.get_state())


# --- wire ------------------------------------------------------------------------------------


def test_envelope_example_decodes_and_is_reproduced_byte_exact() -> None:
    example = VECTORS["wire"]["envelope_example"]
    body = b64(example["body_b64"])
    assert int.from_bytes(body[:8], "big") == example["body_header_length"]
    assert body[8 : 8 + example["body_header_length"]].decode() == example["body_header_json"]
    header, chunk = decode_chunk_message(body)
    assert header.tool_call_id == "0123456789abcdef0123456789abcdef"
    assert isinstance(chunk, BinaryContent)
    assert chunk.data == example["body_payload_ascii"].encode("ascii")
    assert isinstance(request_headers(chunk.headers), SyncHeaders)
    assert chunk.data.decode() == INCREMENTAL["steps"][0]["updates_b64"][0]
    # What our client writes for that chunk: the same bytes, in the official Python JSON style.
    ours = BinaryContent(headers=headers_to_builtins(SyncHeaders()), data=chunk.data)
    packed = pack_message(ToolCallChunk(tool_call_id=header.tool_call_id, chunk=ours.header()), ours.data,
                          style=JsonStyle.PYTHON)  # fmt: skip
    assert packed == body
    assert example["message_type"] == TOOL_CALL_REQUEST_CHUNK
    frames = encode_message(7, TOOL_CALL_REQUEST_CHUNK, packed)
    assert [f.hex() for f in frames] == example["transport_frames_hex"]
    # The update it carries is the vector's set_attribute step.
    doc = document_at(FROM_JSON["full_state_update_b64"], chunk.data.decode())
    assert doc.get_node_by_id("00000000-0000-4000-8000-000000000001")["source"] == "# Hello"  # type: ignore[index]


TRANSCRIPT = VECTORS["wire"]["transcript"]["entries"]


def _chunks(direction: str) -> list[tuple[dict[str, Any], str]]:
    return [
        (e["header"]["chunk"], e["payload"])
        for e in TRANSCRIPT
        if e.get("direction") == direction and e.get("message_type", "").startswith("room.tool_call_")
        and e["message_type"].endswith("_chunk")
    ]  # fmt: skip


def test_transcript_request_chunk_headers_parse_and_are_written_identically() -> None:
    kinds = []
    for chunk, _ in _chunks("client->server"):
        if chunk["type"] != "binary":
            assert ControlContent(method="close", status_code=1000).header() == msgspec.convert(chunk, ControlContent)
            continue
        parsed = request_headers(chunk["headers"])
        kinds.append(type(parsed))
        assert json.dumps(headers_to_builtins(parsed)) == json.dumps(chunk["headers"])
    assert kinds.count(StartHeaders) == 2 and kinds.count(SyncHeaders) >= 4


def test_transcript_response_chunk_headers_parse_and_are_written_identically() -> None:
    kinds = []
    for chunk, _ in _chunks("server->client"):
        if chunk["type"] != "binary":
            continue
        parsed = response_headers(chunk["headers"])
        kinds.append(type(parsed))
        assert json.dumps(headers_to_builtins(parsed)) == json.dumps(chunk["headers"])
        if isinstance(parsed, StateHeaders):
            assert MeshSchema.from_json(parsed.schema).to_json() == parsed.schema
    assert kinds.count(StateHeaders) == 2 and kinds.count(RelayHeaders) >= 3


def test_transcript_tool_inputs_parse_and_are_written_identically() -> None:
    inputs = {
        e["header"]["tool"]: e["header"]["arguments"]["json"]
        for e in TRANSCRIPT
        if e.get("message_type") == "room.invoke_tool" and e["header"]["arguments"]["type"] == "json"
    }
    create = msgspec.convert(inputs["create"], CreateInput)
    assert json.dumps(headers_to_builtins(create)) == json.dumps(inputs["create"])
    describe = msgspec.convert(inputs["describe"], DescribeInput)
    assert json.dumps(headers_to_builtins(describe)) == json.dumps(inputs["describe"])
    assert create.path == "notes/a.doc" and normalize_path("/notes/a.doc") == create.path


def test_transcript_updates_replayed_on_a_server_replica_give_the_described_json() -> None:
    """Every update the two official clients sent, applied in order (echoes included): the
    result is what `describe` answered."""
    create = next(e for e in TRANSCRIPT if e.get("header", {}).get("tool") == "create")
    schema = MeshSchema.from_json(create["header"]["arguments"]["json"]["schema"])
    server = MeshDocument(schema=schema)
    applied = 0
    for chunk, payload in _chunks("client->server"):
        if chunk["type"] == "binary" and chunk["headers"]["kind"] == "sync" and payload:
            assert server.apply_update(base64.b64decode(payload)) == []
            applied += 1
    assert applied >= 4
    described = next(
        e["header"]["json"] for e in TRANSCRIPT
        if e.get("message_type") == "__response__" and e["header"].get("type") == "json"
    )  # fmt: skip
    assert server.to_json() == described


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("a", "a"), ("/a", "a"), ("./a", "a"), ("././a", "a"), ("//a", "a"), (".//a", "a"),
        ("/./a", "./a"), ("/.//./a", ".//./a"), ("/./", "./"), ("a/./b", "a/./b"),
        (".", ""), ("./", ""), ("/.", ""), ("./.", ""), ("", ""), ("..", ".."), ("./..", ".."), (".a", ".a"),
    ],
)  # fmt: skip
def test_normalize_path_matches_the_official_client(raw: str, normalised: str) -> None:
    """Cases checked against `_normalize_sync_path` of meshagent-api 0.56: all `./` first,
    then all `/` (so `/./a` keeps its `./`)."""
    assert normalize_path(raw) == normalised


def test_bad_chunk_headers_are_refused() -> None:
    for bad in ({"kind": "start"}, {"kind": "nope"}, {}, {"kind": "start", "path": 3}, "sync"):
        with pytest.raises(msgspec.ValidationError):
            request_headers(bad)
    for bad in ({"kind": "state", "path": "p"}, {"kind": "sync"}, {"kind": "start", "path": "p"}):
        with pytest.raises(msgspec.ValidationError):
            response_headers(bad)
