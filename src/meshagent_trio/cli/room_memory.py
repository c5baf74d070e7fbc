"""`meshagent-trio …`: Manage memories in a room."""

from __future__ import annotations

from .common import group

app = group("Manage memories in a room.")
