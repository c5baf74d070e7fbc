"""`meshagent-trio …`: Manage services in a room."""

from __future__ import annotations

from .common import group

app = group("Manage services in a room.")
