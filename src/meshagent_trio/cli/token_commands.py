"""`meshagent-trio …`: Generate participant tokens (JWTs)."""

from __future__ import annotations

from .common import group

app = group("Generate participant tokens (JWTs).")
