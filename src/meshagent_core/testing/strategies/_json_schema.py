"""`tool_arguments`: values valid for a JSON Schema, for the subset tool input schemas use (what
msgspec writes for a tool's typed parameters, and what is usually written by hand)."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from ._wire import INT64_MAX, INT64_MIN, json_values


class UnsupportedSchemaError(ValueError):
    """`tool_arguments` cannot generate values for this schema: a keyword (or a form of one)
    outside the supported subset, a malformed schema, or one no value can satisfy."""


#: Keywords that say nothing about validity.
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly", "writeOnly", "$schema", "$id", "$defs", "definitions"}
)
_TYPE_KEYWORDS = {
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "array": frozenset({"items", "prefixItems", "minItems", "maxItems", "uniqueItems"}),
    "string": frozenset({"minLength", "maxLength", "pattern"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}),
}
_TYPE_KEYWORDS["integer"] = _TYPE_KEYWORDS["number"]
_ALONE = frozenset({"enum", "const", "anyOf", "$ref"})  # allowed with annotations only (enum/const also with type)
_SUPPORTED = frozenset({"type"}) | _ALONE | frozenset().union(*_TYPE_KEYWORDS.values())
_TYPES = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})
#: How far past `max_depth` values may still nest (through required properties) before the
#: schema is taken to have no finite value, and how many `$ref`/`anyOf` steps may follow one
#: another without a value nesting.
_RECURSION_SLACK = 32
_MAX_HOPS = 64

_TEXT = st.characters(codec="utf-8")


def _fail(path: str, message: str) -> UnsupportedSchemaError:
    return UnsupportedSchemaError(f"{path if path.startswith('#') else '#' + path}: {message}")


def _types(schema: Mapping[str, Any]) -> list[str]:
    declared = schema.get("type")
    if declared is None:
        return []
    return list(declared) if isinstance(declared, list) else [declared]


def _resolve(root: Any, ref: str, path: str) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise _fail(path, f"$ref {ref!r}: only references inside the schema ('#/...') are supported")
    target = root
    for part in [p for p in ref[1:].split("/") if p != ""] if ref not in ("#", "#/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, Mapping) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            raise _fail(path, f"$ref {ref!r} does not point into the schema")
    return target


def _check(schema: Any, root: Any, path: str, seen: set[int]) -> None:
    """Raise `UnsupportedSchemaError` for anything the generator does not handle."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, Mapping):
        raise _fail(path, f"a schema must be an object or a boolean, not {type(schema).__name__}")
    if id(schema) in seen:
        return
    seen.add(id(schema))
    for key in schema:
        if key not in _SUPPORTED and key not in _ANNOTATIONS:
            raise _fail(path, f"unsupported JSON Schema keyword {key!r} (supported: {', '.join(sorted(_SUPPORTED))})")
    constraints = set(schema) - _ANNOTATIONS
    for key in _ALONE & constraints:
        extra = constraints - {key} - ({"type"} if key in ("enum", "const") else set())
        if extra:
            raise _fail(path, f"{key!r} combined with {sorted(extra)} is not supported")
    types = _types(schema)
    if not all(isinstance(t, str) and t in _TYPES for t in types) or ("type" in schema and not types):
        raise _fail(path, f"unknown type {schema['type']!r} (the types are {sorted(_TYPES)})")
    if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
        raise _fail(path, "enum must be a non-empty list")
    for key in ("exclusiveMinimum", "exclusiveMaximum", "minimum", "maximum", "multipleOf"):
        value = schema.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise _fail(path, f"{key} must be a finite number (the draft-4 boolean form is not supported)")
    multiple = schema.get("multipleOf")
    if multiple is not None and (multiple <= 0 or multiple != int(multiple)):
        raise _fail(path, f"multipleOf {multiple!r}: only positive whole numbers are supported")
    for key in ("minItems", "maxItems", "minLength", "maxLength"):
        value = schema.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise _fail(path, f"{key} must be a non-negative integer")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise _fail(path, "required must be a list of property names")
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping):
        raise _fail(path, "properties must be an object")
    for name, sub in properties.items():
        if sub is False and name in required:
            raise _fail(path, f"required property {name!r} has the schema false: no value is valid")
        _check(sub, root, f"{path}/properties/{name}", seen)
    additional = schema.get("additionalProperties", True)
    _check(additional, root, f"{path}/additionalProperties", seen)
    if additional is False and set(required) - set(properties):
        raise _fail(path, f"required {sorted(set(required) - set(properties))} are not properties, and additionalProperties is false")
    items = schema.get("items", True)
    if isinstance(items, list):
        raise _fail(path, "items as a list (draft 4) is not supported: use prefixItems")
    _check(items, root, f"{path}/items", seen)
    prefix = schema.get("prefixItems", [])
    if not isinstance(prefix, list):
        raise _fail(path, "prefixItems must be a list")
    for index, sub in enumerate(prefix):
        _check(sub, root, f"{path}/prefixItems/{index}", seen)
    if items is False and schema.get("minItems", 0) > len(prefix):
        raise _fail(path, "minItems is larger than prefixItems allows with items false")
    if "pattern" in schema and not isinstance(schema["pattern"], str):
        raise _fail(path, "pattern must be a string")
    if "anyOf" in schema:
        if not isinstance(schema["anyOf"], list) or not schema["anyOf"]:
            raise _fail(path, "anyOf must be a non-empty list")
        for index, sub in enumerate(schema["anyOf"]):
            _check(sub, root, f"{path}/anyOf/{index}", seen)
    if "$ref" in schema:
        _check(_resolve(root, schema["$ref"], path), root, schema["$ref"], seen)
    for defs in ("$defs", "definitions"):
        for name, sub in schema.get(defs, {}).items():
            _check(sub, root, f"{path}/{defs}/{name}", seen)


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str, pick: Any) -> tuple[float | None, bool]:
    """The tighter of an inclusive and an exclusive bound: (value, is exclusive)."""
    candidates = []
    if inclusive in schema:
        candidates.append((schema[inclusive], False))
    if exclusive in schema:
        candidates.append((schema[exclusive], True))
    if not candidates:
        return None, False
    return pick(candidates, key=lambda c: (c[0], c[1] if pick is max else not c[1]))


def _integer_range(schema: Mapping[str, Any]) -> tuple[int, int]:
    low, low_exclusive = _bound(schema, "minimum", "exclusiveMinimum", max)
    high, high_exclusive = _bound(schema, "maximum", "exclusiveMaximum", min)
    lo = INT64_MIN if low is None else math.floor(low) + 1 if low_exclusive or low != math.floor(low) else int(low)
    hi = INT64_MAX if high is None else math.ceil(high) - 1 if high_exclusive or high != math.ceil(high) else int(high)
    return lo, hi


def _numbers(schema: Mapping[str, Any], kind: str, path: str) -> st.SearchStrategy[Any]:
    lo, hi = _integer_range(schema)
    multiple = schema.get("multipleOf")
    if multiple is not None:
        m = int(multiple)
        first, last = -(-lo // m), hi // m
        if first > last:
            raise _fail(path, "no multiple of multipleOf lies within the bounds")
        return st.integers(first, last).map(lambda k: k * m)
    integers = st.integers(lo, hi) if lo <= hi else None
    if kind == "integer":
        if integers is None:
            raise _fail(path, "no integer lies within the bounds")
        return integers
    low, low_exclusive = _bound(schema, "minimum", "exclusiveMinimum", max)
    high, high_exclusive = _bound(schema, "maximum", "exclusiveMaximum", min)
    floats = st.floats(
        min_value=low, max_value=high, exclude_min=low_exclusive and low is not None,
        exclude_max=high_exclusive and high is not None, allow_nan=False, allow_infinity=False,
    )
    return floats if integers is None else integers | floats


def _strings(schema: Mapping[str, Any]) -> st.SearchStrategy[str]:
    low = schema.get("minLength", 0)
    high = schema.get("maxLength")
    if "pattern" in schema:  # JSON Schema patterns are searched for, as `from_regex` does by default
        strings = st.from_regex(schema["pattern"], alphabet=_TEXT)
        if low or high is not None:
            strings = strings.filter(lambda s: low <= len(s) and (high is None or len(s) <= high))
        return strings
    return st.text(_TEXT, min_size=low, max_size=low + 16 if high is None else high)


def _canonical(value: Any) -> Any:
    """A hashable form under which two values are equal exactly when JSON Schema says so."""
    if isinstance(value, bool) or value is None:
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, list):
        return ("l", tuple(_canonical(item) for item in value))
    return ("o", frozenset((key, _canonical(item)) for key, item in value.items()))


class _Generator:
    def __init__(self, root: Any, max_depth: int, max_items: int) -> None:
        self.root = root
        self.max_depth = max_depth
        self.max_items = max_items

    def value(self, schema: Any, depth: int, path: str, hops: int = 0) -> st.SearchStrategy[Any]:
        return st.deferred(lambda: self._value(schema, depth, path, hops))

    def _value(self, schema: Any, depth: int, path: str, hops: int) -> st.SearchStrategy[Any]:
        if schema is True or schema == {}:
            return json_values(max(0, min(2, self.max_depth - depth)))
        if schema is False:
            raise _fail(path, "the schema false has no valid value")
        if depth > self.max_depth + _RECURSION_SLACK:
            raise _fail(path, "the schema recurses through required values: it has no finite value")
        if hops > _MAX_HOPS:
            raise _fail(path, "the schema refers to itself without nesting a value")
        if "$ref" in schema:
            return self.value(_resolve(self.root, schema["$ref"], path), depth, schema["$ref"], hops + 1)
        if "anyOf" in schema:
            branches = list(enumerate(schema["anyOf"]))
            if depth >= self.max_depth:  # prefer branches that do not recurse right away
                branches = [(i, b) for i, b in branches if not (isinstance(b, Mapping) and "$ref" in b)] or branches
            return st.one_of([self.value(branch, depth, f"{path}/anyOf/{i}", hops + 1) for i, branch in branches])
        types = _types(schema)
        if "const" in schema or "enum" in schema:
            options = [schema["const"]] if "const" in schema else list(schema["enum"])
            if types:
                options = [option for option in options if _json_type(option, types)]
                if not options:
                    raise _fail(path, "no enum value has the declared type")
            return st.sampled_from(options).map(copy.deepcopy)
        if not types:  # no type: values of each type some keyword talks about, or anything
            types = [t for t in ("object", "array", "string", "number") if _TYPE_KEYWORDS[t] & set(schema)]
            if not types:
                return json_values(max(0, min(2, self.max_depth - depth)))
        return st.one_of([self._typed(schema, kind, depth, path) for kind in types])

    def _typed(self, schema: Mapping[str, Any], kind: str, depth: int, path: str) -> st.SearchStrategy[Any]:
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind in ("integer", "number"):
            return _numbers(schema, kind, path)
        if kind == "string":
            return _strings(schema)
        if kind == "array":
            return self._array(schema, depth, path)
        return self._object(schema, depth, path)

    def _array(self, schema: Mapping[str, Any], depth: int, path: str) -> st.SearchStrategy[list[Any]]:
        prefix = [self.value(sub, depth + 1, f"{path}/prefixItems/{i}") for i, sub in enumerate(schema.get("prefixItems", []))]
        items = schema.get("items", True)
        rest = None if items is False else self.value(items, depth + 1, f"{path}/items")
        low = schema.get("minItems", 0)
        high = schema.get("maxItems", max(low, len(prefix)) + self.max_items)
        if rest is None:
            high = min(high, len(prefix))
        if depth >= self.max_depth:
            high = min(high, low)  # as short as allowed, so recursion ends
        if low > high:
            raise _fail(path, "minItems is larger than the array can be")
        unique = schema.get("uniqueItems", False) is True

        @st.composite
        def array(draw: st.DrawFn) -> list[Any]:
            size = draw(st.integers(low, high))
            head = [draw(strategy) for strategy in prefix[:size]]
            if size <= len(head):
                return head
            assert rest is not None
            if not unique:
                return head + draw(st.lists(rest, min_size=size - len(head), max_size=size - len(head)))
            taken = {_canonical(item) for item in head}
            tail = draw(
                st.lists(rest.filter(lambda v: _canonical(v) not in taken), min_size=size - len(head), max_size=size - len(head), unique_by=_canonical)
            )
            return head + tail

        strategy = array()
        if unique and prefix:
            strategy = strategy.filter(lambda value: len({_canonical(v) for v in value}) == len(value))
        return strategy

    def _object(self, schema: Mapping[str, Any], depth: int, path: str) -> st.SearchStrategy[dict[str, Any]]:
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = list(dict.fromkeys(schema.get("required", [])))
        additional = schema.get("additionalProperties")
        deep = depth >= self.max_depth

        def property_schema(name: str) -> Any:
            if name in properties:
                return properties[name]
            return additional if isinstance(additional, Mapping) else True

        values = {name: self.value(property_schema(name), depth + 1, f"{path}/properties/{name}") for name in required}
        optional = [] if deep else [name for name in properties if name not in values and properties[name] is not False]
        extra = None
        if not deep and (additional is True or isinstance(additional, Mapping)):
            extra = st.dictionaries(
                st.text(_TEXT, max_size=8).filter(lambda key: key not in properties),
                self.value(property_schema(""), depth + 1, f"{path}/additionalProperties"),
                max_size=2,
            )

        @st.composite
        def obj(draw: st.DrawFn) -> dict[str, Any]:
            out = {name: draw(strategy) for name, strategy in values.items()}
            for name in optional:
                if draw(st.booleans()):
                    out[name] = draw(self.value(properties[name], depth + 1, f"{path}/properties/{name}"))
            if extra is not None:
                for key, value in draw(extra).items():
                    out.setdefault(key, value)
            return out

        return obj()


def _json_type(value: Any, types: list[str]) -> bool:
    if value is None:
        return "null" in types
    if isinstance(value, bool):
        return "boolean" in types
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return bool({"integer", "number"} & set(types))
    if isinstance(value, float):
        return "number" in types
    if isinstance(value, str):
        return "string" in types
    if isinstance(value, list):
        return "array" in types
    return "object" in types


def tool_arguments(json_schema: Mapping[str, Any] | bool, *, max_depth: int = 3, max_items: int = 3) -> st.SearchStrategy[Any]:
    """Values valid for `json_schema` (a tool's input schema): the argument objects a caller
    may send.

    Supported: `type` (one or a list), `enum`, `const`, `anyOf`, local `$ref` (`#/$defs/...`,
    recursion included) with `$defs`/`definitions`; objects (`properties`, `required`,
    `additionalProperties` true, false or a schema; optional properties sometimes present,
    extra keys only when `additionalProperties` allows them explicitly); arrays (`items`,
    `prefixItems`, `minItems`, `maxItems`, `uniqueItems`); strings (`minLength`, `maxLength`,
    `pattern`); numbers and integers (`minimum`, `maximum`, `exclusiveMinimum`,
    `exclusiveMaximum`, whole-number `multipleOf`); `null`, booleans; annotations (`title`,
    `description`, `default`, `examples`, ...) are ignored. This covers the schemas msgspec
    writes for a tool's typed parameters (`@tool`). Anything else (`oneOf`, `allOf`, `not`,
    `format`, `patternProperties`, `if`, remote `$ref`, ...) raises `UnsupportedSchemaError`
    when this function is called, naming the keyword and where it is.

    Below `max_depth` levels optional properties are left out and arrays are as short as
    allowed; arrays and extra properties hold at most `max_items` values beyond the required.

        @given(tool_arguments(my_tool.input_schema))
        def test_my_tool_accepts_any_valid_arguments(arguments):
            result = call_my_tool(arguments)      # must not raise a validation error
    """
    _check(json_schema, json_schema, "", set())
    if json_schema is False:
        raise _fail("", "the schema false has no valid value")
    return _Generator(json_schema, max_depth, max_items).value(json_schema, 0, "")


__all__ = ["UnsupportedSchemaError", "tool_arguments"]
