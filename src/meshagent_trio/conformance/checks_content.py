"""Content types and error answers (protocol/wire.md §5, §6.5, §7).

Built-in toolkits answer `json` (storage.exists, queues.receive), `empty` (queues.send),
`error` (a missing file) and stream `binary` chunks (storage.download). The `text` and `file`
types (and every other one) come from a toolkit a participant hosts, relayed by the server,
which must pass each content header and payload through unchanged. Error answers carry a code:
1003 (or 1007) for an unknown toolkit, 1003 (or 1002) for an unknown tool, 1002 for arguments
that do not fit."""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from typing import Any, Iterator

from meshagent_core import BinaryContent, EmptyContent, ErrorCode, ErrorContent, FileContent, JsonContent, RoomException, TextContent, pack_message

from meshagent_trio import Toolkit, tool

from .checks_framing import PROBE_PATH, probe, raw_room
from .runner import CheckFailed, Context, check, expect
from .wire import RESPONSE, decode_content

ALL_BYTES = bytes(range(256)) * 4 + b"\x00end"
JSON_VALUE = {"n": 1, "nested": {"list": [1, "two", None, True, 2.5]}, "text": "héllo"}
TEXT_VALUE = "héllo, wörld 😀"


def _code_name(code: object) -> str:
    try:
        return f"{code} {ErrorCode(code).name}"  # type: ignore[arg-type]
    except ValueError:
        return str(code)


async def expect_error(call: Any, label: str, codes: set[int]) -> int:
    """Await `call`; it must fail with a `RoomException` whose code is one of `codes`."""
    try:
        answer = await call
    except RoomException as error:
        expect(isinstance(error.code, int), f"{label}: an error without a code ({error})")
        expect(str(error), f"{label}: an error without a text")
        expect(
            error.code in codes,
            f"{label}: error code {_code_name(error.code)}, expected {' or '.join(_code_name(c) for c in sorted(codes))} ({error})",
        )
        return error.code  # type: ignore[return-value]
    raise CheckFailed(f"{label} succeeded ({type(answer).__name__}) instead of failing")


@contextmanager
def quiet_tool_failure(toolkit: str, tool: str) -> Iterator[None]:
    """Keep the hosting library from logging a traceback for a tool failure we cause on purpose."""
    logger = logging.getLogger("meshagent_core.client.hosting")

    def drop(record: logging.LogRecord) -> bool:
        return not (record.msg == "tool %s.%s failed" and tuple(record.args or ())[:2] == (toolkit, tool))

    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


async def remove(client: Any, path: str) -> None:
    """Delete what a check left in room storage, if it can (best effort: not part of the check)."""
    try:
        await client.storage.delete(path, recursive=True)
    except RoomException:
        pass


@check("content.builtin-answers", "json, empty and error answers, and binary stream chunks, from built-in toolkits")
async def builtin_answers(ctx: Context) -> str:
    room = ctx.new_room()
    queue = f"conformance-{uuid.uuid4().hex[:10]}"
    path = f"conformance/{uuid.uuid4().hex[:8]}/bytes.bin"
    async with ctx.connect(room) as client:
        ctx.step = "calling storage.exists (json)"
        answer = await client.invoke("storage", "exists", {"path": PROBE_PATH})
        expect(isinstance(answer, JsonContent) and answer.json == {"exists": False}, f"storage.exists answered {answer!r:.120}")
        ctx.step = "calling queues.send (empty)"
        answer = await client.invoke("queues", "send", {"name": queue, "message": {"n": 1, "text": "é"}, "create": True})
        expect(isinstance(answer, EmptyContent), f"queues.send answered {answer!r:.120}, not empty")
        ctx.step = "calling queues.receive (json)"
        answer = await client.invoke("queues", "receive", {"name": queue, "create": False, "wait": False})
        expect(isinstance(answer, JsonContent) and answer.json == {"n": 1, "text": "é"}, f"queues.receive answered {answer!r:.120}")
        ctx.step = "downloading a missing file (error)"
        await expect_error(client.storage.download(path=path), "downloading a missing file", {ErrorCode.STORAGE_NOT_FOUND, ErrorCode.NOT_FOUND})
        ctx.step = "uploading, then downloading as a stream of binary chunks"
        await client.storage.upload(path=path, data=ALL_BYTES)
        async with client.storage.download_stream(path=path) as stream:
            chunks = [chunk async for chunk in stream]
        expect(chunks and all(isinstance(c, BinaryContent) for c in chunks), "storage.download did not stream binary chunks")
        expect(chunks[0].headers.get("kind") == "start", f"the first download chunk is not kind start: {chunks[0].headers}")
        data = b"".join(c.data for c in chunks if c.headers.get("kind") == "data")
        expect(data == ALL_BYTES, f"the downloaded bytes differ from the uploaded ones ({len(data)} vs {len(ALL_BYTES)} bytes)")
        await remove(client, path.rsplit("/", 1)[0])
    return f"json, empty, error and {len(chunks)} binary chunks decoded"


@check("content.relayed-answers", "json, text, file, binary, empty and error answers relayed from a hosted tool")
async def relayed_answers(ctx: Context) -> str:
    @tool
    async def json_answer() -> dict:
        return JSON_VALUE

    @tool
    async def text_answer() -> str:
        return TEXT_VALUE

    @tool
    async def file_answer() -> FileContent:
        return FileContent(name="bytes.bin", mime_type="application/octet-stream", data=ALL_BYTES)

    @tool
    async def binary_answer() -> BinaryContent:
        return BinaryContent(headers={"kind": "conformance", "n": 7}, data=ALL_BYTES[::-1])

    @tool
    async def empty_answer() -> None:
        return None

    @tool
    async def error_answer() -> None:
        raise RoomException("deliberate failure", code=ErrorCode.OPERATION_FAILED)

    tools = [json_answer, text_answer, file_answer, binary_answer, empty_answer, error_answer]
    room = ctx.new_room()
    name = f"conformance-content-{uuid.uuid4().hex[:8]}"
    async with ctx.connect(room, "conformance-host") as host, ctx.connect(room, "conformance-caller") as caller:
        ctx.step = "registering the hosted toolkit"
        async with host.agents.host(Toolkit(name=name, tools=tools)):
            ctx.step = "calling the hosted tools"
            answer = await caller.invoke(name, "json_answer", {})
            expect(isinstance(answer, JsonContent) and answer.json == JSON_VALUE, f"json answer relayed as {answer!r:.160}")
            answer = await caller.invoke(name, "text_answer", {})
            expect(isinstance(answer, TextContent) and answer.text == TEXT_VALUE, f"text answer relayed as {answer!r:.160}")
            answer = await caller.invoke(name, "file_answer", {})
            expect(
                isinstance(answer, FileContent) and (answer.name, answer.mime_type, answer.data) == ("bytes.bin", "application/octet-stream", ALL_BYTES),
                f"file answer relayed as {answer!r:.160}",
            )
            answer = await caller.invoke(name, "binary_answer", {})
            expect(
                isinstance(answer, BinaryContent) and answer.headers == {"kind": "conformance", "n": 7} and answer.data == ALL_BYTES[::-1],
                f"binary answer relayed as {answer!r:.160}",
            )
            answer = await caller.invoke(name, "empty_answer", {})
            expect(isinstance(answer, EmptyContent), f"empty answer relayed as {answer!r:.160}")
            with quiet_tool_failure(name, "error_answer"):
                await expect_error(caller.invoke(name, "error_answer", {}), "the failing hosted tool", {ErrorCode.OPERATION_FAILED})
    return "6 content types relayed intact"


@check("errors.unknown-toolkit", "a call to a toolkit nobody hosts is answered with error 1003 (or 1007)")
async def unknown_toolkit(ctx: Context) -> str:
    async with ctx.connect(ctx.new_room()) as client:
        ctx.step = "calling a toolkit nobody hosts"
        code = await expect_error(
            client.invoke(f"conformance-no-such-toolkit-{uuid.uuid4().hex[:8]}", "anything", {}),
            "calling an unknown toolkit",
            {ErrorCode.NOT_FOUND, ErrorCode.DEPENDENCY_MISSING},
        )
        await client.storage.exists(path=PROBE_PATH)
    return f"error {_code_name(code)}"


@check("errors.unknown-tool", "a call to a missing tool of a built-in toolkit is answered with error 1003 (or 1002)")
async def unknown_tool(ctx: Context) -> str:
    codes = []
    async with ctx.connect(ctx.new_room()) as client:
        for toolkit in ("storage", "queues", "messaging"):
            ctx.step = f"calling a missing tool of {toolkit}"
            codes.append(
                await expect_error(
                    client.invoke(toolkit, "conformance_no_such_tool", {}),
                    f"calling {toolkit}.conformance_no_such_tool",
                    {ErrorCode.NOT_FOUND, ErrorCode.INVALID_REQUEST},
                )
            )
        await client.storage.exists(path=PROBE_PATH)
    return "errors " + ", ".join(map(str, codes))


BAD_ARGUMENTS: list[tuple[str, str, str, Any]] = [
    ("storage.exists with a number for path", "storage", "exists", {"path": 5}),
    ("storage.exists without path", "storage", "exists", {}),
    ("storage.exists with text input", "storage", "exists", "conformance.txt"),
    ("queues.send without message", "queues", "send", {"name": "conformance-bad-arguments"}),
    ("queues.receive with a list for name", "queues", "receive", {"name": ["a"], "wait": False}),
]


@check("errors.bad-arguments", "arguments that do not fit a built-in tool get error 1002")
async def bad_arguments(ctx: Context) -> str:
    async with ctx.connect(ctx.new_room()) as client:
        for label, toolkit, tool_name, arguments in BAD_ARGUMENTS:
            ctx.step = f"calling {label}"
            await expect_error(client.invoke(toolkit, tool_name, arguments), label, {ErrorCode.INVALID_REQUEST})
        ctx.step = "checking the connection still answers"
        expect(await client.storage.exists(path=PROBE_PATH) is False, "storage.exists of a missing path is not false")
    return f"{len(BAD_ARGUMENTS)} refused with 1002"


@check("errors.unknown-request-type", "a request of an unknown message type gets an error answer")
async def unknown_request_type(ctx: Context) -> str:
    async with raw_room(ctx) as connection:
        ctx.step = "sending a room.conformance_no_such_request"
        request_id = await connection.send_message("room.conformance_no_such_request", pack_message({"x": 1}))
        while True:
            message = await connection.receive()
            if message.type == RESPONSE and message.id == request_id:
                break
        answer = decode_content(message)
        expect(isinstance(answer, ErrorContent), f"an unknown request type was answered with {answer!r:.120}")
        expect(isinstance(answer.code, int), f"the error has no code: {answer!r:.120}")  # type: ignore[union-attr]
        ctx.step = "checking the connection still answers"
        await probe(connection)
        return f"error {_code_name(answer.code)}"  # type: ignore[attr-defined]
