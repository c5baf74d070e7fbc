"""`meshagent-trio …`: Manage SQLite databases and tables in a room."""

from __future__ import annotations

from .common import group

app = group("Manage SQLite databases and tables in a room.")
