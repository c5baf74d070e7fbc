"""`meshagent-trio …`: Manage project, room and user secrets."""

from __future__ import annotations

from .common import group

app = group("Manage project, room and user secrets.")
