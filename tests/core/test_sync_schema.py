"""MeshSchema (protocol/documents.md §1): the official JSON form both ways, the §1.4 validation rules, and
typed errors for malformed schema JSON."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from meshagent_core.sync import (
    ChildProperty,
    ElementType,
    MeshSchema,
    MeshSchemaException,
    MeshSchemaValidationException,
    ValueProperty,
)
from meshagent_core.testing import vectors
from meshagent_core.testing.strategies import json_values, mesh_schemas

VECTORS = vectors.load("sync_vectors")
SCHEMA_JSON: dict[str, Any] = VECTORS["schema"]


# --- the vectors ---------------------------------------------------------------------------


def test_vector_schema_round_trips_exactly_enum_included() -> None:
    assert MeshSchema.from_json(SCHEMA_JSON).to_json() == SCHEMA_JSON
    # ... and serialises with the same key order as the official writer.
    assert json.dumps(MeshSchema.from_json(SCHEMA_JSON).to_json()) == json.dumps(SCHEMA_JSON)


def test_vector_schema_is_read_into_the_declared_types() -> None:
    schema = MeshSchema.from_json(SCHEMA_JSON)
    assert schema.root_tag_name == "notebook"
    assert [e.tag_name for e in schema.elements] == ["notebook", "cell", "output", "heading", "text"]
    assert schema.root.description == "a small notebook"
    assert schema.element("output").description is None

    cell = schema.element("cell")
    kind = cell.value_property("kind")
    assert kind is not None and kind.type == "string" and kind.enum == ["code", "markdown"]
    source = cell.value_property("source")
    assert source is not None and source.type == "string" and not source.required and source.enum is None
    order = cell.value_property("order")
    assert order is not None and order.type == "number" and order.required
    assert cell.child_property_name == "outputs"
    assert cell.child_property is not None and cell.child_property.child_tag_names == ["output"]
    assert not cell.child_property.ordered

    notebook = schema.root
    assert notebook.child_property is not None
    assert notebook.child_property.child_tag_names == ["cell", "heading"]
    assert notebook.child_property.description == "ordered content"
    title = notebook.value_property("title")
    assert title is not None and title.description == "notebook title"
    assert schema.element("output").child_property is None


def test_reads_the_official_round_trip_json_where_enum_was_lost() -> None:
    lossy = VECTORS["schema_roundtrip_json"]
    assert VECTORS["schema_from_json_to_json_roundtrip_equal"] is False
    schema = MeshSchema.from_json(lossy)
    assert schema.to_json() == lossy
    kind = schema.element("cell").value_property("kind")
    assert kind is not None and kind.enum is None and kind.required and kind.type == "string"
    # Only the enum differs from the original.
    original = copy.deepcopy(SCHEMA_JSON)
    del original["$defs"]["cell"]["properties"]["cell"]["properties"]["kind"]["enum"]
    assert lossy == original


# --- the writer (protocol/documents.md §1.2 property table) -----------------------------------------------------


def test_to_json_follows_the_property_table() -> None:
    schema = MeshSchema(
        root_tag_name="doc",
        elements=[
            ElementType(
                tag_name="doc",
                description="the root",
                properties=[
                    ValueProperty(name="optional", type="string"),
                    ValueProperty(name="needed", type="number", required=True, description="d"),
                    ValueProperty(name="choice", type="string", enum=["a", "b"]),
                    ValueProperty(name="flag", type="boolean", required=True),
                    ChildProperty(name="items", child_tag_names=["item", "doc"], description="kids"),
                ],
            ),
            ElementType(
                tag_name="item",
                properties=[ChildProperty(name="steps", child_tag_names=["item"], ordered=True)],
            ),
        ],
    )
    doc_body = {
        "type": "object",
        "additionalProperties": False,
        "required": ["optional", "needed", "choice", "flag", "items"],
        "properties": {
            "optional": {"type": ["string", "null"]},
            "needed": {"type": "number", "description": "d"},
            "choice": {"type": "string", "enum": ["a", "b"]},
            "flag": {"type": "boolean"},
            "items": {
                "type": "array",
                "items": {"anyOf": [{"$ref": "#/$defs/item"}, {"$ref": "#/$defs/doc"}]},
                "description": "kids",
            },
        },
    }
    doc_wrapper = {
        "type": "object",
        "additionalProperties": False,
        "required": ["doc"],
        "properties": {"doc": doc_body},
        "description": "the root",
    }
    item_wrapper = {
        "type": "object",
        "additionalProperties": False,
        "required": ["item"],
        "properties": {
            "item": {
                "type": "object",
                "additionalProperties": False,
                "required": ["steps"],
                "properties": {
                    "steps": {"type": "array", "prefixItems": [{"$ref": "#/$defs/item"}], "items": False}
                },
            }
        },
    }
    expected = {"$root_tag_ref": "#/$defs/doc", **doc_wrapper, "$defs": {"doc": doc_wrapper, "item": item_wrapper}}
    assert json.dumps(schema.to_json()) == json.dumps(expected)
    again = MeshSchema.from_json(schema.to_json())
    assert again == schema
    steps = again.element("item").child_property
    assert steps is not None and steps.ordered


def test_tag_is_read_from_the_wrapper_not_from_the_defs_key() -> None:
    data = copy.deepcopy(SCHEMA_JSON)
    data["$defs"]["renamed"] = data["$defs"].pop("output")
    schema = MeshSchema.from_json(data)
    assert "output" in schema.elements_by_tag_name and "renamed" not in schema.elements_by_tag_name


def test_other_top_level_keys_are_ignored() -> None:
    data = {"$root_tag_ref": SCHEMA_JSON["$root_tag_ref"], "$defs": SCHEMA_JSON["$defs"], "whatever": [1]}
    assert MeshSchema.from_json(data).to_json() == SCHEMA_JSON


# --- validation rules (protocol/documents.md §1.4), each by name -----------------------------------------------


def _element(tag: str, *properties: Any) -> ElementType:
    return ElementType(tag_name=tag, properties=list(properties))


def test_rule_tag_names_unique() -> None:
    with pytest.raises(MeshSchemaValidationException, match="more than once"):
        MeshSchema(root_tag_name="a", elements=[_element("a"), _element("a")])


def test_rule_root_tag_is_an_element_type() -> None:
    with pytest.raises(MeshSchemaValidationException, match="root tag 'b'"):
        MeshSchema(root_tag_name="b", elements=[_element("a")])


@pytest.mark.parametrize("bad_type", ["array", "object", "integer", "String", ""])
def test_rule_value_type_is_simple(bad_type: str) -> None:
    with pytest.raises(MeshSchemaValidationException, match="is not one of"):
        ValueProperty(name="x", type=bad_type)  # type: ignore[arg-type]


def test_rule_child_tags_are_defined_is_a_schema_error() -> None:
    with pytest.raises(MeshSchemaException, match="'ghost', which is not an element type") as caught:
        MeshSchema(root_tag_name="a", elements=[_element("a", ChildProperty(name="c", child_tag_names=["ghost"]))])
    assert type(caught.value) is MeshSchemaException  # a schema error, not a validation error


def test_rule_at_most_one_child_property() -> None:
    with pytest.raises(MeshSchemaValidationException, match="only one child property"):
        _element("a", ChildProperty(name="c1", child_tag_names=["a"]), ChildProperty(name="c2", child_tag_names=["a"]))


def test_rule_property_names_unique() -> None:
    with pytest.raises(MeshSchemaValidationException, match="duplicate property 'x'"):
        _element("a", ValueProperty(name="x", type="string"), ValueProperty(name="x", type="number"))
    with pytest.raises(MeshSchemaValidationException, match="duplicate property 'x'"):
        _element("a", ValueProperty(name="x", type="string"), ChildProperty(name="x", child_tag_names=["a"]))


def test_clean_writer_rejects_what_the_official_reader_cannot_read() -> None:
    with pytest.raises(MeshSchemaValidationException, match="at least one tag"):
        ChildProperty(name="c", child_tag_names=[])
    with pytest.raises(MeshSchemaValidationException, match="reserved"):
        ValueProperty(name="$id", type="string")
    with pytest.raises(MeshSchemaValidationException, match="non-empty"):
        ValueProperty(name="", type="string")
    with pytest.raises(MeshSchemaValidationException, match="non-empty"):
        ElementType(tag_name="", properties=[])


def test_element_lookup_of_an_unknown_tag() -> None:
    schema = MeshSchema.from_json(SCHEMA_JSON)
    with pytest.raises(MeshSchemaException, match="'nope' is not an element type"):
        schema.element("nope")
    assert schema.root.property("nope") is None
    assert schema.root.value_property("cells") is None  # a child property, not a value property


# --- what a value property accepts -------------------------------------------------------------


@pytest.mark.parametrize(
    ("prop", "good", "bad"),
    [
        (ValueProperty(name="s", type="string"), ["", "x"], [1, 1.5, True, [], {}]),
        (ValueProperty(name="n", type="number"), [0, -3, 2.5, 2**60], [True, False, "1", math.nan, math.inf, []]),
        (ValueProperty(name="b", type="boolean"), [True, False], [0, 1, "true"]),
        (ValueProperty(name="z", type="null"), [], [0, "", False]),
        (ValueProperty(name="e", type="string", enum=["a", "b"]), ["a", "b"], ["c", 1]),
        (ValueProperty(name="e", type="number", enum=[1, 2]), [1, 1.0, 2], [True, 3]),
    ],
    ids=["string", "number", "boolean", "null", "string-enum", "number-enum"],
)
def test_accepts(prop: ValueProperty, good: list[Any], bad: list[Any]) -> None:
    assert prop.accepts(None)  # clearing a nullable attribute
    for value in good:
        assert prop.accepts(value), value
    for value in bad:
        assert not prop.accepts(value), value


# --- malformed JSON: always MeshSchemaException, never KeyError/TypeError ------------------------


def _mutated(path: list[Any], value: Any = "<delete>") -> dict[str, Any]:
    data = copy.deepcopy(SCHEMA_JSON)
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value == "<delete>":
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


CELL_PROPS = ["$defs", "cell", "properties", "cell", "properties"]
MALFORMED: dict[str, Any] = {
    "not an object": ["$root_tag_ref"],
    "null": None,
    "no $root_tag_ref": _mutated(["$root_tag_ref"]),
    "$root_tag_ref not a string": _mutated(["$root_tag_ref"], 3),
    "$root_tag_ref outside $defs": _mutated(["$root_tag_ref"], "#/definitions/notebook"),
    "$root_tag_ref names no element": _mutated(["$root_tag_ref"], "#/$defs/ghost"),
    "no $defs": _mutated(["$defs"]),
    "$defs a list": _mutated(["$defs"], []),
    "wrapper not an object": _mutated(["$defs", "cell"], "cell"),
    "wrapper without properties": _mutated(["$defs", "cell", "properties"]),
    "wrapper properties a list": _mutated(["$defs", "cell", "properties"], ["cell"]),
    "wrapper naming two tags": _mutated(["$defs", "cell", "properties", "other"], {"type": "object"}),
    "wrapper naming no tag": _mutated(["$defs", "cell", "properties"], {}),
    "element body not an object": _mutated(["$defs", "cell", "properties", "cell"], 7),
    "element properties not an object": _mutated(["$defs", "cell", "properties", "cell", "properties"], "x"),
    "property not an object": _mutated([*CELL_PROPS, "kind"], "string"),
    "property without type": _mutated([*CELL_PROPS, "kind", "type"]),
    "property type a number": _mutated([*CELL_PROPS, "kind", "type"], 5),
    "property type an empty list": _mutated([*CELL_PROPS, "source", "type"], []),
    "property type list of non-strings": _mutated([*CELL_PROPS, "source", "type"], [["string"], "null"]),
    "property type unknown": _mutated([*CELL_PROPS, "order", "type"], "integer"),
    "property type list unknown": _mutated([*CELL_PROPS, "source", "type"], ["object", "null"]),
    "enum not a list": _mutated([*CELL_PROPS, "kind", "enum"], "code"),
    "array without items or prefixItems": _mutated([*CELL_PROPS, "outputs", "items"]),
    "anyOf not a list": _mutated([*CELL_PROPS, "outputs", "items", "anyOf"], {"$ref": "#/$defs/output"}),
    "ref not an object": _mutated([*CELL_PROPS, "outputs", "items", "anyOf"], ["#/$defs/output"]),
    "ref without $ref": _mutated([*CELL_PROPS, "outputs", "items", "anyOf"], [{"ref": "#/$defs/output"}]),
    "ref not a string": _mutated([*CELL_PROPS, "outputs", "items", "anyOf"], [{"$ref": 1}]),
    "ref outside $defs": _mutated([*CELL_PROPS, "outputs", "items", "anyOf"], [{"$ref": "#/x/output"}]),
    "ref to an unknown tag": _mutated([*CELL_PROPS, "outputs", "items", "anyOf"], [{"$ref": "#/$defs/ghost"}]),
    "empty allowed-tag list": _mutated([*CELL_PROPS, "outputs", "items", "anyOf"], []),
    "prefixItems not a list": _mutated([*CELL_PROPS, "outputs"], {"type": "array", "prefixItems": {}, "items": False}),
    "two child properties": _mutated(
        [*CELL_PROPS, "more"], {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/output"}]}}
    ),
    "duplicate tag under two $defs keys": _mutated(["$defs", "copy"], copy.deepcopy(SCHEMA_JSON["$defs"]["cell"])),
    "$id as a property": _mutated([*CELL_PROPS, "$id"], {"type": "string"}),
}


@pytest.mark.parametrize("data", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_schema_json_raises_a_schema_exception(data: Any) -> None:
    with pytest.raises(MeshSchemaException):
        MeshSchema.from_json(data)


JSON_VALUES = st.sampled_from(["array", "string", "#/$defs/cell"]) | json_values(2, max_size=3)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, prefix + (key,)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, prefix + (index,)))
    return found


SCHEMA_PATHS = _paths(SCHEMA_JSON)


@settings(max_examples=150, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(SCHEMA_PATHS), st.booleans(), JSON_VALUES), min_size=1, max_size=3
    )
)
def test_any_corruption_of_a_schema_is_read_or_refused_with_a_schema_exception(
    edits: list[tuple[tuple[Any, ...], bool, Any]],
) -> None:
    data: Any = copy.deepcopy(SCHEMA_JSON)
    for path, delete, value in edits:
        target = data
        try:
            for key in path[:-1]:
                target = target[key]
            if delete:
                del target[path[-1]]
            else:
                target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced this path
    try:
        schema = MeshSchema.from_json(data)
    except MeshSchemaException:
        return
    # Whatever was accepted is a schema that writes and reads back to itself.
    written = schema.to_json()
    assert MeshSchema.from_json(written).to_json() == written
    json.dumps(written)


# --- random valid schemas round-trip ------------------------------------------------------------


def _normalised(schema: MeshSchema) -> dict[str, Any]:
    """What a property keeps through JSON: with an enum, the required flag is not written."""
    out = []
    for element in schema.elements:
        props = []
        for p in element.properties:
            if isinstance(p, ValueProperty):
                props.append(("value", p.name, p.type, p.enum, p.required or p.enum is not None, p.description))
            else:
                assert isinstance(p, ChildProperty)
                props.append(("child", p.name, p.child_tag_names, p.ordered, p.description))
        out.append((element.tag_name, element.description, props))
    return {"root": schema.root_tag_name, "elements": out}


@settings(max_examples=100, deadline=None)
@given(schema=mesh_schemas())
def test_random_schemas_round_trip_through_json(schema: MeshSchema) -> None:
    written = schema.to_json()
    text = json.dumps(written)
    read = MeshSchema.from_json(json.loads(text))
    assert read.to_json() == written
    assert _normalised(read) == _normalised(schema)
    assert read == schema
