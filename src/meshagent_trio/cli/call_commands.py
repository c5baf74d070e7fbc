"""`meshagent-trio …`: Call agents and tools into a room over a webhook."""

from __future__ import annotations

from .common import group

app = group("Call agents and tools into a room over a webhook.")
