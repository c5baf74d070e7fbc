"""A toolkit hosted with meshagent-tools (`start_hosted_toolkit`) by one official participant and
invoked by another: a result, a streamed result, a tool that raises, invalid arguments, and the
room still working afterwards; once the host leaves, calls fail with an error."""

from __future__ import annotations

from _official import connect, error_info, expect_error, observed, run, step, timed

from meshagent.api import ErrorCode, RoomException
from meshagent.api.messaging import JsonContent, TextContent, _ControlContent
from meshagent.tools import FunctionTool, Toolkit, start_hosted_toolkit

NUMBERS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["a", "b"],
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
}
NOTHING = {"type": "object", "additionalProperties": False, "required": [], "properties": {}}
COUNT = {"type": "object", "additionalProperties": False, "required": ["n"], "properties": {"n": {"type": "integer"}}}


class Add(FunctionTool):
    def __init__(self) -> None:
        super().__init__(name="add", input_schema=NUMBERS, description="adds two numbers")

    async def execute(self, context, *, a: float, b: float):
        return {"sum": a + b, "caller": context.caller.id}


class Fail(FunctionTool):
    def __init__(self) -> None:
        super().__init__(name="fail", input_schema=NOTHING, description="always raises")

    async def execute(self, context):
        raise RoomException("the tool failed on purpose", code=ErrorCode.CONFLICT)


class Crash(FunctionTool):
    def __init__(self) -> None:
        super().__init__(name="crash", input_schema=NOTHING, description="raises a plain exception")

    async def execute(self, context):
        raise ValueError("plain python error")


class Count(FunctionTool):
    def __init__(self) -> None:
        super().__init__(name="count", input_schema=COUNT, description="streams n text chunks")

    async def execute(self, context, *, n: int):
        async def chunks():
            for i in range(n):
                yield TextContent(text=f"chunk {i}")

        return chunks()


async def main() -> dict:
    toolkit = Toolkit(name="calc", title="Calculator", description="test toolkit", tools=[Add(), Fail(), Crash(), Count()])
    async with connect("caller") as caller:
        async with connect("host") as host:
            step("start_hosted_toolkit")
            hosted = await timed("start_hosted_toolkit", start_hosted_toolkit(room=host, toolkit=toolkit))
            observed["host_id"] = host.local_participant.id
            observed["caller_id"] = caller.local_participant.id

            toolkits = await timed("list_toolkits", caller.agents.list_toolkits(participant_id=host.local_participant.id))
            observed["toolkits"] = {t.name: sorted(tool.name for tool in t.tools) for t in toolkits}

            result = await timed("invoke add", caller.agents.invoke_tool(toolkit="calc", tool="add", input={"a": 2, "b": 3.5}))
            observed["add"] = result.json if isinstance(result, JsonContent) else repr(result)

            observed["fail"] = await expect_error("invoke fail", caller.agents.invoke_tool(toolkit="calc", tool="fail", input={}))
            observed["crash"] = await expect_error("invoke crash", caller.agents.invoke_tool(toolkit="calc", tool="crash", input={}))
            observed["bad_arguments"] = await expect_error(
                "invoke add with bad arguments", caller.agents.invoke_tool(toolkit="calc", tool="add", input={"a": "two"})
            )
            observed["unknown_tool"] = await expect_error("invoke unknown tool", caller.agents.invoke_tool(toolkit="calc", tool="nope", input={}))

            step("invoke count (streamed)")
            chunks = []
            try:
                stream = await timed("invoke count", caller.agents.invoke_tool(toolkit="calc", tool="count", input={"n": 3}))
                async def collect():
                    # The official stream yields the final control/close itself (as developer.logs
                    # and storage.download expect); record it as "<close>".
                    async for chunk in stream:
                        if isinstance(chunk, _ControlContent):
                            chunks.append(f"<{chunk.method} {chunk.status_code}>")
                        else:
                            chunks.append(chunk.text if isinstance(chunk, TextContent) else repr(chunk))
                await timed("read count stream", collect())
                observed["count"] = chunks
            except Exception as error:  # noqa: BLE001
                observed["count"] = {"error": error_info(error), "chunks": chunks}

            # The room and the toolkit survive the failures.
            again = await timed("invoke add again", caller.agents.invoke_tool(toolkit="calc", tool="add", input={"a": 1, "b": 1}))
            observed["add_again"] = again.json if isinstance(again, JsonContent) else repr(again)
            await timed("developer.log", caller.developer.log(type="alive", data={}))
            observed["room_alive"] = True
            await timed("stop hosted toolkit", hosted.stop())
            observed["after_unregister"] = await expect_error(
                "invoke after unregister", caller.agents.invoke_tool(toolkit="calc", tool="add", input={"a": 1, "b": 1})
            )
            hosted = await timed("start_hosted_toolkit again", start_hosted_toolkit(room=host, toolkit=toolkit))
            again = await timed("invoke add after re-register", caller.agents.invoke_tool(toolkit="calc", tool="add", input={"a": 4, "b": 4}))
            observed["add_reregistered"] = again.json if isinstance(again, JsonContent) else repr(again)
        # The host has left the room: its toolkit is gone.
        observed["after_host_left"] = await expect_error(
            "invoke after host left", caller.agents.invoke_tool(toolkit="calc", tool="add", input={"a": 1, "b": 1})
        )
        await timed("developer.log 2", caller.developer.log(type="alive", data={}))
        observed["room_alive_after_host_left"] = True
    return observed


run(main)
