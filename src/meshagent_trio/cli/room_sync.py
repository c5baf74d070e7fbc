"""`meshagent-trio …`: Inspect and update mesh documents in a room."""

from __future__ import annotations

from .common import group

app = group("Inspect and update mesh documents in a room.")
