"""`meshagent-trio room sqlite …`: the room's SQLite databases, their tables and rows, SQL
queries shown as tables or written to CSV / Parquet / JSON / Arrow files, and imports and exports
of those files (streamed batch by batch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from .common import (
    OutputFormat,
    OutputOption,
    ProjectIdOption,
    RoomOption,
    example,
    group,
    in_room,
    parse_json_option,
    room_session,
    run,
)
from . import room_sqlite_databases
from .progress import work_bar
from .room_sqlite_databases import CreateModeOption, DatabaseOption
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
    schema_rows,
    sql_format,
    statement_result,
    write_query,
)

_OUTPUT = ("--output", "-o")
EXTENSIONS = (
    *room_sqlite_databases.EXTENSIONS,
    "room sqlite export",
    *prefixed("room sqlite table", _OUTPUT),
    *prefixed("room sqlite tables", _OUTPUT),
    *prefixed("room sqlite inspect", _OUTPUT),
    *prefixed("room sqlite search", _OUTPUT),
    *prefixed("room sqlite count", _OUTPUT),
)

app = group("Manage SQLite databases and tables in a room.")

TableOption = Annotated[str, typer.Option("--table", "-t", help="Table name.")]
ParamsOption = Annotated[Optional[str], typer.Option("--params-json", help='SQL parameters as JSON: [1, "a"] or {"name": 1}.')]
WhereOption = Annotated[Optional[str], typer.Option("--where", help='SQL WHERE clause, e.g. "id = ?".')]
WhereJsonOption = Annotated[Optional[str], typer.Option("--where-json", help='Equality filters as a JSON object: {"id": 1}.')]


def _where(where: Optional[str], where_json: Optional[str]) -> object:
    if where is not None and where_json is not None:
        raise typer.BadParameter("use --where or --where-json, not both", param_hint="--where-json")
    return json_object(where_json, "--where-json") if where_json is not None else where


def _params(params_json: Optional[str], option: str = "--params-json") -> object:
    value = None if params_json is None else parse_json_option(params_json, option)
    if value is not None and not isinstance(value, (list, dict)):
        raise typer.BadParameter("expected a JSON array or object", param_hint=option)
    return value


# --- tables ----------------------------------------------------------------------------------


@app.command("tables", hidden=True, epilog=example("meshagent-trio room sqlite tables --room lobby -d app"))
@app.command("table", epilog=example("meshagent-trio room sqlite table --room lobby -d app"))
def list_tables(
    database: DatabaseOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the tables of a room database."""

    emit(in_room(room, lambda client: client.sqlite.list_tables(database=database, namespace=ns(namespace))), output, empty="(no tables)")


@app.command("inspect", epilog=example("meshagent-trio room sqlite inspect --room lobby -d app -t users", "meshagent-trio room sqlite inspect --room lobby -d app -t users --json"))
def inspect(
    database: DatabaseOption,
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    json: Annotated[bool, typer.Option("--json", help="The schema as JSON (as -o json).")] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a table's columns: name, type, nullable."""

    emit(schema_rows(in_room(room, lambda client: client.sqlite.inspect(database=database, table=table, namespace=ns(namespace)))), OutputFormat.json if json else output, columns=["name", "type", "nullable"])


@app.command(
    "create",
    epilog=example(
        'meshagent-trio room sqlite create --room lobby -d app -t users -c "id int not null, name text"',
        """meshagent-trio room sqlite create --room lobby -d app -t users --data-json '[{"id": 1, "name": "ada"}]'""",
    ),
)
def create_table(
    database: DatabaseOption,
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    mode: CreateModeOption = "create",
    namespace: NamespaceOption = None,
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
        import pyarrow as pa

        rows = None
        if records is not None:
            rows = pa.Table.from_pylist(records) if schema is None else records_table(records, schema, "--data-json")
        async with room_session(room) as client:
            await client.sqlite.create_table_with_schema(
                database=database, name=table, schema=schema, data=rows, mode=mode, namespace=ns(namespace)  # type: ignore[arg-type]
            )

    run(body)
    note(f"Created table {database}.{table}")


@app.command(
    "import",
    epilog=example(
        "meshagent-trio room sqlite import --room lobby -d app -t users -f users.csv",
        "meshagent-trio room sqlite import --room lobby -d app -t users -f users.parquet --mode replace",
    ),
)
def import_table(
    database: DatabaseOption,
    table: TableOption,
    file: Annotated[str, typer.Option("--file", "-f", help="Local file: .csv, .tsv, .parquet, .json (array or lines), .arrow, .xlsx.")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    mode: Annotated[str, typer.Option("--mode", help="create (a new table) or replace (an existing one).")] = "create",
    import_format: Annotated[str, typer.Option("--format", help="auto (from the file name), json, arrow, csv, tsv, parquet, excel.")] = "auto",
    sheet: Annotated[Optional[str], typer.Option("--sheet", help="Excel worksheet (default: the first).")] = None,
    batch_size: BatchSizeOption = BATCH_SIZE,
    namespace: NamespaceOption = None,
) -> None:
    """Import a CSV, TSV, Parquet, JSON, Arrow or Excel file into a new table, batch by batch."""
    if mode.lower() not in ("create", "replace"):
        raise typer.BadParameter(f"{mode!r} is not create or replace", param_hint="--mode")
    fmt = file_format(file, import_format)

    async def body() -> None:
        source = open_source(file, fmt, batch_size=batch_size, sheet=sheet)
        async with room_session(room) as client:
            with work_bar(f"import {Path(file).name}", source.rows) as advance:
                await client.sqlite.create_table_with_schema(
                    database=database, name=table, schema=source.schema, data=counted(source.batches, advance),
                    mode="overwrite" if mode.lower() == "replace" else "create", namespace=ns(namespace),
                )  # fmt: skip

    run(body)
    note(f"{'Replaced' if mode.lower() == 'replace' else 'Created'} table {database}.{table} from {file}")


@app.command(
    "export",
    epilog=example(
        "meshagent-trio room sqlite export --room lobby -d app -t users -f users.parquet",
        'meshagent-trio room sqlite export --room lobby -d app -q "select id, name from users where id > 10" -f some.csv',
    ),
)
def export_table(
    database: DatabaseOption,
    file: Annotated[str, typer.Option("--file", "-f", help="Local file to write: .csv, .tsv, .parquet, .json, .arrow, .xlsx.")],
    table: Annotated[Optional[str], typer.Option("--table", "-t", help="Table to export (all its rows).")] = None,
    query: Annotated[Optional[str], typer.Option("--query", "-q", help="SQL query whose rows to export (instead of --table).")] = None,
    params_json: ParamsOption = None,
    export_format: Annotated[str, typer.Option("--format", help="auto (from the file name), json, arrow, csv, tsv, parquet, excel.")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Overwrite the file if it exists.")] = False,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Export a table's rows, or a query's, to a local file, batch by batch."""
    if (table is None) == (query is None):
        raise typer.BadParameter("give --table or --query (one of them)", param_hint="--table")
    fmt = file_format(file, export_format)
    if Path(file).exists() and not force:
        raise typer.BadParameter(f"{file} already exists (--force overwrites it)", param_hint="--file")
    params = _params(params_json)

    async def body() -> int:
        async with room_session(room) as client:
            total = None
            if table is not None:
                total = await client.sqlite.count(database=database, table=table, namespace=ns(namespace))
                stream = client.sqlite.search_stream(database=database, table=table, namespace=ns(namespace))
            else:
                stream = client.sqlite.sql_stream(database=database, query=query or "", params=params, namespace=ns(namespace))
            async with stream as batches:
                return await export_batches(batches, file, fmt, total=total)

    rows = run(body)
    note(f"Exported {rows} row(s) to {file}")


@app.command("drop", epilog=example("meshagent-trio room sqlite drop --room lobby -d app -t users"))
def drop_table(
    database: DatabaseOption,
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    ignore_missing: Annotated[bool, typer.Option("--ignore-missing", help="Succeed when the table does not exist.")] = False,
) -> None:
    """Drop a table."""

    in_room(room, lambda client: client.sqlite.drop_table(database=database, name=table, ignore_missing=ignore_missing, namespace=ns(namespace)))
    note(f"Dropped table {database}.{table}")


@app.command("rename", epilog=example("meshagent-trio room sqlite rename --room lobby -d app -t users --new-name people"))
def rename_table(
    database: DatabaseOption,
    table: TableOption,
    new_name: Annotated[str, typer.Option("--new-name", help="The table's new name.")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Rename a table."""

    in_room(room, lambda client: client.sqlite.rename_table(database=database, name=table, new_name=new_name, namespace=ns(namespace)))
    note(f"Renamed table {database}.{table} to {new_name}")


@app.command("add-columns", epilog=example('meshagent-trio room sqlite add-columns --room lobby -d app -t users -c "email text, age int"'))
def add_columns(
    database: DatabaseOption,
    table: TableOption,
    columns: Annotated[str, typer.Option("--columns", "-c", help=COLUMNS_HELP)],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Add columns to a table."""
    schema = parse_columns(columns)

    in_room(room, lambda client: client.sqlite.add_columns(database=database, table=table, new_columns=schema, namespace=ns(namespace)))
    note(f"Added {len(schema)} column(s) to {database}.{table}")


@app.command("drop-columns", epilog=example("meshagent-trio room sqlite drop-columns --room lobby -d app -t users -c email -c age"))
def drop_columns(
    database: DatabaseOption,
    table: TableOption,
    columns: Annotated[List[str], typer.Option("--column", "-c", help="Column to drop (repeatable).")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Drop columns from a table."""

    in_room(room, lambda client: client.sqlite.drop_columns(database=database, table=table, columns=list(columns), namespace=ns(namespace)))
    note(f"Dropped {len(columns)} column(s) from {database}.{table}")


@app.command("insert", epilog=example("""meshagent-trio room sqlite insert --room lobby -d app -t users --json '[{"id": 2, "name": "bo"}]'"""))
def insert(
    database: DatabaseOption,
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    json: Annotated[Optional[str], typer.Option("--json", help="Rows: a JSON array of objects.")] = None,
    file: Annotated[Optional[str], typer.Option("--file", "-f", help="A JSON file of rows (an array of objects).")] = None,
) -> None:
    """Insert rows into a table (one transaction)."""
    records = record_list(json_input(json, file, text_option="--json", file_option="--file"), "--json")

    async def body() -> None:
        async with room_session(room) as client:
            schema = await client.sqlite.inspect(database=database, table=table, namespace=ns(namespace))
            rows = records_table(records, schema, "--json")
            await client.sqlite.insert(database=database, table=table, records=rows, namespace=ns(namespace))

    run(body)
    note(f"Inserted {len(records)} row(s) into {database}.{table}")


@app.command("update", epilog=example("""meshagent-trio room sqlite update --room lobby -d app -t users --where "id = ?" --params-json '[2]' --values-json '{"name": "bob"}'"""))
def update(
    database: DatabaseOption,
    table: TableOption,
    where: Annotated[str, typer.Option("--where", help='SQL WHERE clause, e.g. "id = ?".')],
    values_json: Annotated[str, typer.Option("--values-json", help='New values as a JSON object: {"name": "bob"}.')],
    params_json: ParamsOption = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Update the rows of a table that match a WHERE clause."""
    values = json_object(values_json, "--values-json") or {}
    params = _params(params_json)

    note(f"Updated {in_room(room, lambda client: client.sqlite.update(database=database, table=table, where=where, values=values, params=params, namespace=ns(namespace)))} row(s) in {database}.{table}")


@app.command("delete", epilog=example("""meshagent-trio room sqlite delete --room lobby -d app -t users --where "id = ?" --params-json '[2]'"""))
def delete(
    database: DatabaseOption,
    table: TableOption,
    where: Annotated[str, typer.Option("--where", help="SQL WHERE clause.")],
    params_json: ParamsOption = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Delete the rows of a table that match a WHERE clause."""
    params = _params(params_json)

    note(f"Deleted {in_room(room, lambda client: client.sqlite.delete(database=database, table=table, where=where, params=params, namespace=ns(namespace)))} row(s) from {database}.{table}")


@app.command("search", epilog=example("""meshagent-trio room sqlite search --room lobby -d app -t users --where-json '{"name": "ada"}' -o json"""))
def search(
    database: DatabaseOption,
    table: TableOption,
    where: WhereOption = None,
    where_json: WhereJsonOption = None,
    params_json: ParamsOption = None,
    select: Annotated[Optional[List[str]], typer.Option("--select", help="Column to return (repeatable; default all).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="Most rows to return.")] = None,
    offset: Annotated[Optional[int], typer.Option("--offset", min=0, help="Rows to skip.")] = None,
    pretty: PrettyOption = True,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show the rows of a table that match a filter."""
    filter_, params = _where(where, where_json), _params(params_json)

    async def body() -> None:
        from .table_output import print_batches

        async with room_session(room) as client:
            stream = client.sqlite.search_stream(
                database=database, table=table, where=filter_, params=params, select=list(select) if select else None,
                limit=limit, offset=offset, namespace=ns(namespace),
            )  # fmt: skip
            async with stream as batches:
                await print_batches(batches, output, pretty=pretty)

    run(body)


@app.command("count", epilog=example('meshagent-trio room sqlite count --room lobby -d app -t users --where "id > ?" --params-json "[1]"'))
def count(
    database: DatabaseOption,
    table: TableOption,
    where: WhereOption = None,
    where_json: WhereJsonOption = None,
    params_json: ParamsOption = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Count the rows of a table (that match a filter)."""
    filter_, params = _where(where, where_json), _params(params_json)

    emit(in_room(room, lambda client: client.sqlite.count(database=database, table=table, where=filter_, params=params, namespace=ns(namespace))), output)


@app.command(
    "sql",
    epilog=example(
        'meshagent-trio room sqlite sql --room lobby -d app -q "select * from users"',
        'meshagent-trio room sqlite sql --room lobby -d app -q "select * from users where id > ?" --params-json "[1]" --format json',
        'meshagent-trio room sqlite sql --room lobby -d app -q "select * from users" --format parquet -o users.parquet',
    ),
)
def sql(
    database: DatabaseOption,
    query: Annotated[str, typer.Option("--query", "-q", help="SQL statement to run.")],
    params_json: ParamsOption = None,
    params_file: Annotated[Optional[str], typer.Option("--params-file", help="A JSON file of SQL parameters.")] = None,
    pretty: PrettyOption = True,
    output_format: Annotated[str, typer.Option("--format", help="table, json, arrow, csv, tsv, parquet, excel.")] = "table",
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the result to this file instead of stdout.")] = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Run SQL against a room database: rows as a table, JSON or a file."""
    if not query.strip():
        raise typer.BadParameter("the query is empty", param_hint="--query")
    fmt = sql_format(output_format)
    params = json_input(params_json, params_file, text_option="--params-json", file_option="--params-file")
    if params is not None and not isinstance(params, (list, dict)):
        raise typer.BadParameter("expected a JSON array or object", param_hint="--params-json")

    async def body() -> None:
        from meshagent_core.client.sqlite import SqliteSqlStatement

        async with room_session(room) as client:
            result = await client.sqlite.execute_sql(database=database, query=query, params=params, namespace=ns(namespace))
            if isinstance(result, SqliteSqlStatement):
                statement_result(result.rows_affected, fmt, output, pretty=pretty)
                return
            try:
                async with client.sqlite.read_sql_query(query_id=result.query_id) as batches:
                    await write_query(batches, result.schema, fmt, output, pretty=pretty)
            finally:
                await client.sqlite.close_sql_query(query_id=result.query_id)

    run(body)
    if output is not None:
        note(f"Wrote the result to {output}")


app.registered_commands.extend(room_sqlite_databases.app.registered_commands)
app.registered_groups.extend(room_sqlite_databases.app.registered_groups)

__all__ = ["EXTENSIONS", "app"]
