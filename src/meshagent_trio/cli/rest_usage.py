"""`meshagent-trio …`: Usage of a project."""

from __future__ import annotations

from .common import group

app = group("Usage of a project.")
