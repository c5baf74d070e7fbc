"""`meshagent-trio usage show`: what a project used (ours; the official CLI has no usage group).
The local server reports participant minutes per room and bucket of time, and the bytes each
room stores now (see protocol/rest.md §21.1); a hosted server may report more kinds of rows,
which are shown as they come."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Annotated, Any, List, Optional

import typer

from .common import OutputFormat, OutputOption, ProjectIdOption, example, group, resolve_project_id, rest_session, run
from .output import print_data

EXTENSIONS = ("usage", "usage show")

app = group("Usage of a project.")


class Interval(str, enum.Enum):
    day = "day"
    hour = "hour"


class UsageType(str, enum.Enum):
    participant_minutes = "participant_minutes"
    storage_bytes = "storage_bytes"


def _moment(text: str | None, option: str) -> datetime | None:
    """The moment an option names; without a zone, UTC (as the server reads it)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    except ValueError:
        raise typer.BadParameter(f"not an ISO-8601 date or time: {text!r} (e.g. 2025-01-31 or 2025-01-31T12:00:00Z)", param_hint=option) from None


@app.command(
    "show",
    epilog=example(
        "meshagent-trio usage show",
        "meshagent-trio usage show --start 2025-01-01 --end 2025-02-01 --room planning -o json",
        "meshagent-trio usage show --interval hour --usage-type participant_minutes --user alice",
    ),
)
def show(
    project_id: ProjectIdOption = None,
    start: Annotated[Optional[str], typer.Option("--start", help="From this moment (ISO-8601; UTC without a zone)")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="Until this moment, excluded (ISO-8601)")] = None,
    interval: Annotated[Optional[Interval], typer.Option("--interval", help="Bucket size of the rows (default: day)")] = None,
    room: Annotated[Optional[str], typer.Option("--room", help="Only this room")] = None,
    users: Annotated[Optional[List[str]], typer.Option("--user", help="Only these participants' minutes (repeatable)")] = None,
    usage_type: Annotated[Optional[UsageType], typer.Option("--usage-type", help="Only this kind of row")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show the project's usage: participant minutes per room and day (or hour), and storage bytes."""
    since, until = _moment(start, "--start"), _moment(end, "--end")
    if since is not None and until is not None and until < since:
        raise typer.BadParameter("--end is before --start", param_hint="--end")

    async def body() -> list[dict[str, Any]]:
        async with rest_session() as api:
            return await api.get_usage(  # type: ignore[no-any-return]
                resolve_project_id(project_id),
                start=since,
                end=until,
                interval=interval.value if interval else None,
                room=room,
                users=list(users) if users else None,
                usage_type=usage_type.value if usage_type else None,
            )

    rows = run(body)
    columns = ["usage_type", "room", "date", "total"]
    columns += [key for row in rows for key in row if key not in columns]
    print_data(rows, output, columns=list(dict.fromkeys(columns)), empty="No usage recorded.")
