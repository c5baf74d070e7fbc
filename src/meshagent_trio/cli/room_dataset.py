"""`meshagent-trio …`: Manage dataset tables in a room."""

from __future__ import annotations

from .common import group

app = group("Manage dataset tables in a room.")
