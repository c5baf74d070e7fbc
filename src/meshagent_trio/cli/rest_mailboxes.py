"""`meshagent-trio …`: Manage mailboxes for your project."""

from __future__ import annotations

from .common import group

app = group("Manage mailboxes for your project.")
