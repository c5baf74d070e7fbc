"""`meshagent-trio …`: Use queues in a room."""

from __future__ import annotations

from .common import group

app = group("Use queues in a room.")
