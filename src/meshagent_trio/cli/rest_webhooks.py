"""`meshagent-trio …`: Manage the webhooks of a project."""

from __future__ import annotations

from .common import group

app = group("Manage the webhooks of a project.")
