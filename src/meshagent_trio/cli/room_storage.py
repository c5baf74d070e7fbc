"""`meshagent-trio …`: Manage storage for a room."""

from __future__ import annotations

from .common import group

app = group("Manage storage for a room.")
