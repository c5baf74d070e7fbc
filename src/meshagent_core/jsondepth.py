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
#: What the server accepts from a participant: anything it relays (attributes inside presence
#: events, a message inside `messaging.send`, a caller's arguments inside a routed call) is
#: wrapped a few levels deeper, and must still be within `MAX_JSON_DEPTH` for every receiver.
MAX_RELAYED_DEPTH = MAX_JSON_DEPTH - 16


def too_deep(limit: int) -> str:
    return f"JSON is nested more than {limit} levels deep"


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
        elif isinstance(item, msgspec.Struct):  # decoded from an object: one level, like a dict
            children = [getattr(item, name) for name in item.__struct_fields__]
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


_decode_any = msgspec.json.Decoder().decode


def check_decoded(data: bytes | bytearray | memoryview | str, value: Any, limit: int = MAX_JSON_DEPTH, *, typed: bool = False) -> Any:
    """`value`, decoded from `data`, after the depth check (`msgspec.DecodeError` if too deep).
    For a `typed` decode the whole text is checked, keys the type ignores included."""
    if _bracket_count(data) > limit:
        if typed:
            try:
                value_checked = _decode_any(data)
            except RecursionError:
                raise msgspec.DecodeError(too_deep(limit)) from None
        else:
            value_checked = value
        if json_depth_exceeds(value_checked, limit):
            raise msgspec.DecodeError(too_deep(limit))
    return value


class BoundedDecoder:
    """`msgspec.json.Decoder(type)` that refuses JSON nested past `limit` (by default
    `MAX_JSON_DEPTH`; each call may ask for a lower one)."""

    __slots__ = ("_decode", "_typed", "limit")

    def __init__(self, type: Any = Any, limit: int = MAX_JSON_DEPTH) -> None:
        self._decode = msgspec.json.Decoder(type).decode
        self._typed = type is not Any
        self.limit = limit

    def decode(self, data: bytes | bytearray | memoryview | str, limit: int | None = None) -> Any:
        limit = self.limit if limit is None else limit
        try:
            value = self._decode(data)
        except RecursionError:
            raise msgspec.DecodeError(too_deep(limit)) from None
        except UnicodeDecodeError as error:  # msgspec < 0.23, on invalid UTF-8 inside a string
            raise msgspec.DecodeError(f"invalid UTF-8 in JSON: {error.reason}") from None
        return check_decoded(data, value, limit, typed=self._typed)


_any = BoundedDecoder()


def decode_bounded(data: bytes | bytearray | memoryview | str, type: Any = None, limit: int = MAX_JSON_DEPTH) -> Any:
    """`msgspec.json.decode(data, type=type)` with the nesting limit."""
    if type is None:
        return _any.decode(data, limit)
    try:
        value = msgspec.json.decode(data, type=type)
    except RecursionError:
        raise msgspec.DecodeError(too_deep(limit)) from None
    except UnicodeDecodeError as error:  # msgspec < 0.23, on invalid UTF-8 inside a string
        raise msgspec.DecodeError(f"invalid UTF-8 in JSON: {error.reason}") from None
    return check_decoded(data, value, limit, typed=True)


def loads_bounded(data: bytes | bytearray | str, limit: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` (which also reads NaN, Infinity and lone surrogates) with the nesting limit;
    raises `ValueError` for malformed or too deeply nested JSON."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(too_deep(limit)) from None
    if _bracket_count(data) > limit and json_depth_exceeds(value, limit):
        raise ValueError(too_deep(limit))
    return value


__all__ = ["MAX_JSON_DEPTH", "MAX_RELAYED_DEPTH", "too_deep", "BoundedDecoder", "check_decoded", "decode_bounded", "json_depth_exceeds", "loads_bounded"]
