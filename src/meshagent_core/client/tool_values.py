"""What a hosted tool receives and returns: the context it runs in, the input and output specs
derived from its signature, and the conversion of values to and from content
(protocol/room-apis.md §6.4). `tools` builds tools on it; `hosting` runs them in a room."""

from __future__ import annotations

import inspect
import types
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any, Callable, Mapping, Union, get_args, get_origin, get_type_hints

import msgspec

from ..content import (
    BinaryContent,
    Content,
    ControlContent,
    EmptyContent,
    FileContent,
    JsonContent,
    LinkContent,
    TextContent,
)
from ..errors import ErrorCode, RoomException
from ..toolkits.agents import ToolContentSpec
from .participants import Participant


class InvalidToolDataException(RoomException):
    """Input or output that does not fit the tool's declaration (code 1002; after a stream
    opened it closes the stream with status 1007)."""

    def __init__(self, message: str, code: int | None = ErrorCode.INVALID_REQUEST, status_code: int = 400) -> None:
        super().__init__(message, code=code, status_code=status_code)


# --- the context a tool runs in --------------------------------------------------------------


class ToolContext:
    """Who called: `caller` (and `on_behalf_of`), plus `emit(event)` to send a progress event
    (a JSON object with its own `type`) to the caller while the tool runs."""

    def __init__(
        self,
        *,
        caller: Participant,
        on_behalf_of: Participant | None = None,
        event_handler: Callable[[dict[str, Any]], None] | None = None,
        tool_call_id: str | None = None,
    ) -> None:
        self._caller = caller
        self._on_behalf_of = on_behalf_of
        self._event_handler = event_handler
        self.tool_call_id = tool_call_id

    @property
    def caller(self) -> Participant:
        return self._caller

    @property
    def on_behalf_of(self) -> Participant | None:
        return self._on_behalf_of

    def emit(self, event: dict[str, Any]) -> None:
        if self._event_handler is not None:
            self._event_handler(event)


class RoomToolContext(ToolContext):
    """A `ToolContext` that also gives the hosting participant's `room`."""

    def __init__(
        self,
        *,
        room: Any,
        caller: Participant,
        on_behalf_of: Participant | None = None,
        event_handler: Callable[[dict[str, Any]], None] | None = None,
        tool_call_id: str | None = None,
    ) -> None:
        super().__init__(caller=caller, on_behalf_of=on_behalf_of, event_handler=event_handler, tool_call_id=tool_call_id)
        self._room = room

    @property
    def room(self) -> Any:
        return self._room


# --- type analysis ---------------------------------------------------------------------------

_CONTENT_KINDS: dict[type, str] = {
    JsonContent: "json",
    TextContent: "text",
    FileContent: "file",
    BinaryContent: "binary",
    LinkContent: "link",
    EmptyContent: "empty",
}
ALL_CONTENT_KINDS = ["json", "text", "file", "binary", "link", "empty"]
_STREAM_ORIGINS = (AsyncIterable, AsyncIterator, AsyncGenerator)
_CONTENT_CLASSES: tuple[type, ...] = tuple(Content.__args__)  # type: ignore[attr-defined]


def _union_args(annotation: Any) -> tuple[Any, ...] | None:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return None


def _content_kinds(annotation: Any) -> list[str] | None:
    """The content types an annotation made of Content classes stands for (None: not one)."""
    if annotation is Content:
        return list(ALL_CONTENT_KINDS)
    args = _union_args(annotation)
    members = args if args is not None else (annotation,)
    kinds: list[str] = []
    for member in members:
        if member is type(None):
            kinds.append("empty")
        elif isinstance(member, type) and member in _CONTENT_KINDS:
            kinds.append(_CONTENT_KINDS[member])
        else:
            return None
    return list(dict.fromkeys(kinds))


def _stream_item(annotation: Any) -> tuple[bool, Any]:
    """(True, item type) for `AsyncIterable[X]` / `AsyncIterator[X]` / `AsyncGenerator[X, …]`."""
    if get_origin(annotation) in _STREAM_ORIGINS:
        args = get_args(annotation)
        return True, args[0] if args else Any
    return False, None


def _is_context(name: str, annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, ToolContext):
        return True
    return name == "context" and annotation is inspect.Parameter.empty


def _schema_of(annotation: Any) -> dict[str, Any] | None:
    """A JSON schema for a type (its `$defs` kept inline), or None when msgspec has none."""
    try:
        schema = msgspec.json.schema(annotation)
    except (TypeError, ValueError):
        return None
    ref = schema.get("$ref")
    defs = dict(schema.get("$defs", {}))
    if isinstance(ref, str) and ref.startswith("#/$defs/") and set(schema) <= {"$ref", "$defs"}:
        name = ref[len("#/$defs/") :]
        referenced = defs.get(name)
        # Inline the top-level struct unless a definition refers back to it.
        if referenced is not None and f'"{ref}"' not in msgspec.json.encode(defs).decode():
            inlined = {k: v for k, v in referenced.items() if k != "title"}
            del defs[name]
            if defs:
                inlined["$defs"] = defs
            return inlined
    return schema


def _value_spec(annotation: Any, *, stream: bool) -> ToolContentSpec | None:
    """The content spec of values of type `annotation` (None when it says nothing)."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return None
    if annotation is None or annotation is type(None):
        return ToolContentSpec(types=["empty"], stream=stream)
    if annotation is str:
        return ToolContentSpec(types=["text"], stream=stream)
    if annotation in (bytes, bytearray):
        return ToolContentSpec(types=["file"], stream=stream)
    kinds = _content_kinds(annotation)
    if kinds is not None:
        return ToolContentSpec(types=kinds, stream=stream)
    args = _union_args(annotation)
    types_ = ["json", "empty"] if args is not None and type(None) in args else ["json"]
    return ToolContentSpec(types=types_, stream=stream, schema=_schema_of(annotation))


def output_spec(annotation: Any) -> ToolContentSpec | None:
    is_stream, item = _stream_item(annotation)
    if is_stream:
        return _value_spec(item, stream=True) or ToolContentSpec(types=list(ALL_CONTENT_KINDS), stream=True)
    return _value_spec(annotation, stream=False)


class Signature:
    """What a tool function's parameters mean: JSON arguments (a Struct), the context
    parameter, or a single streamed / content input."""

    def __init__(self, fn: Callable[..., Any], struct_name: str) -> None:
        try:
            hints = get_type_hints(fn, include_extras=False)
        except Exception as error:  # an annotation that does not resolve at module level
            raise TypeError(f"cannot resolve the type hints of {fn!r}: {error}") from None
        self.context_parameter: str | None = None
        self.content_parameter: str | None = None
        self.content_annotation: Any = None
        self.stream_item: Any = None
        self.return_annotation: Any = hints.get("return", inspect.Parameter.empty)
        fields: list[tuple[Any, ...]] = []
        stream_parameter: str | None = None
        parameters = list(inspect.signature(fn).parameters.items())
        self.bound_parameter: str | None = None
        if parameters and parameters[0][0] == "self":
            self.bound_parameter = parameters.pop(0)[0]
        for name, parameter in parameters:
            annotation = hints.get(name, inspect.Parameter.empty)
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
                raise TypeError(f"tool function {fn.__name__!r}: parameter {name!r} must be a plain or keyword parameter")
            if _is_context(name, annotation):
                self.context_parameter = name
                continue
            is_stream, item = _stream_item(annotation)
            if is_stream:
                stream_parameter = name
                self.stream_item = item
                continue
            if _content_kinds(annotation) is not None and annotation is not type(None):
                self.content_parameter = name
                self.content_annotation = annotation
                continue
            field_type = Any if annotation is inspect.Parameter.empty else annotation
            if parameter.default is inspect.Parameter.empty:
                fields.append((name, field_type))
            else:
                fields.append((name, field_type, parameter.default))
        if stream_parameter is not None or self.content_parameter is not None:
            if fields or (stream_parameter is not None and self.content_parameter is not None):
                raise TypeError(
                    f"tool function {fn.__name__!r}: a streamed or content input must be the only input parameter"
                )
            self.content_parameter = self.content_parameter or stream_parameter
        self.streamed_input = stream_parameter is not None
        self.field_names = [field[0] for field in fields]
        self.strict = all(len(field) == 2 for field in fields)
        self.arguments_type: Any = msgspec.defstruct(struct_name, fields, forbid_unknown_fields=True, kw_only=True)
        self.input_schema: dict[str, Any] = _schema_of(self.arguments_type) or {"type": "object"}

    def input_spec(self) -> ToolContentSpec | None:
        if self.streamed_input:
            return _value_spec(self.stream_item, stream=True) or ToolContentSpec(types=list(ALL_CONTENT_KINDS), stream=True)
        if self.content_parameter is not None:
            return _value_spec(self.content_annotation, stream=False)
        return None

    def decode_arguments(self, tool_name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        try:
            decoded = msgspec.convert(dict(arguments), self.arguments_type)
        except msgspec.ValidationError as error:
            raise InvalidToolDataException(f"invalid arguments for tool '{tool_name}': {error}") from None
        return {name: getattr(decoded, name) for name in self.field_names}


# --- values <-> content ----------------------------------------------------------------------


def content_kind(content: Content) -> str:
    return _CONTENT_KINDS.get(type(content), getattr(type(content), "__struct_config__").tag)


def to_tool_content(tool_name: str, value: Any) -> Content:
    """A tool's return value (or streamed item) as content."""
    if isinstance(value, _CONTENT_CLASSES):
        if isinstance(value, ControlContent):
            raise InvalidToolDataException(f"tool '{tool_name}' cannot return control content")
        return value  # type: ignore[return-value]
    if value is None:
        return EmptyContent()
    if isinstance(value, str):
        return TextContent(text=value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return FileContent(name=tool_name, mime_type="application/octet-stream", data=bytes(value))
    try:
        return JsonContent(json=msgspec.to_builtins(value))
    except TypeError as error:
        raise InvalidToolDataException(f"tool '{tool_name}' produced a value that is not JSON: {error}") from None


def from_tool_content(tool_name: str, content: Content, annotation: Any) -> Any:
    """An input content (or streamed input chunk) as a value of `annotation`."""
    kinds = _content_kinds(annotation) if annotation not in (Any, inspect.Parameter.empty) else list(ALL_CONTENT_KINDS)
    if kinds is not None:
        if content_kind(content) not in kinds:
            raise InvalidToolDataException(
                f"tool '{tool_name}' input content type '{content_kind(content)}' is not allowed ({', '.join(kinds)})"
            )
        return content
    if annotation is str:
        if not isinstance(content, TextContent):
            raise InvalidToolDataException(f"tool '{tool_name}' expects text input, not '{content_kind(content)}'")
        return content.text
    if annotation in (bytes, bytearray):
        if not isinstance(content, (FileContent, BinaryContent)):
            raise InvalidToolDataException(f"tool '{tool_name}' expects file input, not '{content_kind(content)}'")
        return content.data
    if isinstance(content, EmptyContent):
        value: Any = None
    elif isinstance(content, JsonContent):
        value = content.json
    else:
        raise InvalidToolDataException(f"tool '{tool_name}' expects json input, not '{content_kind(content)}'")
    try:
        return msgspec.convert(value, annotation)
    except msgspec.ValidationError as error:
        raise InvalidToolDataException(f"invalid input for tool '{tool_name}': {error}") from None


async def mapped(iterable: AsyncIterable[Any], function: Callable[[Any], Any]) -> AsyncIterator[Any]:
    """`function` over an async iterable; closes the source when it is closed itself."""
    iterator = iterable.__aiter__()
    try:
        while True:
            try:
                item = await iterator.__anext__()
            except StopAsyncIteration:
                return
            yield function(item)
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def json_arguments(tool_name: str, input: Content) -> Mapping[str, Any]:
    if isinstance(input, EmptyContent):
        return {}
    if isinstance(input, JsonContent) and isinstance(input.json, dict):
        return input.json
    raise InvalidToolDataException(f"tool '{tool_name}' requires JSON object input")


__all__ = [
    "ALL_CONTENT_KINDS",
    "InvalidToolDataException",
    "RoomToolContext",
    "Signature",
    "ToolContext",
    "content_kind",
    "from_tool_content",
    "json_arguments",
    "mapped",
    "output_spec",
    "to_tool_content",
]
