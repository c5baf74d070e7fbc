"""`meshagent-trio …`: Send and receive messages in a room."""

from __future__ import annotations

from .common import group

app = group("Send and receive messages in a room.")
