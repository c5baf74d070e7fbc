"""Hosting a toolkit of typed tools (protocol/room-apis.md §6.4): registration, typed calls, errors,
streamed output and input, concurrency, unregistering — against the real local server, on
Trio and on AnyIO (asyncio and Trio)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterable, AsyncIterator, Optional

import anyio
import msgspec
import pytest

from meshagent_core import RoomException
from meshagent_core.client.hosting import start_hosted_toolkit
from meshagent_core.client.tool_values import InvalidToolDataException, ToolContext
from meshagent_core.client.tools import ContentTool, FunctionTool, Toolkit, tool
from meshagent_core.client.agents import ToolContentSpec
from meshagent_core.content import EmptyContent, ErrorContent, FileContent, JsonContent, TextContent
from meshagent_core.tokens import AgentsGrant, ApiScope
from roomtest import mint

pytestmark = pytest.mark.anyio


class Point(msgspec.Struct):
    x: int
    y: int


# --- tools used below ------------------------------------------------------------------------


@tool
async def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


@tool(name="move", title="Move a point", description="Shift a point.")
async def move(point: Point, dx: int, dy: Optional[int] = None) -> Point:
    return Point(point.x + dx, point.y + (dy or 0))


@tool
async def whoami(context: ToolContext) -> dict:
    return {
        "caller": context.caller.id,
        "on_behalf_of": None if context.on_behalf_of is None else context.on_behalf_of.id,
        "tool_call_id": context.tool_call_id,
    }


@tool
async def greet(name: str) -> str:
    return f"hello {name}"


@tool
async def nothing() -> None:
    return None


@tool
async def blob(size: int) -> bytes:
    return b"x" * size


@tool
async def explode(message: str) -> int:
    raise ValueError(message)


@tool
async def conflict() -> int:
    raise RoomException("already taken", code=1005)


@tool
async def count(n: int, fail_at: Optional[int] = None, invalid_at: Optional[int] = None) -> AsyncIterator[Point]:
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"broke at {i}")
        if i == invalid_at:
            raise InvalidToolDataException(f"bad item {i}")
        yield Point(i, -i)


@tool
async def progress(context: ToolContext, steps: int) -> AsyncIterator[str]:
    for i in range(steps):
        context.emit({"type": "agent.event", "step": i})
        yield f"step {i}"


@tool
async def total(points: AsyncIterable[Point]) -> int:
    return sum([p.x async for p in points])


@tool
async def echo(chunks: AsyncIterable[str]) -> AsyncIterator[str]:
    async for text in chunks:
        yield text.upper()


@tool
async def size(file: FileContent) -> dict:
    return {"name": file.name, "size": len(file.data)}


class Counter:
    def __init__(self) -> None:
        self.value = 100

    @tool
    async def bump(self, by: int) -> int:
        self.value += by
        return self.value


class Reverse(ContentTool):
    """An official-style content tool (subclass with `execute(*, context, input)`)."""

    def __init__(self) -> None:
        super().__init__(name="reverse", input_spec=ToolContentSpec(types=["text"]), output_spec=ToolContentSpec(types=["text"]))

    async def execute(self, *, context: ToolContext, input: Any) -> Any:
        return TextContent(text=input.text[::-1])


class Multiply(FunctionTool):
    """An official-style function tool with an explicit schema and typed `execute`."""

    def __init__(self) -> None:
        super().__init__(
            name="multiply",
            input_schema={"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]},
        )

    async def execute(self, context: ToolContext, a: int, b: int) -> Any:
        return {"product": a * b}


def math_toolkit(**options: Any) -> Toolkit:
    return Toolkit(
        name="math",
        title="Math",
        description="Arithmetic",
        annotations={"meshagent.tool_search": "true"},
        tools=[add, move, whoami, greet, nothing, blob, explode, conflict, count, progress, total, echo, size,
               Counter().bump, Reverse(), Multiply()],
        **options,
    )


# --- helpers ---------------------------------------------------------------------------------


@asynccontextmanager
async def host_and_caller(client_module, local_server, room: str, *, host_scope=None, caller_scope=None):
    url = local_server.room_url(room)
    credentials = local_server.credentials
    async with client_module.connect(url, mint(credentials, room, name="host", scope=host_scope)) as host:
        async with client_module.connect(url, mint(credentials, room, name="caller", scope=caller_scope)) as caller:
            with anyio.fail_after(20):
                yield host, caller


def room_name(request: pytest.FixtureRequest, client_variant) -> str:
    return f"hosting-{request.node.originalname}-{'-'.join(client_variant)}"


async def collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


# --- tests -----------------------------------------------------------------------------------


async def test_list_toolkits_shows_the_hosted_toolkit_with_its_schemas(client_module, client_variant, local_server, request) -> None:
    async with host_and_caller(client_module, local_server, room_name(request, client_variant)) as (host, caller):
        assert await caller.agents.list_toolkits() == []
        async with host.agents.host(math_toolkit()) as hosted:
            assert hosted.registration_id
            (toolkit,) = await caller.agents.list_toolkits()
            assert toolkit.name == "math" and toolkit.title == "Math" and toolkit.description == "Arithmetic"
            assert toolkit.participant_id == host.local_participant.id
            assert toolkit.annotations == {"meshagent.tool_search": "true"}
            tool_add = toolkit.get_tool("add")
            assert tool_add is not None and tool_add.description == "Add two numbers."
            assert tool_add.input_spec == ToolContentSpec(
                types=["json"],
                schema={
                    "type": "object",
                    "properties": {"a": {"type": "integer"}, "b": {"type": "integer", "default": 1}},
                    "required": ["a"],
                    "additionalProperties": False,
                },
            )
            assert tool_add.output_spec == ToolContentSpec(types=["json"], schema={"type": "integer"})
            assert tool_add.strict is False
            tool_move = toolkit.get_tool("move")
            assert tool_move.title == "Move a point"
            assert tool_move.input_schema["$defs"]["Point"]["required"] == ["x", "y"]
            assert tool_move.input_schema["properties"]["point"] == {"$ref": "#/$defs/Point"}
            assert toolkit.get_tool("count").output_spec.stream is True
            assert toolkit.get_tool("total").input_spec.stream is True
            assert toolkit.get_tool("size").input_spec.types == ["file"]
            assert toolkit.get_tool("greet").output_spec.types == ["text"]
            assert toolkit.get_tool("reverse").input_spec.types == ["text"]
            # Filters by participant.
            assert [t.name for t in await caller.agents.list_toolkits(participant_name="host")] == ["math"]
            assert [t.name for t in await caller.agents.list_toolkits(participant_id=host.local_participant.id)] == ["math"]
            assert await caller.agents.list_toolkits(participant_name="nobody") == []


async def test_private_toolkit_is_listed_only_for_its_host(client_module, client_variant, local_server, request) -> None:
    async with host_and_caller(client_module, local_server, room_name(request, client_variant)) as (host, caller):
        async with host.agents.host(Toolkit(name="secret", tools=[add]), public=False):
            assert await caller.agents.list_toolkits() == []
            assert [t.name for t in await host.agents.list_toolkits()] == ["secret"]


async def test_list_toolkits_waits_for_a_participant(client_module, client_variant, local_server, request) -> None:
    async with host_and_caller(client_module, local_server, room_name(request, client_variant)) as (host, caller):
        found: list[Any] = []
        async with anyio.create_task_group() as tasks:

            async def wait_for_toolkits() -> None:
                found.extend(await caller.agents.list_toolkits(participant_name="host", timeout=15))

            tasks.start_soon(wait_for_toolkits)
            async with host.agents.host(Toolkit(name="late", tools=[add])):
                while not found:
                    await anyio.sleep(0.01)
        assert [t.name for t in found] == ["late"]


async def test_typed_calls_round_trip(client_module, client_variant, local_server, request) -> None:
    async with host_and_caller(client_module, local_server, room_name(request, client_variant)) as (host, caller):
        async with host.agents.host(math_toolkit()):
            invoke = caller.agents.invoke_tool
            assert await invoke(toolkit="math", tool="add", input={"a": 2, "b": 5}) == JsonContent(json=7)
            assert await invoke(toolkit="math", tool="add", input={"a": 2}) == JsonContent(json=3)
            assert await invoke(toolkit="math", tool="move", input={"point": {"x": 1, "y": 2}, "dx": 3, "dy": 4}) == JsonContent(
                json={"x": 4, "y": 6}
            )
            assert await invoke(toolkit="math", tool="greet", input={"name": "bob"}) == TextContent(text="hello bob")
            assert await invoke(toolkit="math", tool="nothing") == EmptyContent()
            blob_answer = await invoke(toolkit="math", tool="blob", input={"size": 3000})
            assert isinstance(blob_answer, FileContent) and blob_answer.data == b"x" * 3000
            file = FileContent(name="a.bin", mime_type="application/octet-stream", data=bytes(range(256)) * 10)
            assert await invoke(toolkit="math", tool="size", input=file) == JsonContent(json={"name": "a.bin", "size": 2560})
            assert await invoke(toolkit="math", tool="reverse", input="abc") == TextContent(text="cba")
            assert await invoke(toolkit="math", tool="multiply", input={"a": 6, "b": 7}) == JsonContent(json={"product": 42})
            assert await invoke(toolkit="math", tool="bump", input={"by": 1}) == JsonContent(json=101)
            assert await invoke(toolkit="math", tool="bump", input={"by": 2}) == JsonContent(json=103)
            me = await invoke(toolkit="math", tool="whoami", participant_id=host.local_participant.id)
            assert me.json["caller"] == caller.local_participant.id and me.json["on_behalf_of"] is None
            assert len(me.json["tool_call_id"]) == 32
            # The deprecated official keyword still works.
            assert await invoke(toolkit="math", tool="add", arguments={"a": 1}) == JsonContent(json=2)


async def test_invalid_arguments_are_answered_with_1002(client_module, client_variant, local_server, request) -> None:
    async with host_and_caller(client_module, local_server, room_name(request, client_variant)) as (host, caller):
        async with host.agents.host(math_toolkit()):
            bad_inputs = [
                ("add", {"a": "two"}, "Expected `int`, got `str` - at `$.a`"),
                ("add", {}, "missing required field `a`"),
                ("add", {"a": 1, "c": 2}, "unknown field `c`"),
                ("add", "text", "requires JSON object input"),
                ("move", {"point": {"x": 1}, "dx": 1}, "missing required field `y` - at `$.point`"),
                ("multiply", {"a": 1, "b": "x"}, "`$.b`"),
                ("size", {"name": "x"}, "input content type 'json' is not allowed"),
                ("reverse", {"x": 1}, "input content type 'json' is not allowed by input_spec"),
                ("total", {"points": []}, "input is single-content but input_spec requires streamed input"),
            ]
            for tool_name, arguments, message in bad_inputs:
                with pytest.raises(RoomException) as info:
                    await caller.agents.invoke_tool(toolkit="math", tool=tool_name, input=arguments)
                assert info.value.code == 1002, (tool_name, info.value)
                assert message in info.value.message, (tool_name, info.value.message)

            async def one_chunk() -> AsyncIterator[JsonContent]:
                yield JsonContent(json={"a": 1})

            with pytest.raises(RoomException) as info:
                await caller.agents.invoke_tool(toolkit="math", tool="add", input=one_chunk())
            assert info.value.code == 1002 and "does not accept streamed input" in info.value.message


async def test_a_raising_tool_answers_an_error_and_the_room_keeps_working(client_module, client_variant, local_server, request) -> None:
    async with host_and_caller(client_module, local_server, room_name(request, client_variant)) as (host, caller):
        async with host.agents.host(math_toolkit()):
            with pytest.raises(RoomException) as info:
                await caller.agents.invoke_tool(toolkit="math", tool="explode", input={"message": "kaboom"})
            assert info.value.message == "kaboom" and info.value.code is None
            with pytest.raises(RoomException) as info:
                await caller.agents.invoke_tool(toolkit="math", tool="conflict")
            assert info.value.message == "already taken" and info.value.code == 1005
            with pytest.raises(RoomException) as info:
                await caller.agents.invoke_tool(toolkit="math", tool="nope")
            assert info.value.code == 1003 and "nope" in info.value.message
            # The host and its toolkit still work.
            assert await caller.agents.invoke_tool(toolkit="math", tool="add", input={"a": 1}) == JsonContent(json=2)
            assert (await host.agents.list_toolkits())[0].name == "math"
            assert await host.invoke("queues", "list", {}) == JsonContent(json={"queues": []})


async def test_streamed_output(client_module, client_variant, local_server, request) -> None:
    async with host_and_caller(client_module, local_server, room_name(request, client_variant)) as (host, caller):
        async with host.agents.host(math_toolkit()):
            stream = await caller.agents.invoke_tool(toolkit="math", tool="count", input={"n": 3})
            assert await collect(stream) == [
                JsonContent(json={"x": 0, "y": 0}),
                JsonContent(json={"x": 1, "y": -1}),
                JsonContent(json={"x": 2, "y": -2}),
            ]
            # Progress events travel as plain objects and come out as JSON items.
            stream = await caller.agents.invoke_tool(toolkit="math", tool="progress", input={"steps": 2})
            assert await collect(stream) == [
                JsonContent(json={"type": "agent.event", "step": 0}),
                TextContent(text="step 0"),
                JsonContent(json={"type": "agent.event", "step": 1}),
                TextContent(text="step 1"),
            ]
            # A failure after the stream opened: an error chunk, then a normal end.
            stream = await caller.agents.invoke_tool(toolkit="math", tool="count", input={"n": 5, "fail_at": 2})
            items = await collect(stream)
            assert items[:2] == [JsonContent(json={"x": 0, "y": 0}), JsonContent(json={"x": 1, "y": -1})]
            assert items[2:] == [ErrorContent(text="broke at 2")]
            # Invalid data after open closes the stream with 1007.
            stream = await caller.agents.invoke_tool(toolkit="math", tool="count", input={"n": 5, "invalid_at": 1})
            received = []
            with pytest.raises(RoomException) as info:
                async for item in stream:
                    received.append(item)
            assert received == [JsonContent(json={"x": 0, "y": 0})]
            assert info.value.status_code == 1007 and info.value.message == "bad item 1"
            # Leaving a stream early abandons it; the host keeps answering.
            stream = await caller.agents.invoke_tool(toolkit="math", tool="count", input={"n": 1000})
            async for item in stream:
                assert item == JsonContent(json={"x": 0, "y": 0})
                break
            await stream.aclose()
            assert await caller.agents.invoke_tool(toolkit="math", tool="add", input={"a": 1}) == JsonContent(json=2)


async def test_calls_are_answered_concurrently(client_module, client_variant, local_server, request) -> None:
    signal = anyio.Event()
    waiting = anyio.Event()

    @tool
    async def wait_for_signal() -> str:
        waiting.set()
        await signal.wait()
        return "released"

    @tool
    async def release() -> str:
        signal.set()
        return "done"

    async with host_and_caller(client_module, local_server, room_name(request, client_variant)) as (host, caller):
        async with host.agents.host(Toolkit(name="gate", tools=[wait_for_signal, release])):
            results: dict[str, Any] = {}
            async with anyio.create_task_group() as tasks:

                async def first() -> None:
                    results["first"] = await caller.agents.invoke_tool(toolkit="gate", tool="wait_for_signal")

                tasks.start_soon(first)
                await waiting.wait()
                # The first call is still running on the host; the second must be answered anyway.
                results["second"] = await caller.agents.invoke_tool(toolkit="gate", tool="release")
            assert results == {"first": TextContent(text="released"), "second": TextContent(text="done")}


async def test_streamed_input(client_module, client_variant, local_server, request) -> None:
    async with host_and_caller(client_module, local_server, room_name(request, client_variant)) as (host, caller):
        async with host.agents.host(math_toolkit()):

            async def points(n: int) -> AsyncIterator[JsonContent]:
                for i in range(n):
                    yield JsonContent(json={"x": i, "y": 0})

            assert await caller.agents.invoke_tool(toolkit="math", tool="total", input=points(100)) == JsonContent(json=4950)
            assert await caller.agents.invoke_tool(toolkit="math", tool="total", input=points(0)) == JsonContent(json=0)

            # Streamed input and streamed output at once.
            async def words() -> AsyncIterator[TextContent]:
                for word in ["a", "bc", "def"]:
                    yield TextContent(text=word)

            stream = await caller.agents.invoke_tool(toolkit="math", tool="echo", input=words())
            assert await collect(stream) == [TextContent(text="A"), TextContent(text="BC"), TextContent(text="DEF")]

            # An input chunk that does not fit the declared item type fails the call with 1002.
            async def bad_points() -> AsyncIterator[JsonContent]:
                yield JsonContent(json={"x": 1, "y": 1})
                yield JsonContent(json={"x": "one"})

            with pytest.raises(RoomException) as info:
                await caller.agents.invoke_tool(toolkit="math", tool="total", input=bad_points())
            assert info.value.code == 1002 and "`$.x`" in info.value.message

            # An input iterator that raises fails the call on the caller's side.
            async def broken() -> AsyncIterator[JsonContent]:
                yield JsonContent(json={"x": 1, "y": 1})
                raise ValueError("source broke")

            with pytest.raises(RoomException) as info:
                await caller.agents.invoke_tool(toolkit="math", tool="total", input=broken())
            assert info.value.message == "request stream failed: source broke"

            # The host is unaffected.
            assert await caller.agents.invoke_tool(toolkit="math", tool="total", input=points(3)) == JsonContent(json=3)


async def test_leaving_the_block_unregisters(client_module, client_variant, local_server, request) -> None:
    async with host_and_caller(client_module, local_server, room_name(request, client_variant)) as (host, caller):
        async with host.agents.host(Toolkit(name="temp", tools=[add])) as hosted:
            assert [t.name for t in await caller.agents.list_toolkits()] == ["temp"]
            with pytest.raises(RoomException) as info:
                async with host.agents.host(Toolkit(name="temp", tools=[greet])):
                    pass
            assert info.value.code == 1004
        assert hosted.registration_id is None and not hosted.running
        assert await caller.agents.list_toolkits() == []
        with pytest.raises(RoomException) as info:
            await caller.agents.invoke_tool(toolkit="temp", tool="add", input={"a": 1})
        assert info.value.code == 1003
        # The same name can be hosted again, and the official entry point works too.
        hosted = await start_hosted_toolkit(room=host, toolkit=Toolkit(name="temp", tools=[greet]))
        try:
            assert await caller.agents.invoke_tool(toolkit="temp", tool="greet", input={"name": "x"}) == TextContent(text="hello x")
        finally:
            await hosted.stop()
        assert await caller.agents.list_toolkits() == []


async def test_a_body_error_still_unregisters(client_module, client_variant, local_server, request) -> None:
    async with host_and_caller(client_module, local_server, room_name(request, client_variant)) as (host, caller):
        with pytest.raises(KeyError):
            async with host.agents.host(Toolkit(name="temp", tools=[add])):
                raise KeyError("body")
        assert await caller.agents.list_toolkits() == []


async def test_calls_running_when_the_block_ends_get_an_error(client_module, client_variant, local_server, request) -> None:
    started = anyio.Event()

    @tool
    async def forever() -> str:
        started.set()
        await anyio.sleep_forever()
        return "never"

    async with host_and_caller(client_module, local_server, room_name(request, client_variant)) as (host, caller):
        outcome: dict[str, Any] = {}
        async with anyio.create_task_group() as tasks:

            async def call() -> None:
                try:
                    await caller.agents.invoke_tool(toolkit="slow", tool="forever")
                except RoomException as error:
                    outcome["error"] = error

            async with host.agents.host(Toolkit(name="slow", tools=[forever])):
                tasks.start_soon(call)
                await started.wait()
        assert outcome["error"].code == 1008 and "stopped" in outcome["error"].message


async def test_host_leaving_fails_its_calls(client_module, client_variant, local_server, request) -> None:
    name = room_name(request, client_variant)
    url = local_server.room_url(name)
    unary_started, stream_started = anyio.Event(), anyio.Event()

    @tool
    async def wait_forever() -> str:
        unary_started.set()
        await anyio.sleep_forever()
        return "never"

    @tool
    async def stream_forever() -> AsyncIterator[str]:
        yield "first"
        stream_started.set()
        await anyio.sleep_forever()
        yield "never"

    async with client_module.connect(url, mint(local_server.credentials, name, name="caller")) as caller:
        with anyio.fail_after(20):
            outcome: dict[str, Any] = {}
            async with anyio.create_task_group() as tasks:

                async def unary_call() -> None:
                    try:
                        await caller.agents.invoke_tool(toolkit="fleeting", tool="wait_forever")
                    except RoomException as error:
                        outcome["unary"] = error

                async with client_module.connect(url, mint(local_server.credentials, name, name="host")) as host:
                    # Hosted until the room ends, without a stop(): the host just leaves.
                    await start_hosted_toolkit(room=host, toolkit=Toolkit(name="fleeting", tools=[wait_forever, stream_forever]))
                    stream = await caller.agents.invoke_tool(toolkit="fleeting", tool="stream_forever")
                    assert await stream.__anext__() == TextContent(text="first")
                    tasks.start_soon(unary_call)
                    await unary_started.wait()
                    await stream_started.wait()
            assert outcome["unary"].code == 1008
            # The open stream ends with an error: an error chunk, an abnormal close, or both.
            rest: list[Any] = []
            with pytest.raises(RoomException):
                async for item in stream:
                    rest.append(item)
                    if isinstance(item, ErrorContent):
                        raise RoomException(item.text)
            assert all(isinstance(item, ErrorContent) for item in rest)
            assert await caller.agents.list_toolkits() == []
            with pytest.raises(RoomException) as info:
                await caller.agents.invoke_tool(toolkit="fleeting", tool="wait_forever")
            assert info.value.code == 1003


async def test_host_needs_the_agents_grant(client_module, client_variant, local_server, request) -> None:
    no_public = ApiScope(agents=AgentsGrant(register_public_toolkit=False))
    async with host_and_caller(client_module, local_server, room_name(request, client_variant), host_scope=no_public) as (host, caller):
        with pytest.raises(RoomException) as info:
            async with host.agents.host(Toolkit(name="pub", tools=[add])):
                pass
        assert info.value.code == 1001
        async with host.agents.host(Toolkit(name="priv", tools=[add]), public=False):
            assert [t.name for t in await host.agents.list_toolkits()] == ["priv"]
        # A failed registration leaves nothing behind: hosting the name again is allowed.
        with pytest.raises(RoomException):
            async with host.agents.host(Toolkit(name="pub", tools=[add])):
                pass
    no_agents = ApiScope(storage=ApiScope.agent_default().storage)
    async with host_and_caller(client_module, local_server, room_name(request, client_variant) + "-2", host_scope=no_agents) as (host, caller):
        with pytest.raises(RoomException) as info:
            async with host.agents.host(Toolkit(name="pub", tools=[add])):
                pass
        assert info.value.code == 1001


async def test_caller_needs_the_use_tools_grant(client_module, client_variant, local_server, request) -> None:
    restricted = ApiScope(agents=AgentsGrant(use_tools=False))
    only_other = ApiScope(agents=AgentsGrant(allowed_toolkits=["other"]))
    async with host_and_caller(client_module, local_server, room_name(request, client_variant), caller_scope=restricted) as (host, caller):
        async with host.agents.host(Toolkit(name="math", tools=[add])):
            with pytest.raises(RoomException) as info:
                await caller.agents.invoke_tool(toolkit="math", tool="add", input={"a": 1})
            assert info.value.code == 1001
    async with host_and_caller(client_module, local_server, room_name(request, client_variant) + "-2", caller_scope=only_other) as (host, caller):
        async with host.agents.host(Toolkit(name="math", tools=[add])):
            with pytest.raises(RoomException) as info:
                await caller.agents.invoke_tool(toolkit="math", tool="add", input={"a": 1})
            assert info.value.code == 1001


@pytest.fixture
def own_server(tmp_path):
    from meshagent_trio.server import LocalServerProcess

    with LocalServerProcess(tmp_path / "data") as server:
        yield server


async def test_the_toolkit_is_registered_again_after_a_reconnect(client_module, own_server) -> None:
    from meshagent_core.client.room import Reconnected

    url = own_server.room_url("rehost")

    async def reconnected(subscription) -> None:
        async for event in subscription:
            if isinstance(event, Reconnected):
                return
        raise AssertionError("the room closed instead of reconnecting")

    with anyio.fail_after(60):
        async with client_module.connect(url, mint(own_server.credentials, "rehost", name="host"), reconnect_timeout=30) as host:
            async with client_module.connect(url, mint(own_server.credentials, "rehost", name="caller"), reconnect_timeout=30) as caller:
                async with host.agents.host(Toolkit(name="math", tools=[add])) as hosted:
                    first_registration = hosted.registration_id
                    host_events, caller_events = host.subscribe(Reconnected), caller.subscribe(Reconnected)
                    await anyio.to_thread.run_sync(own_server.kill)  # the server forgets every registration
                    await anyio.to_thread.run_sync(own_server.restart)
                    await reconnected(host_events)  # reconnect hooks (re-registration) ran before this event
                    await reconnected(caller_events)
                    assert hosted.registration_id not in (None, first_registration)
                    assert [t.name for t in await caller.agents.list_toolkits()] == ["math"]
                    assert await caller.agents.invoke_tool(toolkit="math", tool="add", input={"a": 41}) == JsonContent(json=42)
                assert await caller.agents.list_toolkits() == []
