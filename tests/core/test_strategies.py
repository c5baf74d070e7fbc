"""The public Hypothesis strategies (`meshagent_core.testing.strategies`) produce what they
claim, checked with the core's own codecs, reader, token and document code; and the core
never needs Hypothesis unless those strategies are imported."""

from __future__ import annotations

import ast
import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

import meshagent_core
from meshagent_core import (
    FramingError,
    JsonContent,
    JsonStyle,
    Message,
    PacketReader,
    encode_message,
    pack_content,
    pack_message,
    unpack_content,
    unpack_message,
)
from meshagent_core.client.tool_values import ToolContext
from meshagent_core.client.tools import tool
from meshagent_core.client.participants import Participant
from meshagent_core.content import CONTENT_TYPES, Content
from meshagent_core.envelope import META_KEY
from meshagent_core.jsondepth import json_depth_exceeds
from meshagent_core.sync import MeshDocument, MeshSchema
from meshagent_core.testing import vectors
from meshagent_core.testing.strategies import (
    PacketStream,
    UnsupportedSchemaError,
    api_scopes,
    contents,
    documents,
    envelopes,
    json_values,
    mesh_schemas,
    messages,
    packet_streams,
    packets_of,
    participant_tokens,
    tool_arguments,
)
from meshagent_core.tokens import ApiScope, ParticipantToken

FIND = settings(database=None, max_examples=2000, phases=[Phase.generate])  # no shrinking: any example will do
STYLES = st.sampled_from(list(JsonStyle))


def strict(value: Any) -> Any:
    """A form of a JSON value whose equality also compares types (1 != 1.0 != True)."""
    if isinstance(value, dict):
        return ("dict", sorted((key, strict(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("list", [strict(item) for item in value])
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def scalars(value: Any) -> list[Any]:
    if isinstance(value, dict):
        assert all(isinstance(key, str) for key in value)
        return [s for item in value.values() for s in scalars(item)]
    if isinstance(value, list):
        return [s for item in value for s in scalars(item)]
    return [value]


# --- json_values ---------------------------------------------------------------------------


@given(json_values())
def test_json_values_survive_both_json_codecs_unchanged(value: Any) -> None:
    assert strict(msgspec.json.decode(msgspec.json.encode(value))) == strict(value)
    assert strict(json.loads(json.dumps(value, allow_nan=False))) == strict(value)
    assert not json_depth_exceeds(value, 3)


@given(st.integers(0, 5), st.data())
def test_json_values_keep_to_their_limits(max_depth: int, data: st.DataObject) -> None:
    value = data.draw(json_values(max_depth, max_size=2, min_int=-5, max_int=5, floats=False))
    assert depth(value) <= max_depth and not json_depth_exceeds(value, max_depth)
    for scalar in scalars(value):
        assert not isinstance(scalar, float)
        if isinstance(scalar, int) and not isinstance(scalar, bool):
            assert -5 <= scalar <= 5
    if isinstance(value, (list, dict)):
        assert len(value) <= 2


def test_json_values_reach_their_depth_and_every_kind_of_value() -> None:
    assert depth(find(json_values(3), lambda v: depth(v) == 3, settings=FIND)) == 3
    for kind in (type(None), bool, int, float, str, list, dict):
        find(json_values(), lambda v, kind=kind: type(v) is kind, settings=FIND)


# --- contents ------------------------------------------------------------------------------


@given(contents(), STYLES)
def test_contents_pack_and_unpack_to_themselves(content: Content, style: JsonStyle) -> None:
    assert unpack_content(pack_content(content, style=style)) == content


@pytest.mark.parametrize("kind", sorted(CONTENT_TYPES))
def test_contents_of_one_kind(kind: str) -> None:
    @settings(max_examples=25)
    @given(contents([kind]), STYLES)
    def check(content: Content, style: JsonStyle) -> None:
        assert type(content).__struct_config__.tag == kind  # type: ignore[attr-defined]
        assert unpack_content(pack_content(content, style=style)) == content

    check()


@pytest.mark.parametrize("cls", Content.__args__, ids=lambda cls: cls.__name__)  # type: ignore[attr-defined]
def test_contents_reach_every_content_type(cls: type) -> None:
    find(contents(), lambda content: type(content) is cls, settings=FIND)


def test_contents_refuse_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="video"):
        contents(["text", "video"])


# --- messages, packets and packet streams -----------------------------------------------------


@given(messages())
def test_messages_are_what_the_framing_carries(message: Message) -> None:
    assert type(message) is Message and 0 <= message.id < 2**64 and isinstance(message.data, bytes)
    message.type.encode("utf-8")
    assert PacketReader().receive_packets(encode_message(*message)) == [message]


def test_message_data_sits_on_packet_boundaries_often() -> None:
    for size in (0, 1024, 1025, 2048):
        find(messages(), lambda message, size=size: len(message.data) == size, settings=FIND)


@given(messages(max_size=6000).flatmap(lambda message: st.tuples(st.just(message), packets_of(message, buffers=True))))
def test_packets_of_a_message_reassemble_to_it(pair: tuple[Message, list[Any]]) -> None:
    message, packets = pair
    assert [bytes(packet) for packet in packets] == encode_message(*message)
    assert PacketReader().receive_packets(packets) == [message]
    reader = PacketReader()
    delivered = [reader.receive_packet(packet) for packet in packets]
    assert delivered == [None] * (len(packets) - 1) + [message]
    assert not reader.in_progress


def check_stream_labels(stream: PacketStream) -> None:
    sent = Counter(packet for message in stream.messages for packet in encode_message(*message))
    assert not Counter(stream.packets) - sent  # every packet is one of the messages' packets
    if stream.kind == "valid":
        assert stream.delivered == stream.messages and stream.error_index is None and stream.incomplete is None
        assert Counter(stream.packets) == sent
    elif stream.kind == "truncated":
        assert stream.incomplete == stream.messages[-1] and stream.delivered == stream.messages[:-1]
        assert stream.error_index is None
    else:
        assert stream.error_index is not None and stream.incomplete is None
        assert stream.delivered == stream.messages[:-2]
        assert Counter(stream.packets) == sent  # interleaved, but nothing is missing


@settings(max_examples=200)
@given(packet_streams())
def test_packet_streams_are_read_by_the_core_as_labelled(stream: PacketStream) -> None:
    check_stream_labels(stream)
    reader = PacketReader()
    delivered = []
    for index, packet in enumerate(stream.packets):
        if index == stream.error_index:
            with pytest.raises(FramingError):
                reader.receive_packet(packet)
            break
        message = reader.receive_packet(packet)
        if message is not None:
            delivered.append(message)
    else:
        assert stream.error_index is None
    assert delivered == list(stream.delivered)
    assert reader.in_progress == (stream.kind == "truncated")
    if stream.incomplete is not None:  # the kept data packets of the cut message are held
        kept = len(stream.packets) - sum(len(encode_message(*m)) for m in stream.delivered) - 1
        assert reader.buffered == kept * 1024

    bulk = PacketReader()
    if stream.error_index is None:
        assert bulk.receive_packets(list(stream.packets)) == list(stream.delivered)
        assert bulk.in_progress == (stream.kind == "truncated")
    else:
        with pytest.raises(FramingError) as info:
            bulk.receive_packets(list(stream.packets))
        assert info.value.completed == list(stream.delivered)


@pytest.mark.parametrize("kind", ["valid", "truncated", "interleaved"])
def test_packet_streams_of_one_kind(kind: Literal["valid", "truncated", "interleaved"]) -> None:
    @settings(max_examples=30)
    @given(packet_streams([kind], max_messages=3, max_size=2500))
    def check(stream: PacketStream) -> None:
        assert stream.kind == kind and len(stream.messages) <= 3
        check_stream_labels(stream)

    check()


def test_packet_streams_refuse_bad_arguments() -> None:
    with pytest.raises(ValueError):
        packet_streams(["broken"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        packet_streams(["interleaved"], max_messages=1)


# --- envelopes -----------------------------------------------------------------------------


@given(envelopes(), STYLES)
def test_envelopes_pack_and_unpack_to_themselves(envelope: tuple[dict[str, Any], bytes], style: JsonStyle) -> None:
    header, payload = envelope
    assert isinstance(header, dict) and META_KEY not in header and isinstance(payload, bytes)
    assert unpack_message(pack_message(header, payload, style=style)) == envelope


@given(envelopes(max_payload=0))
def test_envelopes_without_payload(envelope: tuple[dict[str, Any], bytes]) -> None:
    assert envelope[1] == b""


# --- tokens --------------------------------------------------------------------------------


@given(api_scopes())
def test_api_scopes_survive_their_wire_form(scope: ApiScope) -> None:
    wire = scope.to_json()
    assert ApiScope.from_json(json.loads(json.dumps(wire))) == scope
    assert ApiScope.model_validate_json(scope.model_dump_json(exclude_none=True, exclude_defaults=True)) == scope


def test_api_scopes_reach_every_family_beyond_the_presets() -> None:
    presets = [scope.to_json() for scope in (ApiScope(), ApiScope.full(), ApiScope.user_default(), ApiScope.agent_default())]
    for family in ApiScope.__struct_fields__:
        find(
            api_scopes(),
            lambda scope, family=family: getattr(scope, family) is not None and scope.to_json() not in presets,
            settings=FIND,
        )


RESERVED = {"name", "grants", "sub", "kid", "version", "exp", "iat", "nbf", "aud", "jti", "iss"}


@given(participant_tokens(), st.text(min_size=1, max_size=40))
def test_participant_tokens_survive_signing(token: ParticipantToken, secret: str) -> None:
    assert token.name.strip() != ""
    assert not RESERVED & set(token.extra_payload or {})
    assert sum(grant.name == "api" for grant in token.grants) <= 1
    assert ParticipantToken.from_json(json.loads(json.dumps(token.to_json()))) == token
    minted = token.to_jwt(token=secret, environ={})
    decoded = ParticipantToken.from_jwt(minted, token=secret, now=1_800_000_000, environ={})
    assert decoded == token and decoded.grants == token.grants and decoded.role == token.role


def test_participant_tokens_reach_roles_api_grants_and_extra_claims() -> None:
    find(participant_tokens(), lambda t: t.role in ("agent", "tool"), settings=FIND)
    find(participant_tokens(), lambda t: t.get_api_grant() is not None and len(t.grants) > 1, settings=FIND)
    find(participant_tokens(), lambda t: bool(t.extra_payload), settings=FIND)


# --- sync ----------------------------------------------------------------------------------


@given(mesh_schemas())
def test_mesh_schemas_survive_their_json_form(schema: MeshSchema) -> None:
    written = schema.to_json()
    read = MeshSchema.from_json(json.loads(json.dumps(written)))
    assert read == schema and read.to_json() == written


def without_rich_text(node: Any) -> Any:
    """A document's JSON without the rich text nodes `to_json` lists under `text` elements."""
    if isinstance(node, dict):
        return {key: without_rich_text(value) for key, value in node.items()}
    if isinstance(node, list):
        return [without_rich_text(item) for item in node if not (isinstance(item, dict) and set(item) == {"text"} and set(item["text"]) == {"delta"})]
    return node


@settings(max_examples=80, deadline=None)
@given(mesh_schemas().flatmap(lambda schema: st.tuples(st.just(schema), documents(schema))))
def test_documents_load_into_the_document_model_and_read_back(pair: tuple[MeshSchema, dict[str, Any]]) -> None:
    schema, document = pair
    doc = MeshDocument(schema=schema, initial_json=document)
    assert doc.to_json() == document
    replica = MeshDocument(schema=schema, update=doc.get_state())  # raises on a schema violation
    assert replica.to_json() == document


VECTOR_SCHEMA = MeshSchema.from_json(vectors.load("sync_vectors")["schema"])


@settings(max_examples=60, deadline=None)
@given(documents(VECTOR_SCHEMA, max_depth=4))
def test_documents_of_a_schema_with_rich_text(document: dict[str, Any]) -> None:
    doc = MeshDocument(schema=VECTOR_SCHEMA, initial_json=document)
    assert without_rich_text(doc.to_json()) == document


def test_documents_reach_nested_elements() -> None:
    find(documents(VECTOR_SCHEMA), lambda d: "text" in json.dumps(d) and '"output"' in json.dumps(d), settings=FIND)


# --- tool_arguments ------------------------------------------------------------------------


def json_equal(a: Any, b: Any) -> bool:
    return canonical(a) == canonical(b)


def canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return ("o", sorted((key, canonical(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("l", [canonical(item) for item in value])
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    return ("n", float(value)) if isinstance(value, float) or abs(value) < 2**53 else ("n", value)


def has_type(value: Any, kind: str) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "integer": number and (isinstance(value, int) or float(value).is_integer()),
        "number": number,
        "string": isinstance(value, str),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }[kind]


def conforms(value: Any, schema: Any, root: Any) -> bool:
    """A small JSON Schema (2020-12) validator for the subset `tool_arguments` supports,
    written independently of it (used when `jsonschema` is not installed, and besides it)."""
    if isinstance(schema, bool):
        return schema
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#").strip("/").split("/") if schema["$ref"] not in ("#", "#/") else []:
            target = target[part]
        return conforms(value, target, root)
    if "anyOf" in schema and not any(conforms(value, branch, root) for branch in schema["anyOf"]):
        return False
    if "const" in schema and not json_equal(value, schema["const"]):
        return False
    if "enum" in schema and not any(json_equal(value, option) for option in schema["enum"]):
        return False
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(has_type(value, kind) for kind in kinds):
            return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            return False
        checks = [
            ("minimum", lambda bound: value >= bound),
            ("maximum", lambda bound: value <= bound),
            ("exclusiveMinimum", lambda bound: value > bound),
            ("exclusiveMaximum", lambda bound: value < bound),
            ("multipleOf", lambda m: value % m == 0),
        ]
        return all(check(schema[key]) for key, check in checks if key in schema)
    if isinstance(value, str):
        return (
            len(value) >= schema.get("minLength", 0)
            and len(value) <= schema.get("maxLength", math.inf)
            and ("pattern" not in schema or re.search(schema["pattern"], value) is not None)
        )
    if isinstance(value, list):
        prefix = schema.get("prefixItems", [])
        items = schema.get("items", True)
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", math.inf):
            return False
        if schema.get("uniqueItems") and len({repr(canonical(v)) for v in value}) != len(value):
            return False
        return all(conforms(v, prefix[i] if i < len(prefix) else items, root) for i, v in enumerate(value))
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties", True)
        return set(schema.get("required", [])) <= set(value) and all(
            conforms(item, properties[key] if key in properties else additional, root) for key, item in value.items()
        )
    return True


def check_valid(value: Any, schema: Any) -> None:
    assert conforms(value, schema, schema), (value, schema)
    try:
        import jsonschema  # type: ignore[import-not-found, import-untyped]
    except ImportError:
        return
    jsonschema.Draft202012Validator(schema).validate(value)


TREE_DEFS = {
    "node": {
        "type": "object",
        "properties": {"label": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "required": ["label"],
        "additionalProperties": False,
    }
}

SCHEMAS: dict[str, Any] = {
    "scalars": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 5, "description": "who"},
            "count": {"type": "integer", "minimum": -3, "maximum": 40},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "flag": {"type": "boolean"},
            "nothing": {"type": "null"},
            "optional": {"type": "integer", "default": 3},
        },
        "required": ["name", "count", "ratio", "flag", "nothing"],
        "additionalProperties": False,
    },
    "enum-and-const": {
        "type": "object",
        "properties": {"mode": {"enum": ["a", "b", 3, None]}, "typed": {"type": "string", "enum": ["x", 1, "y"]}, "fixed": {"const": {"k": [1, 2]}}},
        "required": ["mode", "typed", "fixed"],
    },
    "arrays": {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 5},
        "minItems": 2,
        "maxItems": 4,
        "uniqueItems": True,
    },
    "tuple": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False, "minItems": 1},
    "tuple-then-items": {"type": "array", "prefixItems": [{"type": "boolean"}], "items": {"type": "null"}},
    "unions": {
        "type": "object",
        "properties": {"either": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]}, "nullable": {"type": ["string", "null"]}},
        "required": ["either", "nullable"],
    },
    "recursive": {"$ref": "#/$defs/node", "$defs": TREE_DEFS},
    "maps": {
        "type": "object",
        "properties": {
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "anything": {"type": "object", "additionalProperties": True},
            "closed": {"type": "object", "properties": {"a": {"type": "boolean"}}, "additionalProperties": False},
            "never": False,
        },
        "required": ["counts", "anything", "closed"],
    },
    "patterns": {"type": "string", "pattern": "^[a-z]+-[0-9]{2}$", "minLength": 4},
    "multiples": {"type": "integer", "multipleOf": 7, "minimum": -100, "maximum": 100},
    "float-bounds": {"type": "number", "minimum": 0.25, "maximum": 0.75},
    "untyped": {"properties": {"a": {"type": "integer"}}, "required": ["a"]},
    "anything": True,
    "annotations-only": {"title": "x", "description": "anything at all"},
}


@pytest.mark.parametrize("schema", list(SCHEMAS.values()), ids=list(SCHEMAS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_tool_arguments_are_valid_for_their_schema(schema: Any, data: st.DataObject) -> None:
    check_valid(data.draw(tool_arguments(schema)), schema)


@pytest.mark.parametrize(
    ("value", "schema"),
    [
        ({"name": "", "count": 1, "ratio": 0.5, "flag": True, "nothing": None}, SCHEMAS["scalars"]),  # minLength
        ({"name": "a", "count": 1, "ratio": 1, "flag": True, "nothing": None}, SCHEMAS["scalars"]),  # exclusiveMaximum
        ({"name": "a", "count": 1, "ratio": 0.5, "flag": True, "nothing": None, "x": 1}, SCHEMAS["scalars"]),
        ({"name": "a", "count": 1.5, "ratio": 0.5, "flag": True, "nothing": None}, SCHEMAS["scalars"]),
        ([1, 1], SCHEMAS["arrays"]),
        ([1, "a", 2], SCHEMAS["tuple"]),
        ({"label": "a", "children": [{"children": []}]}, SCHEMAS["recursive"]),
        ({"counts": {}, "anything": {}, "closed": {}, "never": 1}, SCHEMAS["maps"]),
        ("abc-1", SCHEMAS["patterns"]),
        (14.5, SCHEMAS["multiples"]),
    ],
)
def test_the_reference_validator_can_say_no(value: Any, schema: Any) -> None:
    assert not conforms(value, schema, schema)


def test_tool_arguments_vary_what_is_optional() -> None:
    schema = SCHEMAS["scalars"]
    find(tool_arguments(schema), lambda v: "optional" in v, settings=FIND)
    find(tool_arguments(schema), lambda v: "optional" not in v, settings=FIND)
    find(tool_arguments(SCHEMAS["recursive"]), lambda v: depth(v) >= 4, settings=FIND)
    find(tool_arguments(SCHEMAS["maps"]), lambda v: len(v["counts"]) > 0, settings=FIND)


class Point(msgspec.Struct):
    x: int
    y: float = 0.0


class Tree(msgspec.Struct):
    label: str
    children: list["Tree"] = []


@tool
def typed_tool(
    name: str,
    count: int,
    ratio: float,
    flag: bool,
    tags: list[str],
    mode: Literal["fast", "slow"],
    point: Point,
    pair: tuple[int, str],
    maybe: int | None = None,
    mapping: dict[str, int] = {},
    tree: Tree | None = None,
    unique: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    return {"name": name, "count": count, "ratio": ratio, "flag": flag, "mode": mode, "maybe": maybe, "mapping": mapping}


def run_now(coroutine: Any) -> Any:
    """Run a coroutine that never suspends (a synchronous tool's invocation)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise AssertionError("the call suspended")


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_tool_arguments_are_accepted_by_a_typed_tool(data: st.DataObject) -> None:
    schema = typed_tool.input_schema
    arguments = data.draw(tool_arguments(schema))
    check_valid(arguments, schema)
    context = ToolContext(caller=Participant(id="caller", attributes={}))
    result = run_now(typed_tool.invoke(context=context, input=JsonContent(json=arguments)))
    assert isinstance(result, JsonContent)
    assert result.json["ratio"] == float(arguments["ratio"])  # a float parameter: ints become floats
    for key in ("name", "count", "flag", "mode", "maybe", "mapping"):
        if key in arguments:
            assert result.json[key] == arguments[key]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_tool_arguments_of_a_mesh_schemas_json_schema_load_as_documents(data: st.DataObject) -> None:
    """A MeshSchema's JSON form is a JSON Schema of its documents (every property present,
    null where allowed): whatever it allows, the document model loads."""
    schema = data.draw(mesh_schemas())
    json_schema = {key: value for key, value in schema.to_json().items() if key != "$root_tag_ref"}
    document = data.draw(tool_arguments(json_schema))
    check_valid(document, json_schema)
    MeshDocument(schema=schema, initial_json=document)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"oneOf": [{"type": "string"}]}, "'oneOf'"),
        ({"allOf": [{"type": "string"}]}, "'allOf'"),
        ({"not": {"type": "string"}}, "'not'"),
        ({"type": "string", "format": "email"}, "'format'"),
        ({"type": "object", "patternProperties": {"^a": {}}}, "'patternProperties'"),
        ({"type": "object", "properties": {"deep": {"type": "object", "properties": {"x": {"if": {}}}}}}, "#/properties/deep/properties/x: .*'if'"),
        ({"$ref": "https://example.com/schema.json"}, "only references inside the schema"),
        ({"$ref": "#/$defs/missing"}, "does not point into the schema"),
        ({"type": "strng"}, "unknown type"),
        ({"type": "array", "items": [{"type": "string"}]}, "prefixItems"),
        ({"type": "number", "exclusiveMinimum": True}, "draft-4"),
        ({"type": "integer", "multipleOf": 0.5}, "multipleOf"),
        ({"enum": [1, 2], "minimum": 0}, "'enum' combined with"),
        ({"type": "object", "required": ["a"], "additionalProperties": False}, "are not properties"),
        ({"type": "object", "properties": {"a": False}, "required": ["a"]}, "no value is valid"),
        (False, "no valid value"),
        ([], "must be an object or a boolean"),
    ],
)
def test_tool_arguments_refuse_what_they_do_not_support_when_called(schema: Any, message: str) -> None:
    with pytest.raises(UnsupportedSchemaError, match=message):
        tool_arguments(schema)


# --- Hypothesis stays optional -------------------------------------------------------------

CORE = Path(meshagent_core.__file__).resolve().parent
STRATEGIES = CORE / "testing" / "strategies"


def test_only_the_strategies_import_hypothesis() -> None:
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        if STRATEGIES in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(CORE)}:{node.lineno}" for name in names if name.split(".")[0] == "hypothesis"]
    assert offenders == []


WITHOUT_HYPOTHESIS = """
import pkgutil, sys
sys.modules["hypothesis"] = None  # any `import hypothesis` now raises ImportError
import meshagent_core
for module in pkgutil.walk_packages(meshagent_core.__path__, "meshagent_core."):
    if not module.name.startswith("meshagent_core.testing.strategies"):
        __import__(module.name)
try:
    import meshagent_core.testing.strategies
except ImportError as error:
    assert "meshagent-trio[hypothesis]" in str(error), str(error)
else:
    raise AssertionError("the strategies imported without Hypothesis")
print("ok")
"""


def test_the_core_works_without_hypothesis_and_the_strategies_say_what_to_install() -> None:
    result = subprocess.run([sys.executable, "-c", WITHOUT_HYPOTHESIS], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
