"""`meshagent-trio …`: Create, list, and manage rooms in a project."""

from __future__ import annotations

from .common import group

app = group("Create, list, and manage rooms in a project.")
