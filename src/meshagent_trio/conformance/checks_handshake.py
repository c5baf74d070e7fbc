"""Handshake checks (protocol/wire.md §2.2, §6.2), over a raw WebSocket: a valid participant token is
let in and told the room and its participant id; a forged, expired, misdirected or missing
token is refused with HTTP 403 on the upgrade (the one refusal the official client treats as
final, with 404 and 423), and never upgraded."""

from __future__ import annotations

import time

from .runner import CheckFailed, Context, check, expect
from .wire import HandshakeRejected, RawConnection


@check("handshake.valid-token", "a valid token is upgraded and gets room_ready and connected/init")
async def valid_token(ctx: Context) -> str:
    room = ctx.new_room()
    ctx.step = "upgrading with a valid token"
    try:
        connection = await RawConnection.open(ctx.target.room_url(room), ctx.token(room))
    except HandshakeRejected as refused:
        raise CheckFailed(f"a valid token was refused: {refused}") from None
    try:
        ctx.step = "waiting for room_ready and connected/init"
        ready, init = await connection.handshake()
        expect(ready.get("room_name") == room, f"room_ready names room {ready.get('room_name')!r}, not {room!r}")
        for field in ("room_url", "session_id"):
            value = ready.get(field)
            expect(isinstance(value, str) and value, f"room_ready has no {field} string (got {value!r})")
        participant_id = init.get("participantId")
        expect(
            isinstance(participant_id, str) and participant_id,
            f"connected/init has no participantId string (got {participant_id!r})",
        )
        expect(isinstance(init.get("attributes"), dict), f"connected/init attributes is not an object: {init.get('attributes')!r}")
        expect(not connection.violations, f"framing: {'; '.join(connection.violations[:2])}")
        return f"participant {participant_id}, session {ready['session_id']}"
    finally:
        await connection.aclose()


async def _expect_refused(ctx: Context, room: str, token: str | None, what: str) -> str:
    ctx.step = f"upgrading with {what}"
    try:
        connection = await RawConnection.open(ctx.target.room_url(room), token)
    except HandshakeRejected as refused:
        expect(refused.status != 0, f"{what}: the server dropped the connection during the upgrade instead of answering 403")
        expect(
            refused.status == 403,
            f"{what} was refused with HTTP {refused.status}, not 403 (0.56 clients retry anything but 403/404/423)",
        )
        return "refused with HTTP 403"
    await connection.aclose()
    raise CheckFailed(f"{what} was accepted: the upgrade answered 101 Switching Protocols instead of 403")


@check("handshake.wrong-secret", "a token signed with another secret is refused with 403")
async def wrong_secret(ctx: Context) -> str:
    room = ctx.new_room()
    forged = ctx.token(room, secret=ctx.target.other_secret())
    return await _expect_refused(ctx, room, forged, "a token signed with the wrong secret")


@check("handshake.expired-token", "a token whose exp has passed is refused with 403")
async def expired_token(ctx: Context) -> str:
    room = ctx.new_room()
    expired = ctx.token(room, expires=int(time.time()) - 3600)
    return await _expect_refused(ctx, room, expired, "a token that expired an hour ago")


@check("handshake.other-room", "a token for another room is refused with 403")
async def other_room(ctx: Context) -> str:
    room, other = ctx.new_room(), ctx.new_room()
    return await _expect_refused(ctx, room, ctx.token(other), "a token granting another room")


@check("handshake.missing-token", "an upgrade without a token is refused with 403")
async def missing_token(ctx: Context) -> str:
    return await _expect_refused(ctx, ctx.new_room(), None, "an upgrade without an Authorization header")
