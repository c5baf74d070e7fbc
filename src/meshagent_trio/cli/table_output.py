"""What `room sqlite`, `room dataset` and `room memory` share: their official options
(`--namespace/-n`, `--pretty/--no-pretty`, `--format`), printing results as a table or JSON,
query results streamed to stdout or a file, imports and exports with a progress bar."""

from __future__ import annotations

import sys
from typing import Annotated, Any, AsyncIterable, AsyncIterator, Iterator, List, Optional, Sequence

import typer

from .common import CommandFailed, OutputFormat
from .output import dump_json, print_data, to_plain
from .progress import work_bar
from .table_files import SQL_FORMATS, FileWriter, JsonRowsWriter, display_rows, file_format

NamespaceOption = Annotated[
    Optional[List[str]],
    typer.Option("--namespace", "-n", help="Namespace path segment (repeatable): -n prod -n analytics."),
]
PrettyOption = Annotated[bool, typer.Option("--pretty/--no-pretty", help="Indent JSON output (with -o json).")]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", min=1, help="Rows per batch sent to the room.")]


def ns(namespace: Optional[List[str]]) -> Optional[list[str]]:
    return list(namespace) if namespace else None


def emit(value: Any, output: OutputFormat, *, pretty: bool = True, columns: Sequence[str] | None = None, empty: str = "(none)") -> None:
    """`print_data`, with `--no-pretty` JSON on one line."""
    if output is OutputFormat.json and not pretty:
        import json

        sys.stdout.write(json.dumps(to_plain(value), ensure_ascii=False, separators=(",", ":")) + "\n")
        return
    print_data(value, output, columns=columns, empty=empty)


def schema_rows(schema: Any) -> list[dict[str, Any]]:
    """A table schema as rows of name, type, nullable."""
    return [{"name": field.name, "type": str(field.type), "nullable": field.nullable} for field in schema]


#: Rows a table for people shows at most (a table is collected before it is drawn; JSON and
#: files stream every row).
TABLE_ROWS = 10_000


async def print_batches(batches: AsyncIterable[Any], output: OutputFormat, *, pretty: bool = True) -> None:
    """Rows of Arrow batches: JSON streamed as they come, or one table (collected, at most
    `TABLE_ROWS`)."""
    if output is OutputFormat.json:
        writer = JsonRowsWriter(sys.stdout, pretty)
        async for batch in batches:
            writer.write(batch)
        writer.close()
        return
    print_data(await table_rows(batches), output, empty="(no rows)")


async def table_rows(batches: AsyncIterable[Any]) -> list[dict[str, Any]]:
    """The rows of a table for people: at most `TABLE_ROWS`, saying so on stderr when there
    were more (the rest of the stream is not read)."""
    rows: list[dict[str, Any]] = []
    async for batch in batches:
        rows.extend(display_rows(batch))
        if len(rows) > TABLE_ROWS:
            break  # leaving the stream closes the query
    if len(rows) > TABLE_ROWS:
        del rows[TABLE_ROWS:]
        print(f"(the first {TABLE_ROWS} rows; -o json or --format csv|parquet writes them all)", file=sys.stderr)
    return rows


def sql_format(given: str) -> str:
    given = given.lower()
    if given not in SQL_FORMATS:
        raise typer.BadParameter(f"{given!r} is not one of {', '.join(SQL_FORMATS)}", param_hint="--format")
    return given


async def write_query(batches: AsyncIterable[Any], schema: Any, fmt: str, path: Optional[str], *, pretty: bool) -> None:
    """A query's rows in `fmt` (`sql --format`), to stdout or to the file `path` (`sql -o`)."""
    if fmt in ("table", "json") and path is None:
        await print_batches(batches, OutputFormat(fmt), pretty=pretty)
        return
    if path is None:
        await _to_stdout(batches, schema, fmt)
        return
    if fmt == "table":
        from .output import print_table

        rows = await table_rows(batches)
        with open(path, "w", encoding="utf-8") as handle:
            saved, sys.stdout = sys.stdout, handle
            try:
                if rows:
                    print_table(rows, columns=schema.names)
                else:
                    handle.write("(no rows)\n")
            finally:
                sys.stdout = saved
        return
    await export_batches(batches, path, fmt, schema=schema, pretty=pretty, what="rows")


async def _to_stdout(batches: AsyncIterable[Any], schema: Any, fmt: str) -> None:
    """CSV/TSV as text; Arrow and Parquet need a binary stdout (a pipe or a file)."""
    import io

    import pyarrow as pa

    binary = getattr(sys.stdout, "buffer", None)
    if fmt in ("csv", "tsv"):
        import pyarrow.csv as pa_csv

        from .table_files import _stringified

        header = True
        async for batch in batches:
            sink = io.BytesIO()
            table = _stringified(pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch)
            pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=header, delimiter="\t" if fmt == "tsv" else ","))
            sys.stdout.write(sink.getvalue().decode("utf-8"))
            header = False
        if header:
            sink = io.BytesIO()
            pa_csv.write_csv(_stringified(pa.Table.from_batches([], schema=schema)), sink, pa_csv.WriteOptions(delimiter="\t" if fmt == "tsv" else ","))
            sys.stdout.write(sink.getvalue().decode("utf-8"))
        return
    if binary is None or sys.stdout.isatty():
        raise CommandFailed(f"{fmt} output is binary: write it to a file with --output FILE (or pipe it)")
    sys.stdout.flush()
    sink = io.BytesIO()
    writer = pa.ipc.new_file(sink, schema) if fmt == "arrow" else None
    if fmt == "parquet":
        import pyarrow.parquet as pq

        writer = pq.ParquetWriter(sink, schema)
    elif fmt == "excel":
        raise CommandFailed("excel output needs a file: pass --output FILE")
    async for batch in batches:
        writer.write_table(batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch]))
        binary.write(sink.getvalue())
        sink.seek(0)
        sink.truncate()
    writer.close()
    binary.write(sink.getvalue())
    binary.flush()


def statement_result(rows_affected: int, fmt: str, path: Optional[str], *, pretty: bool) -> None:
    """What `sql` prints for a statement that returns no rows."""
    record = {"rows_affected": rows_affected}
    if path is None:
        emit(record, OutputFormat.json if fmt == "json" else OutputFormat.table, pretty=pretty)
        return
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(dump_json(record) + "\n")


async def export_batches(
    batches: AsyncIterable[Any], path: str, fmt: str, *, schema: Any = None, pretty: bool = False, total: Optional[int] = None, what: str = "export"
) -> int:
    """Write `batches` to the file `path` as they arrive, with a bar of rows on a terminal; a
    failure removes the half-written file. Returns the rows written."""
    fmt = file_format(path, fmt, allowed=("auto", "json", "arrow", "csv", "tsv", "parquet", "excel"))
    writer = FileWriter(path, fmt, schema, pretty=pretty)
    try:
        with work_bar(f"{what} {path}", total) as advance:
            async for batch in batches:
                writer.write(batch)
                advance(batch.num_rows)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return writer.rows


async def counted(batches: Iterator[Any], advance: Any) -> AsyncIterator[Any]:
    """A file's batches for an upload: each read in a worker thread, counted on the bar."""
    import trio

    while True:
        batch = await trio.to_thread.run_sync(next, batches, None)
        if batch is None:
            return
        advance(batch.num_rows)
        yield batch


def prefixed(path: str, options: Sequence[str]) -> tuple[str, ...]:
    """EXTENSIONS entries: `path OPTION` for each option."""
    return tuple(f"{path} {option}" for option in options)
