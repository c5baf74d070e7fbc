"""Replicas of one document editing concurrently (Hypothesis state machine).

Two to four replicas make random valid edits (append, insert, JSON subtrees, delete,
attributes, rich text; alone or grouped in transactions) and exchange their updates in any
order: per-update messages delivered out of order, twice, or late, and whole-state or
state-vector diffs. At every step each replica's structural mirror must agree with its CRDT
read independently (plain pycrdt, protocol/documents.md §3.4), its id index must match the tree, and the
tree rebuilt from its change events must match too; no update of a valid edit may ever be
reported as a violation. After everything is delivered, all replicas have the same JSON
(ids included), equal to a fresh replica built from `get_state()`.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from meshagent_core.sync import DocumentChange, DocumentError, Element, MeshDocument, MeshSchema, TextNode, ValueProperty
from meshagent_core.sync.document import decode_state_vector, encode_state_vector, struct_ranges
from meshagent_core.testing import vectors

VECTORS = vectors.load("sync_vectors")
SCHEMA = MeshSchema.from_json(VECTORS["schema"])

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=4)


def crdt_json(ydoc: Doc) -> dict[str, Any]:
    """The document JSON with ids, read straight from the CRDT (no mirror involved)."""

    def node(child: Any) -> dict[str, Any]:
        if isinstance(child, XmlText):
            return {"text": {"delta": [{"insert": t, "attributes": dict(a or {})} for t, a in child.diff()]}}
        assert isinstance(child, XmlElement)
        element_type = SCHEMA.element(child.tag or "")
        body = dict(child.attributes)
        if element_type.child_property_name is not None:
            body[element_type.child_property_name] = [node(c) for c in child.children]
        return {child.tag: body}

    root = SCHEMA.root
    children = ydoc.get("xml", type=XmlFragment).children
    return {root.tag_name: {root.child_property_name: [node(c) for c in children]}}


def crdt_parents(ydoc: Doc) -> dict[str, str | None]:
    """`$id` → parent `$id` (None under the root), read straight from the CRDT."""
    parents: dict[str, str | None] = {}

    def walk(ytype: Any, parent_id: str | None) -> None:
        for child in ytype.children:
            if isinstance(child, XmlElement):
                element_id = child.attributes.get("$id")
                parents[element_id] = parent_id
                walk(child, element_id)

    walk(ydoc.get("xml", type=XmlFragment), None)
    return parents


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two JSON values first differ (for readable failures)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}/{key}: only in {'second' if key not in a else 'first'}"
            found = first_difference(a[key], b[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for index, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{index}]")
            if found:
                return found
        return None if len(a) == len(b) else f"{path}: {len(a)} items != {len(b)} items"
    return None if a == b else f"{path}: {a!r} != {b!r}"


def value_for(prop: ValueProperty, data: st.DataObject) -> Any:
    if prop.enum is not None:
        return data.draw(st.sampled_from([*prop.enum, None]))
    if prop.type == "string":
        return data.draw(TEXT | st.none())
    if prop.type == "number":
        return data.draw(
            st.integers(-(2**60), 2**60) | st.floats(allow_nan=False, allow_infinity=False) | st.none()
        )
    if prop.type == "boolean":
        return data.draw(st.booleans() | st.none())
    return None


class Replica:
    """One replica, the messages waiting for it, and the tree its change events describe."""

    def __init__(self, doc: MeshDocument) -> None:
        self.doc = doc
        self.inbox: list[bytes] = []
        self.delivered: list[bytes] = []
        self.from_events: dict[str, str | None] = crdt_parents(doc.ydoc)
        doc.observe(self._on_changes)

    def _on_changes(self, changes: list[DocumentChange]) -> None:
        for change in changes:
            if not isinstance(change.node, Element):
                continue
            assert change.node.id is not None
            if change.kind == "inserted":
                assert change.parent is not None
                self.from_events[change.node.id] = change.parent.id
            elif change.kind == "deleted":
                self._drop(change.node.id)

    def _drop(self, element_id: str) -> None:
        self.from_events.pop(element_id)
        for child in [c for c, p in self.from_events.items() if p == element_id]:
            self._drop(child)


class ConcurrentReplicas(RuleBasedStateMachine):
    @initialize(count=st.integers(2, 4), start_from_json=st.booleans())
    def start(self, count: int, start_from_json: bool) -> None:
        state = None
        if start_from_json:
            state = MeshDocument(schema=SCHEMA, initial_json=VECTORS["from_json"]["initial_json"]).get_state()
        # Fixed client ids: concurrent inserts are ordered by client id, and Hypothesis must be
        # able to replay an example.
        self.replicas = [
            Replica(MeshDocument(schema=SCHEMA, update=state, client_id=1001 + index)) for index in range(count)
        ]
        self.ids_seen: set[str] = set(crdt_parents(self.replicas[0].doc.ydoc))
        for index, replica in enumerate(self.replicas):
            replica.doc.observe_updates(lambda update, index=index: self._broadcast(index, update))

    def _broadcast(self, sender: int, update: bytes) -> None:
        for index, replica in enumerate(self.replicas):
            if index != sender:
                replica.inbox.append(update)

    # -- edits -----------------------------------------------------------------------------

    def _elements(self, doc: MeshDocument) -> list[Element]:
        found = [doc.root]
        for tag in SCHEMA.elements_by_tag_name:
            found.extend(doc.root.get_elements_by_tag_name(tag))
        return found

    def _edit(self, doc: MeshDocument, data: st.DataObject, extra: list[Element]) -> Element | None:
        """One random valid edit; returns an element it created."""
        elements = self._elements(doc) + extra
        texts = [c for e in elements if e.tag_name == "text" for c in e.get_children() if isinstance(c, TextNode)]
        kinds = ["insert", "insert", "json", "set", "remove", "delete"] + (["text"] * 3 if texts else [])
        kind = data.draw(st.sampled_from(kinds), label="kind")
        if kind in ("insert", "json"):
            parent = data.draw(st.sampled_from([e for e in elements if e.schema.child_property is not None]))
            tag = data.draw(st.sampled_from(parent.schema.child_property.child_tag_names))  # type: ignore[union-attr]
            attributes = self._attributes(tag, data)
            if kind == "json":
                if tag == "cell" and data.draw(st.booleans()):
                    attributes["outputs"] = [{"output": self._attributes("output", data)}]
                created = parent.append_json({tag: attributes})
            else:
                size = len(parent.get_children())
                at = data.draw(st.sampled_from(["append", "index", "after"]))
                siblings = [c for c in parent.get_children() if isinstance(c, Element)]
                if at == "after" and siblings:
                    created = parent.insert_child_after(data.draw(st.sampled_from(siblings)), tag, attributes)
                elif at == "index":
                    created = parent.insert_child_at(data.draw(st.integers(0, size)), tag, attributes)
                else:
                    created = parent.append_child(tag, attributes)
            self.ids_seen.add(created.id)  # type: ignore[arg-type]
            return created
        candidates = [e for e in elements if not e.is_root]
        if kind == "text":
            node = data.draw(st.sampled_from(texts))
            size = len(node.text)
            start = data.draw(st.integers(0, size))
            length = data.draw(st.integers(0, size - start))
            action = data.draw(st.sampled_from(["insert", "delete", "format"]))
            if action == "insert":
                bold = data.draw(st.sampled_from([None, {"bold": True}, {"italic": True}]))
                node.insert(start, data.draw(TEXT), bold)
            elif action == "delete":
                node.delete(start, length)
            else:
                node.format(start, length, {"bold": data.draw(st.sampled_from([True, None]))})
        elif not candidates:
            return None
        elif kind == "delete":
            data.draw(st.sampled_from(candidates)).delete()
        else:
            element = data.draw(st.sampled_from(candidates))
            props = [p for p in element.schema.properties if isinstance(p, ValueProperty)]
            if not props:
                return None
            prop = data.draw(st.sampled_from(props))
            if kind == "set":
                element.set_attribute(prop.name, value_for(prop, data))
            else:
                element.remove_attribute(prop.name)
        return None

    def _attributes(self, tag: str, data: st.DataObject) -> dict[str, Any]:
        props = [p for p in SCHEMA.element(tag).properties if isinstance(p, ValueProperty)]
        chosen = data.draw(st.lists(st.sampled_from(props), unique_by=lambda p: p.name)) if props else []
        return {p.name: value_for(p, data) for p in chosen}

    @rule(data=st.data())
    def edit(self, data: st.DataObject) -> None:
        replica = data.draw(st.sampled_from(self.replicas))
        self._edit(replica.doc, data, [])

    @rule(data=st.data(), count=st.integers(2, 4))
    def edit_in_one_transaction(self, data: st.DataObject, count: int) -> None:
        replica = data.draw(st.sampled_from(self.replicas))
        created: list[Element] = []
        inbox_sizes = [len(r.inbox) for r in self.replicas]
        with replica.doc.transaction():
            for _ in range(count):
                try:
                    made = self._edit(replica.doc, data, created)
                except DocumentError as error:
                    # Only an element removed earlier in this transaction may refuse.
                    assert "no longer in the document" in str(error)
                    continue
                if made is not None:
                    created.append(made)
        others = [len(r.inbox) - before for r, before in zip(self.replicas, inbox_sizes) if r is not replica]
        assert all(n <= 1 for n in others)  # one transaction, at most one update

    # -- delivery --------------------------------------------------------------------------

    @precondition(lambda self: any(r.inbox for r in self.replicas))
    @rule(data=st.data())
    def deliver_one(self, data: st.DataObject) -> None:
        replica = data.draw(st.sampled_from([r for r in self.replicas if r.inbox]))
        update = replica.inbox.pop(data.draw(st.integers(0, len(replica.inbox) - 1)))
        assert replica.doc.apply_update(update) == []
        replica.delivered.append(update)

    @precondition(lambda self: any(r.inbox for r in self.replicas))
    @rule(data=st.data())
    def deliver_a_copy_early(self, data: st.DataObject) -> None:
        """A copy of a waiting update arrives now; the update itself still comes later."""
        replica = data.draw(st.sampled_from([r for r in self.replicas if r.inbox]))
        update = data.draw(st.sampled_from(replica.inbox))
        assert replica.doc.apply_update(update) == []

    @precondition(lambda self: any(r.delivered for r in self.replicas))
    @rule(data=st.data())
    def deliver_again(self, data: st.DataObject) -> None:
        replica = data.draw(st.sampled_from([r for r in self.replicas if r.delivered]))
        assert replica.doc.apply_update(data.draw(st.sampled_from(replica.delivered))) == []

    @rule(data=st.data(), diff=st.booleans())
    def deliver_state(self, data: st.DataObject, diff: bool) -> None:
        source, target = data.draw(st.permutations(self.replicas))[:2]
        state = source.doc.get_state(target.doc.get_state_vector() if diff else None)
        assert target.doc.apply_update(state) == []

    @rule()
    def deliver_everything(self) -> None:
        self._converge()

    def _converge(self) -> None:
        while any(r.inbox for r in self.replicas):
            for replica in self.replicas:
                pending, replica.inbox = replica.inbox, []
                for update in pending:
                    assert replica.doc.apply_update(update) == []
                    replica.delivered.append(update)
        self.mirror_index_and_events_agree_with_the_crdt()
        expected = self.replicas[0].doc.to_json(include_ids=True)
        for replica in self.replicas:
            assert not replica.doc.incomplete  # nothing is held back once all has arrived
            actual = replica.doc.to_json(include_ids=True)
            assert actual == expected, f"replicas differ at {first_difference(actual, expected)}"
            fresh = MeshDocument(schema=SCHEMA, update=replica.doc.get_state())
            assert fresh.to_json(include_ids=True) == expected
            assert [e.id for e in fresh.root.get_elements_by_tag_name("cell")] == [
                e.id for e in replica.doc.root.get_elements_by_tag_name("cell")
            ]

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def mirror_index_and_events_agree_with_the_crdt(self) -> None:
        for replica in getattr(self, "replicas", []):
            doc = replica.doc
            mirror, crdt = doc.to_json(include_ids=True), crdt_json(doc.ydoc)
            assert mirror == crdt, f"mirror != CRDT at {first_difference(mirror, crdt)}"
            parents = crdt_parents(doc.ydoc)
            self.ids_seen.update(parents)
            for element_id, parent_id in parents.items():
                element = doc.get_node_by_id(element_id)
                assert element is not None and element.id == element_id
                assert element.parent is not None and element.parent.id == parent_id
                assert element in element.parent.get_children()
            for element_id in self.ids_seen - set(parents):
                assert doc.get_node_by_id(element_id) is None
            assert replica.from_events == parents

    def teardown(self) -> None:
        if getattr(self, "replicas", None):
            self._converge()



TestConcurrentReplicas = ConcurrentReplicas.TestCase
TestConcurrentReplicas.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


# --- the struct reader that tells held-back updates apart ----------------------------------

ANY_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(["element", "attribute", "text", "format", "delete"]), TEXT, ANY_VALUES),
        min_size=1,
        max_size=12,
    ),
    cut=st.integers(0, 12),
)
def test_struct_ranges_reads_every_kind_of_struct(edits: list[tuple[str, str, Any]], cut: int) -> None:
    """For plain pycrdt documents holding every kind of content: the ranges read from the
    full state run from 0 to the state vector, and those of a diff start at its base."""
    doc = Doc(client_id=77)
    fragment = doc.get("xml", type=XmlFragment)
    text = fragment.children.append(XmlElement("text", {"$id": "t"}, [XmlText()])).children[0]
    base = doc.get_state()
    for index, (kind, string, value) in enumerate(edits):
        if index == cut:
            base = doc.get_state()
        element = fragment.children[0]
        assert isinstance(element, XmlElement) and isinstance(text, XmlText)
        if kind == "element":
            fragment.children.append(XmlElement(string or "x", {"$id": string, "v": value}))
        elif kind == "attribute":
            element.attributes[string or "k"] = value
        elif kind == "text":
            text.insert(len(text), string, {"bold": True} if value else None)
        elif kind == "format" and len(text):
            text.format(0, len(text), {"style": value})
        elif kind == "delete" and len(fragment.children) > 1:
            del fragment.children[len(fragment.children) - 1]
    vector = decode_state_vector(doc.get_state())
    assert struct_ranges(doc.get_update()) == {77: (0, vector[77], False)}
    diff = struct_ranges(doc.get_update(base))
    start = decode_state_vector(base).get(77, 0)
    assert diff == ({} if start == vector[77] else {77: (start, vector[77], False)})
    assert encode_state_vector(vector) == doc.get_state()
