"""Agents as services on the local server (protocol/webhooks.md §5–§7): `room.call` (a signed
webhook that calls an agent into a room), project webhooks (`room.started` / `room.ended`),
and the room services that run when a room starts."""
