"""`meshagent-trio room developer`: follow a room's developer log (`watch`, until Ctrl-C) and
write to it (`log`).

The official CLI's `room developer` is its one `watch` command (typer collapses a group of one
command into the group); here the group also has `log`, so `watch` is named."""

from __future__ import annotations

import enum
import sys
from typing import Annotated, Any, Optional

import typer

from .common import ProjectIdOption, RoomOption, example, group, in_room, parse_json_option, room_session, run

EXTENSIONS = (
    "room developer log",
    "room developer logs",
    "room developer watch --count",
)

app = group("Developer logs of a room.")


class LogFormat(str, enum.Enum):
    plain = "plain"
    json = "json"


@app.command(
    "watch",
    epilog=example("meshagent-trio room developer watch --room lobby", "meshagent-trio room developer watch --room lobby --format json"),
)
def watch(
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    output_format: Annotated[
        LogFormat, typer.Option("--format", help="plain (a line per entry, for people) or json (a JSON object per line).", case_sensitive=False)
    ] = LogFormat.plain,
    count: Annotated[Optional[int], typer.Option("--count", min=1, help="Stop after this many entries (default: until Ctrl-C).")] = None,
) -> None:
    """Follow the room's developer log until Ctrl-C."""
    import json

    async def body() -> None:
        seen = 0
        async with room_session(room) as client:
            async with client.developer.logs() as entries:
                print("watching the developer log; Ctrl-C to stop", file=sys.stderr, flush=True)
                async for entry in entries:
                    if output_format is LogFormat.json:
                        lines = [json.dumps({"type": entry.type, "data": entry.data}, ensure_ascii=False)]
                    else:
                        lines = plain_lines(entry.type, entry.data)
                    for line in lines:
                        sys.stdout.write(line + "\n")
                    sys.stdout.flush()
                    seen += 1
                    if count is not None and seen >= count:
                        break

    run(body)


app.command(
    "logs",
    hidden=True,
    help="Follow the room's developer log until Ctrl-C (as watch).",
    epilog=example("meshagent-trio room developer logs --room lobby"),
)(watch)


@app.command(
    "log",
    epilog=example(
        "meshagent-trio room developer log --room lobby --data '{\"message\": \"deployed\"}'",
        "meshagent-trio room developer log --room lobby --type build --data '{\"step\": 3, \"ok\": true}'",
    ),
)
def log(
    data: Annotated[str, typer.Option("--data", help="The entry: a JSON object (the levels take {\"message\": ..., \"extra\": {...}}).")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    type: Annotated[str, typer.Option("--type", help="The entry's type: info, warning, error, or a type of your own.")] = "info",
) -> None:
    """Write an entry to the room's developer log."""
    entry = parse_json_option(data, "--data")
    if not isinstance(entry, dict):
        raise typer.BadParameter("a log entry is a JSON object ({...})", param_hint="--data")

    in_room(room, lambda client: client.developer.log(type=type, data=entry))


# --- plain lines ---------------------------------------------------------------------------------


def plain_lines(kind: str, data: dict[str, Any]) -> list[str]:
    """`TIME TYPE message {extra}` for an entry; an OpenTelemetry batch (`otel.log`, what hosted
    rooms send) gives a line per log record."""
    import json
    from datetime import datetime

    if kind == "otel.log":
        return [f"{_otel_time(record.get('timeUnixNano'))} {str(record.get('severityText') or 'INFO'):<7} {_text(_otel_value(record.get('body')))}" for record in _otel_records(data)]
    rest = dict(data)
    message = rest.pop("message", None) if isinstance(data.get("message"), str) else None
    extra = rest.pop("extra", None) if message is not None and isinstance(data.get("extra"), dict) else None
    details = {**rest, **(extra or {})}
    text = " ".join(part for part in (message, json.dumps(details, ensure_ascii=False, sort_keys=True) if details else "") if part)
    return [f"{datetime.now().strftime('%Y-%m-%d %H:%M:%S')} {kind:<7} {text}".rstrip()]


def _otel_records(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        record
        for resource in _dicts(data.get("resourceLogs"))
        for scope in _dicts(resource.get("scopeLogs"))
        for record in _dicts(scope.get("logRecords"))
    ]


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _otel_value(value: Any) -> Any:
    """An OTLP `AnyValue` as plain Python."""
    if not isinstance(value, dict):
        return value
    for key in ("stringValue", "boolValue", "bytesValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_otel_value(item) for item in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return {item["key"]: _otel_value(item.get("value")) for item in _dicts(value["kvlistValue"].get("values")) if isinstance(item.get("key"), str)}
    return value


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _otel_time(nanoseconds: Any) -> str:
    from datetime import datetime, timezone

    try:
        moment = datetime.fromtimestamp(int(str(nanoseconds)) / 1e9, tz=timezone.utc).astimezone()
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S")
