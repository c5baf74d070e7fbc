"""Files over HTTP, streamed in bounded chunks both ways: a request body read piece by piece
(`BodyStream`, for uploads larger than `max_request_body`), and a file sent as a response
(`send_file`) with `HEAD`, byte ranges, its content type and its name.

Ranges (RFC 9110 §14): one range `bytes=a-b`, `bytes=a-` or `bytes=-n` answers 206 with
`Content-Range`; one that starts past the end (or `-0`, or any range of an empty file) answers
416 with `Content-Range: bytes */<size>`. A multi-range request (`bytes=0-1,5-6`) and a Range
header that does not parse are answered with the whole file (200), as the RFC allows: this
server never sends `multipart/byteranges`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, AsyncIterator
from urllib.parse import quote

import h11
import trio

from .front import BodyTooLarge, Request

#: Bytes read from a file (or a request body) at a time.
CHUNK_SIZE = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class BodyStream:
    """The body of a request, read chunk by chunk as the handler asks for it: at most `limit`
    bytes (`BodyTooLarge` beyond, refused up front from `Content-Length`); each read must
    arrive within `read_timeout` seconds (`trio.TooSlowError` otherwise)."""

    def __init__(self, request: Request, *, limit: int, read_timeout: float) -> None:
        self.request = request
        self.limit = limit
        self.read_timeout = read_timeout
        self.received = 0
        self.finished = False
        declared = request.headers.get("content-length")
        self.declared = int(declared) if declared is not None and declared.isdigit() else None

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.declared is not None and self.declared > self.limit:
            raise BodyTooLarge(self.declared)
        connection = self.request.connection
        if connection.they_are_waiting_for_100_continue:  # curl does so for large uploads
            await self.request.stream.send_all(connection.send(h11.InformationalResponse(status_code=100, headers=[])))
        while not self.finished:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                with trio.fail_after(self.read_timeout):
                    data = await self.request.stream.receive_some(CHUNK_SIZE)
                connection.receive_data(data)
                if not data and connection.their_state is h11.SEND_BODY:
                    raise trio.BrokenResourceError("the connection closed in the middle of a request body")
            elif isinstance(event, h11.Data):
                self.received += len(event.data)
                if self.received > self.limit:
                    raise BodyTooLarge(self.received)
                yield bytes(event.data)
            else:  # EndOfMessage, PAUSED or ConnectionClosed: nothing more comes
                self.finished = True


@dataclass
class OpenFile:
    """A file to send: an open binary file (closed by `send_file`), its size, type and name."""

    file: Any
    size: int
    content_type: str
    name: str
    #: `Content-Disposition`: "inline" or "attachment"
    disposition: str = "attachment"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """The byte range a `Range` header asks of a file of `size` bytes: `(first, last)`
    (inclusive), None for the whole file (no header, several ranges, or one that does not
    parse), False when the range cannot be satisfied."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # the last n bytes
        length = int(last_text)
        if length == 0 or size == 0:
            return False
        return max(0, size - length), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # not a valid range: ignored
    if first >= size:
        return False
    return first, min(last, size - 1)


def content_disposition(disposition: str, name: str) -> str:
    """`inline; filename="a.txt"` with an RFC 5987 `filename*` for names that are not plain ASCII."""
    plain = name.isascii() and name.isprintable() and '"' not in name and "\\" not in name
    fallback = name if plain else (name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_") or "download")
    value = f'{disposition}; filename="{fallback}"'
    if not plain:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


async def send_file(request: Request, answer: OpenFile, extra_headers: list[tuple[str, str]] | None = None) -> None:
    """Answer `request` (GET or HEAD) with the file, or the range of it the request asks for;
    closes the file."""
    stream, connection = request.stream, request.connection
    try:
        size = answer.size
        wanted = parse_range(request.headers.get("range"), size)
        headers = [("accept-ranges", "bytes"), *(extra_headers or [])]
        if wanted is False:
            headers += [("content-range", f"bytes */{size}"), ("content-type", "text/plain; charset=utf-8")]
            body = f"the range {request.headers.get('range')} is outside the file's {size} bytes\n".encode()
            headers.append(("content-length", str(len(body))))
            await stream.send_all(
                connection.send(h11.Response(status_code=416, headers=headers))
                + (b"" if request.method == "HEAD" else connection.send(h11.Data(data=body)))
                + connection.send(h11.EndOfMessage())
            )
            return
        first, last = (0, size - 1) if wanted is None else wanted
        length = last - first + 1
        headers += [
            ("content-type", answer.content_type),
            ("content-length", str(length)),
            ("content-disposition", content_disposition(answer.disposition, answer.name)),
        ]
        status = 200
        if wanted is not None:
            status = 206
            headers.append(("content-range", f"bytes {first}-{last}/{size}"))
        await stream.send_all(connection.send(h11.Response(status_code=status, headers=headers)))
        if request.method != "HEAD" and length > 0:
            await _send_part(request, answer.file, first, length)
        await stream.send_all(connection.send(h11.EndOfMessage()))
    finally:
        answer.file.close()


async def _send_part(request: Request, file: Any, offset: int, length: int) -> None:
    """`length` bytes of `file` from `offset`, one chunk at a time. A file that shrank meanwhile
    ends the connection (the promised length cannot be kept)."""
    await trio.to_thread.run_sync(file.seek, offset)
    left = length
    while left > 0:
        data = await trio.to_thread.run_sync(file.read, min(CHUNK_SIZE, left))
        if not data:
            raise trio.BrokenResourceError("the file shrank while it was being sent")
        left -= len(data)
        await request.stream.send_all(request.connection.send(h11.Data(data=data)))


__all__ = ["CHUNK_SIZE", "BodyStream", "OpenFile", "content_disposition", "parse_range", "send_file"]
