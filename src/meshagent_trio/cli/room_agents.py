"""`meshagent-trio …`: Interact with agents and toolkits in a room."""

from __future__ import annotations

from .common import group

app = group("Interact with agents and toolkits in a room.")
