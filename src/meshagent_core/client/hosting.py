"""Toolkits a participant hosts in a room: tools declared as typed Python functions, hosted with
an async context manager (protocol/room-apis.md §6.4).

    @tool
    async def add(a: int, b: int = 1) -> int:
        "Add two numbers."
        return a + b

    async with room.agents.host(Toolkit(name="math", tools=[add])):
        ...  # other participants can call room.agents.invoke_tool(toolkit="math", tool="add", …)

A tool's input schema comes from its signature (msgspec builds a Struct of the parameters and
its JSON schema); arguments are decoded into the typed parameters, and input that does not fit
is answered with an `error` of code 1002 before the tool runs. A parameter annotated with
`ToolContext` (or named `context`) receives the call's context. What a tool returns becomes the
answer: `None` → `empty`, `str` → `text`, `bytes` → `file`, a `Content` as it is, anything else
→ `json`. An async generator tool (or one returning an async iterable) streams its items:
`control/open`, one chunk per item, `control/close`. A tool whose only parameter is an
`AsyncIterable[X]` receives the caller's streamed input, each chunk decoded into `X`; a tool
whose only parameter is a `Content` type (e.g. `FileContent`) receives the input content.

Failures follow the official host (`meshagent-tools`): before the answer, an `error` content
(code 1002 for invalid data, the `RoomException`'s code, or none); after a stream opened,
invalid data closes it with status 1007 and the message, any other exception sends an `error`
chunk and closes normally. A failing tool never affects the room or other calls.

Calls are answered concurrently, each in its own task of a task group that the hosting owns
(itself a task of the room); leaving the `async with` unregisters the toolkit, then cancels the
calls still running (their callers get an `error`, code 1008). After a reconnect the toolkit is
registered again.

Public names mirror the official `meshagent.tools` package (`Toolkit`, `tool`,
`FunctionTool`, `ContentTool`, `ToolContext`, `RoomToolContext`, `start_hosted_toolkit`);
schemas come from msgspec instead of pydantic, and no JSON-schema validator runs beyond
msgspec's decoding into the declared types.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import types
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Callable, Mapping, Union, get_args, get_origin, get_type_hints

import msgspec

from .. import messages as m
from ..content import (
    CONTROL_CLOSE,
    CONTROL_OPEN,
    BinaryContent,
    Content,
    ControlContent,
    EmptyContent,
    ErrorContent,
    FileContent,
    JsonContent,
    LinkContent,
    TextContent,
    to_content,
)
from ..errors import ErrorCode, RoomException
from ..session import events as ev
from ..toolkits.agents import ToolContentSpec
from .participants import Participant, RemoteParticipant

log = logging.getLogger("meshagent_core.client.hosting")

#: How long leaving a hosting block may take to unregister and stop its calls.
STOP_TIMEOUT = 5.0


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
_ALL_KINDS = ["json", "text", "file", "binary", "link", "empty"]
_STREAM_ORIGINS = (AsyncIterable, AsyncIterator, AsyncGenerator)
_CONTENT_CLASSES: tuple[type, ...] = tuple(Content.__args__)  # type: ignore[attr-defined]


def _union_args(annotation: Any) -> tuple[Any, ...] | None:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return None


def _content_kinds(annotation: Any) -> list[str] | None:
    """The content types an annotation made of Content classes stands for (None: not one)."""
    if annotation is Content:
        return list(_ALL_KINDS)
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


def _output_spec(annotation: Any) -> ToolContentSpec | None:
    is_stream, item = _stream_item(annotation)
    if is_stream:
        return _value_spec(item, stream=True) or ToolContentSpec(types=list(_ALL_KINDS), stream=True)
    return _value_spec(annotation, stream=False)


class _Signature:
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
            return _value_spec(self.stream_item, stream=True) or ToolContentSpec(types=list(_ALL_KINDS), stream=True)
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


def _content_kind(content: Content) -> str:
    return _CONTENT_KINDS.get(type(content), getattr(type(content), "__struct_config__").tag)


def _to_content(tool_name: str, value: Any) -> Content:
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


def _from_content(tool_name: str, content: Content, annotation: Any) -> Any:
    """An input content (or streamed input chunk) as a value of `annotation`."""
    kinds = _content_kinds(annotation) if annotation not in (Any, inspect.Parameter.empty) else list(_ALL_KINDS)
    if kinds is not None:
        if _content_kind(content) not in kinds:
            raise InvalidToolDataException(
                f"tool '{tool_name}' input content type '{_content_kind(content)}' is not allowed ({', '.join(kinds)})"
            )
        return content
    if annotation is str:
        if not isinstance(content, TextContent):
            raise InvalidToolDataException(f"tool '{tool_name}' expects text input, not '{_content_kind(content)}'")
        return content.text
    if annotation in (bytes, bytearray):
        if not isinstance(content, (FileContent, BinaryContent)):
            raise InvalidToolDataException(f"tool '{tool_name}' expects file input, not '{_content_kind(content)}'")
        return content.data
    if isinstance(content, EmptyContent):
        value: Any = None
    elif isinstance(content, JsonContent):
        value = content.json
    else:
        raise InvalidToolDataException(f"tool '{tool_name}' expects json input, not '{_content_kind(content)}'")
    try:
        return msgspec.convert(value, annotation)
    except msgspec.ValidationError as error:
        raise InvalidToolDataException(f"invalid input for tool '{tool_name}': {error}") from None


async def _mapped(iterable: AsyncIterable[Any], function: Callable[[Any], Any]) -> AsyncIterator[Any]:
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


def _json_arguments(tool_name: str, input: Content) -> Mapping[str, Any]:
    if isinstance(input, EmptyContent):
        return {}
    if isinstance(input, JsonContent) and isinstance(input.json, dict):
        return input.json
    raise InvalidToolDataException(f"tool '{tool_name}' requires JSON object input")


# --- tools -----------------------------------------------------------------------------------


class BaseTool:
    """A tool: its name, display text and content specs. Subclass `FunctionTool` or
    `ContentTool` (or decorate a function with `tool`)."""

    def __init__(
        self,
        *,
        name: str,
        input_schema: dict[str, Any] | None = None,
        input_spec: ToolContentSpec | None = None,
        output_spec: ToolContentSpec | None = None,
        output_schema: dict[str, Any] | None = None,
        defs: dict[str, Any] | None = None,
        title: str | None = None,
        description: str | None = None,
        rules: list[str] | None = None,
    ) -> None:
        self.name = name
        self.title = name if title is None else title
        self.description = "" if description is None else description
        self.rules = rules
        if input_schema is not None:
            if input_spec is None:
                input_spec = ToolContentSpec(types=["json"], schema=input_schema)
            elif input_spec.schema is None:
                input_spec = ToolContentSpec(types=list(input_spec.types), stream=input_spec.stream, schema=input_schema)
            elif input_spec.schema != input_schema:
                raise ValueError("input_schema conflicts with input_spec.schema")
        if output_schema is not None:
            if output_spec is None:
                output_spec = ToolContentSpec(types=["json"], schema=output_schema)
            elif output_spec.schema is None:
                output_spec = ToolContentSpec(types=list(output_spec.types), stream=output_spec.stream, schema=output_schema)
            elif output_spec.schema != output_schema:
                raise ValueError("output_schema conflicts with output_spec.schema")
        self.input_spec = input_spec
        self.output_spec = output_spec
        self.defs = defs

    @property
    def input_schema(self) -> dict[str, Any] | None:
        return None if self.input_spec is None else self.input_spec.schema

    @property
    def output_schema(self) -> dict[str, Any] | None:
        return None if self.output_spec is None else self.output_spec.schema

    @property
    def strict(self) -> bool | None:
        return None

    def describe(self) -> dict[str, Any]:
        """The tool as `room.register_toolkit` carries it."""
        return {
            "title": self.title,
            "description": self.description,
            "input_spec": None if self.input_spec is None else self.input_spec.to_json(),
            "output_spec": None if self.output_spec is None else self.output_spec.to_json(),
            "defs": self.defs,
            "strict": self.strict,
        }

    async def invoke(self, *, context: ToolContext, input: Content | AsyncIterable[Content]) -> Content | AsyncIterable[Content]:
        """Run the tool on one call's input; a streamed answer is an async iterable of content."""
        raise NotImplementedError(f"{type(self).__name__} must implement invoke()")


class FunctionTool(BaseTool):
    """A tool taking a JSON object of arguments: override `execute(context, **arguments)`.
    When `execute` declares typed keyword parameters, the arguments are decoded into them
    (invalid ones answer 1002)."""

    def __init__(
        self,
        *,
        name: str,
        input_schema: dict[str, Any],
        strict: bool = True,
        output_spec: ToolContentSpec | None = None,
        output_schema: dict[str, Any] | None = None,
        defs: dict[str, Any] | None = None,
        title: str | None = None,
        description: str | None = None,
        rules: list[str] | None = None,
    ) -> None:
        if not isinstance(input_schema, dict):
            raise TypeError("input_schema must be a dict")
        super().__init__(
            name=name,
            input_spec=ToolContentSpec(types=["json"], schema=input_schema),
            output_spec=output_spec,
            output_schema=output_schema,
            defs=defs,
            title=title,
            description=description,
            rules=rules,
        )
        self._strict = strict
        self._signature: _Signature | None = None
        try:
            self._signature = _Signature(self.execute, f"{type(self).__name__}Input")
        except TypeError:
            self._signature = None  # `execute(context, **kwargs)`: arguments pass through as they are

    @property
    def strict(self) -> bool | None:
        return self._strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self._strict = value

    async def execute(self, context: ToolContext, **arguments: Any) -> Any:
        raise NotImplementedError(f"tool {self.name!r} does not implement execute()")

    async def invoke(self, *, context: ToolContext, input: Content | AsyncIterable[Content]) -> Content | AsyncIterable[Content]:
        if isinstance(input, AsyncIterable):
            raise InvalidToolDataException(f"tool '{self.name}' does not accept streamed input")
        arguments = _json_arguments(self.name, input)
        if self._signature is not None and self._signature.content_parameter is None:
            arguments = self._signature.decode_arguments(self.name, arguments)
        result = self.execute(context, **arguments)
        if inspect.isawaitable(result):
            result = await result
        return _result(self.name, result)


class ContentTool(BaseTool):
    """A tool taking one content value, or a stream of them (`input_spec.stream`): override
    `execute(*, context, input)`."""

    async def execute(self, *, context: ToolContext, input: Content | AsyncIterable[Content]) -> Any:
        raise NotImplementedError(f"tool {self.name!r} does not implement execute()")

    async def invoke(self, *, context: ToolContext, input: Content | AsyncIterable[Content]) -> Content | AsyncIterable[Content]:
        streamed = isinstance(input, AsyncIterable)
        spec = self.input_spec
        if spec is not None:
            if spec.stream != streamed:
                expected = "streamed" if spec.stream else "single-content"
                actual = "streamed" if streamed else "single-content"
                raise InvalidToolDataException(f"tool '{self.name}' input is {actual} but input_spec requires {expected} input")
            if not streamed and _content_kind(input) not in spec.types:  # type: ignore[arg-type]
                raise InvalidToolDataException(
                    f"tool '{self.name}' input content type '{_content_kind(input)}' is not allowed by input_spec "  # type: ignore[arg-type]
                    f"({', '.join(spec.types)})"
                )
        result = self.execute(context=context, input=input)
        if inspect.isawaitable(result):
            result = await result
        return _result(self.name, result)


def _result(tool_name: str, result: Any) -> Content | AsyncIterable[Content]:
    if isinstance(result, AsyncIterable):
        return _mapped(result, lambda item: _to_content(tool_name, item))
    return _to_content(tool_name, result)


class _CallableTool:
    """Calls a decorated function with decoded arguments and, if it asks, the context."""

    def __init__(self, fn: Callable[..., Any], signature: _Signature, instance: Any = None) -> None:
        self.fn = fn
        self.signature = signature
        self.instance = instance

    def call(self, context: ToolContext, arguments: dict[str, Any]) -> Any:
        if self.signature.context_parameter is not None:
            arguments = {**arguments, self.signature.context_parameter: context}
        if self.signature.bound_parameter is not None:
            if self.instance is None:
                raise RoomException(f"tool method {self.fn.__name__!r} must be used from an instance")
            return self.fn(self.instance, **arguments)
        return self.fn(**arguments)

    async def call_and_wait(self, context: ToolContext, arguments: dict[str, Any]) -> Any:
        result = self.call(context, arguments)
        if inspect.isawaitable(result):
            result = await result
        return result


class _Bindable:
    """Tools made from methods (`self` first) bind to the instance they are read from."""

    _callable: _CallableTool

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None or self._callable.signature.bound_parameter is None:
            return self
        bound = copy.copy(self)
        bound._callable = _CallableTool(self._callable.fn, self._callable.signature, instance)
        return bound


class _DecoratedFunctionTool(_Bindable, FunctionTool):
    def __init__(self, fn: Callable[..., Any], signature: _Signature, **options: Any) -> None:
        super().__init__(
            input_schema=signature.input_schema,
            strict=signature.strict,
            output_spec=_output_spec(signature.return_annotation),
            **options,
        )
        self._callable = _CallableTool(fn, signature)
        self._signature = signature
        self.__wrapped__ = fn

    async def execute(self, context: ToolContext, **arguments: Any) -> Any:
        return await self._callable.call_and_wait(context, arguments)

    async def invoke(self, *, context: ToolContext, input: Content | AsyncIterable[Content]) -> Content | AsyncIterable[Content]:
        if isinstance(input, AsyncIterable):
            raise InvalidToolDataException(f"tool '{self.name}' does not accept streamed input")
        assert self._signature is not None
        arguments = self._signature.decode_arguments(self.name, _json_arguments(self.name, input))
        return _result(self.name, await self._callable.call_and_wait(context, arguments))


class _DecoratedContentTool(_Bindable, ContentTool):
    def __init__(self, fn: Callable[..., Any], signature: _Signature, **options: Any) -> None:
        super().__init__(input_spec=signature.input_spec(), output_spec=_output_spec(signature.return_annotation), **options)
        self._callable = _CallableTool(fn, signature)
        self._signature = signature
        self.__wrapped__ = fn
        if self.input_spec is None:  # `AsyncIterable[Any]` / `Content`: any content, streamed or not
            self.input_spec = ToolContentSpec(types=list(_ALL_KINDS), stream=signature.streamed_input)

    async def execute(self, *, context: ToolContext, input: Content | AsyncIterable[Content]) -> Any:
        signature = self._signature
        assert signature.content_parameter is not None
        if isinstance(input, AsyncIterable):
            value: Any = _mapped(input, lambda chunk: _from_content(self.name, chunk, signature.stream_item))
        else:
            value = _from_content(self.name, input, signature.content_annotation)
        return await self._callable.call_and_wait(context, {signature.content_parameter: value})


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    rules: list[str] | None = None,
) -> Any:
    """Make a tool of a typed function (`@tool` or `@tool(name=…, description=…)`).

    The parameters are the tool's JSON input (schema from their types, required unless they
    have a default); a `ToolContext` parameter gets the call's context. The docstring is the
    default description. An `AsyncIterable[X]` parameter (alone) takes a streamed input; a
    `Content` parameter (alone) takes the input content as it is. The return annotation gives
    the output spec (`AsyncIterator[X]` for an async generator: a streamed output)."""

    def decorate(function: Callable[..., Any]) -> BaseTool:
        tool_name = name or function.__name__
        signature = _Signature(function, f"{function.__name__}Input")
        options = {
            "name": tool_name,
            "title": title or tool_name,
            "description": description if description is not None else inspect.cleandoc(function.__doc__ or ""),
            "rules": rules,
        }
        if signature.content_parameter is not None:
            return _DecoratedContentTool(function, signature, **options)
        return _DecoratedFunctionTool(function, signature, **options)

    if fn is not None:
        return decorate(fn)
    return decorate


# --- toolkits --------------------------------------------------------------------------------


class Toolkit:
    """A named set of tools a participant can host (`room.agents.host(toolkit)`)."""

    def __init__(
        self,
        *,
        name: str,
        tools: list[BaseTool],
        rules: list[str] | None = None,
        title: str | None = None,
        description: str | None = None,
        public: bool = True,
        hidden: bool = False,
        annotations: dict[str, str] | None = None,
    ) -> None:
        names = [t.name for t in tools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate tool name(s) in toolkit {name!r}: {', '.join(duplicates)}")
        self.name = name
        self.tools = list(tools)
        self.rules = list(rules or [])
        self.title = name if title is None else title
        self.description = "" if description is None else description
        self.public = public
        self.hidden = hidden
        self.annotations = dict(annotations or {})

    def get_tool(self, name: str) -> BaseTool:
        for candidate in self.tools:
            if candidate.name == name:
                return candidate
        raise RoomException(f'a tool with the name "{name}" was not found in the toolkit', code=ErrorCode.NOT_FOUND)

    async def invoke(
        self,
        *,
        context: ToolContext,
        name: str,
        input: Content | Mapping[str, Any] | str | AsyncIterable[Content] | None,
    ) -> Content | AsyncIterable[Content]:
        """Run tool `name` on `input` (also usable without a room, e.g. in unit tests)."""
        if not isinstance(input, AsyncIterable):
            input = to_content(input)  # type: ignore[arg-type]
        return await self.get_tool(name).invoke(context=context, input=input)  # type: ignore[arg-type]

    #: The official package's name for the same call.
    execute = invoke

    def registration(self, *, public: bool | None = None) -> m.RegisterToolkit:
        """The `room.register_toolkit` request for this toolkit."""
        return m.RegisterToolkit(
            name=self.name,
            title=self.title,
            description=self.description,
            tools={t.name: t.describe() for t in self.tools},
            public=self.public if public is None else public,
            annotations=dict(self.annotations),
        )


# --- hosting ---------------------------------------------------------------------------------


def _error_content(error: BaseException) -> ErrorContent:
    code = error.code if isinstance(error, RoomException) else None
    return ErrorContent(text=str(error) or type(error).__name__, code=code)


class _HostedCall:
    """One call being answered; every send is one-way and tolerates a closed connection."""

    def __init__(self, room: Any, event: ev.ToolCallReceived) -> None:
        self.event = event
        self.connection = room.connection
        self.responded = False
        self.streaming = False
        self.closed = False
        self.scope: Any = None
        self.cancelled = False

    @property
    def key(self) -> tuple[int, str]:
        return (self.event.call_id, self.event.tool_call_id)

    def cancel(self) -> None:
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()

    def _send(self, action: Callable[[Any], None]) -> None:
        connection = self.connection
        if connection is None or connection.closed:
            return
        try:
            action(connection)
        except Exception as error:  # the call is gone on the session side (connection lost)
            log.debug("dropped an answer to tool call %s: %s", self.event.tool_call_id, error)

    def respond(self, content: Content) -> None:
        if self.responded:
            return
        self.responded = True
        self.streaming = isinstance(content, ControlContent) and content.is_open
        self._send(lambda connection: connection.respond_to_tool_call(self.event.call_id, content))

    def chunk(self, chunk: Content | dict[str, Any]) -> None:
        if self.closed:
            return
        if isinstance(chunk, ControlContent) and chunk.is_close:
            self.closed = True
        self._send(lambda connection: connection.send_tool_call_chunk(self.event.call_id, chunk))

    def emit(self, event: dict[str, Any]) -> None:
        if not isinstance(event, dict):
            raise TypeError("a tool event must be a JSON object")
        self.chunk(dict(event))

    def fail(self, error: BaseException) -> None:
        if not self.responded:
            self.respond(_error_content(error))
        elif self.streaming and not self.closed:
            if isinstance(error, InvalidToolDataException):
                self.chunk(ControlContent(method="close", status_code=1007, message=str(error)))
            else:
                self.chunk(_error_content(error))
                self.chunk(CONTROL_CLOSE)


async def _input_stream(receive: Any) -> AsyncIterator[Content]:
    """A hosted call's input chunks until the caller closes the input."""
    async for item in receive:
        if isinstance(item, ev.ToolCallInputClosed):
            if item.status_code != 1000:
                raise RoomException(
                    item.message or "the input stream was closed abnormally",
                    code=ErrorCode.INVALID_REQUEST,
                    status_code=item.status_code,
                )
            return
        yield item


class HostedToolkit:
    """A toolkit hosted in a room (what `host_toolkit` yields and `start_hosted_toolkit`
    returns): `registration_id` while registered; `stop()` ends the hosting."""

    def __init__(self, room: Any, toolkit: Toolkit, *, public: bool | None = None) -> None:
        self.room = room
        self.toolkit = toolkit
        self.public = toolkit.public if public is None else public
        self.registration_id: str | None = None
        self._backend = room.backend
        self._subscription: Any = None
        self._calls: dict[tuple[int, str], _HostedCall] = {}
        self._inputs: dict[str, Any] = {}
        self._served: Any = None

    @property
    def running(self) -> bool:
        return self._subscription is not None

    async def start(self) -> None:
        """Register the toolkit and start answering its calls."""
        if self._subscription is not None:
            raise RoomException(f"the toolkit {self.toolkit.name!r} is already hosted", code=ErrorCode.ALREADY_EXISTS)
        self.room.agents._add_hosted(self)
        subscription = self.room.subscribe(
            ev.ToolCallReceived, ev.ToolCallInputChunk, ev.ToolCallInputClosed, ev.ToolCallCancelled
        )
        try:
            await self._register()
            self._served = self._backend.Event()
            self.room.start_soon(self._serve, subscription, self._served)
        except BaseException:
            subscription.close()
            self.room.agents._remove_hosted(self)
            raise
        self._subscription = subscription

    async def stop(self) -> None:
        """Unregister the toolkit, then cancel the calls still running (their callers get an
        `error`). Does nothing when not started."""
        subscription, self._subscription = self._subscription, None
        if subscription is None:
            return
        failure: BaseException | None = None
        with self._backend.shielded(STOP_TIMEOUT):
            try:
                await self._unregister()
            except Exception as error:
                failure = error
            finally:
                self.room.agents._remove_hosted(self)
                subscription.close()  # the serve loop answers what is queued, then ends
                await self._served.wait()
        if failure is not None:
            raise failure

    async def _register(self) -> None:
        answer = await self.room.send_request(m.REGISTER_TOOLKIT, self.toolkit.registration(public=self.public))
        registration_id = answer.json.get("id") if isinstance(answer, JsonContent) and isinstance(answer.json, dict) else None
        if not isinstance(registration_id, str):
            raise RoomException("unexpected return type from room.register_toolkit", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE)
        self.registration_id = registration_id

    async def _unregister(self) -> None:
        registration_id, self.registration_id = self.registration_id, None
        connection = self.room.connection
        if registration_id is None or connection is None or connection.closed:
            return  # a closed connection took the registration with it
        try:
            await self.room.send_request(m.UNREGISTER_TOOLKIT, m.UnregisterToolkit(id=registration_id))
        except RoomException:
            if self.room.connection is None or self.room.connection.closed:
                return
            raise

    async def _reregister(self) -> None:
        """After a reconnect: the old registration went with the old connection."""
        if self._subscription is None:
            return
        self.registration_id = None
        try:
            await self._register()
        except Exception:
            log.exception("could not register toolkit %r again after a reconnect", self.toolkit.name)

    # --- answering calls ----------------------------------------------------------------

    async def _serve(self, subscription: Any, served: Any) -> None:
        try:
            async with self._backend.open_task_group() as task_group:
                async for event in subscription:
                    try:
                        self._dispatch(event, task_group)
                    except Exception:
                        log.exception("toolkit %r could not dispatch %r", self.toolkit.name, event)
                task_group.cancel_scope.cancel()
        except Exception:
            log.exception("hosting of toolkit %r failed", self.toolkit.name)
        finally:
            for send in self._inputs.values():
                send.close()
            self._inputs.clear()
            served.set()

    def _dispatch(self, event: Any, task_group: Any) -> None:
        name = self.toolkit.name
        if isinstance(event, ev.ToolCallReceived):
            if event.toolkit != name:
                return
            receive = None
            if isinstance(event.arguments, ControlContent) and event.arguments.is_open:
                send, receive = self._backend.open_memory_channel(math.inf)
                self._inputs[event.tool_call_id] = send
            call = _HostedCall(self.room, event)
            self._calls[call.key] = call
            task_group.start_soon(self._run_call, call, receive)
        elif isinstance(event, (ev.ToolCallInputChunk, ev.ToolCallInputClosed)):
            if event.toolkit != name:
                return
            send = self._inputs.get(event.tool_call_id)
            if send is None:
                return
            try:
                send.send_nowait(event.chunk if isinstance(event, ev.ToolCallInputChunk) else event)
            except Exception:  # the tool stopped reading its input
                pass
            if isinstance(event, ev.ToolCallInputClosed):
                send.close()
                del self._inputs[event.tool_call_id]
        elif isinstance(event, ev.ToolCallCancelled):
            call = self._calls.get((event.call_id, event.tool_call_id))
            if call is not None:
                call.cancel()

    async def _run_call(self, call: _HostedCall, receive: Any) -> None:
        try:
            with self._backend.move_on_after(math.inf) as scope:
                call.scope = scope
                if call.cancelled:
                    scope.cancel()
                await self._answer(call, receive)
        finally:
            self._calls.pop(call.key, None)
            send = self._inputs.pop(call.event.tool_call_id, None)
            if send is not None:
                send.close()
            if receive is not None:
                receive.close()

    async def _answer(self, call: _HostedCall, receive: Any) -> None:
        event = call.event
        context = RoomToolContext(
            room=self.room,
            caller=self._participant(event.caller_id),
            on_behalf_of=None if event.on_behalf_of_id is None else self._participant(event.on_behalf_of_id),
            event_handler=call.emit,
            tool_call_id=event.tool_call_id,
        )
        input: Content | AsyncIterable[Content] = _input_stream(receive) if receive is not None else event.arguments
        try:
            result = await self.toolkit.invoke(context=context, name=event.name, input=input)
            if isinstance(result, AsyncIterable):
                call.respond(CONTROL_OPEN)
                iterator = result.__aiter__()
                try:
                    while True:
                        try:
                            item = await iterator.__anext__()
                        except StopAsyncIteration:
                            break
                        call.chunk(item)
                finally:
                    aclose = getattr(iterator, "aclose", None)
                    if aclose is not None:
                        await aclose()
                call.chunk(CONTROL_CLOSE)
            else:
                call.respond(result)
        except Exception as error:
            if not isinstance(error, InvalidToolDataException):
                log.warning("tool %s.%s failed", self.toolkit.name, event.name, exc_info=error)
            call.fail(error)
        except BaseException:
            call.fail(
                RoomException(
                    f"the host of toolkit {self.toolkit.name!r} stopped before the call finished",
                    code=ErrorCode.OPERATION_FAILED,
                )
            )
            raise

    def _participant(self, participant_id: str) -> Participant:
        """The participant from the messaging presence list when known, else just its id."""
        known = getattr(self.room.messaging, "remote_participants", None)
        try:
            for participant in known or ():
                if getattr(participant, "id", None) == participant_id:
                    return participant  # type: ignore[no-any-return]
        except TypeError:
            pass
        return RemoteParticipant(id=participant_id, role="", attributes={})


@asynccontextmanager
async def host_toolkit(room: Any, toolkit: Toolkit, *, public: bool | None = None) -> AsyncIterator[HostedToolkit]:
    """Host `toolkit` in `room` while the block runs (what `room.agents.host(toolkit)` does).
    `public` overrides `toolkit.public` (public toolkits are listed and callable by everyone;
    private ones only by this participant)."""
    hosted = HostedToolkit(room, toolkit, public=public)
    await hosted.start()
    try:
        yield hosted
    finally:
        await hosted.stop()


async def start_hosted_toolkit(*, room: Any, toolkit: Toolkit, public: bool | None = None) -> HostedToolkit:
    """The official package's entry point: host `toolkit` until `await hosted.stop()` (or the
    room closes). Prefer `async with room.agents.host(toolkit):`, which cannot forget to stop."""
    hosted = HostedToolkit(room, toolkit, public=public)
    await hosted.start()
    return hosted


__all__ = [
    "BaseTool",
    "ContentTool",
    "FunctionTool",
    "HostedToolkit",
    "InvalidToolDataException",
    "RoomToolContext",
    "ToolContext",
    "Toolkit",
    "host_toolkit",
    "start_hosted_toolkit",
    "tool",
]
