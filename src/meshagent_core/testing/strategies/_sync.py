"""Strategies for collaborative documents: valid `MeshSchema` values, and JSON documents that a
given schema's document model accepts."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ...sync import ChildProperty, ElementType, MeshSchema, ValueProperty
from ...sync.document import TEXT_TAG
from ._wire import INT64_MAX, INT64_MIN

_NAMES = st.text(alphabet="abcdefgh_-", min_size=1, max_size=6)
_DESCRIPTIONS = st.none() | st.text(max_size=10)
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
#: What a `number` attribute holds: pycrdt stores integers as 64-bit (a larger one makes it
#: panic), floats as doubles.
_NUMBERS = st.integers(INT64_MIN, INT64_MAX) | _FLOATS


@st.composite
def _mesh_schema(draw: st.DrawFn, max_elements: int, max_properties: int) -> MeshSchema:
    tags = draw(st.lists(_NAMES, min_size=1, max_size=max_elements, unique=True))
    elements = []
    for tag in tags:
        names = draw(st.lists(_NAMES, max_size=max_properties, unique=True))
        child_at = draw(st.none() | st.integers(min_value=0, max_value=max(len(names) - 1, 0)))
        properties: list[Any] = []
        for index, name in enumerate(names):
            description = draw(_DESCRIPTIONS)
            if index == child_at:
                properties.append(
                    ChildProperty(
                        name=name,
                        child_tag_names=draw(st.lists(st.sampled_from(tags), min_size=1, max_size=3, unique=True)),
                        ordered=draw(st.booleans()),
                        description=description,
                    )
                )
                continue
            kind = draw(st.sampled_from(["string", "number", "boolean", "null"]))
            enum = None
            if kind == "string" and draw(st.booleans()):
                enum = draw(st.lists(st.text(max_size=4), min_size=1, max_size=3))
            elif kind == "number" and draw(st.booleans()):
                enum = draw(st.lists(_NUMBERS, min_size=1, max_size=3))
            properties.append(
                ValueProperty(name=name, type=kind, enum=enum, required=draw(st.booleans()), description=description)
            )
        elements.append(ElementType(tag_name=tag, properties=properties, description=draw(_DESCRIPTIONS)))
    return MeshSchema(root_tag_name=draw(st.sampled_from(tags)), elements=elements)


def mesh_schemas(*, max_elements: int = 5, max_properties: int = 4) -> st.SearchStrategy[MeshSchema]:
    """Valid `MeshSchema` values (protocol/documents.md §1): 1 to `max_elements` element types (any of them the
    root), each with up to `max_properties` properties: value properties of every simple type,
    required or not, strings and numbers sometimes limited to an `enum`, descriptions, and at
    most one child property (ordered or not) allowing 1 to 3 of the schema's tags, itself
    included (so schemas may be recursive).

    Tag and property names use `a`-`h`, `_` and `-`, so no schema has the special `text` tag.
    Every value writes and reads back to an equal schema.

        @given(mesh_schemas())
        def test_schema_json_round_trip(schema):
            assert MeshSchema.from_json(json.loads(json.dumps(schema.to_json()))) == schema
    """
    if max_elements < 1:
        raise ValueError("max_elements must be >= 1")
    return _mesh_schema(max_elements, max_properties)


def _attribute(prop: ValueProperty) -> st.SearchStrategy[Any] | None:
    """Values to store in `prop` (None: nothing can be stored: None is not kept)."""
    if prop.enum is not None:
        allowed = [value for value in prop.enum if value is not None and prop.accepts(value)]
        return st.sampled_from(allowed) if allowed else None
    if prop.type == "string":
        return st.text(max_size=12)
    if prop.type == "number":
        return _NUMBERS
    if prop.type == "boolean":
        return st.booleans()
    return None  # "null"


@st.composite
def _element(draw: st.DrawFn, schema: MeshSchema, element: ElementType, depth: int, max_depth: int, max_children: int) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, prop in element.value_properties.items():
        values = _attribute(prop)
        if values is not None and (prop.required or draw(st.booleans())):
            body[name] = draw(values)
    child_property = element.child_property
    if child_property is not None:
        children: list[dict[str, Any]] = []
        # A `text` element holds its rich text as its first child: no element children here.
        if depth < max_depth and element.tag_name != TEXT_TAG:
            tags = child_property.child_tag_names
            if child_property.ordered:  # a prefix of the tags, in order (also valid as JSON Schema)
                tags = tags[: draw(st.integers(0, min(len(tags), max_children)))]
            else:
                tags = draw(st.lists(st.sampled_from(tags), max_size=max_children))
            for tag in tags:
                children.append(draw(_element(schema, schema.element(tag), depth + 1, max_depth, max_children)))
        body[child_property.name] = children
    return {element.tag_name: body}


def documents(schema: MeshSchema, *, max_depth: int = 3, max_children: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    """JSON documents valid for `schema`: what `MeshDocument(schema=schema, initial_json=...)`
    (and `load_json`) accept, in the form `MeshDocument.to_json()` writes back.

    `{"<root tag>": {"<child property>": [nodes...]}}` where a node is
    `{"<tag>": {attributes..., "<child property>": [nodes...]}}`: children only of the tags
    their parent allows (for an ordered child property, a prefix of its tags in order), at
    most `max_children` per element and `max_depth` levels below the root; attributes of the
    declared type (or from the enum), required ones always present, others sometimes; no
    `null` attribute (the model does not store None, so it would not read back); no root
    attributes (the root has none in the shared document). The child property is always
    written, possibly `[]`.

    Round trip: `MeshDocument(schema=s, initial_json=doc).to_json() == doc`, except that an
    element tagged `text` holds rich text, which `to_json` lists among its children (such an
    element gets no element children here).

        @given(mesh_schemas().flatmap(lambda s: st.tuples(st.just(s), documents(s))))
        def test_document_round_trip(pair):
            schema, doc = pair
            assert MeshDocument(schema=schema, initial_json=doc).to_json() == doc
    """
    root = schema.root
    child_property = root.child_property

    @st.composite
    def document(draw: st.DrawFn) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if child_property is not None:
            tags = child_property.child_tag_names if max_depth >= 1 else []
            if child_property.ordered:
                tags = tags[: draw(st.integers(0, min(len(tags), max_children)))]
            else:
                tags = draw(st.lists(st.sampled_from(tags), max_size=max_children))
            body[child_property.name] = [
                draw(_element(schema, schema.element(tag), 1, max_depth, max_children)) for tag in tags
            ]
        return {root.tag_name: body}

    return document()


__all__ = ["documents", "mesh_schemas"]
