"""The maintenance half of `meshagent-trio room dataset …`: versions and restore, indexes,
optimize and stats, and branches. room_dataset.py registers these commands on its group."""

from __future__ import annotations

from typing import Annotated, Any, List, Optional

import typer

from .common import CommandFailed, OutputFormat, OutputOption, ProjectIdOption, RoomOption, example, group, in_room, room_session, run
from .table_files import json_object
from .output import note
from .table_output import NamespaceOption, PrettyOption, emit, ns, prefixed

_OUTPUT = ("--output", "-o")
EXTENSIONS = (
    *prefixed("room dataset version", _OUTPUT),
    *prefixed("room dataset versions", _OUTPUT),
    *prefixed("room dataset index", _OUTPUT),
    *prefixed("room dataset indexes", _OUTPUT),
    *prefixed("room dataset branch list", _OUTPUT),
    *prefixed("room dataset branch get", _OUTPUT),
)

app = group("Dataset maintenance (registered on `room dataset`).")
branch_app = group("Manage dataset branches in a room namespace.")
app.add_typer(branch_app, name="branch")

BranchOption = Annotated[Optional[str], typer.Option("--branch", help="Dataset branch (default: main).")]
VersionOption = Annotated[Optional[int], typer.Option("--version", "-v", help="Table version to read (default: the latest).")]
TableOption = Annotated[str, typer.Option("--table", "-t", help="Table name.")]


def _config(type_: Any, config_json: Optional[str], values: dict[str, Any]) -> Any:
    """`--config-json` with the options given on top, as the SDK's config Struct."""
    import msgspec

    data = json_object(config_json, "--config-json") or {}
    data.update({key: value for key, value in values.items() if value is not None})
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as error:
        raise typer.BadParameter(str(error), param_hint="--config-json") from None


def _emit_grouped(result: Any, output: OutputFormat) -> None:
    """Nested results (optimize, stats): JSON as they are, a table of group, name, value."""
    from .output import to_plain

    if output is OutputFormat.json:
        emit(result, output)
        return
    rows = []
    for name, value in to_plain(result).items():
        if isinstance(value, dict):
            rows.extend({"group": name, "name": key, "value": inner} for key, inner in value.items())
        else:
            rows.append({"group": "", "name": name, "value": value})
    emit(rows, output, columns=["group", "name", "value"])


# --- versions ----------------------------------------------------------------------------------


@app.command("versions", hidden=True, epilog=example("meshagent-trio room dataset versions --room lobby -t docs"))
@app.command("version", epilog=example("meshagent-trio room dataset version --room lobby -t docs", "meshagent-trio room dataset version --room lobby -t docs -o json"))
def list_versions(
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the versions of a table."""

    emit(in_room(room, lambda client: client.datasets.list_versions(table=table, namespace=ns(namespace), branch=branch)), output, pretty=pretty, columns=["version", "timestamp", "metadata"])


@app.command("restore", epilog=example("meshagent-trio room dataset restore --room lobby -t docs -v 2"))
def restore(
    table: TableOption,
    version: Annotated[int, typer.Option("--version", "-v", help="The version to make the latest again.")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
) -> None:
    """Restore a table to one of its versions (as a new version)."""

    in_room(room, lambda client: client.datasets.restore(table=table, version=version, namespace=ns(namespace), branch=branch))
    note(f"Restored {table} to version {version}")


@app.command("optimize", epilog=example("meshagent-trio room dataset optimize --room lobby -t docs", "meshagent-trio room dataset optimize --room lobby -t docs --cleanup-old-versions --older-than-seconds 0 -o json"))
def optimize(
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    compact_files: Annotated[Optional[bool], typer.Option("--compact-files/--no-compact-files", help="Merge small files.")] = None,
    optimize_indices: Annotated[Optional[bool], typer.Option("--optimize-indices/--no-optimize-indices", help="Index rows added since.")] = None,
    cleanup_old_versions: Annotated[Optional[bool], typer.Option("--cleanup-old-versions/--no-cleanup-old-versions", help="Remove old versions.")] = None,
    older_than_seconds: Annotated[Optional[float], typer.Option("--older-than-seconds", help="Versions older than this are old.")] = None,
    retain_versions: Annotated[Optional[int], typer.Option("--retain-versions", help="Newest versions always kept.")] = None,
    target_rows_per_fragment: Annotated[Optional[int], typer.Option("--target-rows-per-fragment")] = None,
    config_json: Annotated[Optional[str], typer.Option("--config-json", help="Every optimize setting as a JSON object.")] = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Compact a table's files, update its indexes, and remove old versions."""
    from meshagent_core.client.datasets_models import DatasetOptimizeConfig

    values = {
        "compact_files": compact_files, "optimize_indices": optimize_indices, "cleanup_old_versions": cleanup_old_versions,
        "older_than_seconds": older_than_seconds, "retain_versions": retain_versions, "target_rows_per_fragment": target_rows_per_fragment,
    }  # fmt: skip
    config = _config(DatasetOptimizeConfig, config_json, values) if config_json or any(v is not None for v in values.values()) else None

    _emit_grouped(in_room(room, lambda client: client.datasets.optimize(table=table, namespace=ns(namespace), branch=branch, config=config)), output)


@app.command("stats", epilog=example("meshagent-trio room dataset stats --room lobby -t docs", "meshagent-trio room dataset stats --room lobby -t docs -o json"))
def stats(
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    version: VersionOption = None,
    max_rows_per_group: Annotated[Optional[int], typer.Option("--max-rows-per-group", help="Row-group size the data statistics assume.")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a table's statistics: rows, files, sizes."""

    async def body() -> Any:
        async with room_session(room) as client:
            return await client.datasets.stats(
                table=table, namespace=ns(namespace), branch=branch, version=version, max_rows_per_group=max_rows_per_group
            )

    _emit_grouped(run(body), output)


# --- indexes -----------------------------------------------------------------------------------


@app.command("indexes", hidden=True, epilog=example("meshagent-trio room dataset indexes --room lobby -t docs"))
@app.command("index", epilog=example("meshagent-trio room dataset index --room lobby -t docs", "meshagent-trio room dataset index --room lobby -t docs -o json"))
def list_indexes(
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
    version: VersionOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the indexes of a table."""

    emit(in_room(room, lambda client: client.datasets.list_indexes(table=table, namespace=ns(namespace), branch=branch, version=version)), output, pretty=pretty, columns=["name", "columns", "type", "num_rows_indexed"], empty="(no indexes)")


@app.command(
    "index-create",
    epilog=example(
        "meshagent-trio room dataset index-create --room lobby -t docs -c id --index-type BTREE",
        "meshagent-trio room dataset index-create --room lobby -t docs -c text --index-type INVERTED --with-position",
    ),
)
def create_index(
    table: TableOption,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    column: Annotated[Optional[List[str]], typer.Option("--column", "-c", help="Column to index (repeatable).")] = None,
    index_type: Annotated[Optional[str], typer.Option("--index-type", help="BTREE, BITMAP, LABEL_LIST, INVERTED, FTS, IVF_PQ, IVF_HNSW_SQ, …")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Index name (default: <column>_idx).")] = None,
    metric: Annotated[Optional[str], typer.Option("--metric", help="Vector distance: L2, cosine or dot.")] = None,
    replace: Annotated[Optional[bool], typer.Option("--replace/--no-replace", help="Replace an index of the same name.")] = None,
    train: Annotated[Optional[bool], typer.Option("--train/--no-train", help="Train the index on the rows there are.")] = None,
    num_partitions: Annotated[Optional[int], typer.Option("--num-partitions")] = None,
    num_sub_vectors: Annotated[Optional[int], typer.Option("--num-sub-vectors")] = None,
    with_position: Annotated[Optional[bool], typer.Option("--with-position/--no-with-position", help="Store token positions (phrase queries).")] = None,
    base_tokenizer: Annotated[Optional[str], typer.Option("--base-tokenizer")] = None,
    language: Annotated[Optional[str], typer.Option("--language")] = None,
    lower_case: Annotated[Optional[bool], typer.Option("--lower-case/--no-lower-case")] = None,
    stem: Annotated[Optional[bool], typer.Option("--stem/--no-stem")] = None,
    remove_stop_words: Annotated[Optional[bool], typer.Option("--remove-stop-words/--keep-stop-words")] = None,
    ascii_folding: Annotated[Optional[bool], typer.Option("--ascii-folding/--no-ascii-folding")] = None,
    config_json: Annotated[Optional[str], typer.Option("--config-json", help="Every index setting as a JSON object.")] = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
) -> None:
    """Create an index on a table (scalar, full-text or vector)."""
    from meshagent_core.client.datasets_models import DatasetIndexConfig

    if config_json is None and (not column or index_type is None):
        raise typer.BadParameter("give --column and --index-type (or --config-json)", param_hint="--column")
    values = {
        "column": (column[0] if len(column) == 1 else list(column)) if column else None, "index_type": index_type, "name": name,
        "metric": metric, "replace": replace, "train": train, "num_partitions": num_partitions, "num_sub_vectors": num_sub_vectors,
        "with_position": with_position, "base_tokenizer": base_tokenizer, "language": language, "lower_case": lower_case, "stem": stem,
        "remove_stop_words": remove_stop_words, "ascii_folding": ascii_folding,
    }  # fmt: skip
    config = _config(DatasetIndexConfig, config_json, values)

    in_room(room, lambda client: client.datasets.create_index(table=table, config=config, namespace=ns(namespace), branch=branch))
    note(f"Created a {config.index_type} index on {table}")


@app.command("index-drop", epilog=example("meshagent-trio room dataset index-drop --room lobby -t docs --name id_idx"))
def drop_index(
    table: TableOption,
    name: Annotated[str, typer.Option("--name", help="Index name.")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    branch: BranchOption = None,
) -> None:
    """Drop an index of a table."""

    in_room(room, lambda client: client.datasets.drop_index(table=table, name=name, namespace=ns(namespace), branch=branch))
    note(f"Dropped index {name} of {table}")


# --- branches ----------------------------------------------------------------------------------

_BRANCH_COLUMNS = ["name", "parent_branch", "parent_version", "created_at"]


@branch_app.command("list", epilog=example("meshagent-trio room dataset branch list --room lobby"))
def list_branches(
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the dataset branches of a namespace."""

    emit(in_room(room, lambda client: client.datasets.list_branches(namespace=ns(namespace))), output, pretty=pretty, columns=_BRANCH_COLUMNS, empty="(no branches)")


@branch_app.command("get", epilog=example("meshagent-trio room dataset branch get --room lobby --branch exp -o json"))
def get_branch(
    branch: Annotated[str, typer.Option("--branch", help="Branch name.")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
    pretty: PrettyOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show one dataset branch."""

    async def body() -> Any:
        async with room_session(room) as client:
            for candidate in await client.datasets.list_branches(namespace=ns(namespace)):
                if candidate.name == branch:
                    return candidate
        raise CommandFailed(f"no branch named {branch!r}")

    emit(run(body), output, pretty=pretty)


@branch_app.command("create", epilog=example("meshagent-trio room dataset branch create --room lobby --branch exp", "meshagent-trio room dataset branch create --room lobby --branch exp2 --from-branch exp"))
def create_branch(
    branch: Annotated[str, typer.Option("--branch", help="New branch name.")],
    from_branch: Annotated[Optional[str], typer.Option("--from-branch", help="Branch to start from (default: main).")] = None,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Create a dataset branch of every table of a namespace."""

    in_room(room, lambda client: client.datasets.create_branch(branch=branch, from_branch=from_branch, namespace=ns(namespace)))
    note(f"Created branch {branch} from {from_branch or 'main'}")


@branch_app.command("delete", epilog=example("meshagent-trio room dataset branch delete --room lobby --branch exp"))
def delete_branch(
    branch: Annotated[str, typer.Option("--branch", help="Branch name.")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Delete a dataset branch."""

    in_room(room, lambda client: client.datasets.delete_branch(branch=branch, namespace=ns(namespace)))
    note(f"Deleted branch {branch}")
