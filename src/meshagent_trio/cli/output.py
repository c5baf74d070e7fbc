"""How commands print data: `-o json` is stable and machine-readable (models rendered as the
wire renders them, keys in the order the models declare them, two-space indent, UTF-8), and
`-o table` is an aligned rich table for people (the default).

Records are dicts, msgspec Structs, or anything `msgspec.to_builtins` renders; a list of
records is a table with a column per key, one record is a two-column table of its fields."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

import msgspec

from .common import OutputFormat

#: Table cells longer than this are shortened with an ellipsis (JSON is never shortened).
MAX_CELL = 120


def to_plain(value: Any) -> Any:
    """JSON-ready builtins for `value` (Structs, dataclasses, datetimes, bytes as base64)."""
    if hasattr(value, "model_dump"):  # a pydantic model handed over by a caller
        value = value.model_dump(mode="json")
    return msgspec.to_builtins(value, builtin_types=None, str_keys=True)


def dump_json(value: Any) -> str:
    return json.dumps(to_plain(value), indent=2, ensure_ascii=False)


def console(stderr: bool = False) -> Any:
    """A rich console on the current stdout/stderr (made per call, so redirections hold). Off a
    terminal it is as wide as `COLUMNS` says, else wide enough that tables are not wrapped."""
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 200
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def print_data(
    value: Any,
    output: OutputFormat,
    *,
    columns: Sequence[str] | None = None,
    empty: str = "(none)",
    title: str | None = None,
) -> None:
    """Print a record, a list of records, or a scalar in the chosen format."""
    if output is OutputFormat.json:
        sys.stdout.write(dump_json(value) + "\n")
        return
    plain = to_plain(value)
    if isinstance(plain, list):
        if not plain:
            sys.stdout.write(empty + "\n")
            return
        if all(isinstance(row, dict) for row in plain):
            print_table(plain, columns=columns, title=title)
            return
        for item in plain:
            sys.stdout.write(_cell(item, limit=None) + "\n")
        return
    if isinstance(plain, dict):
        print_fields(plain, title=title)
        return
    sys.stdout.write(_cell(plain, limit=None) + "\n")


def print_listing(key: str | None, rows: Sequence[Any], output: OutputFormat, *, columns: Sequence[str], empty: str) -> None:
    """A list as a table, or in JSON as the official CLI prints it: `{key: [...]}` (a bare list
    when `key` is None)."""
    if output is OutputFormat.json and key is not None:
        print_data({key: list(rows)}, output)
    else:
        print_data(list(rows), output, columns=columns, empty=empty)


def note(text: str) -> None:
    """A line for people on stderr (stdout holds only data)."""
    print(text, file=sys.stderr)


def print_table(rows: list[dict[str, Any]], *, columns: Sequence[str] | None = None, title: str | None = None) -> None:
    from rich.table import Table

    names = list(columns) if columns else _keys(rows)
    table = Table(*names, title=title, show_header=True, header_style="bold", box=None, pad_edge=False)
    for row in rows:
        table.add_row(*(_cell(row.get(name)) for name in names))
    console().print(table)


def print_fields(record: dict[str, Any], *, title: str | None = None) -> None:
    from rich.table import Table

    table = Table("field", "value", title=title, show_header=False, box=None, pad_edge=False)
    for key, value in record.items():
        table.add_row(str(key), _cell(value))
    console().print(table)


def print_rows(rows: Iterable[dict[str, Any]], output: OutputFormat, *, columns: Sequence[str] | None = None) -> None:
    """Query results: a table, or a JSON array."""
    print_data(list(rows), output, columns=columns, empty="(no rows)")


def _keys(rows: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        for key in row:
            names.setdefault(key, None)
    return list(names)


def _cell(value: Any, limit: int | None = MAX_CELL) -> str:
    from rich.markup import escape

    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return escape(text)
