"""JSON decoding with a nesting limit.

A decoder that meets JSON nested past the interpreter's recursion limit raises
`RecursionError`, which is not a decode error and, unhandled, takes down whatever called it.
Every JSON decode of untrusted bytes goes through `BoundedDecoder` (or `decode_bounded`): JSON
nested deeper than `MAX_JSON_DEPTH` raises `msgspec.DecodeError`, the same error as malformed
JSON, so each caller's existing handling of bad input covers it.

The depth is checked exactly only when the bytes hold more than `MAX_JSON_DEPTH` brackets
(a count at C speed); everything else costs one comparison.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

#: Deepest nesting accepted (an object or array counts one level). Far more than any message
#: of the protocol needs, and far enough below the recursion limit that what was decoded can
#: be encoded again from inside a handler.
MAX_JSON_DEPTH = 256

TOO_DEEP = f"JSON is nested more than {MAX_JSON_DEPTH} levels deep"


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `value` (decoded JSON: dicts, lists, msgspec Structs) nests deeper than `limit`,
    found without recursion."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        elif isinstance(item, msgspec.Struct):
            children = [getattr(item, name) for name in item.__struct_fields__]
            depth -= 1  # a Struct is the object it was decoded from, counted by its fields' level
        else:
            continue
        depth += 1
        if depth > limit:
            return True
        stack.extend((child, depth) for child in children)
    return False


def _bracket_count(data: bytes | bytearray | memoryview | str) -> int:
    if isinstance(data, memoryview):
        data = data.tobytes()
    if isinstance(data, str):
        return data.count("[") + data.count("{")
    return data.count(b"[") + data.count(b"{")


def check_decoded(data: bytes | bytearray | memoryview | str, value: Any) -> Any:
    """`value`, decoded from `data`, after the depth check (`msgspec.DecodeError` if too deep)."""
    if _bracket_count(data) > MAX_JSON_DEPTH and json_depth_exceeds(value):
        raise msgspec.DecodeError(TOO_DEEP)
    return value


class BoundedDecoder:
    """`msgspec.json.Decoder(type)` that refuses JSON nested past `MAX_JSON_DEPTH`."""

    __slots__ = ("_decode",)

    def __init__(self, type: Any = Any) -> None:
        self._decode = msgspec.json.Decoder(type).decode

    def decode(self, data: bytes | bytearray | memoryview | str) -> Any:
        try:
            value = self._decode(data)
        except RecursionError:
            raise msgspec.DecodeError(TOO_DEEP) from None
        return check_decoded(data, value)


_any = BoundedDecoder()


def decode_bounded(data: bytes | bytearray | memoryview | str, type: Any = None) -> Any:
    """`msgspec.json.decode(data, type=type)` with the nesting limit."""
    if type is None:
        return _any.decode(data)
    try:
        value = msgspec.json.decode(data, type=type)
    except RecursionError:
        raise msgspec.DecodeError(TOO_DEEP) from None
    return check_decoded(data, value)


def loads_bounded(data: bytes | bytearray | str) -> Any:
    """`json.loads` (which also reads NaN, Infinity and lone surrogates) with the nesting limit;
    raises `ValueError` for malformed or too deeply nested JSON."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    if _bracket_count(data) > MAX_JSON_DEPTH and json_depth_exceeds(value):
        raise ValueError(TOO_DEEP)
    return value


__all__ = ["MAX_JSON_DEPTH", "BoundedDecoder", "check_decoded", "decode_bounded", "json_depth_exceeds", "loads_bounded"]
