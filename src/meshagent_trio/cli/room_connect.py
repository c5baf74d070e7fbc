"""`meshagent-trio room connect`: run a local command with the environment that joins a room."""

from __future__ import annotations

import typer


def register(room: typer.Typer) -> None:
    pass
