"""MeshSchema (protocol/documents.md §1): the element types a collaborative document may contain.

A schema is a set of element types, each named by its tag, plus the root tag. An element
type has value properties (attributes holding a string, number, boolean or null) and at
most one child property (the list of its child elements and the tags allowed in it).

The JSON form is the official one (protocol/documents.md §1.2): a self-contained JSON Schema with
`$root_tag_ref` and one `$defs` entry per element type. Unlike the official reader,
`from_json` keeps `enum`, so `to_json(from_json(x)) == x` for every schema it accepts.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping, Sequence

SimpleValue = Literal["string", "number", "boolean", "null"]
SIMPLE_TYPES: frozenset[str] = frozenset(("string", "number", "boolean", "null"))
_DEF_PREFIX = "#/$defs/"


class MeshSchemaException(Exception):
    """A schema that cannot be built or read (an unknown child tag, malformed JSON)."""


class MeshSchemaValidationException(MeshSchemaException):
    """A schema that breaks one of the protocol/documents.md §1.4 rules."""


class ElementProperty:
    """A named property of an element type."""

    def __init__(self, *, name: str, description: str | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise MeshSchemaValidationException("a property name must be a non-empty string")
        if name == "$id":
            raise MeshSchemaValidationException("'$id' is reserved for element ids")
        self._name = name
        self._description = description

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str | None:
        return self._description

    def validate(self, schema: "MeshSchema") -> None:
        pass

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def _with_description(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._description is not None:
            body["description"] = self._description
        return body


#: Yjs stores integers as signed 64-bit values; pycrdt aborts (a Rust panic, not an
#: Exception) on anything wider, and on strings that are not valid UTF-8.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _storable(value: Any) -> bool:
    """Whether pycrdt can store `value` as an attribute at all."""
    if isinstance(value, int) and not isinstance(value, bool):
        return INT64_MIN <= value <= INT64_MAX
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


class ValueProperty(ElementProperty):
    """An attribute holding one simple value (`type`), optionally limited to `enum`."""

    def __init__(
        self,
        *,
        name: str,
        type: SimpleValue,
        description: str | None = None,
        enum: list[Any] | None = None,
        required: bool = False,
    ) -> None:
        super().__init__(name=name, description=description)
        if type not in SIMPLE_TYPES:
            raise MeshSchemaValidationException(
                f"property {name!r}: type {type!r} is not one of {sorted(SIMPLE_TYPES)}"
            )
        self._type: SimpleValue = type
        self._enum = None if enum is None else list(enum)
        self._required = required

    @property
    def type(self) -> SimpleValue:
        return self._type

    @property
    def enum(self) -> list[Any] | None:
        return self._enum

    @property
    def required(self) -> bool:
        return self._required

    def accepts(self, value: Any) -> bool:
        """Whether `value` may be stored in this attribute. `None` is always accepted: it is
        how a nullable attribute is cleared, and the official model writes it for any one."""
        if value is None:
            return True
        if not _storable(value):
            return False
        if self._enum is not None:
            return any(_same_value(value, allowed) for allowed in self._enum)
        if self._type == "string":
            return isinstance(value, str)
        if self._type == "number":
            return (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
        if self._type == "boolean":
            return isinstance(value, bool)
        return False  # "null": only None

    def to_json(self) -> dict[str, Any]:
        if self._enum is not None:
            body: dict[str, Any] = {"type": self._type, "enum": list(self._enum)}
        elif self._required:
            body = {"type": self._type}
        else:
            body = {"type": [self._type, "null"]}
        return self._with_description(body)


class ChildProperty(ElementProperty):
    """The list of child elements of an element type and the tags allowed in it."""

    def __init__(
        self,
        *,
        name: str,
        child_tag_names: list[str],
        description: str | None = None,
        ordered: bool = False,
    ) -> None:
        super().__init__(name=name, description=description)
        if not child_tag_names:
            # The official reader cannot parse an empty list back (protocol/documents.md §1.3).
            raise MeshSchemaValidationException(
                f"child property {name!r} must allow at least one tag"
            )
        self._child_tag_names = list(child_tag_names)
        self._ordered = ordered

    @property
    def child_tag_names(self) -> list[str]:
        return list(self._child_tag_names)

    @property
    def ordered(self) -> bool:
        return self._ordered

    def is_tag_allowed(self, tag_name: str) -> bool:
        return tag_name in self._child_tag_names

    def validate(self, schema: "MeshSchema") -> None:
        for tag in self._child_tag_names:
            if tag not in schema.elements_by_tag_name:
                raise MeshSchemaException(
                    f"child property {self.name!r} allows {tag!r}, which is not an element type"
                )

    def to_json(self) -> dict[str, Any]:
        refs = [{"$ref": _DEF_PREFIX + tag} for tag in self._child_tag_names]
        if self._ordered:
            body: dict[str, Any] = {"type": "array", "prefixItems": refs, "items": False}
        else:
            body = {"type": "array", "items": {"anyOf": refs}}
        return self._with_description(body)


class ElementType:
    """One element type: its tag, description and properties (in declaration order)."""

    def __init__(
        self,
        *,
        tag_name: str,
        properties: Sequence[ElementProperty],
        description: str | None = None,
    ) -> None:
        if not isinstance(tag_name, str) or not tag_name:
            raise MeshSchemaValidationException("a tag name must be a non-empty string")
        self._tag_name = tag_name
        self._description = description
        self._properties = list(properties)
        self._by_name: dict[str, ElementProperty] = {}
        self._child_property: ChildProperty | None = None
        self._value_properties: dict[str, ValueProperty] = {}
        for prop in self._properties:
            if prop.name in self._by_name:
                raise MeshSchemaValidationException(
                    f"element {tag_name!r}: duplicate property {prop.name!r}"
                )
            self._by_name[prop.name] = prop
            if isinstance(prop, ValueProperty):
                self._value_properties[prop.name] = prop
            if isinstance(prop, ChildProperty):
                if self._child_property is not None:
                    raise MeshSchemaValidationException(
                        f"element {tag_name!r}: only one child property is allowed"
                    )
                self._child_property = prop

    @property
    def tag_name(self) -> str:
        return self._tag_name

    @property
    def description(self) -> str | None:
        return self._description

    @property
    def properties(self) -> list[ElementProperty]:
        return list(self._properties)

    @property
    def child_property(self) -> ChildProperty | None:
        return self._child_property

    @property
    def child_property_name(self) -> str | None:
        return None if self._child_property is None else self._child_property.name

    @property
    def value_properties(self) -> dict[str, ValueProperty]:
        """The value properties by name (do not modify)."""
        return self._value_properties

    def property(self, name: str) -> ElementProperty | None:
        return self._by_name.get(name)

    def value_property(self, name: str) -> ValueProperty | None:
        prop = self._by_name.get(name)
        return prop if isinstance(prop, ValueProperty) else None

    def validate(self, schema: "MeshSchema") -> None:
        for prop in self._properties:
            prop.validate(schema)

    def to_json(self) -> dict[str, Any]:
        wrapper: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "required": [self._tag_name],
            "properties": {
                self._tag_name: {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [p.name for p in self._properties],
                    "properties": {p.name: p.to_json() for p in self._properties},
                }
            },
        }
        if self._description is not None:
            wrapper["description"] = self._description
        return wrapper

    @staticmethod
    def from_json(wrapper: Mapping[str, Any]) -> "ElementType":
        outer = _expect_mapping(wrapper.get("properties"), "an element's 'properties'")
        if len(outer) != 1:
            raise MeshSchemaException("an element wrapper must name exactly one tag")
        ((tag_name, body),) = outer.items()
        body = _expect_mapping(body, f"element {tag_name!r}")
        props_json = _expect_mapping(body.get("properties", {}), f"{tag_name!r} properties")
        properties: list[ElementProperty] = []
        for name, prop in props_json.items():
            prop = _expect_mapping(prop, f"property {name!r}")
            properties.append(_property_from_json(name, prop))
        description = wrapper.get("description")
        return ElementType(tag_name=tag_name, properties=properties, description=description)


def _property_from_json(name: str, prop: Mapping[str, Any]) -> ElementProperty:
    description = prop.get("description")
    kind = prop.get("type")
    if kind == "array":
        items = prop.get("items")
        if isinstance(items, Mapping) and "anyOf" in items:
            refs, ordered = items["anyOf"], False
        elif "prefixItems" in prop:
            refs, ordered = prop["prefixItems"], True
        else:
            raise MeshSchemaException(f"child property {name!r} has neither items.anyOf nor prefixItems")
        if not isinstance(refs, list):
            raise MeshSchemaException(f"child property {name!r}: the allowed tags must be a list")
        tags = [_tag_from_ref(ref, name) for ref in refs]
        return ChildProperty(name=name, child_tag_names=tags, description=description, ordered=ordered)
    if isinstance(kind, list):
        if not kind or not isinstance(kind[0], str):
            raise MeshSchemaException(f"property {name!r}: an empty type list")
        return ValueProperty(name=name, type=kind[0], description=description, required=False)  # type: ignore[arg-type]
    if not isinstance(kind, str):
        raise MeshSchemaException(f"property {name!r} has no type")
    enum = prop.get("enum")
    if enum is not None and not isinstance(enum, list):
        raise MeshSchemaException(f"property {name!r}: enum must be a list")
    return ValueProperty(name=name, type=kind, description=description, enum=enum, required=True)  # type: ignore[arg-type]


def _tag_from_ref(ref: Any, prop_name: str) -> str:
    if not isinstance(ref, Mapping) or not isinstance(ref.get("$ref"), str):
        raise MeshSchemaException(f"child property {prop_name!r}: every allowed tag must be a $ref")
    target: str = ref["$ref"]
    if not target.startswith(_DEF_PREFIX):
        raise MeshSchemaException(f"child property {prop_name!r}: $ref {target!r} is not in #/$defs/")
    return target[len(_DEF_PREFIX):]


def _expect_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MeshSchemaException(f"{what} must be an object")
    return value


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


class MeshSchema:
    """A document schema: element types and the root tag (protocol/documents.md §1)."""

    def __init__(self, *, root_tag_name: str, elements: Sequence[ElementType]) -> None:
        self._root_tag_name = root_tag_name
        self._elements = list(elements)
        self.elements_by_tag_name: dict[str, ElementType] = {}
        for element in self._elements:
            if element.tag_name in self.elements_by_tag_name:
                raise MeshSchemaValidationException(
                    f"tag {element.tag_name!r} is defined more than once"
                )
            self.elements_by_tag_name[element.tag_name] = element
        if root_tag_name not in self.elements_by_tag_name:
            raise MeshSchemaValidationException(
                f"root tag {root_tag_name!r} is not one of the element types"
            )
        self.validate()

    @property
    def root(self) -> ElementType:
        return self.elements_by_tag_name[self._root_tag_name]

    @property
    def root_tag_name(self) -> str:
        return self._root_tag_name

    @property
    def elements(self) -> list[ElementType]:
        return list(self._elements)

    def element(self, name: str) -> ElementType:
        try:
            return self.elements_by_tag_name[name]
        except KeyError:
            raise MeshSchemaException(f"{name!r} is not an element type of this schema") from None

    def validate(self) -> None:
        for element in self._elements:
            element.validate(self)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"$root_tag_ref": _DEF_PREFIX + self._root_tag_name}
        out.update(self.root.to_json())
        out["$defs"] = {e.tag_name: e.to_json() for e in self._elements}
        return out

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "MeshSchema":
        data = _expect_mapping(data, "a MeshSchema")
        ref = data.get("$root_tag_ref")
        if not isinstance(ref, str) or not ref.startswith(_DEF_PREFIX):
            raise MeshSchemaException("a MeshSchema needs '$root_tag_ref': '#/$defs/<tag>'")
        defs = _expect_mapping(data.get("$defs"), "'$defs'")
        elements = [ElementType.from_json(_expect_mapping(w, f"$defs.{k}")) for k, w in defs.items()]
        return MeshSchema(root_tag_name=ref[len(_DEF_PREFIX):], elements=elements)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MeshSchema) and self.to_json() == other.to_json()

    def __hash__(self) -> int:  # pragma: no cover - schemas are not used as keys
        return id(self)


__all__ = [
    "ChildProperty",
    "ElementProperty",
    "ElementType",
    "MeshSchema",
    "MeshSchemaException",
    "MeshSchemaValidationException",
    "SimpleValue",
    "ValueProperty",
]
