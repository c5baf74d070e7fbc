"""Test helper for the reverse form of a service call (protocol/webhooks.md §3): `bridge` does what
the platform does when it dials a service instead of letting the service dial the room."""

from __future__ import annotations

from typing import Any

from meshagent_core.client.websocket import WebSocketClosed, connect_websocket
from meshagent_core.webhooks import sign, webhook_body


async def bridge(backend: Any, service_url: str, call: dict[str, Any], room_ws: str, secret: str | None) -> None:
    """Dial the room as the callee's participant (`call["token"]`) and dial the service's webhook
    path (`ws://…/webhook`) with the signed `room.call` in `Meshagent-Webhook`, then relay
    WebSocket messages both ways until either side closes; then close both."""
    envelope = webhook_body("room.call", call).decode()
    headers = {"Meshagent-Webhook": envelope}
    if secret is not None:
        headers["Meshagent-Signature"] = sign(envelope, secret)
    service = await connect_websocket(backend, service_url, headers=headers)
    try:
        room = await connect_websocket(backend, room_ws, headers={"Authorization": f"Bearer {call['token']}"})
    except BaseException:
        with backend.shielded(5):
            await service.close()
        raise
    try:
        async with backend.open_task_group() as tasks:

            async def pump(source: Any, target: Any) -> None:
                try:
                    while True:
                        await target.send_packets(await source.receive_packets())
                except WebSocketClosed:
                    pass
                finally:
                    tasks.cancel_scope.cancel()

            tasks.start_soon(pump, room, service)
            tasks.start_soon(pump, service, room)
    finally:
        with backend.shielded(5):
            await service.close()
            await room.close()
