"""`meshagent-trio session`: a project's recent room sessions, their events, logs, metrics and
trace spans, and killing a running one (REST). A session is one run of a room, from its first
join to its last leave. The local server records no spans or metrics and no OpenTelemetry logs,
so those lists are empty there; against a server that records them they are shown as the
official CLI shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Optional

import typer

from .common import CommandFailed, OutputFormat, OutputOption, ProjectIdOption, example, group, resolve_project_id, rest_session, run, with_api
from .output import print_data
from .output import note, print_listing

EXTENSIONS = ("session get --output", "session get -o")

app = group("Inspect recent sessions and events.")

SESSION_COLUMNS = ("id", "room_name", "created_at", "ended_at", "is_active", "participants")
EVENT_COLUMNS = ("created_at", "type", "severity", "message")

SessionArgument = Annotated[Optional[str], typer.Argument(help="Session id")]
SessionIdOption = Annotated[Optional[str], typer.Option("--session-id", help="Session id")]
LatestOfRoomOption = Annotated[Optional[str], typer.Option("--room", help="Use the most recent session of this room")]
AttrsOption = Annotated[bool, typer.Option("--attrs", help="Include attributes")]


@app.command("list", epilog=example("meshagent-trio session list", "meshagent-trio session list --room planning --limit 5 -o json"))
def list_sessions(
    project_id: ProjectIdOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Most sessions to list")] = 25,
    room: Annotated[Optional[str], typer.Option("--room", help="Only the sessions of this room")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the project's recent sessions, newest first."""

    async def body() -> list[Any]:
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            if room is not None:
                return await api.list_recent_room_sessions(project, room, limit=limit)  # type: ignore[no-any-return]
            return await api.list_recent_sessions(project, limit=limit)  # type: ignore[no-any-return]

    empty = f"No recent sessions found for room {room}." if room else "No recent sessions found."
    print_listing("sessions", run(body), output, columns=SESSION_COLUMNS, empty=empty)


@app.command("get", epilog=example("meshagent-trio session get 3f9a…", "meshagent-trio session get 3f9a… -o json"))
def get(session_id: Annotated[str, typer.Argument(help="Session id")], project_id: ProjectIdOption = None, output: OutputOption = OutputFormat.table) -> None:
    """List a session's events, oldest first (started, joined, left, ended)."""

    print_listing("events", with_api(lambda api: api.list_session_events(resolve_project_id(project_id), session_id)), output, columns=EVENT_COLUMNS, empty=f"No events for session {session_id}.")


@app.command("kill", epilog=example("meshagent-trio session kill 3f9a…", "meshagent-trio session kill 3f9a… --yes"))
def kill(
    session_id: Annotated[str, typer.Argument(help="Session id to kill")],
    project_id: ProjectIdOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Skip the confirmation prompt")] = False,
) -> None:
    """End a running session at once: every participant is disconnected."""
    if not yes and not _confirmed(f"Forcefully kill session {session_id}?"):
        raise typer.Exit(0)

    with_api(lambda api: api.kill_session(project_id=resolve_project_id(project_id), session_id=session_id))
    note(f"Kill requested for session {session_id}.")


def _confirmed(question: str) -> bool:
    """Asked on stderr (click's prompt writes a character to stdout); no answer is no."""
    import sys

    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


async def _latest_session(api: Any, project_id: str, room: str) -> str:
    sessions = await api.list_recent_room_sessions(project_id, room, limit=1)
    if not sessions:
        raise CommandFailed(f"no recent sessions found for room {room}")
    return sessions[0].id  # type: ignore[no-any-return]


def _inspect(project_id: str | None, argument: str | None, option: str | None, room: str | None, method: str) -> tuple[str, list[dict[str, Any]]]:
    """(the session, what `method` lists of it): the session given (SESSION_ID or
    --session-id), else the latest of `--room`."""
    if argument is not None and option is not None and argument != option:
        raise typer.BadParameter("SESSION_ID and --session-id differ", param_hint="--session-id")
    given = argument or option
    if given is None and room is None:
        raise typer.BadParameter("name the session (SESSION_ID or --session-id) or a room (--room)", param_hint="SESSION_ID")

    async def body() -> tuple[str, list[dict[str, Any]]]:
        async with rest_session() as api:
            project = resolve_project_id(project_id)
            session = given or await _latest_session(api, project, room)  # type: ignore[arg-type]
            return session, await getattr(api, method)(project, session)

    return run(body)


def _attributes(value: Any) -> str:
    return ", ".join(f"{key}={item}" for key, item in sorted(value.items())) if isinstance(value, dict) else ""


def _time(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return "-"


@app.command("logs", epilog=example("meshagent-trio session logs 3f9a…", "meshagent-trio session logs --room planning -o json"))
def logs(
    session_arg: SessionArgument = None,
    project_id: ProjectIdOption = None,
    session_id: SessionIdOption = None,
    room: LatestOfRoomOption = None,
    output: OutputOption = OutputFormat.table,
    attrs: AttrsOption = False,
) -> None:
    """List a session's OpenTelemetry log records."""
    session, events = _inspect(project_id, session_arg, session_id, room, "list_session_events")
    records = [event for event in events if event.get("type") == "otel.log"]
    if output is OutputFormat.json:
        print_data({"logs": records}, output)
        return
    rows = []
    for event in records:
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        message = next((data[key] for key in ("log", "message", "body") if data.get(key) is not None), "")
        row = {
            "time": _time(event.get("created_at")),
            "severity": data.get("severity_text") or data.get("severity_number") or event.get("type"),
            "scope": data.get("scope_name") or "",
            "message": str(message),
        }
        if attrs:
            row["attrs"] = ", ".join(part for part in (_attributes(data.get("log_attributes")), _attributes(data.get("resource_attributes"))) if part)
        rows.append(row)
    print_data(rows, output, empty=f"No logs found for session {session}.")


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


@app.command("metrics", epilog=example("meshagent-trio session metrics 3f9a…", "meshagent-trio session metrics --room planning --buckets"))
def metrics(
    session_arg: SessionArgument = None,
    project_id: ProjectIdOption = None,
    session_id: SessionIdOption = None,
    room: LatestOfRoomOption = None,
    output: OutputOption = OutputFormat.table,
    attrs: AttrsOption = False,
    buckets: Annotated[bool, typer.Option("--buckets", help="Include histogram bucket counts")] = False,
) -> None:
    """List a session's metrics."""
    session, records = _inspect(project_id, session_arg, session_id, room, "list_session_metrics")
    if output is OutputFormat.json:
        print_data({"metrics": records}, output)
        return
    rows = []
    for metric in records:
        if metric.get("kind") == "histogram":
            count, total = metric.get("count"), metric.get("sum")
            parts = [f"count={_number(count)}", f"sum={_number(total)}"]
            parts += [f"{key}={_number(metric[key])}" for key in ("min", "max") if metric.get(key) is not None]
            if buckets and metric.get("bucket_counts"):
                bounds = list(metric.get("explicit_bounds") or [])
                labels = [f"<={_number(bound)}" for bound in bounds] + ["+Inf"]
                parts.append("buckets=" + ", ".join(f"{label}:{n}" for label, n in zip(labels, metric["bucket_counts"])))
            value = " ".join(parts)
        else:
            value = _number(metric.get("value"))
        row = {
            "time": _time(metric.get("ended_at") or metric.get("created_at")),
            "kind": metric.get("kind") or "sum",
            "name": metric.get("metric_name") or metric.get("name") or "-",
            "value": value,
            "unit": metric.get("metric_unit") or metric.get("unit") or "",
        }
        if attrs:
            row["attrs"] = _attributes(metric.get("metric_attributes"))
        rows.append(row)
    print_data(rows, output, empty=f"No metrics found for session {session}.")


def _duration_ns(text: str | None) -> int | None:
    if text is None:
        return None
    stripped = text.strip().lower()
    for suffix, scale in (("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000)):
        if stripped.endswith(suffix):
            stripped, multiplier = stripped[: -len(suffix)].strip(), scale
            break
    else:
        multiplier = 1
    try:
        return int(float(stripped) * multiplier)
    except ValueError:
        raise typer.BadParameter(f"not a duration: {text!r} (e.g. 500ms, 2s)", param_hint="--min-duration") from None


def _format_duration(value: Any) -> str:
    try:
        ns = int(value)
    except (TypeError, ValueError):
        return "-"
    for limit, scale, unit in ((1_000, 1, "ns"), (1_000_000, 1_000, "us"), (1_000_000_000, 1_000_000, "ms")):
        if ns < limit:
            return f"{ns}ns" if unit == "ns" else f"{ns / scale:.1f}{unit}"
    return f"{ns / 1_000_000_000:.2f}s"


def span_tree(spans: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """The spans in tree order (parents before children, siblings by start), with their depth."""
    keys = {(span.get("trace_id"), span.get("span_id")) for span in spans}
    children: dict[Any, list[dict[str, Any]]] = {}
    roots = []
    for span in spans:
        parent = (span.get("trace_id"), span.get("parent_span_id"))
        if span.get("parent_span_id") is not None and parent in keys:
            children.setdefault(parent, []).append(span)
        else:
            roots.append(span)
    order: list[tuple[int, dict[str, Any]]] = []
    seen: set[int] = set()

    def visit(span: dict[str, Any], depth: int) -> None:
        if id(span) in seen:
            return
        seen.add(id(span))
        order.append((depth, span))
        for child in sorted(children.get((span.get("trace_id"), span.get("span_id")), []), key=lambda s: str(s.get("created_at"))):
            visit(child, depth + 1)

    for root in sorted(roots, key=lambda s: str(s.get("created_at"))):
        visit(root, 0)
    return order


@app.command("traces", epilog=example("meshagent-trio session traces 3f9a…", "meshagent-trio session traces --room planning --min-duration 50ms"))
def traces(
    session_arg: SessionArgument = None,
    project_id: ProjectIdOption = None,
    session_id: SessionIdOption = None,
    room: LatestOfRoomOption = None,
    trace_id: Annotated[Optional[str], typer.Option("--trace-id", help="Only the spans of this trace")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Only spans whose name contains this (any case)")] = None,
    min_duration: Annotated[Optional[str], typer.Option("--min-duration", help="Only spans at least this long, e.g. 500ms or 2s")] = None,
    attrs: AttrsOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List a session's trace spans as a tree."""
    shortest = _duration_ns(min_duration)
    session, spans = _inspect(project_id, session_arg, session_id, room, "list_session_spans")
    if output is OutputFormat.json:
        print_data({"spans": spans}, output)
        return

    def kept(span: dict[str, Any]) -> bool:
        label = str(span.get("span_name") or span.get("name") or "")
        return (
            (trace_id is None or span.get("trace_id") == trace_id)
            and (name is None or name.lower() in label.lower())
            and (shortest is None or int(span.get("duration") or 0) >= shortest)
        )

    rows = []
    for depth, span in span_tree([span for span in spans if kept(span)]):
        row = {
            "name": "  " * depth + str(span.get("span_name") or span.get("name") or "-"),
            "time": _time(span.get("created_at")),
            "duration": _format_duration(span.get("duration")),
        }
        if attrs:
            row["attrs"] = _attributes(span.get("span_attributes"))
        rows.append(row)
    print_data(rows, output, empty=f"No spans found for session {session}.")
