"""`meshagent-trio room memory …`: the room's graph memories: create, list and inspect them,
query them with Cypher (rows as a table), upsert entities, relationships and table rows, ingest
text, images, files and table rows, recall, delete and optimize. (`import` of a FalkorDB dump
needs Docker and is not offered.)"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from .common import OutputFormat, OutputOption, ProjectIdOption, RoomOption, example, group, in_room, room_session, run
from .table_files import json_input, record_list
from .output import note
from .table_output import NamespaceOption, PrettyOption, emit, ns, prefixed

_OUTPUT = ("--output", "-o")
EXTENSIONS = tuple(
    entry
    for command in (
        "list", "get", "inspect", "query", "ingest-text", "ingest-image", "ingest-file", "ingest-from-table",
        "ingest-from-storage", "recall", "delete-entities", "delete-relationships", "optimize",
    )  # fmt: skip
    for entry in prefixed(f"room memory {command}", _OUTPUT)
)

app = group("Manage memories in a room.")

NameOption = Annotated[str, typer.Option("--name", "-m", help="Memory name.")]
RecordsJsonOption = Annotated[Optional[str], typer.Option("--records-json", help="Records: a JSON array of objects.")]
RecordsFileOption = Annotated[Optional[str], typer.Option("--records-file", help="A JSON file of records (an array of objects).")]
MergeOption = Annotated[bool, typer.Option("--merge/--no-merge", help="Merge with the existing records (else replace them).")]


class Strategy(str, enum.Enum):
    heuristic = "heuristic"
    llm = "llm"


StrategyOption = Annotated[Strategy, typer.Option("--strategy", help="heuristic, or llm (needs a model configured on the server).")]
LlmModelOption = Annotated[Optional[str], typer.Option("--llm-model", help="Model for the llm strategy.")]
LlmTemperatureOption = Annotated[Optional[float], typer.Option("--llm-temperature", help="Temperature for the llm strategy.")]


def _records(records_json: Optional[str], records_file: Optional[str]) -> list[dict[str, Any]]:
    value = json_input(records_json, records_file, text_option="--records-json", file_option="--records-file")
    if value is None:
        raise typer.BadParameter("give --records-json or --records-file", param_hint="--records-json")
    return record_list(value, "--records-json")


def _models(type_: Any, records: list[dict[str, Any]]) -> list[Any]:
    try:
        return [type_.model_validate(record) for record in records]
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--records-json") from None


def _show(value: Any, output: OutputFormat, pretty: bool, *, rows: Optional[str] = None, columns: Optional[list[str]] = None) -> None:
    """A result: JSON as it is; as a table, its `rows` field when it has one, else its fields."""
    from .output import to_plain

    if output is OutputFormat.json or rows is None:
        emit(value, output, pretty=pretty)
        return
    plain = to_plain(value)
    emit(plain[rows], output, columns=columns, empty=f"(no {rows})")


def _ingest_options(strategy: Strategy, llm_model: Optional[str], llm_temperature: Optional[float]) -> dict[str, Any]:
    return {"strategy": strategy.value, "llm_model": llm_model, "llm_temperature": llm_temperature}


@app.command("list", epilog=example("meshagent-trio room memory list --room lobby", "meshagent-trio room memory list --room lobby -o json"))
def list_memories(
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the memories of a room namespace."""

    memories = in_room(room, lambda client: client.memory.list(namespace=ns(namespace)))
    emit({"memories": memories} if output is OutputFormat.json else memories, output, pretty=pretty, empty="(no memories)")


@app.command("create", epilog=example("meshagent-trio room memory create --room lobby -m notes"))
def create_memory(
    name: NameOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing memory with an empty one.")] = False,
) -> None:
    """Create a memory."""

    in_room(room, lambda client: client.memory.create(name=name, namespace=ns(namespace), overwrite=overwrite))
    note(f"Created memory {name}")


@app.command("drop", epilog=example("meshagent-trio room memory drop --room lobby -m notes"))
def drop_memory(
    name: NameOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    ignore_missing: Annotated[bool, typer.Option("--ignore-missing", help="Succeed when the memory does not exist.")] = False,
) -> None:
    """Drop a memory and everything in it."""

    in_room(room, lambda client: client.memory.drop(name=name, namespace=ns(namespace), ignore_missing=ignore_missing))
    note(f"Dropped memory {name}")


@app.command("get", epilog=example("meshagent-trio room memory get --room lobby -m notes -o json"))
@app.command("inspect", epilog=example("meshagent-trio room memory inspect --room lobby -m notes"))
def inspect_memory(
    name: NameOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a memory's datasets: their rows and columns."""

    _show(in_room(room, lambda client: client.memory.inspect(name=name, namespace=ns(namespace))), output, pretty, rows="datasets", columns=["name", "rows", "columns"])


@app.command(
    "query",
    epilog=example(
        'meshagent-trio room memory query --room lobby -m notes -s "MATCH (e:Entity) RETURN e.name AS name LIMIT 10"',
        'meshagent-trio room memory query --room lobby -m notes -s "MATCH (a)-[r]->(b) RETURN a.name, b.name" -o json',
    ),
)
def query_memory(
    name: NameOption,
    statement: Annotated[str, typer.Option("--statement", "-s", help='A read-only Cypher statement: "MATCH (e:Entity) RETURN e.name".')],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Run a Cypher query over a memory's graph: rows as a table."""

    results = in_room(room, lambda client: client.memory.query(name=name, statement=statement, namespace=ns(namespace)))
    emit({"results": results} if output is OutputFormat.json else results, output, pretty=pretty, empty="(no rows)")


@app.command("upsert-table", epilog=example("""meshagent-trio room memory upsert-table --room lobby -m notes -t facts --records-json '[{"id": 1, "fact": "sky is blue"}]'"""))
def upsert_table(
    name: NameOption,
    table: Annotated[str, typer.Option("--table", "-t", help="Table of the memory.")],
    records_json: RecordsJsonOption = None,
    records_file: RecordsFileOption = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    merge: MergeOption = True,
) -> None:
    """Add rows to a table of a memory (or replace its rows)."""
    records = _records(records_json, records_file)

    in_room(room, lambda client: client.memory.upsert_table(name=name, table=table, records=records, merge=merge, namespace=ns(namespace)))
    note(f"Upserted {len(records)} row(s) into memory table {table}")


@app.command("upsert-nodes", epilog=example("""meshagent-trio room memory upsert-nodes --room lobby -m notes --records-json '[{"name": "Ada", "entity_type": "person"}]'"""))
def upsert_nodes(
    name: NameOption,
    records_json: RecordsJsonOption = None,
    records_file: RecordsFileOption = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    merge: MergeOption = True,
) -> None:
    """Insert or update entities (nodes): name, entity_type, context, …"""
    from meshagent_core.toolkits.memory import MemoryEntityRecord

    records = _models(MemoryEntityRecord, _records(records_json, records_file))

    in_room(room, lambda client: client.memory.upsert_nodes(name=name, records=records, merge=merge, namespace=ns(namespace)))
    note(f"Upserted {len(records)} entity record(s)")


@app.command(
    "upsert-relationships",
    epilog=example(
        """meshagent-trio room memory upsert-relationships --room lobby -m notes --records-json '[{"source_entity_id": "a", "target_entity_id": "b", "relationship_type": "KNOWS"}]'"""
    ),
)
def upsert_relationships(
    name: NameOption,
    records_json: RecordsJsonOption = None,
    records_file: RecordsFileOption = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    merge: MergeOption = True,
) -> None:
    """Insert or update relationships (edges) between entities."""
    from meshagent_core.toolkits.memory import MemoryRelationshipRecord

    records = _models(MemoryRelationshipRecord, _records(records_json, records_file))

    in_room(room, lambda client: client.memory.upsert_relationships(name=name, records=records, merge=merge, namespace=ns(namespace)))
    note(f"Upserted {len(records)} relationship record(s)")


@app.command("ingest-text", epilog=example('meshagent-trio room memory ingest-text --room lobby -m notes --text "Ada Lovelace worked with Charles Babbage."'))
def ingest_text(
    name: NameOption,
    text: Annotated[Optional[str], typer.Option("--text", help="Text to ingest.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", dir_okay=False, help="A local UTF-8 text file to ingest.")] = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    strategy: StrategyOption = Strategy.heuristic,
    llm_model: LlmModelOption = None,
    llm_temperature: LlmTemperatureOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Extract entities and relationships from text into a memory."""
    if (text is None) == (file is None):
        raise typer.BadParameter("give --text or --file (one of them)", param_hint="--text")
    content = text if text is not None else file.read_text(encoding="utf-8")  # type: ignore[union-attr]

    async def body() -> Any:
        async with room_session(room) as client:
            return await client.memory.ingest_text(
                name=name, text=content, namespace=ns(namespace), **_ingest_options(strategy, llm_model, llm_temperature)
            )

    _show(run(body), output, pretty)


@app.command("ingest-image", epilog=example('meshagent-trio room memory ingest-image --room lobby -m notes -f photo.png --caption "Ada at her desk"'))
def ingest_image(
    name: NameOption,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", dir_okay=False, help="A local image file.")] = None,
    caption: Annotated[Optional[str], typer.Option("--caption", help="What the image shows.")] = None,
    mime_type: Annotated[Optional[str], typer.Option("--mime-type", help="The image's type (default: from the file name).")] = None,
    source: Annotated[Optional[str], typer.Option("--source", help="Where the image comes from (default: the file's path).")] = None,
    annotations_json: Annotated[Optional[str], typer.Option("--annotations-json", help='Annotations, a JSON object of strings: {"origin": "camera"}.')] = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    strategy: StrategyOption = Strategy.heuristic,
    llm_model: LlmModelOption = None,
    llm_temperature: LlmTemperatureOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Ingest an image (kept in room storage) with its caption and annotations."""
    import mimetypes

    from .table_files import json_object

    if caption is None and file is None:
        raise typer.BadParameter("give --caption and/or --file", param_hint="--file")
    annotations = json_object(annotations_json, "--annotations-json")
    if annotations is not None and not all(isinstance(value, str) for value in annotations.values()):
        raise typer.BadParameter("every annotation must be a string", param_hint="--annotations-json")
    data = file.read_bytes() if file is not None else None
    if file is not None:
        mime_type = mime_type or mimetypes.guess_type(file.name)[0]
        source = source or str(file)

    async def body() -> Any:
        async with room_session(room) as client:
            return await client.memory.ingest_image(
                name=name, caption=caption, data=data, mime_type=mime_type, source=source, annotations=annotations,
                namespace=ns(namespace), **_ingest_options(strategy, llm_model, llm_temperature),
            )  # fmt: skip

    _show(run(body), output, pretty)


@app.command(
    "ingest-file",
    epilog=example(
        "meshagent-trio room memory ingest-file --room lobby -m notes --path docs/report.pdf",
        "meshagent-trio room memory ingest-file --room lobby -m notes --text-file notes.md --mime-type text/markdown",
    ),
)
def ingest_file(
    name: NameOption,
    path: Annotated[Optional[str], typer.Option("--path", help="A file in room storage (text, Markdown, JSON, PDF).")] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Text given here instead.")] = None,
    text_file: Annotated[Optional[Path], typer.Option("--text-file", dir_okay=False, help="A local UTF-8 text file instead.")] = None,
    mime_type: Annotated[Optional[str], typer.Option("--mime-type", help="The content's type.")] = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    strategy: StrategyOption = Strategy.heuristic,
    llm_model: LlmModelOption = None,
    llm_temperature: LlmTemperatureOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Ingest a file of room storage, or local text, into a memory."""
    if text is not None and text_file is not None:
        raise typer.BadParameter("use --text or --text-file, not both", param_hint="--text")
    if text_file is not None:
        text = text_file.read_text(encoding="utf-8")
    if path is None and text is None:
        raise typer.BadParameter("give --path, --text or --text-file", param_hint="--path")

    async def body() -> Any:
        async with room_session(room) as client:
            return await client.memory.ingest_file(
                name=name, path=path, text=text, mime_type=mime_type, namespace=ns(namespace),
                **_ingest_options(strategy, llm_model, llm_temperature),
            )  # fmt: skip

    _show(run(body), output, pretty)


@app.command("ingest-from-table", epilog=example("meshagent-trio room memory ingest-from-table --room lobby -m notes -t docs --text-column text --limit 100"))
def ingest_from_table(
    name: NameOption,
    table: Annotated[str, typer.Option("--table", "-t", help="A dataset table.")],
    text_column: Annotated[Optional[List[str]], typer.Option("--text-column", help="Column holding text (repeatable; default: every text column).")] = None,
    table_namespace: Annotated[Optional[List[str]], typer.Option("--table-namespace", help="The table's namespace path (repeatable).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Most rows to read.")] = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    strategy: StrategyOption = Strategy.heuristic,
    llm_model: LlmModelOption = None,
    llm_temperature: LlmTemperatureOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Ingest the rows of a dataset table into a memory, one source per row."""

    async def body() -> Any:
        async with room_session(room) as client:
            return await client.memory.ingest_from_table(
                name=name, table=table, text_columns=list(text_column) if text_column else None, table_namespace=ns(table_namespace),
                limit=limit, namespace=ns(namespace), **_ingest_options(strategy, llm_model, llm_temperature),
            )  # fmt: skip

    _show(run(body), output, pretty)


@app.command("ingest-from-storage", epilog=example("meshagent-trio room memory ingest-from-storage --room lobby -m notes -p docs/a.md -p docs/b.txt"))
def ingest_from_storage(
    name: NameOption,
    path: Annotated[List[str], typer.Option("--path", "-p", help="A file in room storage (repeatable).")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    strategy: StrategyOption = Strategy.heuristic,
    llm_model: LlmModelOption = None,
    llm_temperature: LlmTemperatureOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Ingest files of room storage into a memory, one source per file."""

    async def body() -> Any:
        async with room_session(room) as client:
            return await client.memory.ingest_from_storage(
                name=name, paths=list(path), namespace=ns(namespace), **_ingest_options(strategy, llm_model, llm_temperature)
            )

    _show(run(body), output, pretty)


@app.command("recall", epilog=example('meshagent-trio room memory recall --room lobby -m notes -q "Babbage"'))
def recall(
    name: NameOption,
    query: Annotated[str, typer.Option("--query", "-q", help="What to recall (matched against names and context).")],
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most entities to return.")] = 5,
    include_relationships: Annotated[bool, typer.Option("--include-relationships/--no-include-relationships", help="With their relationships.")] = True,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Recall the entities that best match a query, best first."""

    async def body() -> Any:
        async with room_session(room) as client:
            return await client.memory.recall(
                name=name, query=query, namespace=ns(namespace), limit=limit, include_relationships=include_relationships
            )

    _show(run(body), output, pretty, rows="items", columns=["entity_id", "name", "entity_type", "score", "context", "relationships"])


@app.command("delete-entities", epilog=example("meshagent-trio room memory delete-entities --room lobby -m notes -e ENTITY_ID"))
def delete_entities(
    name: NameOption,
    entity_id: Annotated[List[str], typer.Option("--entity-id", "-e", help="Entity to delete (repeatable).")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Delete entities and their relationships."""

    _show(in_room(room, lambda client: client.memory.delete_entities(name=name, entity_ids=list(entity_id), namespace=ns(namespace))), output, pretty)


@app.command(
    "delete-relationships",
    epilog=example("""meshagent-trio room memory delete-relationships --room lobby -m notes --records-json '[{"source_entity_id": "a", "target_entity_id": "b"}]'"""),
)
def delete_relationships(
    name: NameOption,
    records_json: RecordsJsonOption = None,
    records_file: RecordsFileOption = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Delete relationships (every type between two entities when a selector names none)."""
    from meshagent_core.toolkits.memory import MemoryRelationshipSelector

    selectors = _models(MemoryRelationshipSelector, _records(records_json, records_file))

    _show(in_room(room, lambda client: client.memory.delete_relationships(name=name, relationships=selectors, namespace=ns(namespace))), output, pretty)


@app.command("optimize", epilog=example("meshagent-trio room memory optimize --room lobby -m notes"))
def optimize(
    name: NameOption,
    compact: Annotated[bool, typer.Option("--compact/--no-compact", help="Compact the datasets' files.")] = True,
    cleanup: Annotated[bool, typer.Option("--cleanup/--no-cleanup", help="Remove the datasets' old versions.")] = True,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Compact a memory's datasets and remove their old versions."""

    _show(in_room(room, lambda client: client.memory.optimize(name=name, namespace=ns(namespace), compact=compact, cleanup=cleanup)), output, pretty, rows="datasets")
