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

Public names mirror the official `meshagent.tools` package (`Toolkit`, `tool`,
`FunctionTool`, `ContentTool`, `ToolContext`, `RoomToolContext`); schemas come from msgspec
instead of pydantic, and no JSON-schema validator runs beyond msgspec's decoding into the
declared types. Hosting them in a room is `hosting`.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import AsyncIterable
from typing import Any, Callable, Mapping


from .. import messages as m
from ..content import Content, to_content
from ..errors import ErrorCode, RoomException
from ..toolkits.agents import ToolContentSpec
from .tool_values import (
    ALL_CONTENT_KINDS,
    InvalidToolDataException,
    Signature,
    ToolContext,
    content_kind,
    from_tool_content,
    json_arguments,
    mapped,
    output_spec,
    to_tool_content,
)


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
        self._signature: Signature | None = None
        try:
            self._signature = Signature(self.execute, f"{type(self).__name__}Input")
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
        arguments = json_arguments(self.name, input)
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
            if not streamed and content_kind(input) not in spec.types:  # type: ignore[arg-type]
                raise InvalidToolDataException(
                    f"tool '{self.name}' input content type '{content_kind(input)}' is not allowed by input_spec "  # type: ignore[arg-type]
                    f"({', '.join(spec.types)})"
                )
        result = self.execute(context=context, input=input)
        if inspect.isawaitable(result):
            result = await result
        return _result(self.name, result)


def _result(tool_name: str, result: Any) -> Content | AsyncIterable[Content]:
    if isinstance(result, AsyncIterable):
        return mapped(result, lambda item: to_tool_content(tool_name, item))
    return to_tool_content(tool_name, result)


class _CallableTool:
    """Calls a decorated function with decoded arguments and, if it asks, the context."""

    def __init__(self, fn: Callable[..., Any], signature: Signature, instance: Any = None) -> None:
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
    def __init__(self, fn: Callable[..., Any], signature: Signature, **options: Any) -> None:
        super().__init__(
            input_schema=signature.input_schema,
            strict=signature.strict,
            output_spec=output_spec(signature.return_annotation),
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
        arguments = self._signature.decode_arguments(self.name, json_arguments(self.name, input))
        return _result(self.name, await self._callable.call_and_wait(context, arguments))


class _DecoratedContentTool(_Bindable, ContentTool):
    def __init__(self, fn: Callable[..., Any], signature: Signature, **options: Any) -> None:
        super().__init__(input_spec=signature.input_spec(), output_spec=output_spec(signature.return_annotation), **options)
        self._callable = _CallableTool(fn, signature)
        self._signature = signature
        self.__wrapped__ = fn
        if self.input_spec is None:  # `AsyncIterable[Any]` / `Content`: any content, streamed or not
            self.input_spec = ToolContentSpec(types=list(ALL_CONTENT_KINDS), stream=signature.streamed_input)

    async def execute(self, *, context: ToolContext, input: Content | AsyncIterable[Content]) -> Any:
        signature = self._signature
        assert signature.content_parameter is not None
        if isinstance(input, AsyncIterable):
            value: Any = mapped(input, lambda chunk: from_tool_content(self.name, chunk, signature.stream_item))
        else:
            value = from_tool_content(self.name, input, signature.content_annotation)
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
        signature = Signature(function, f"{function.__name__}Input")
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


__all__ = ["BaseTool", "ContentTool", "FunctionTool", "Toolkit", "tool"]
