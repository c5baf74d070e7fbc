"""`meshagent-trio …`: Manage services for your project."""

from __future__ import annotations

from .common import group

app = group("Manage services for your project.")
