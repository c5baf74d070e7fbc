"""`dataset` toolkit contract (protocol/room-apis.md §14): Lance tables in namespaces, with
versions, branches, indexes, search and SQL.

One definition of every tool's input, answer and stream chunk, used by the client
(`room.datasets`) and the local server. The toolkit is named `dataset` (singular) on the wire,
while the official client's attribute and error texts say `datasets` (`ERROR_PREFIX`).

Every input carries all its keys (null when unset), as the official client sends them. Answers
that the official client validates strictly (no extra keys) are Structs with `omit_defaults`
where a key is optional. Stream chunk headers are tagged Structs (`tag_field="kind"`):
`msgspec.to_builtins(header)` is the `headers` object of a `binary` chunk (or the `json` of a
`json` chunk), and `msgspec.convert(headers, type=...)` checks the `kind` while decoding one.

| tool | input | answer |
|---|---|---|
| `list_tables` | `ListTablesInput` | `json` `ListTablesOutput` |
| `inspect` | `InspectInput` | `binary` `SchemaHeaders` + Arrow schema blob |
| `create_table` | stream: `binary` `CreateTableStart` (+ schema blob or nothing), then `DataHeaders` chunks; or `json` `CreateTableStart`, then `json` `RowsChunk` chunks | stream of `Pull`, then `control/close` |
| `insert` / `merge` | stream: `binary` `InsertStart` / `MergeStart`, then `DataHeaders` chunks | stream of `Pull`, then `control/close` |
| `drop_table` | `DropTableInput` | `empty` |
| `rename_table` | `RenameTableInput` | `empty` |
| `add_columns` | `AddColumnsInput`, or `binary` `AddColumnsSchemaHeaders` + schema blob | `empty` |
| `drop_columns` | `DropColumnsInput` | `empty` |
| `update` | `UpdateInput` | `empty` |
| `delete` | `DeleteInput` | `empty` |
| `count` | `CountInput` | `json` `CountOutput` |
| `search` | stream: `binary` `SearchStart`, then `ReadPull` per item | `binary` `DataHeaders` + Arrow IPC per pull, then `control/close` |
| `watch_table` | stream: `binary` `WatchStart`, then `ReadPull` per item | `binary` `WatchData` or `json` `WatchReady` per pull |
| `optimize` | `OptimizeInput` | `json` `OptimizeOutput` |
| `stats` | `StatsInput` | `json` `StatsOutput` |
| `list_versions` | `ListVersionsInput` | `json` `ListVersionsOutput` |
| `restore` | `RestoreInput` | `empty` |
| `create_index` / `list_indexes` / `drop_index` | `CreateIndexInput` / `ListIndexesInput` / `DropIndexInput` | `empty` / `json` `ListIndexesOutput` / `empty` |
| `list_branches` / `create_branch` / `delete_branch` | `ListBranchesInput` / `CreateBranchInput` / `DeleteBranchInput` | `json` `ListBranchesOutput` / `empty` / `empty` |
| `execute_sql` | `binary` `SqlHeaders` + Arrow IPC parameters (or nothing) | `binary` `SqlQueryHeaders` + schema blob, or `json` `SqlStatementOutput` |
| `open_sql_query` | the same | `binary` `SqlQueryHeaders` + schema blob |
| `execute_sql_statement` | the same | `json` `RowsAffectedOutput` |
| `read_sql_query` | stream: `binary` `ReadSqlStart`, then `ReadPull` per item | like `search` |
| `close_sql_query` | `QueryIdInput` | `empty` |
| `cancel_sql_query` | `QueryIdInput` | `json` `CancelOutput` |
"""

from __future__ import annotations

from typing import Any, Literal, Union

import msgspec

# The open-query shapes are the same in the sqlite toolkit: defined once there.
from .sql_queries import CancelOutput, CancelStatus, QueryIdInput, RowsAffectedOutput
from .sql_queries import ReadQueryStart as ReadSqlStart
from .sql_queries import StatementOutput as SqlStatementOutput

TOOLKIT = "dataset"
#: What the official client's error texts call the toolkit (`unexpected return type from datasets.inspect`).
ERROR_PREFIX = "datasets"

#: Rows the official client puts in one `json` rows chunk of `create_table_from_json_data`.
JSON_ROWS_PER_CHUNK = 128

CreateMode = Literal["create", "overwrite", "create_if_not_exists"]

#: Metadata key with which Lance marks a column for zstd compression (the official constant).
LANCE_COMPRESSION_METADATA_KEY = b"lance-encoding:compression"
#: Field metadata asking Lance to compress a column with zstd (the official constant).
LANCE_ZSTD_FIELD_METADATA = {LANCE_COMPRESSION_METADATA_KEY: b"zstd"}

VECTOR_INDEX_TYPES = ("IVF_PQ", "IVF_HNSW_PQ", "IVF_HNSW_SQ", "IVF_RQ")
SCALAR_INDEX_TYPES = ("BTREE", "BITMAP", "LABEL_LIST", "NGRAM", "ZONEMAP", "INVERTED", "FTS", "BLOOMFILTER", "RTREE")
IndexType = Literal[
    "IVF_PQ", "IVF_HNSW_PQ", "IVF_HNSW_SQ", "IVF_RQ",
    "BTREE", "BITMAP", "LABEL_LIST", "NGRAM", "ZONEMAP", "INVERTED", "FTS", "BLOOMFILTER", "RTREE",
]  # fmt: skip

Namespace = Union[list[str], None]


# --- unary inputs ---------------------------------------------------------------------------


class ListTablesInput(msgspec.Struct):
    namespace: Namespace = None
    branch: str | None = None


class TableInput(msgspec.Struct):
    """A tool about one table (`drop_index`, `delete`, … derive from it)."""

    table: str
    namespace: Namespace = None
    branch: str | None = None


class InspectInput(TableInput):
    version: int | None = None


class DropTableInput(msgspec.Struct):
    name: str
    ignore_missing: bool = False
    namespace: Namespace = None
    branch: str | None = None


class RenameTableInput(msgspec.Struct):
    name: str
    new_name: str
    namespace: Namespace = None
    branch: str | None = None


class DropIndexInput(TableInput, kw_only=True):
    name: str


class SqlColumn(msgspec.Struct):
    """A column added from a SQL expression over the existing columns (`"'hello'"`, `"id * 2"`)."""

    name: str
    value_sql: str


class AddColumnsInput(TableInput, kw_only=True):
    """`add_columns`, SQL form (the schema form is `AddColumnsSchemaHeaders` + a schema blob)."""

    columns: list[SqlColumn]


class AddColumnsSchemaHeaders(msgspec.Struct):
    """`add_columns`, schema form: the headers of its `binary` argument; the new columns are
    all-null."""

    table: str
    namespace: Namespace = None
    branch: str | None = None
    content_type: str | None = None


class DropColumnsInput(TableInput, kw_only=True):
    columns: list[str]


class UpdateValue(msgspec.Struct):
    """One column's new value: `value_json` is JSON text of a record value (§12.1)."""

    column: str
    value_json: str


class UpdateInput(TableInput, kw_only=True):
    where: str | None = None
    values: list[UpdateValue] = []


class DeleteInput(TableInput, kw_only=True):
    where: str


class CountInput(TableInput, kw_only=True):
    text: str | None = None
    vector: list[float] | None = None
    text_columns: list[str] | None = None
    where: str | None = None
    version: int | None = None


class OptimizeConfig(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """What `optimize` does; the official `DatasetOptimizeConfig` (unset keys are not sent)."""

    compact_files: bool | None = True
    optimize_indices: bool | None = True
    cleanup_old_versions: bool | None = False
    target_rows_per_fragment: int | None = None
    max_rows_per_group: int | None = None
    max_bytes_per_file: int | None = None
    materialize_deletions: bool | None = None
    materialize_deletions_threshold: float | None = None
    defer_index_remap: bool | None = None
    num_threads: int | None = None
    batch_size: int | None = None
    compaction_mode: Literal["reencode", "try_binary_copy", "force_binary_copy"] | None = None
    binary_copy_read_batch_bytes: int | None = None
    num_indices_to_merge: int | None = None
    index_names: list[str] | None = None
    retrain: bool | None = None
    older_than_seconds: float | None = 604800
    retain_versions: int | None = None
    delete_unverified: bool | None = None
    error_if_tagged_old_versions: bool | None = None
    delete_rate_limit: int | None = None


class OptimizeInput(TableInput, kw_only=True):
    config: OptimizeConfig | None = None


class StatsInput(TableInput, kw_only=True):
    version: int | None = None
    max_rows_per_group: int | None = None


class RestoreInput(TableInput, kw_only=True):
    version: int


class ListVersionsInput(TableInput):
    pass


class IndexConfig(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """An index to build; the official `DatasetIndexConfig` (unset keys are not sent)."""

    column: str | list[str]
    index_type: IndexType
    name: str | None = None
    metric: str | None = None
    replace: bool | None = None
    num_partitions: int | None = None
    ivf_centroids: list[list[float]] | None = None
    pq_codebook: list[list[float]] | None = None
    num_sub_vectors: int | None = None
    accelerator: str | None = None
    index_cache_size: int | None = None
    shuffle_partition_batches: int | None = None
    shuffle_partition_concurrency: int | None = None
    ivf_centroids_file: str | None = None
    precomputed_partition_dataset: str | None = None
    filter_nan: bool | None = None
    train: bool | None = None
    fragment_ids: list[int] | None = None
    index_uuid: str | None = None
    target_partition_size: int | None = None
    skip_transpose: bool | None = None
    num_bits: int | None = None
    index_file_version: str | None = None
    max_level: int | None = None
    m: int | None = None
    ef_construction: int | None = None
    with_position: bool | None = None
    memory_limit: int | None = None
    num_workers: int | None = None
    skip_merge: bool | None = None
    base_tokenizer: str | None = None
    language: str | None = None
    max_token_length: int | None = None
    lower_case: bool | None = None
    stem: bool | None = None
    remove_stop_words: bool | None = None
    custom_stop_words: list[str] | None = None
    ascii_folding: bool | None = None


class CreateIndexInput(TableInput, kw_only=True):
    config: IndexConfig


class ListIndexesInput(TableInput, kw_only=True):
    version: int | None = None


class ListBranchesInput(msgspec.Struct):
    namespace: Namespace = None


class CreateBranchInput(msgspec.Struct):
    branch: str
    from_branch: str | None = None
    namespace: Namespace = None


class DeleteBranchInput(msgspec.Struct):
    branch: str
    namespace: Namespace = None


class SqlTableRef(msgspec.Struct):
    """A table a SQL query reads: `alias` names it in the query (default: `name`);
    `namespace`/`branch` default to the request's, `version` to the latest."""

    name: str
    namespace: Namespace = None
    alias: str | None = None
    branch: str | None = None
    version: int | None = None


class SqlHeaders(msgspec.Struct):
    """The headers of the `binary` argument of `execute_sql`, `open_sql_query` and
    `execute_sql_statement`; its data is an Arrow IPC stream of one row whose columns are the
    `$name` parameters of the query, or empty."""

    query: str
    tables: list[SqlTableRef] = []
    namespace: Namespace = None
    branch: str | None = None


# --- unary answers (strict on the client) -----------------------------------------------------


class ListTablesOutput(msgspec.Struct):
    tables: list[str]


class SchemaHeaders(msgspec.Struct, tag_field="kind", tag="schema", omit_defaults=True):
    """`inspect`: the headers of the `binary` answer whose data is the schema blob."""

    content_type: str | None = None


class CountOutput(msgspec.Struct):
    count: int


class OptimizeOutput(msgspec.Struct, omit_defaults=True):
    """`optimize`: the compaction and cleanup metrics (or the same as JSON text)."""

    compaction: dict[str, Any] | None = None
    compaction_json: str | None = None
    optimized_indices: bool = False
    cleanup: dict[str, Any] | None = None
    cleanup_json: str | None = None


class StatsOutput(msgspec.Struct, omit_defaults=True):
    """`stats`: dataset statistics and per-field data statistics (or the same as JSON text)."""

    dataset: dict[str, Any] | None = None
    dataset_json: str | None = None
    data: dict[str, Any] | None = None
    data_json: str | None = None


class VersionEntry(msgspec.Struct):
    """One version of a table: `timestamp` is ISO 8601 (UTC, `Z`), `metadata_json` JSON text
    of an object."""

    version: int
    timestamp: str
    metadata_json: str


class ListVersionsOutput(msgspec.Struct):
    versions: list[VersionEntry]


class IndexEntry(msgspec.Struct, omit_defaults=True):
    """One index of a table (`details_json`/`statistics_json`: JSON text of objects)."""

    name: str
    columns: list[str]
    type: str
    details_json: str
    statistics_json: str
    fields: list[int] = []
    type_url: str | None = None
    num_rows_indexed: int | None = None
    num_segments: int | None = None
    total_size_bytes: int | None = None


class ListIndexesOutput(msgspec.Struct):
    indexes: list[IndexEntry]


class BranchEntry(msgspec.Struct):
    """One branch of a namespace (`created_at`: ISO 8601)."""

    name: str
    parent_branch: str | None = None
    parent_version: int | None = None
    created_at: str | None = None
    manifest_size: int | None = None


class ListBranchesOutput(msgspec.Struct):
    branches: list[BranchEntry]


class SqlQueryHeaders(msgspec.Struct, tag_field="kind", tag="query", omit_defaults=True):
    """An opened result set: the headers of the `binary` answer whose data is its schema blob."""

    query_id: str
    content_type: str | None = None


# --- write streams (pull-driven by the server) --------------------------------------------------


class MetadataEntry(msgspec.Struct):
    key: str
    value: str


class CreateTableStart(msgspec.Struct, tag_field="kind", tag="start"):
    """First chunk of `create_table`: `binary` (data: a schema blob, or nothing to take the
    schema from the first data chunk) or `json` (then the data chunks are `RowsChunk`)."""

    name: str
    mode: CreateMode = "create"
    namespace: Namespace = None
    branch: str | None = None
    metadata: list[MetadataEntry] | None = None


class InsertStart(msgspec.Struct, tag_field="kind", tag="start"):
    table: str
    namespace: Namespace = None
    branch: str | None = None


class MergeStart(msgspec.Struct, tag_field="kind", tag="start"):
    """`merge`: rows whose `on` column matches a row of the table replace it, the others are
    inserted."""

    table: str
    on: str
    namespace: Namespace = None
    branch: str | None = None


class Pull(msgspec.Struct, tag_field="kind", tag="pull", omit_defaults=True):
    """Asks the other side for its next chunk (server → client on write streams, client →
    server on read streams)."""

    chunk_size: int | None = None


class DataHeaders(msgspec.Struct, tag_field="kind", tag="data", omit_defaults=True):
    """A chunk of rows: its data is one Arrow IPC stream."""

    content_type: str | None = None


class ColumnValue(msgspec.Struct):
    name: str
    value: Any = None


class JsonRow(msgspec.Struct):
    columns: list[ColumnValue]


class RowsChunk(msgspec.Struct, tag_field="kind", tag="rows"):
    """A `json` chunk of rows (values in §12.1 form)."""

    rows: list[JsonRow]


# --- read streams (pull-driven by the client) ----------------------------------------------------


class SearchStart(msgspec.Struct, tag_field="kind", tag="start"):
    """`search`: `vector` is a nearest-neighbour search on the table's vector column, `text` a
    full-text search on its indexed text columns; `where` filters (SQL), `select` picks
    columns."""

    table: str
    text: str | None = None
    vector: list[float] | None = None
    text_columns: list[str] | None = None
    where: str | None = None
    offset: int | None = None
    limit: int | None = None
    select: list[str] | None = None
    namespace: Namespace = None
    branch: str | None = None
    version: int | None = None


class WatchStart(msgspec.Struct, tag_field="kind", tag="start"):
    table: str
    namespace: Namespace = None
    branch: str | None = None
    poll_interval_seconds: float = 0.5


class WatchData(msgspec.Struct, tag_field="kind", tag="data", omit_defaults=True):
    """A chunk of rows of `watch_table`: the table as it was (`phase` `initial`, at `version`)
    or what changed (`phase` `delta`, `change_type` `inserted` / `updated` / `deleted`, from
    `begin_version` to `end_version`)."""

    content_type: str | None = None
    phase: str | None = None
    version: int | str | None = None
    change_type: str | None = None
    begin_version: int | str | None = None
    end_version: int | str | None = None
    watch_event: str | None = None


class WatchReady(msgspec.Struct, tag_field="kind", tag="ready", omit_defaults=True):
    """`watch_table`: everything up to `version` has been sent."""

    phase: str | None = None
    version: int | str | None = None


__all__ = [
    "ERROR_PREFIX",
    "JSON_ROWS_PER_CHUNK",
    "LANCE_COMPRESSION_METADATA_KEY",
    "LANCE_ZSTD_FIELD_METADATA",
    "SCALAR_INDEX_TYPES",
    "TOOLKIT",
    "VECTOR_INDEX_TYPES",
    "AddColumnsInput",
    "AddColumnsSchemaHeaders",
    "BranchEntry",
    "CancelOutput",
    "CancelStatus",
    "ColumnValue",
    "CountInput",
    "CountOutput",
    "CreateBranchInput",
    "CreateIndexInput",
    "CreateMode",
    "CreateTableStart",
    "DataHeaders",
    "DeleteBranchInput",
    "DeleteInput",
    "DropColumnsInput",
    "DropIndexInput",
    "DropTableInput",
    "IndexConfig",
    "IndexEntry",
    "IndexType",
    "InsertStart",
    "InspectInput",
    "JsonRow",
    "ListBranchesInput",
    "ListBranchesOutput",
    "ListIndexesInput",
    "ListIndexesOutput",
    "ListTablesInput",
    "ListTablesOutput",
    "ListVersionsInput",
    "ListVersionsOutput",
    "MergeStart",
    "MetadataEntry",
    "OptimizeConfig",
    "OptimizeInput",
    "OptimizeOutput",
    "Pull",
    "QueryIdInput",
    "ReadSqlStart",
    "RenameTableInput",
    "RestoreInput",
    "RowsAffectedOutput",
    "RowsChunk",
    "SchemaHeaders",
    "SearchStart",
    "SqlColumn",
    "SqlHeaders",
    "SqlQueryHeaders",
    "SqlStatementOutput",
    "SqlTableRef",
    "StatsInput",
    "StatsOutput",
    "TableInput",
    "UpdateInput",
    "UpdateValue",
    "VersionEntry",
    "WatchData",
    "WatchReady",
    "WatchStart",
]
