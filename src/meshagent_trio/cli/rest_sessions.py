"""`meshagent-trio …`: Inspect recent sessions and events."""

from __future__ import annotations

from .common import group

app = group("Inspect recent sessions and events.")
