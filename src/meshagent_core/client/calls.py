"""What every sub-client uses to make calls: answer validation and iterators over streamed
calls."""

from __future__ import annotations

from typing import Any, AsyncGenerator, Generic, TypeVar

import msgspec

from ..content import BinaryContent, ControlContent, ErrorContent, JsonContent
from ..errors import ErrorCode, RoomException
from .connection import ToolCallStream

T = TypeVar("T")


# --- validating answers ----------------------------------------------------------------------


def unexpected_response(toolkit: str, operation: str) -> RoomException:
    """The official client's error for an answer of the wrong type or shape (code 1100)."""
    return RoomException(f"unexpected return type from {toolkit}.{operation}", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE)


def decode_strict(value: Any, type: type[T], *, toolkit: str, operation: str) -> T:
    """`value` as the Struct `type`: an object with no keys beyond the Struct's fields (and its
    tag), every field valid; otherwise code 1100. Nested Structs tolerate extra keys, as the
    official models do."""
    if not isinstance(value, dict):
        raise unexpected_response(toolkit, operation)
    allowed = set(type.__struct_fields__)  # type: ignore[attr-defined]
    tag_field = type.__struct_config__.tag_field  # type: ignore[attr-defined]
    if tag_field is not None:
        allowed.add(tag_field)
    if not allowed.issuperset(value):
        raise unexpected_response(toolkit, operation)
    try:
        return msgspec.convert(value, type=type)
    except msgspec.ValidationError:
        raise unexpected_response(toolkit, operation) from None


def expect_json(content: Any, type: type[T], *, toolkit: str, operation: str) -> T:
    """A `json` answer decoded strictly as `type` (see `decode_strict`)."""
    if not isinstance(content, JsonContent):
        raise unexpected_response(toolkit, operation)
    return decode_strict(content.json, type, toolkit=toolkit, operation=operation)


async def expect_stream_open(call: ToolCallStream, *, toolkit: str, operation: str) -> None:
    """Wait for a streamed call's answer: `control/open`, else an error (raised as sent) or
    code 1100."""
    response = await call.response()
    if not (isinstance(response, ControlContent) and response.is_open):
        raise unexpected_response(toolkit, operation)


def binary_chunk(chunk: Any, *, toolkit: str, operation: str) -> BinaryContent:
    """A stream chunk that must be `binary`: an `error` chunk is raised with its code, anything
    else is code 1100."""
    if isinstance(chunk, ErrorContent):
        raise chunk.to_exception()
    if not isinstance(chunk, BinaryContent):
        raise unexpected_response(toolkit, operation)
    return chunk


# --- iterators over streamed calls ------------------------------------------------------------

READY = object()


class CallIterator(Generic[T]):
    """An async iterator over a streamed tool call that is also an async context manager.

    `async with` opens the call (errors known up front are raised there) and closes it on exit;
    plain `async for` opens it on the first step and closes it when the stream ends or fails.
    Breaking out of a plain `async for` leaves the call open until `aclose()` (or garbage
    collection): prefer `async with`.

    `body` is an async generator that opens the call, yields a private ready marker once the
    call is established, then yields the items.
    """

    def __init__(self, body: AsyncGenerator[Any, None]) -> None:
        self._body = body
        self._started = False

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            marker = await self._body.__anext__()
            assert marker is READY

    def __aiter__(self) -> "CallIterator[T]":
        return self

    async def __anext__(self) -> T:
        await self._start()
        return await self._body.__anext__()

    async def __aenter__(self) -> "CallIterator[T]":
        await self._start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End the call (the server is told) if it is still open."""
        await self._body.aclose()


__all__ = [
    "READY",
    "CallIterator",
    "binary_chunk",
    "decode_strict",
    "expect_json",
    "expect_stream_open",
    "unexpected_response",
]
