"""`meshagent-trio …`: Manage scheduled tasks for your project."""

from __future__ import annotations

from .common import group

app = group("Manage scheduled tasks for your project.")
