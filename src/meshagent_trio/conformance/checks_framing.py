"""Framing checks (protocol/wire.md §3, §4), over a raw WebSocket: a message of hundreds of 1 KiB
packets round-trips and comes back framed by the rules; requests that cannot be decoded get an
error answer on a connection that stays usable; broken packets are either dropped or end the
connection with a close frame, never with a hang or an internal error; a message announcing
terabytes is refused at its header packet."""

from __future__ import annotations

import struct
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator, Sequence

import trio

from meshagent_core import ErrorContent, JsonContent, encode_message, pack_message

from .runner import CheckFailed, Context, check, expect
from .wire import INVOKE_TOOL, RESPONSE, RawConnection, WebSocketClosed, decode_content, header_packet, invoke_header

#: Close codes that mean "you broke the protocol" (RFC 6455 §7.4.1): an acceptable answer to garbage.
PROTOCOL_CLOSE_CODES = {1002: "protocol error", 1003: "unsupported data", 1007: "invalid data", 1008: "policy violation", 1009: "message too big"}
_U64 = struct.Struct(">Q")
_DATA = struct.Struct(">QI")
PROBE_PATH = "conformance-probe/missing.txt"


@asynccontextmanager
async def raw_room(ctx: Context, name: str = "conformance-raw") -> AsyncIterator[RawConnection]:
    """A raw connection to a fresh room, past its handshake."""
    room = ctx.new_room()
    ctx.step = "connecting a raw WebSocket"
    connection = await RawConnection.open(ctx.target.room_url(room), ctx.token(room, name))
    try:
        await connection.handshake()
        yield connection
    finally:
        await connection.aclose()


async def probe(connection: RawConnection, *, after: Sequence[bytes] = ()) -> None:
    """A valid `storage.exists` must be answered with `json {"exists": false}`. The packets
    `after` go first, in the same write (so a server that closes on them cannot make our send
    fail before we read its close frame)."""
    request_id, packets = connection.invoke_packets("storage", "exists", {"path": PROBE_PATH})
    await connection.send_packets([*after, *packets])
    answer = decode_content(await connection.response(request_id))
    expect(
        isinstance(answer, JsonContent) and answer.json == {"exists": False},
        f"the connection no longer answers properly: storage.exists gave {answer!r:.120}",
    )


@check("framing.large-message", "a ~400 KB request and its answer travel as hundreds of 1 KiB packets, framed by the rules")
async def large_message(ctx: Context) -> str:
    blob = ("conformance é€ 😀 " * 20_000)[:300_000]
    message = {"blob": blob, "n": 1}
    async with raw_room(ctx) as connection:
        queue = f"conformance-large-{uuid.uuid4().hex[:10]}"
        ctx.step = "sending a ~400 KB queues.send"
        header = invoke_header("queues", "send", {"name": queue, "message": message, "create": True})
        request = pack_message(header)
        sent_packets = len(encode_message(1, INVOKE_TOOL, request)) - 1
        request_id = await connection.send_message(INVOKE_TOOL, request)
        answer = decode_content(await connection.response(request_id))
        expect(not isinstance(answer, ErrorContent), f"queues.send of a {len(request):,}-byte request failed: {answer!r:.160}")
        ctx.step = "receiving it back with queues.receive"
        answer = await connection.invoke("queues", "receive", {"name": queue, "create": False, "wait": False})
        expect(isinstance(answer, JsonContent), f"queues.receive answered {type(answer).__name__}, not json")
        expect(answer.json == message, "the message came back changed")  # type: ignore[union-attr]
        assert connection.last_response is not None
        received_packets = connection.last_response.packets
        expect(received_packets > 200, f"the answer came in {received_packets} data packets, not hundreds")
        expect(not connection.violations, f"framing of the server's packets: {'; '.join(connection.violations[:2])}")
        return f"{len(request):,} bytes in {sent_packets} packets out, {len(connection.last_response.data):,} in {received_packets} back"


def _envelope(header_json: bytes, declared: int | None = None) -> bytes:
    return _U64.pack(len(header_json) if declared is None else declared) + header_json


UNDECODABLE: list[tuple[str, bytes]] = [
    ("a 3-byte envelope", b"\x00\x00\x07"),
    ("a header length past the end", _envelope(b"{}", declared=1000)),
    ("a header that is not JSON", _envelope(b"{not json")),
    ("a header that is not UTF-8", _envelope(b'{"toolkit": "\xff\xfe"}')),
    ("a header that is a JSON array", _envelope(b"[1, 2, 3]")),
    ("arguments of an unknown content type", pack_message({**invoke_header("storage", "exists", {}), "arguments": {"type": "no-such-type"}})),
    ("an invoke without a toolkit", pack_message({"tool": "exists", "arguments": {"type": "empty"}, "tool_call_id": "0" * 32})),
]


@check("framing.undecodable-request", "undecodable requests get error answers; the connection stays usable")
async def undecodable_request(ctx: Context) -> str:
    codes: list[object] = []
    async with raw_room(ctx) as connection:
        for label, data in UNDECODABLE:
            ctx.step = f"waiting for the answer to {label}"
            request_id = await connection.send_message(INVOKE_TOOL, data)
            try:
                answer = decode_content(await connection.response(request_id))
            except WebSocketClosed as closed:
                raise CheckFailed(f"the server closed the connection ({closed.code}) after {label} instead of answering with an error") from None
            expect(isinstance(answer, ErrorContent), f"{label} was answered with {type(answer).__name__}, not an error")
            codes.append(answer.code)  # type: ignore[union-attr]
        ctx.step = "checking the connection still answers"
        await probe(connection)
    return f"{len(UNDECODABLE)} answered with errors (codes {', '.join(str(c) for c in sorted(set(codes), key=str))}); connection still usable"


MALFORMED: list[tuple[str, list[bytes]]] = [
    ("a data packet of a message never started", [_DATA.pack(777_000, 1) + b"stray bytes"]),
    ("a 5-byte packet", [b"\x00\x01\x02\x03\x04"]),
    ("a data packet skipping an index", [header_packet(777_001, INVOKE_TOOL, 3), _DATA.pack(777_001, 2) + b"x" * 1024]),
]


@check("framing.malformed-packet", "broken packets are dropped, or the connection ends with a protocol close code")
async def malformed_packet(ctx: Context) -> str:
    outcomes = []
    for label, packets in MALFORMED:
        async with raw_room(ctx) as connection:
            ctx.step = f"waiting for an answer to the request sent after {label}, or a close"
            outcome = None
            with trio.move_on_after(ctx.settle):
                try:
                    await probe(connection, after=packets)
                    outcome = "ignored"
                except WebSocketClosed as closed:
                    expect(
                        closed.code in PROTOCOL_CLOSE_CODES,
                        f"after {label} the connection ended with code {closed.code} {closed.reason!r:.80}, "
                        f"not a protocol-error close ({', '.join(map(str, PROTOCOL_CLOSE_CODES))})",
                    )
                    outcome = f"closed {closed.code}"
            expect(outcome is not None, f"after {label} the server neither answered the next request nor closed within {ctx.settle:g}s")
            expect(not connection.violations, f"framing of the server's packets: {'; '.join(connection.violations[:2])}")
            outcomes.append(outcome)
    return "; ".join(f"{label}: {outcome}" for (label, _), outcome in zip(MALFORMED, outcomes))


@check("framing.oversized-message", "a header packet announcing ~4 TiB is refused (close 1009/1008/1002 or an error)")
async def oversized_message(ctx: Context) -> str:
    async with raw_room(ctx) as connection:
        message_id = connection.new_id()
        ctx.step = "sending a header packet announcing 4,294,967,295 data packets"
        await connection.send_packets([header_packet(message_id, INVOKE_TOOL, 0xFFFF_FFFF)])
        refusal = None
        with trio.move_on_after(ctx.settle):
            try:
                while refusal is None:
                    message = await connection.receive()
                    if message.type == RESPONSE and message.id == message_id:
                        answer = decode_content(message)
                        expect(isinstance(answer, ErrorContent), f"the oversized message was answered with {type(answer).__name__}")
                        refusal = f"answered with an error ({answer.code})"  # type: ignore[union-attr]
            except WebSocketClosed as closed:
                expect(
                    closed.code in (1009, 1008, 1002),
                    f"the connection ended with code {closed.code}, not 1009 (message too big), 1008 or 1002",
                )
                reason = closed.reason if len(closed.reason) <= 60 else closed.reason[:59] + "…"
                refusal = f"closed with {closed.code}" + (f" ({reason})" if reason else "")
        expect(refusal is not None, f"nothing refused the announced ~4 TiB message within {ctx.settle:g}s (the server waits for its packets)")
        return refusal  # type: ignore[return-value]


__all__ = ["PROBE_PATH", "PROTOCOL_CLOSE_CODES", "probe", "raw_room"]
