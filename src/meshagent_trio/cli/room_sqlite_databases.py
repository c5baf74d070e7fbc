"""The databases half of `meshagent-trio room sqlite …`: the `database` subgroup (list,
create, drop, inspect, settings, flush) and `backup` / `restore` of a database as a local SQLite
file. room_sqlite.py registers these commands on its group."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import OutputFormat, OutputOption, ProjectIdOption, RoomOption, example, group, in_room, room_session, run
from .progress import transfer_bar
from .output import note
from .table_output import NamespaceOption, emit, ns, prefixed

_OUTPUT = ("--output", "-o")
EXTENSIONS = (*prefixed("room sqlite database list", _OUTPUT), *prefixed("room sqlite database settings", _OUTPUT))

app = group("SQLite databases (registered on `room sqlite`).")
database_app = group("Manage SQLite databases in a room.")
app.add_typer(database_app, name="database")

DatabaseOption = Annotated[str, typer.Option("--database", "-d", help="Database name.")]
CreateModeOption = Annotated[str, typer.Option("--mode", help="create | overwrite | create_if_not_exists")]


class ReplicationMode(str, enum.Enum):
    synchronous = "synchronous"
    asynchronous = "asynchronous"


ReplicationOption = Annotated[
    Optional[ReplicationMode], typer.Option("--replication-mode", help="Commit acknowledgement: synchronous or asynchronous replication.")
]
FlushOption = Annotated[
    Optional[int], typer.Option("--flush-interval-ms", min=1, max=3600000, help="Background replication interval (asynchronous mode).")
]


# --- databases -------------------------------------------------------------------------------


@database_app.command("list", epilog=example("meshagent-trio room sqlite database list --room lobby"))
def list_databases(
    project_id: ProjectIdOption = None, room: RoomOption = None, namespace: NamespaceOption = None, output: OutputOption = OutputFormat.table
) -> None:
    """List SQLite databases in a room namespace."""

    emit(in_room(room, lambda client: client.sqlite.list_databases(namespace=ns(namespace))), output, empty="(no databases)")


@database_app.command("create", epilog=example("meshagent-trio room sqlite database create --room lobby -d app"))
def create_database(
    database: DatabaseOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    mode: CreateModeOption = "create",
    namespace: NamespaceOption = None,
    replication_mode: ReplicationOption = None,
    flush_interval_ms: FlushOption = None,
) -> None:
    """Create a SQLite database in a room."""

    async def body() -> None:
        async with room_session(room) as client:
            await client.sqlite.create_database(
                name=database, namespace=ns(namespace), mode=mode, flush_interval_ms=flush_interval_ms,
                replication_mode=replication_mode.value if replication_mode else None,
            )  # fmt: skip

    run(body)
    note(f"Created database {database}")


@database_app.command("drop", epilog=example("meshagent-trio room sqlite database drop --room lobby -d app --ignore-missing"))
def drop_database(
    database: DatabaseOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    ignore_missing: Annotated[bool, typer.Option("--ignore-missing", help="Succeed when the database does not exist.")] = False,
) -> None:
    """Drop a SQLite database in a room."""

    in_room(room, lambda client: client.sqlite.drop_database(name=database, namespace=ns(namespace), ignore_missing=ignore_missing))
    note(f"Dropped database {database}")


@database_app.command("inspect", epilog=example("meshagent-trio room sqlite database inspect --room lobby -d app -o json"))
def inspect_database(
    database: DatabaseOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Inspect a SQLite database in a room: its tables and size."""

    emit(in_room(room, lambda client: client.sqlite.inspect_database(name=database, namespace=ns(namespace))), output)


@database_app.command(
    "settings",
    epilog=example(
        "meshagent-trio room sqlite database settings --room lobby -d app",
        "meshagent-trio room sqlite database settings --room lobby -d app --replication-mode asynchronous --flush-interval-ms 500",
    ),
)
def database_settings(
    database: DatabaseOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    replication_mode: ReplicationOption = None,
    flush_interval_ms: FlushOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a database's replication settings, or change them (asynchronous mode can lose unflushed writes)."""

    async def body() -> object:
        async with room_session(room) as client:
            if replication_mode is None and flush_interval_ms is None:
                return await client.sqlite.get_database_settings(name=database, namespace=ns(namespace))
            return await client.sqlite.update_database_settings(
                name=database, namespace=ns(namespace), flush_interval_ms=flush_interval_ms,
                replication_mode=replication_mode.value if replication_mode else None,
            )  # fmt: skip

    emit(run(body), output)


@database_app.command("flush", epilog=example("meshagent-trio room sqlite database flush --room lobby -d app"))
def flush_database(database: DatabaseOption, project_id: ProjectIdOption = None, room: RoomOption = None, namespace: NamespaceOption = None) -> None:
    """Wait until the database's pending writes are replicated to storage."""

    in_room(room, lambda client: client.sqlite.flush_database(name=database, namespace=ns(namespace)))
    note(f"Flushed database {database}")


@app.command("backup", epilog=example("meshagent-trio room sqlite backup --room lobby -d app -o app.sqlite"))
def backup(
    database: DatabaseOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="New local SQLite file (never overwritten).")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Save a consistent copy of a room database as a local SQLite file."""
    if output.exists():
        raise typer.BadParameter(f"{output} already exists", param_hint="--output")

    async def body() -> None:
        import os
        import tempfile

        async with room_session(room) as client:
            directory = output.parent if str(output.parent) else Path(".")
            with tempfile.NamedTemporaryFile(dir=directory, prefix=".sqlite-backup-", suffix=".sqlite") as temporary:
                with transfer_bar(f"backup {database}", None) as advance:
                    async with client.sqlite.backup(database=database, namespace=ns(namespace)) as chunks:
                        async for chunk in chunks:
                            temporary.write(chunk)
                            advance(len(chunk))
                temporary.flush()
                os.fsync(temporary.fileno())
                os.link(temporary.name, output)

    run(body)
    note(f"Saved database {database} to {output}")


@app.command("restore", epilog=example("meshagent-trio room sqlite restore --room lobby -d app2 --input app.sqlite"))
def restore(
    database: Annotated[str, typer.Option("--database", "-d", help="New database name (must not exist).")],
    input: Annotated[Path, typer.Option("--input", exists=True, dir_okay=False, readable=True, help="Standalone SQLite file.")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Restore a local SQLite file as a new room database."""
    if Path(f"{input}-wal").exists() or Path(f"{input}-journal").exists():
        raise typer.BadParameter("the file has a WAL or journal beside it: make a standalone backup first", param_hint="--input")

    async def body() -> None:
        async with room_session(room) as client:
            with input.open("rb") as source, transfer_bar(f"restore {input.name}", input.stat().st_size) as advance:

                async def chunks():  # type: ignore[no-untyped-def]
                    while chunk := source.read(256 * 1024):
                        advance(len(chunk))
                        yield chunk

                await client.sqlite.restore(database=database, source=chunks(), namespace=ns(namespace))

    run(body)
    note(f"Restored database {database} from {input}")
