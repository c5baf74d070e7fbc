"""`meshagent-trio …`: Developer logs of a room."""

from __future__ import annotations

from .common import group

app = group("Developer logs of a room.")
