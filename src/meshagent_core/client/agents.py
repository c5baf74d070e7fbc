"""`room.agents`: call tools (`invoke_tool`), list toolkits, `room.call`, and host toolkits
(protocol/room-apis.md §6).

Names and keyword arguments follow the official 0.56 client's `AgentsClient`
(`invoke_tool(toolkit=, tool=, input=, participant_id=, on_behalf_of_id=)`,
`list_toolkits(participant_id=, participant_name=, timeout=)`, `make_call(name=, url=,
arguments=, api=)`), and its description classes (`ToolkitDescription`, `ToolDescription`,
`ToolContentSpec`). Hosting a toolkit (declared with typed functions) is `room.agents.host(toolkit)`,
an async context manager; see `meshagent_core.client.hosting`.

Written once for every event loop: this module awaits only `self.room` and `self.room.backend`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator, Mapping

import msgspec

from .. import messages as m
from ..content import Content, ControlContent, ErrorContent, JsonContent, to_content
from ..errors import ErrorCode, RoomException
from ..session import events as ev
from ..tokens import ApiScope
from .connection import ToolCallStream
from ..toolkits.agents import SUPPORTED_TOOL_CONTENT_TYPES, ToolContentSpec, ToolContentType
from .hosting import host_toolkit
from .participants import SubClient

if TYPE_CHECKING:
    from .hosting import HostedToolkit
    from .tools import Toolkit

#: How long a finished call waits for its input stream to end before stopping it (as the
#: official client does when the answer comes first).
INPUT_STREAM_GRACE = 0.5


# --- descriptions (the official client's models) ---------------------------------------------


class ToolDescription(msgspec.Struct, kw_only=True):
    """One tool of a toolkit, as `room.list_toolkits` describes it."""

    name: str
    title: str
    description: str
    input_spec: ToolContentSpec | None = None
    output_spec: ToolContentSpec | None = None
    defs: dict[str, Any] | None = None
    strict: bool | None = None

    @property
    def input_schema(self) -> dict[str, Any] | None:
        return None if self.input_spec is None else self.input_spec.schema

    @property
    def output_schema(self) -> dict[str, Any] | None:
        return None if self.output_spec is None else self.output_spec.schema

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "title": self.title,
            "input_spec": None if self.input_spec is None else self.input_spec.to_json(),
            "output_spec": None if self.output_spec is None else self.output_spec.to_json(),
            "defs": self.defs,
            "strict": self.strict,
        }


class ToolkitDescription(msgspec.Struct, kw_only=True):
    """A toolkit available in the room: its tools and the participant hosting it."""

    name: str
    title: str
    description: str
    tools: list[ToolDescription]
    participant_id: str | None = None
    annotations: dict[str, str] = msgspec.field(default_factory=dict)

    def get_tool(self, name: str) -> ToolDescription | None:
        for tool in self.tools:
            if tool.name == name:
                return tool
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "title": self.title,
            "tools": [tool.to_json() for tool in self.tools],
            "participant_id": self.participant_id,
            "annotations": dict(self.annotations),
        }


def _spec_with_legacy_schema(spec: ToolContentSpec | None, legacy: Any) -> ToolContentSpec | None:
    """The official folding of a legacy `input_schema` / `output_schema` into the spec."""
    if legacy is None:
        return spec
    if spec is None:
        return ToolContentSpec(types=["json"], schema=legacy)
    if spec.includes("json") and spec.schema is None:
        return ToolContentSpec(types=list(spec.types), stream=spec.stream, schema=legacy)
    return spec


def parse_toolkit_descriptions(tools: Any) -> list[ToolkitDescription]:
    """The `tools` object of a `room.list_toolkits` answer as `ToolkitDescription`s."""
    if not isinstance(tools, Mapping):
        raise TypeError("'tools' must be an object of toolkits by name")
    result = []
    for toolkit_name, toolkit_json in tools.items():
        if not isinstance(toolkit_json, Mapping):
            raise TypeError(f"toolkit {toolkit_name!r} must be an object")
        raw_annotations = toolkit_json.get("annotations") or {}
        annotations = (
            {k: v for k, v in raw_annotations.items() if isinstance(k, str) and isinstance(v, str)}
            if isinstance(raw_annotations, Mapping)
            else {}
        )
        descriptions = []
        raw_tools = toolkit_json.get("tools") or {}
        if not isinstance(raw_tools, Mapping):
            raise TypeError(f"the tools of toolkit {toolkit_name!r} must be an object")
        for tool_name, tool_json in raw_tools.items():
            if not isinstance(tool_json, Mapping):
                raise TypeError(f"tool {tool_name!r} must be an object")
            strict = tool_json.get("strict")
            defs = tool_json.get("defs")
            descriptions.append(
                ToolDescription(
                    name=tool_name,
                    title=tool_json.get("title") or "",
                    description=tool_json.get("description") or "",
                    input_spec=_spec_with_legacy_schema(
                        ToolContentSpec.from_json(tool_json.get("input_spec")), tool_json.get("input_schema")
                    ),
                    output_spec=_spec_with_legacy_schema(
                        ToolContentSpec.from_json(tool_json.get("output_spec")), tool_json.get("output_schema")
                    ),
                    defs=defs if isinstance(defs, dict) else None,
                    strict=strict if isinstance(strict, bool) else None,
                )
            )
        participant_id = toolkit_json.get("participant_id")
        result.append(
            ToolkitDescription(
                name=toolkit_name,
                title=toolkit_json.get("title") or "",
                description=toolkit_json.get("description") or "",
                tools=descriptions,
                participant_id=participant_id if isinstance(participant_id, str) else None,
                annotations=annotations,
            )
        )
    return result


# --- the streamed input of a call ------------------------------------------------------------


class _InputPump:
    """Sends an async iterable's items as a call's input chunks, in a task owned by the room,
    then always closes the input (protocol/room-apis.md §6.1)."""

    def __init__(self, room: Any, call: ToolCallStream, source: AsyncIterable[Any]) -> None:
        self._backend = room.backend
        self._call = call
        self._source = source
        self._scope: Any = None
        self._cancelled = False
        self.error: RoomException | None = None
        self.failed = self._backend.Event()
        self.done = self._backend.Event()
        room.start_soon(self._run)

    async def _run(self) -> None:
        iterator = self._source.__aiter__()
        try:
            with self._backend.move_on_after(math.inf) as scope:
                self._scope = scope
                if self._cancelled:
                    scope.cancel()
                while True:
                    try:
                        item = await iterator.__anext__()
                    except StopAsyncIteration:
                        break
                    if not isinstance(item, (*_CONTENT_CLASSES, str, Mapping)):
                        raise RoomException("invoke_tool input stream items must be Content values")
                    chunk = to_content(item)
                    if isinstance(chunk, ControlContent):
                        raise RoomException("invoke_tool input stream items cannot be control content")
                    self._call.send(chunk)
        except Exception as error:
            self.error = RoomException(
                f"request stream failed: {error}",
                code=getattr(error, "code", None),
                status_code=getattr(error, "status_code", 400),
            )
            self.failed.set()
        finally:
            try:
                self._call.close_input()
            except Exception:  # the connection is already gone: nothing to close
                pass
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with self._backend.shielded(1):
                    try:
                        await aclose()
                    except Exception:
                        pass
            self.done.set()

    def cancel(self) -> None:
        self._cancelled = True
        if self._scope is not None:
            self._scope.cancel()

    async def stop(self, grace: float) -> None:
        """Let the input end on its own for up to `grace` seconds, then stop it."""
        if grace > 0 and not self.done.is_set():
            with self._backend.move_on_after(grace):
                await self.done.wait()
        self.cancel()
        await self.done.wait()


_CONTENT_CLASSES: tuple[type, ...] = tuple(Content.__args__)  # type: ignore[attr-defined]


# --- the client ------------------------------------------------------------------------------


class AgentsClient(SubClient):
    """`room.agents`: tool calls, toolkit listings, `room.call`, and toolkit hosting."""

    def __init__(self, room: Any) -> None:
        super().__init__(room)
        self._hosted: dict[str, "HostedToolkit"] = {}
        self._retired: set[str] = set()  # toolkits this participant hosted and stopped hosting
        self._hooks_installed = False

    # --- invoking tools ---------------------------------------------------------------------

    async def invoke_tool(
        self,
        *,
        toolkit: str,
        tool: str,
        input: str | dict[str, Any] | Content | AsyncIterable[Content] | None = None,
        participant_id: str | None = None,
        on_behalf_of_id: str | None = None,
        **kwargs: Any,
    ) -> Content | AsyncIterator[Content]:
        """Call `tool` of `toolkit` (built in, or hosted by a participant).

        `input`: a dict (sent as `json`), a str (`text`), a `Content`, None (`empty`), or an
        async iterable of `Content` values, which is streamed to the tool as input chunks and
        always ended with a close (also when it raises: the call then fails with "request
        stream failed: …"). `participant_id` picks the hosting participant when several host
        the toolkit; `on_behalf_of_id` is forwarded to the host.

        Returns the tool's answer; when the tool answers with a stream, an async iterator of its
        `Content` chunks (progress events, plain objects on the wire, come as `JsonContent`;
        `ErrorContent` chunks are items, not failures). An abnormal end of that stream raises
        `RoomException` with the close status as `status_code`. Break out of the iteration (or
        `aclose()` it) to abandon the call. An `error` answer raises `RoomException` with the
        tool's code (1003 when no participant hosts the toolkit).

        The official keyword `arguments=` is accepted as a deprecated alias of `input=`.
        """
        if "arguments" in kwargs and input is None:
            input = kwargs.pop("arguments")
        if kwargs:
            raise TypeError(f"invoke_tool() got unexpected keyword argument(s): {', '.join(sorted(kwargs))}")
        streamed_input = isinstance(input, AsyncIterable)
        if not streamed_input and not (input is None or isinstance(input, (str, Mapping, *_CONTENT_CLASSES))):
            raise RoomException(
                "invoke_tool input must be str, dict, Content, or an async iterable of Content values"
            )
        options: dict[str, Any] = {"participant_id": participant_id}
        if on_behalf_of_id is not None:
            options["on_behalf_of_id"] = on_behalf_of_id

        stack = AsyncExitStack()
        await stack.__aenter__()
        pump: _InputPump | None = None
        try:
            if streamed_input:
                call = await stack.enter_async_context(self.room.stream_call(toolkit, tool, input_stream=True, **options))
                pump = _InputPump(self.room, call, input)  # type: ignore[arg-type]
            else:
                call = await stack.enter_async_context(
                    self.room.stream_call(toolkit, tool, to_content(input), input_stream=False, **options)  # type: ignore[arg-type]
                )
            response = await self._response(call, pump)
        except BaseException:
            await self._finish(stack, pump, grace=0)
            raise
        if isinstance(response, ControlContent) and response.is_open:
            return self._output(stack, call, pump)
        await self._finish(stack, pump, grace=INPUT_STREAM_GRACE)
        if pump is not None and pump.error is not None:
            raise pump.error
        return response

    async def _response(self, call: ToolCallStream, pump: _InputPump | None) -> Content:
        """The call's answer; a failing input stream fails the call at once."""
        if pump is None:
            return await call.response()
        outcome: dict[str, Any] = {}
        async with self.room.backend.open_task_group() as task_group:

            async def answer() -> None:
                try:
                    outcome["content"] = await call.response()
                except Exception as error:
                    outcome["error"] = error
                task_group.cancel_scope.cancel()

            async def input_failed() -> None:
                await pump.failed.wait()
                task_group.cancel_scope.cancel()

            task_group.start_soon(answer)
            task_group.start_soon(input_failed)
        if "content" in outcome:
            return outcome["content"]  # type: ignore[no-any-return]
        if "error" in outcome:
            raise outcome["error"]
        assert pump.error is not None
        raise pump.error

    async def _output(self, stack: AsyncExitStack, call: ToolCallStream, pump: _InputPump | None) -> AsyncIterator[Content]:
        ended = False
        try:
            async for chunk in call.chunks():
                if pump is not None and pump.error is not None:
                    raise pump.error
                yield chunk if isinstance(chunk, _CONTENT_CLASSES) else JsonContent(json=chunk)
            ended = True
            if pump is not None and pump.error is not None:
                raise pump.error
        finally:
            await self._finish(stack, pump, grace=INPUT_STREAM_GRACE if ended else 0)

    async def _finish(self, stack: AsyncExitStack, pump: _InputPump | None, *, grace: float) -> None:
        with self.room.backend.shielded(grace + 2):
            if pump is not None:
                await pump.stop(grace)
            await stack.aclose()

    # --- listing toolkits -------------------------------------------------------------------

    async def list_toolkits(
        self,
        *,
        participant_id: str | None = None,
        participant_name: str | None = None,
        timeout: float | None = None,
    ) -> list[ToolkitDescription]:
        """The toolkits participants host in the room (public ones, and this participant's
        private ones), optionally only those of one participant (by id or name). With
        `timeout` (seconds) and a participant, the server waits up to that long for that
        participant's toolkits to appear."""
        request = m.ListToolkits(
            participant_id=participant_id,
            participant_name=participant_name,
            timeout=None if timeout is None else int(math.ceil(timeout)),
        )
        response = await self.room.send_request(m.LIST_TOOLKITS, request)
        if not isinstance(response, JsonContent) or not isinstance(response.json, dict):
            raise RoomException("unexpected return type from room.list_toolkits", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE)
        try:
            return parse_toolkit_descriptions(response.json.get("tools"))
        except (TypeError, ValueError) as error:
            raise RoomException(
                f"invalid room.list_toolkits answer: {error}", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE
            ) from None

    # --- room.call --------------------------------------------------------------------------

    async def make_call(
        self,
        *,
        name: str,
        url: str,
        arguments: dict[str, Any],
        api: ApiScope | Mapping[str, Any] | None = None,
    ) -> None:
        """Ask the room to call an agent or toolkit into the room (`room.call`): the server
        mints a token (scoped to `api` when given) and delivers it to the webhook at `url`.
        A server that does not implement `room.call` answers with an error, raised here as
        `RoomException`."""
        if isinstance(api, ApiScope):
            api_json: dict[str, Any] | None = api.model_dump(mode="json")
        elif api is None:
            api_json = None
        else:
            api_json = dict(api)
        await self.room.send_request(m.ROOM_CALL, m.RoomCall(name=name, url=url, arguments=dict(arguments), api=api_json))

    async def call(
        self,
        *,
        name: str,
        url: str,
        arguments: dict[str, Any],
        api: ApiScope | Mapping[str, Any] | None = None,
    ) -> None:
        """The same as `make_call` (the official `RoomClient.call`)."""
        await self.make_call(name=name, url=url, arguments=arguments, api=api)

    # --- hosting ----------------------------------------------------------------------------

    @asynccontextmanager
    async def host(self, toolkit: "Toolkit", *, public: bool | None = None) -> AsyncIterator["HostedToolkit"]:
        """Host `toolkit` in the room while the block runs:

            async with room.agents.host(Toolkit(name="math", tools=[add])):
                ...

        Registers it (`room.register_toolkit`), answers every call to it concurrently, and
        unregisters it on exit (calls still running then are cancelled and answered with an
        error). After a reconnect the toolkit is registered again. See
        `meshagent_core.client.hosting`."""
        async with host_toolkit(self.room, toolkit, public=public) as hosted:
            yield hosted

    def _add_hosted(self, hosted: "HostedToolkit") -> None:
        name = hosted.toolkit.name
        if name in self._hosted:
            raise RoomException(f"the toolkit {name!r} is already hosted by this participant", code=ErrorCode.ALREADY_EXISTS)
        self._hosted[name] = hosted
        self._retired.discard(name)
        if not self._hooks_installed:
            self._hooks_installed = True
            self.room.on_reconnect(self._reregister)
            self.room._on(ev.ToolCallReceived, self._answer_retired)

    def _remove_hosted(self, hosted: "HostedToolkit") -> None:
        name = hosted.toolkit.name
        if self._hosted.get(name) is hosted:
            del self._hosted[name]
            self._retired.add(name)

    def _answer_retired(self, event: ev.ToolCallReceived) -> None:
        """A call that the server routed before our unregistration took effect, but that
        reached us after the hosting stopped: answer it rather than leave the caller waiting."""
        if event.toolkit not in self._retired or event.toolkit in self._hosted:
            return
        connection = self.room.connection
        if connection is None or connection.closed:
            return
        try:
            connection.respond_to_tool_call(
                event.call_id,
                ErrorContent(text=f"the toolkit {event.toolkit!r} is no longer hosted by this participant", code=ErrorCode.NOT_FOUND),
            )
        except Exception:  # already answered, or the connection just closed
            pass

    async def _reregister(self) -> None:
        for hosted in list(self._hosted.values()):
            await hosted._reregister()


__all__ = [
    "AgentsClient",
    "SUPPORTED_TOOL_CONTENT_TYPES",
    "ToolContentSpec",
    "ToolContentType",
    "ToolDescription",
    "ToolkitDescription",
    "parse_toolkit_descriptions",
]
