"""`meshagent-trio …`: Manage projects."""

from __future__ import annotations

from .common import group

app = group("Manage projects.")
