"""`meshagent-trio …`: Manage the API keys of a project."""

from __future__ import annotations

from .common import group

app = group("Manage the API keys of a project.")
