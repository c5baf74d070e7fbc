"""The `dataset` toolkit: a room's Lance tables (protocol/room-apis.md §14).

Tables live under the room's data dir (`dataset_store`), are changed by Lance in one commit per
operation (`dataset_ops`, `dataset_write`), searched and watched by read streams and queried
with SQL by DuckDB (`dataset_reads`, `dataset_sql`). Grants: `dataset_access`. Every blocking
call runs in a worker thread.

Errors: a missing table, branch, version or query 1003; an existing table or branch 1004;
anything the table refuses (unknown column, a value of the wrong type, a malformed filter, SQL
that does not parse) 1002 with Lance's or DuckDB's reason; no permission 1001. Errors known
before a stream opens are the call's answer; later ones an `error` chunk and `control/close`.
"""

from __future__ import annotations

import msgspec

from meshagent_core import BinaryContent, Content
from meshagent_core.toolkits.arrow_ipc import ARROW_STREAM, ArrowDataError, read_schema_blob
from meshagent_core.toolkits.dataset import (
    AddColumnsInput,
    AddColumnsSchemaHeaders,
    BranchEntry,
    CountInput,
    CountOutput,
    CreateBranchInput,
    CreateIndexInput,
    DeleteBranchInput,
    DeleteInput,
    DropColumnsInput,
    DropIndexInput,
    DropTableInput,
    InspectInput,
    ListBranchesInput,
    ListBranchesOutput,
    ListIndexesInput,
    ListIndexesOutput,
    ListTablesInput,
    ListTablesOutput,
    ListVersionsInput,
    ListVersionsOutput,
    OptimizeInput,
    RenameTableInput,
    RestoreInput,
    SchemaHeaders,
    SearchStart,
    StatsInput,
    UpdateInput,
)

from ..toolkit import ToolCall, invalid_request
from . import dataset_ops as ops
from . import dataset_reads
from . import dataset_write
from .dataset_access import (
    RULES,
    authorizer,
    grant_of,
    json_answer,
    require,
    require_every_table,
    require_listing,
    run,
    store_of,
    toolkit,
)
from .dataset_store import MAIN, branch_key, check_name, check_namespace, invalid


async def _table(call: ToolCall, arguments: msgspec.Struct, action: str, version: int | None = None):  # type: ignore[no-untyped-def]
    """The Lance dataset a table tool works on, after the grant check."""
    grant = grant_of(call)
    namespace = check_namespace(arguments.namespace)  # type: ignore[attr-defined]
    table = check_name(arguments.table)  # type: ignore[attr-defined]
    require(grant, action, namespace, table)
    store = await store_of(call)
    return await run(store.open, namespace, table, branch_key(arguments.branch), version)  # type: ignore[attr-defined]


# --- tables ------------------------------------------------------------------------------------


@toolkit.tool("list_tables")
async def list_tables(call: ToolCall) -> Content:
    grant = grant_of(call)
    arguments = call.json_arguments(ListTablesInput)
    namespace, branch = check_namespace(arguments.namespace), branch_key(arguments.branch)
    require_listing(grant)
    store = await store_of(call)
    names = await run(store.list_tables, namespace, branch)
    return json_answer(ListTablesOutput(tables=[name for name in names if grant.can_access(name, namespace=list(namespace) or None)]))


@toolkit.tool("inspect")
async def inspect(call: ToolCall) -> Content:
    arguments = call.json_arguments(InspectInput)
    dataset = await _table(call, arguments, "read", arguments.version)
    blob = await run(ops.inspect, dataset)
    return BinaryContent(headers=msgspec.to_builtins(SchemaHeaders(content_type=ARROW_STREAM)), data=blob)


@toolkit.tool("create_table")
async def create_table(call: ToolCall) -> None:
    grant = grant_of(call)
    await dataset_write.create_table(call, await store_of(call), RULES, authorizer(grant, "alter"))


@toolkit.tool("insert")
async def insert(call: ToolCall) -> None:
    grant = grant_of(call)
    await dataset_write.insert(call, await store_of(call), RULES, authorizer(grant, "write"))


@toolkit.tool("merge")
async def merge(call: ToolCall) -> None:
    grant = grant_of(call)
    await dataset_write.merge(call, await store_of(call), RULES, authorizer(grant, "write"))


@toolkit.tool("drop_table")
async def drop_table(call: ToolCall) -> None:
    grant = grant_of(call)
    arguments = call.json_arguments(DropTableInput)
    namespace, name, branch = check_namespace(arguments.namespace), check_name(arguments.name), branch_key(arguments.branch)
    require(grant, "alter", namespace, name)
    store = await store_of(call)
    await run(store.drop, namespace, name, branch, arguments.ignore_missing)


@toolkit.tool("rename_table")
async def rename_table(call: ToolCall) -> None:
    grant = grant_of(call)
    arguments = call.json_arguments(RenameTableInput)
    namespace = check_namespace(arguments.namespace)
    name, new_name = check_name(arguments.name), check_name(arguments.new_name, "new table name")
    require(grant, "alter", namespace, name)
    require(grant, "alter", namespace, new_name)
    store = await store_of(call)
    await run(store.rename, namespace, name, new_name, branch_key(arguments.branch))


# --- columns and rows -------------------------------------------------------------------------


@toolkit.tool("add_columns")
async def add_columns(call: ToolCall) -> None:
    if isinstance(call.arguments, BinaryContent):
        try:
            headers = msgspec.convert(call.arguments.headers, type=AddColumnsSchemaHeaders)
        except msgspec.ValidationError as error:
            raise invalid_request(f"invalid arguments for dataset.add_columns: {error}") from None
        if headers.content_type not in (None, ARROW_STREAM):
            raise invalid_request(f"add_columns takes an Arrow schema ({ARROW_STREAM}), not {headers.content_type}")
        try:
            schema = await run(read_schema_blob, call.arguments.data)
        except ArrowDataError as error:
            raise invalid_request(f"the add_columns data is not an Arrow schema: {error}") from None
        dataset = await _table(call, headers, "alter")
        await run(ops.add_schema_columns, dataset, schema)
        return
    arguments = call.json_arguments(AddColumnsInput)
    dataset = await _table(call, arguments, "alter")
    await run(ops.add_sql_columns, dataset, arguments.columns)


@toolkit.tool("drop_columns")
async def drop_columns(call: ToolCall) -> None:
    arguments = call.json_arguments(DropColumnsInput)
    dataset = await _table(call, arguments, "alter")
    await run(ops.drop_columns, dataset, arguments.columns)


@toolkit.tool("update")
async def update(call: ToolCall) -> None:
    arguments = call.json_arguments(UpdateInput)
    dataset = await _table(call, arguments, "write")
    await run(ops.update, dataset, arguments.where, arguments.values)


@toolkit.tool("delete")
async def delete(call: ToolCall) -> None:
    arguments = call.json_arguments(DeleteInput)
    dataset = await _table(call, arguments, "write")
    await run(ops.delete, dataset, arguments.where)


@toolkit.tool("count")
async def count(call: ToolCall) -> Content:
    arguments = call.json_arguments(CountInput)
    dataset = await _table(call, arguments, "read", arguments.version)
    search = SearchStart(
        table=arguments.table, text=arguments.text, vector=arguments.vector, text_columns=arguments.text_columns, where=arguments.where
    )
    return json_answer(CountOutput(count=await run(ops.count, dataset, search)))


# --- versions, maintenance, indexes -------------------------------------------------------------


@toolkit.tool("list_versions")
async def list_versions(call: ToolCall) -> Content:
    arguments = call.json_arguments(ListVersionsInput)
    dataset = await _table(call, arguments, "read")
    return json_answer(ListVersionsOutput(versions=await run(ops.list_versions, dataset)))


@toolkit.tool("restore")
async def restore(call: ToolCall) -> None:
    arguments = call.json_arguments(RestoreInput)
    dataset = await _table(call, arguments, "alter", arguments.version)
    await run(ops.restore, dataset, arguments.version)


@toolkit.tool("optimize")
async def optimize(call: ToolCall) -> Content:
    arguments = call.json_arguments(OptimizeInput)
    dataset = await _table(call, arguments, "alter")
    return json_answer(await run(ops.optimize, dataset, arguments.config))


@toolkit.tool("stats")
async def stats(call: ToolCall) -> Content:
    arguments = call.json_arguments(StatsInput)
    if arguments.max_rows_per_group is not None and arguments.max_rows_per_group <= 0:
        raise invalid("max_rows_per_group must be positive")
    dataset = await _table(call, arguments, "read", arguments.version)
    return json_answer(await run(ops.stats, dataset, arguments.max_rows_per_group))


@toolkit.tool("create_index")
async def create_index(call: ToolCall) -> None:
    arguments = call.json_arguments(CreateIndexInput)
    dataset = await _table(call, arguments, "alter")
    await run(ops.create_index, dataset, arguments.config)


@toolkit.tool("list_indexes")
async def list_indexes(call: ToolCall) -> Content:
    arguments = call.json_arguments(ListIndexesInput)
    dataset = await _table(call, arguments, "read", arguments.version)
    return json_answer(ListIndexesOutput(indexes=await run(ops.list_indexes, dataset)))


@toolkit.tool("drop_index")
async def drop_index(call: ToolCall) -> None:
    arguments = call.json_arguments(DropIndexInput)
    dataset = await _table(call, arguments, "alter")
    await run(ops.drop_index, dataset, arguments.name)


# --- branches ----------------------------------------------------------------------------------


@toolkit.tool("list_branches")
async def list_branches(call: ToolCall) -> Content:
    grant = grant_of(call)
    namespace = check_namespace(call.json_arguments(ListBranchesInput).namespace)
    require_listing(grant)
    store = await store_of(call)
    branches = await run(store.branches, namespace)
    entries = [BranchEntry(name=MAIN)] + [
        BranchEntry(name=name, parent_branch=info.get("parent_branch") or MAIN, created_at=info.get("created_at"))
        for name, info in sorted(branches.items())
    ]
    return json_answer(ListBranchesOutput(branches=entries))


@toolkit.tool("create_branch")
async def create_branch(call: ToolCall) -> None:
    grant = grant_of(call)
    arguments = call.json_arguments(CreateBranchInput)
    namespace = check_namespace(arguments.namespace)
    branch = branch_key(arguments.branch)
    if branch is None:
        raise invalid(f"{MAIN!r} is the default branch: it always exists")
    require_every_table(grant, "create a branch")
    store = await store_of(call)
    await run(store.create_branch, namespace, branch, branch_key(arguments.from_branch))


@toolkit.tool("delete_branch")
async def delete_branch(call: ToolCall) -> None:
    grant = grant_of(call)
    arguments = call.json_arguments(DeleteBranchInput)
    namespace = check_namespace(arguments.namespace)
    branch = branch_key(arguments.branch)
    if branch is None:
        raise invalid(f"{MAIN!r} is the default branch: it cannot be deleted")
    require_every_table(grant, "delete a branch")
    store = await store_of(call)
    await run(store.delete_branch, namespace, branch)


#: Registered on `toolkit` by importing `dataset_reads`.
STREAM_AND_SQL_TOOLS = dataset_reads.__all__

__all__ = ["toolkit"]
