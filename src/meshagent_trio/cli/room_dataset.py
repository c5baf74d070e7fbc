"""`meshagent-trio room dataset …`: the room's dataset (Lance) tables: create, list, inspect,
change and search them, query them with SQL (rows as a table, JSON or a file), and import and
export CSV / Parquet / JSON / Arrow files batch by batch. Versions, indexes, branches and
maintenance are in room_dataset_admin.py, registered on the same group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from . import room_dataset_admin
from .common import CommandFailed, OutputFormat, OutputOption, ProjectIdOption, RoomOption, example, group, in_room, parse_json_option, room_session, run
from .progress import work_bar
from .room_dataset_admin import BranchOption, VersionOption
from .table_files import BATCH_SIZE, COLUMNS_HELP, file_format, json_input, json_object, open_source, parse_columns, record_list, records_table
from .output import note
from .table_output import (
    BatchSizeOption,
    NamespaceOption,
    PrettyOption,
    counted,
    emit,
    export_batches,
    ns,
    prefixed,
    print_batches,
    schema_rows,
    sql_format,
    statement_result,
    write_query,
)

_OUTPUT = ("--output", "-o")
EXTENSIONS = (
    "room dataset export",
    *prefixed("room dataset table", _OUTPUT),
    *prefixed("room dataset tables", _OUTPUT),
    *prefixed("room dataset inspect", _OUTPUT),
    *prefixed("room dataset search", _OUTPUT),
    *room_dataset_admin.EXTENSIONS,
)

app = group("Manage dataset tables in a room.")

TableOption = Annotated[str, typer.Option("--table", "-t", help="Table name.")]
RecordsJsonOption = Annotated[Optional[str], typer.Option("--json", help="Rows: a JSON array of objects.")]
RecordsFileOption = Annotated[Optional[str], typer.Option("--file", "-f", help="A JSON file of rows (an array of objects).")]
WhereOption = Annotated[str, typer.Option("--where", help="SQL WHERE clause, e.g. \"id = 1\".")]


@app.command("tables", hidden=True, epilog=example("meshagent-trio room dataset tables --room lobby"))
@app.command("table", epilog=example("meshagent-trio room dataset table --room lobby", "meshagent-trio room dataset table --room lobby -n prod -o json"))
def list_tables(
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the dataset tables of a room."""

    emit(in_room(room, lambda client: client.datasets.list_tables(namespace=ns(namespace), branch=branch)), output, empty="(no tables)")


@app.command("inspect", epilog=example("meshagent-trio room dataset inspect --room lobby -t docs", "meshagent-trio room dataset inspect --room lobby -t docs -v 3 --json"))
def inspect(
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    version: VersionOption = None,
    json: Annotated[bool, typer.Option("--json", help="The schema as JSON (as -o json).")] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a table's columns: name, type, nullable."""

    emit(schema_rows(in_room(room, lambda client: client.datasets.inspect(table=table, namespace=ns(namespace), branch=branch, version=version))), OutputFormat.json if json else output, columns=["name", "type", "nullable"])


@app.command(
    "create",
    epilog=example(
        'meshagent-trio room dataset create --room lobby -t docs -c "id int not null, text text, embedding vector(3)"',
        """meshagent-trio room dataset create --room lobby -t docs --data-json '[{"id": 1, "text": "hello"}]'""",
    ),
)
def create_table(
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    mode: Annotated[str, typer.Option("--mode", help="create | overwrite | create_if_not_exists")] = "create",
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    columns: Annotated[Optional[str], typer.Option("--columns", "-c", help=COLUMNS_HELP)] = None,
    data_json: Annotated[Optional[str], typer.Option("--data-json", help="First rows, a JSON array of objects.")] = None,
    data_file: Annotated[Optional[str], typer.Option("--data-file", help="A JSON file of the first rows.")] = None,
) -> None:
    """Create a table from column definitions and/or first rows."""
    schema = parse_columns(columns) if columns is not None else None
    data = json_input(data_json, data_file, text_option="--data-json", file_option="--data-file")
    records = record_list(data, "--data-json") if data is not None else None
    if schema is None and records is None:
        raise typer.BadParameter("give --columns, or rows with --data-json / --data-file", param_hint="--columns")

    async def body() -> None:
        async with room_session(room) as client:
            if schema is None:
                await client.datasets.create_table_from_json_data(name=table, data=records, mode=mode, namespace=ns(namespace), branch=branch)
                return
            rows = None if records is None else records_table(records, schema, "--data-json")
            await client.datasets.create_table_with_schema(name=table, schema=schema, data=rows, mode=mode, namespace=ns(namespace), branch=branch)

    run(body)
    note(f"Created table {table}")


@app.command(
    "import",
    epilog=example(
        "meshagent-trio room dataset import --room lobby -t docs -f docs.parquet",
        "meshagent-trio room dataset import --room lobby -t docs -f more.csv --mode merge --on id",
    ),
)
def import_table(
    table: TableOption,
    file: Annotated[str, typer.Option("--file", "-f", help="Local file: .csv, .tsv, .parquet, .json (array or lines), .arrow, .xlsx.")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    mode: Annotated[str, typer.Option("--mode", help="create (a new table), replace (overwrite it) or merge (upsert into it, --on).")] = "create",
    import_format: Annotated[str, typer.Option("--format", help="auto (from the file name), json, arrow, csv, tsv, parquet, excel.")] = "auto",
    on: Annotated[Optional[str], typer.Option("--on", help="The column rows are matched on with --mode merge.")] = None,
    sheet: Annotated[Optional[str], typer.Option("--sheet", help="Excel worksheet (default: the first).")] = None,
    batch_size: BatchSizeOption = BATCH_SIZE,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
) -> None:
    """Import a CSV, TSV, Parquet, JSON, Arrow or Excel file into a table, batch by batch."""
    mode = mode.lower()
    if mode not in ("create", "replace", "merge"):
        raise typer.BadParameter(f"{mode!r} is not create, replace or merge", param_hint="--mode")
    if (mode == "merge") != bool(on and on.strip()):
        raise typer.BadParameter("--on goes with --mode merge, and --mode merge needs --on", param_hint="--on")
    fmt = file_format(file, import_format)

    async def body() -> None:
        source = open_source(file, fmt, batch_size=batch_size, sheet=sheet)
        async with room_session(room) as client:
            with work_bar(f"import {Path(file).name}", source.rows) as advance:
                batches = counted(source.batches, advance)
                if mode == "merge":
                    await client.datasets.merge_stream(table=table, on=(on or "").strip(), chunks=batches, namespace=ns(namespace), branch=branch)
                else:
                    await client.datasets.create_table_from_data_stream(
                        name=table, chunks=batches, schema=source.schema, mode="overwrite" if mode == "replace" else "create",
                        namespace=ns(namespace), branch=branch,
                    )  # fmt: skip

    run(body)
    note({"merge": f"Merged {file} into {table} on {on}", "replace": f"Replaced table {table} from {file}"}.get(mode, f"Created table {table} from {file}"))


@app.command(
    "export",
    epilog=example(
        "meshagent-trio room dataset export --room lobby -t docs -f docs.parquet",
        'meshagent-trio room dataset export --room lobby -q "select id, text from docs where id < 10" -f some.csv',
    ),
)
def export_table(
    file: Annotated[str, typer.Option("--file", "-f", help="Local file to write: .csv, .tsv, .parquet, .json, .arrow, .xlsx.")],
    table: Annotated[Optional[str], typer.Option("--table", "-t", help="Table to export (all its rows; --version: as it was then).")] = None,
    query: Annotated[Optional[str], typer.Option("--query", "-q", help="SQL query whose rows to export (instead of --table).")] = None,
    params_json: Annotated[Optional[str], typer.Option("--params-json", help='SQL parameters as a JSON object: {"id": 1} for $id.')] = None,
    export_format: Annotated[str, typer.Option("--format", help="auto (from the file name), json, arrow, csv, tsv, parquet, excel.")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Overwrite the file if it exists.")] = False,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    version: VersionOption = None,
) -> None:
    """Export a table's rows, or a query's, to a local file, batch by batch."""
    if (table is None) == (query is None):
        raise typer.BadParameter("give --table or --query (one of them)", param_hint="--table")
    fmt = file_format(file, export_format)
    if Path(file).exists() and not force:
        raise typer.BadParameter(f"{file} already exists (--force overwrites it)", param_hint="--file")
    params = _params_table(json_object(params_json, "--params-json"))

    async def body() -> int:
        async with room_session(room) as client:
            if table is not None:
                total = await client.datasets.count(table=table, namespace=ns(namespace), branch=branch, version=version)
                stream = client.datasets.search_stream(table=table, namespace=ns(namespace), branch=branch, version=version)
                async with stream as batches:
                    return await export_batches(batches, file, fmt, total=total)
            result = await _open_query(client, query or "", params, ns(namespace), branch)
            try:
                async with client.datasets.read_sql_query(query_id=result.query_id) as batches:
                    return await export_batches(batches, file, fmt, schema=result.schema)
            finally:
                await client.datasets.close_sql_query(query_id=result.query_id)

    rows = run(body)
    note(f"Exported {rows} row(s) to {file}")


async def _open_query(client, query: str, params: object, namespace: Optional[list[str]], branch: Optional[str]):  # type: ignore[no-untyped-def]
    from meshagent_core.client.datasets_models import DatasetSqlStatement

    result = await client.datasets.execute_sql(query=query, params=params, namespace=namespace, branch=branch)
    if isinstance(result, DatasetSqlStatement):
        raise CommandFailed(f"the statement returned no rows ({result.rows_affected} affected)")
    return result


def _params_table(params: Optional[dict]) -> object:
    if params is None:
        return None
    import pyarrow as pa

    return pa.table({str(key): [value] for key, value in params.items()})


@app.command("drop", epilog=example("meshagent-trio room dataset drop --room lobby -t docs"))
def drop_table(
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    ignore_missing: Annotated[bool, typer.Option("--ignore-missing", help="Succeed when the table does not exist.")] = False,
) -> None:
    """Drop a table."""

    in_room(room, lambda client: client.datasets.drop_table(name=table, ignore_missing=ignore_missing, namespace=ns(namespace), branch=branch))
    note(f"Dropped table {table}")


@app.command(
    "add-columns",
    epilog=example(
        'meshagent-trio room dataset add-columns --room lobby -t docs -c "lang text, score float"',
        """meshagent-trio room dataset add-columns --room lobby -t docs --columns-json '{"doubled": "id * 2"}'""",
    ),
)
def add_columns(
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    columns: Annotated[Optional[str], typer.Option("--columns", "-c", help=COLUMNS_HELP + " (new columns are null)")] = None,
    columns_json: Annotated[Optional[str], typer.Option("--columns-json", help="New columns as a JSON object of name: SQL expression.")] = None,
) -> None:
    """Add columns to a table: empty ones of given types, or computed from SQL expressions."""
    if (columns is None) == (columns_json is None):
        raise typer.BadParameter("give --columns or --columns-json (one of them)", param_hint="--columns")
    new_columns: object = parse_columns(columns) if columns is not None else json_object(columns_json, "--columns-json")
    if isinstance(new_columns, dict) and not all(isinstance(value, str) for value in new_columns.values()):
        raise typer.BadParameter("every value must be a SQL expression (a string)", param_hint="--columns-json")

    in_room(room, lambda client: client.datasets.add_columns(table=table, new_columns=new_columns, namespace=ns(namespace), branch=branch))
    note(f"Added {len(new_columns)} column(s) to {table}")  # type: ignore[arg-type]


@app.command("drop-columns", epilog=example("meshagent-trio room dataset drop-columns --room lobby -t docs -c lang -c score"))
def drop_columns(
    table: TableOption,
    columns: Annotated[List[str], typer.Option("--column", "-c", help="Column to drop (repeatable).")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
) -> None:
    """Drop columns from a table."""

    in_room(room, lambda client: client.datasets.drop_columns(table=table, columns=list(columns), namespace=ns(namespace), branch=branch))
    note(f"Dropped {len(columns)} column(s) from {table}")


@app.command("insert", epilog=example("""meshagent-trio room dataset insert --room lobby -t docs --json '[{"id": 2, "text": "more"}]'"""))
def insert(
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    json: RecordsJsonOption = None,
    file: RecordsFileOption = None,
) -> None:
    """Insert rows into a table (one commit)."""
    count = _write_records(room, table, namespace, branch, json, file, lambda client, rows: client.datasets.insert(table=table, records=rows, namespace=ns(namespace), branch=branch))
    note(f"Inserted {count} row(s) into {table}")


def _write_records(room: Optional[str], table: str, namespace: Any, branch: Optional[str], json: Optional[str], file: Optional[str], write: Any) -> int:
    """The `--json`/`--file` rows, typed by the table's schema, handed to `write(client, rows)`; how many."""
    records = record_list(json_input(json, file, text_option="--json", file_option="--file"), "--json")

    async def body() -> None:
        async with room_session(room) as client:
            schema = await client.datasets.inspect(table=table, namespace=ns(namespace), branch=branch)
            await write(client, records_table(records, schema, "--json"))

    run(body)
    return len(records)


@app.command("merge", epilog=example("""meshagent-trio room dataset merge --room lobby -t docs --on id --json '[{"id": 2, "text": "changed"}]'"""))
def merge(
    table: TableOption,
    on: Annotated[str, typer.Option("--on", help="The column rows are matched on.")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    json: RecordsJsonOption = None,
    file: RecordsFileOption = None,
) -> None:
    """Upsert rows: those matching an existing row on --on replace it, the others are added."""
    count = _write_records(room, table, namespace, branch, json, file, lambda client, rows: client.datasets.merge(table=table, on=on, records=rows, namespace=ns(namespace), branch=branch))
    note(f"Merged {count} row(s) into {table} on {on}")


@app.command("update", epilog=example("""meshagent-trio room dataset update --room lobby -t docs --where "id = 2" --values-json '{"text": "new"}'"""))
def update(
    table: TableOption,
    where: WhereOption,
    values_json: Annotated[str, typer.Option("--values-json", help='New values as a JSON object: {"text": "new"}.')],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
) -> None:
    """Update the rows of a table that match a WHERE clause."""
    values = json_object(values_json, "--values-json") or {}

    in_room(room, lambda client: client.datasets.update(table=table, where=where, values=values, namespace=ns(namespace), branch=branch))
    note(f"Updated {table} where {where}")


@app.command("delete", epilog=example('meshagent-trio room dataset delete --room lobby -t docs --where "id = 2"'))
def delete(
    table: TableOption,
    where: WhereOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
) -> None:
    """Delete the rows of a table that match a WHERE clause."""

    in_room(room, lambda client: client.datasets.delete(table=table, where=where, namespace=ns(namespace), branch=branch))
    note(f"Deleted from {table} where {where}")


@app.command(
    "search",
    epilog=example(
        'meshagent-trio room dataset search --room lobby -t docs --where "id < 10" --select id --select text',
        "meshagent-trio room dataset search --room lobby -t docs --vector-json '[0.1, 0.2, 0.3]' --limit 5 -o json",
        'meshagent-trio room dataset search --room lobby -t docs --text "hello"',
    ),
)
def search(
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    version: VersionOption = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Full-text query (needs a full-text index).")] = None,
    vector_json: Annotated[Optional[str], typer.Option("--vector-json", help="Nearest rows to this vector, a JSON array.")] = None,
    where: Annotated[Optional[str], typer.Option("--where", help="SQL WHERE clause.")] = None,
    where_json: Annotated[Optional[str], typer.Option("--where-json", help='Equality filters as a JSON object: {"id": 1}.')] = None,
    select: Annotated[Optional[List[str]], typer.Option("--select", help="Column to return (repeatable; default all).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="Most rows to return.")] = None,
    offset: Annotated[Optional[int], typer.Option("--offset", min=0, help="Rows to skip.")] = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show the rows of a table that match a filter, a text query or a vector."""
    vector = None if vector_json is None else parse_json_option(vector_json, "--vector-json")
    if vector is not None and not (isinstance(vector, list) and all(isinstance(item, (int, float)) for item in vector)):
        raise typer.BadParameter("expected a JSON array of numbers", param_hint="--vector-json")
    if where is not None and where_json is not None:
        raise typer.BadParameter("use --where or --where-json, not both", param_hint="--where-json")
    filter_ = json_object(where_json, "--where-json") if where_json is not None else where

    async def body() -> None:
        async with room_session(room) as client:
            stream = client.datasets.search_stream(
                table=table, text=text, vector=vector, where=filter_, select=list(select) if select else None, limit=limit,
                offset=offset, namespace=ns(namespace), branch=branch, version=version,
            )  # fmt: skip
            async with stream as batches:
                await print_batches(batches, output, pretty=pretty)

    run(body)


@app.command(
    "sql",
    epilog=example(
        'meshagent-trio room dataset sql --room lobby -q "select id, text from docs order by id"',
        'meshagent-trio room dataset sql --room lobby -q "select * from docs where id > $min" --params-json \'{"min": 1}\' --format json',
        'meshagent-trio room dataset sql --room lobby -q "select * from docs" --format csv -o docs.csv',
    ),
)
def sql(
    query: Annotated[str, typer.Option("--query", "-q", help="SQL to run (DuckDB's dialect).")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    table: Annotated[Optional[List[str]], typer.Option("--table", "-t", help="Table to make available to the query (repeatable).")] = None,
    namespace: NamespaceOption = None,
    tables_json: Annotated[Optional[str], typer.Option("--tables-json", help='Table references as JSON: [{"name": "docs", "alias": "d"}].')] = None,
    tables_file: Annotated[Optional[str], typer.Option("--tables-file", help="A JSON file of table references.")] = None,
    params_json: Annotated[Optional[str], typer.Option("--params-json", help='SQL parameters as a JSON object: {"min": 1} for $min.')] = None,
    params_file: Annotated[Optional[str], typer.Option("--params-file", help="A JSON file of SQL parameters.")] = None,
    branch: BranchOption = None,
    version: VersionOption = None,
    pretty: PrettyOption = True,
    output_format: Annotated[str, typer.Option("--format", help="table, json, arrow, csv, tsv, parquet, excel.")] = "table",
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the result to this file instead of stdout.")] = None,
) -> None:
    """Run SQL against the room's dataset tables: rows as a table, JSON or a file."""
    import msgspec

    if not query.strip():
        raise typer.BadParameter("the query is empty", param_hint="--query")
    fmt = sql_format(output_format)
    refs = json_input(tables_json, tables_file, text_option="--tables-json", file_option="--tables-file")
    if refs is not None and not (isinstance(refs, list) and all(isinstance(ref, dict) for ref in refs)):
        raise typer.BadParameter("expected a JSON array of objects", param_hint="--tables-json")
    params = json_input(params_json, params_file, text_option="--params-json", file_option="--params-file")
    if params is not None and not isinstance(params, dict):
        raise typer.BadParameter("expected a JSON object", param_hint="--params-json")
    from meshagent_core.client.datasets_models import SqlTableReference

    defaults = {"namespace": ns(namespace), "branch": branch, "version": version}
    try:
        tables = [SqlTableReference(name=name, **defaults) for name in table or ()] + [
            msgspec.convert({**{key: value for key, value in defaults.items() if value is not None}, **ref}, SqlTableReference) for ref in refs or ()
        ]
    except msgspec.ValidationError as error:
        raise typer.BadParameter(str(error), param_hint="--tables-json") from None

    async def body() -> None:
        from meshagent_core.client.datasets_models import DatasetSqlStatement

        async with room_session(room) as client:
            result = await client.datasets.execute_sql(
                query=query, tables=tables or None, params=_params_table(params), namespace=ns(namespace), branch=branch
            )
            if isinstance(result, DatasetSqlStatement):
                statement_result(result.rows_affected, fmt, output, pretty=pretty)
                return
            try:
                async with client.datasets.read_sql_query(query_id=result.query_id) as batches:
                    await write_query(batches, result.schema, fmt, output, pretty=pretty)
            finally:
                await client.datasets.close_sql_query(query_id=result.query_id)

    run(body)
    if output is not None:
        note(f"Wrote the result to {output}")


app.registered_commands.extend(room_dataset_admin.app.registered_commands)
app.registered_groups.extend(room_dataset_admin.app.registered_groups)

__all__ = ["EXTENSIONS", "app"]
