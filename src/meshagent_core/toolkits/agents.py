"""The agents API's description shapes (protocol/room-apis.md §6): what a hosted tool takes and returns,
as `room.register_toolkit` sends it and `room.list_toolkits` answers it. One definition for
the client that hosts tools and the one that lists and calls them."""

from __future__ import annotations

from typing import Any, Literal, Mapping

import msgspec

ToolContentType = Literal["binary", "json", "text", "file", "link", "empty"]

#: The content types a tool's `input_spec` / `output_spec` may name.
SUPPORTED_TOOL_CONTENT_TYPES: frozenset[str] = frozenset({"binary", "json", "text", "file", "link", "empty"})


class ToolContentSpec(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a tool takes or returns: content `types`, whether it is a `stream`, and an optional
    JSON `schema` of its JSON content."""

    types: list[str]
    stream: bool = False
    schema: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.types, list) or not all(isinstance(t, str) for t in self.types):
            raise TypeError("types must be a list of supported content type strings")
        if not self.types:
            raise ValueError("types must include at least one content type")
        unsupported = sorted({t for t in self.types if t not in SUPPORTED_TOOL_CONTENT_TYPES})
        if unsupported:
            raise ValueError(f"unsupported tool content type(s): {', '.join(unsupported)}")
        if not isinstance(self.stream, bool):
            raise TypeError("stream must be a boolean")
        if self.schema is not None and not isinstance(self.schema, dict):
            raise TypeError("schema must be an object when provided")

    def includes(self, content_type: str) -> bool:
        return content_type in self.types

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"types": list(self.types), "stream": self.stream}
        if self.schema is not None:
            value["schema"] = self.schema
        return value

    @staticmethod
    def from_json(value: Mapping[str, Any] | None) -> "ToolContentSpec | None":
        """Parse a spec as `room.list_toolkits` sends it (`None` stays `None`)."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise TypeError("tool content type descriptor must be an object")
        types = value.get("types")
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise TypeError("tool content type descriptor requires a string[] 'types'")
        stream = value.get("stream", False)
        if not isinstance(stream, bool):
            raise TypeError("tool content type descriptor 'stream' must be a boolean")
        schema = value.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise TypeError("tool content type descriptor 'schema' must be an object")
        return ToolContentSpec(types=list(types), stream=stream, schema=schema)


__all__ = ["SUPPORTED_TOOL_CONTENT_TYPES", "ToolContentSpec", "ToolContentType"]
