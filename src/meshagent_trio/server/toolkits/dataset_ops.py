"""What the `dataset` toolkit does to one Lance table (protocol/room-apis.md §14.2, §14.4): blocking
functions the toolkit runs in worker threads. Lance's failures become 1002 with Lance's reason
(`lance_error`); nothing here half-applies a change (each is one Lance commit).
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

from meshagent_core.toolkits.arrow_ipc import schema_blob
from meshagent_core.toolkits.dataset import (
    SCALAR_INDEX_TYPES,
    IndexConfig,
    IndexEntry,
    OptimizeConfig,
    OptimizeOutput,
    SearchStart,
    SqlColumn,
    StatsOutput,
    UpdateValue,
    VersionEntry,
)
from meshagent_core.toolkits.records import decode_record_value

from .dataset_rows import sql_literal
from .dataset_store import invalid, iso, lance_error

#: Rows of one batch a read stream sends (a larger batch is cut).
BATCH_ROWS = 8192
#: Nearest neighbours a vector or text search returns when the caller gives no `limit`.
DEFAULT_SEARCH_LIMIT = 10
#: Internal columns of a Lance delta that callers are not shown.
_DELTA_INTERNAL = ("_row_created_at_version", "_row_last_updated_at_version")


def single_expression(where: str | None, what: str = "where") -> str | None:
    """`where` when it is one SQL expression; 1002 when it holds a statement separator (a
    second statement), found with DuckDB's tokenizer so `;` inside a string literal is fine."""
    if where is None:
        return None
    if not where.strip():
        return None
    import duckdb

    try:
        tokens = duckdb.tokenize(where)
    except Exception as error:
        raise invalid(f"invalid {what} clause: {error}") from None
    for position, _ in tokens:
        if where[position] == ";":
            raise invalid(f"the {what} clause must be a single SQL expression (found ';')")
    return where


def _fail(what: str, error: BaseException) -> Exception:
    return lance_error(what, error)


def inspect(dataset: Any) -> bytes:
    return schema_blob(dataset.schema)


def update(dataset: Any, where: str | None, values: list[UpdateValue]) -> None:
    if not values:
        raise invalid("update needs at least one column value")
    schema = dataset.schema
    updates: dict[str, str] = {}
    for item in values:
        index = schema.get_field_index(item.column)
        if index < 0:
            raise invalid(f"unknown column {item.column!r}: the table has {', '.join(schema.names)}")
        try:
            value = decode_record_value(json.loads(item.value_json))
        except (ValueError, TypeError) as error:
            raise invalid(f"invalid value for column {item.column!r}: {error}") from None
        updates[item.column] = single_expression(sql_literal(value, schema.field(index).type), f"value of {item.column!r}") or "NULL"
    try:
        dataset.update(updates, where=single_expression(where))
    except (OSError, ValueError, RuntimeError) as error:
        raise _fail("datasets.update failed", error) from None


def delete(dataset: Any, where: str) -> None:
    where = single_expression(where)
    if where is None:
        raise invalid("delete needs a where clause (use 'true' to delete every row)")
    try:
        dataset.delete(where)
    except (OSError, ValueError, RuntimeError) as error:
        raise _fail("datasets.delete failed", error) from None


def add_sql_columns(dataset: Any, columns: list[SqlColumn]) -> None:
    if not columns:
        raise invalid("add_columns needs at least one column")
    existing = set(dataset.schema.names)
    for column in columns:
        if column.name in existing:
            raise invalid(f"column {column.name!r} already exists")
        single_expression(column.value_sql, "value_sql")
    try:
        dataset.add_columns({column.name: column.value_sql for column in columns})
    except (OSError, ValueError, RuntimeError, TypeError) as error:
        raise _fail("datasets.add_columns failed", error) from None


def add_schema_columns(dataset: Any, schema: Any) -> None:
    """New all-null columns (they must be nullable)."""
    if len(schema) == 0:
        raise invalid("add_columns needs at least one column")
    existing = set(dataset.schema.names)
    for field in schema:
        if field.name in existing:
            raise invalid(f"column {field.name!r} already exists")
        if not field.nullable:
            raise invalid(f"new column {field.name!r} must be nullable: the rows already there have no value for it")
    try:
        dataset.add_columns(list(schema))
    except (OSError, ValueError, RuntimeError, TypeError) as error:
        raise _fail("datasets.add_columns failed", error) from None


def drop_columns(dataset: Any, columns: list[str]) -> None:
    if not columns:
        raise invalid("drop_columns needs at least one column")
    for column in columns:
        if dataset.schema.get_field_index(column) < 0:
            raise invalid(f"unknown column {column!r}: the table has {', '.join(dataset.schema.names)}")
    if len(set(columns)) >= len(dataset.schema.names):
        raise invalid("a table keeps at least one column")
    try:
        dataset.drop_columns(columns)
    except (OSError, ValueError, RuntimeError) as error:
        raise _fail("datasets.drop_columns failed", error) from None


def vector_column(schema: Any) -> str:
    """The column a vector search runs on: the table's only fixed-size list of floats."""
    import pyarrow as pa

    candidates = [
        field.name
        for field in schema
        if pa.types.is_fixed_size_list(field.type) and pa.types.is_floating(field.type.value_type)
    ]
    if len(candidates) != 1:
        found = "no vector column" if not candidates else f"several vector columns ({', '.join(candidates)})"
        raise invalid(f"a vector search needs exactly one vector column (a fixed-size list of floats), the table has {found}")
    return candidates[0]


def _scanner_arguments(dataset: Any, start: SearchStart, *, counting: bool = False) -> dict[str, Any]:
    if start.offset is not None and start.offset < 0:
        raise invalid("offset must not be negative")
    if start.limit is not None and start.limit < 0:
        raise invalid("limit must not be negative")
    arguments: dict[str, Any] = {"filter": single_expression(start.where)}
    if start.select is not None and not counting:
        for column in start.select:
            if dataset.schema.get_field_index(column) < 0:
                raise invalid(f"unknown column {column!r}: the table has {', '.join(dataset.schema.names)}")
        arguments["columns"] = list(start.select)
    ranked = start.vector is not None or start.text is not None
    limit = start.limit if start.limit is not None or counting else (DEFAULT_SEARCH_LIMIT if ranked else None)
    if start.vector is not None:
        if not start.vector or not all(math.isfinite(value) for value in start.vector):
            raise invalid("vector must be a non-empty list of finite numbers")
        column = vector_column(dataset.schema)
        size = dataset.schema.field(column).type.list_size
        if len(start.vector) != size:
            raise invalid(f"vector has {len(start.vector)} values, column {column!r} holds vectors of {size}")
        k = (start.offset or 0) + (limit if limit is not None else dataset.count_rows())
        arguments["nearest"] = {"column": column, "q": start.vector, "k": max(k, 1)}
        arguments["prefilter"] = True
    if start.text is not None:
        query: dict[str, Any] = {"query": start.text}
        if start.text_columns:
            query["columns"] = list(start.text_columns)
        arguments["full_text_query"] = query
    if not counting:
        arguments["limit"] = limit
        arguments["offset"] = start.offset
        arguments["batch_size"] = BATCH_ROWS
    return arguments


def search_reader(dataset: Any, start: SearchStart) -> Any:
    """A reader of the search's result batches."""
    try:
        return dataset.scanner(**_scanner_arguments(dataset, start)).to_reader()
    except (OSError, ValueError, RuntimeError, TypeError) as error:
        raise _fail("datasets.search failed", error) from None


def next_batch(reader: Any) -> Any:
    """The reader's next non-empty batch (None: exhausted)."""
    try:
        while True:
            batch = reader.read_next_batch()
            if batch.num_rows:
                return batch
    except StopIteration:
        return None
    except (OSError, ValueError, RuntimeError) as error:
        raise _fail("reading the rows failed", error) from None


def count(dataset: Any, start: SearchStart) -> int:
    try:
        if start.vector is None and start.text is None:
            return int(dataset.count_rows(single_expression(start.where)))
        arguments = _scanner_arguments(dataset, start, counting=True)
        arguments["columns"] = []
        arguments["with_row_id"] = True
        return int(dataset.scanner(**arguments).to_table().num_rows)
    except (OSError, ValueError, RuntimeError, TypeError) as error:
        raise _fail("datasets.count failed", error) from None


def _metrics(value: Any) -> dict[str, Any]:
    names = [name for name in dir(value) if not name.startswith("_") and not callable(getattr(value, name))]
    return {name: getattr(value, name) for name in names if isinstance(getattr(value, name), (int, float, str, bool, type(None)))}


def optimize(dataset: Any, config: OptimizeConfig | None) -> OptimizeOutput:
    config = config or OptimizeConfig()
    result = OptimizeOutput()
    try:
        if config.compact_files is not False:
            options = {
                key: getattr(config, key)
                for key in (
                    "target_rows_per_fragment", "max_rows_per_group", "max_bytes_per_file", "materialize_deletions",
                    "materialize_deletions_threshold", "defer_index_remap", "num_threads", "batch_size",
                    "compaction_mode", "binary_copy_read_batch_bytes",
                )  # fmt: skip
                if getattr(config, key) is not None
            }
            result.compaction = _metrics(dataset.optimize.compact_files(**options))
        if config.optimize_indices is not False:
            options = {key: getattr(config, key) for key in ("num_indices_to_merge", "index_names", "retrain") if getattr(config, key) is not None}
            dataset.optimize.optimize_indices(**options)
            result.optimized_indices = True
        if config.cleanup_old_versions:
            older = config.older_than_seconds if config.older_than_seconds is not None else 604800
            options = {"older_than": timedelta(seconds=older)}
            for key in ("retain_versions", "delete_unverified", "error_if_tagged_old_versions", "delete_rate_limit"):
                if getattr(config, key) is not None:
                    options[key] = getattr(config, key)
            result.cleanup = _metrics(dataset.cleanup_old_versions(**options))
    except (OSError, ValueError, RuntimeError, TypeError) as error:
        raise _fail("datasets.optimize failed", error) from None
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if hasattr(value, "__dict__") or hasattr(value, "__slots__"):
        return {name: _jsonable(getattr(value, name)) for name in dir(value) if not name.startswith("_") and not callable(getattr(value, name))}
    return str(value)


def stats(dataset: Any, max_rows_per_group: int | None) -> StatsOutput:
    try:
        dataset_stats = dataset.stats.dataset_stats(max_rows_per_group) if max_rows_per_group else dataset.stats.dataset_stats()
        data_stats = dataset.stats.data_stats()
    except (OSError, ValueError, RuntimeError, TypeError) as error:
        raise _fail("datasets.stats failed", error) from None
    fields = [{"id": field.id, "bytes_on_disk": field.bytes_on_disk} for field in data_stats.fields]
    return StatsOutput(dataset=_jsonable(dict(dataset_stats)), data={"fields": fields})


def list_versions(dataset: Any) -> list[VersionEntry]:
    entries = []
    for version in dataset.versions():
        moment = version["timestamp"]
        metadata = version.get("metadata") or {}
        entries.append(
            VersionEntry(
                version=int(version["version"]),
                timestamp=iso(moment) if isinstance(moment, datetime) else str(moment),
                metadata_json=json.dumps(_jsonable(metadata)),
            )
        )
    return entries


def restore(dataset: Any, version: int) -> None:
    """Make `dataset` (opened at `version`) the latest version again (a new commit)."""
    try:
        dataset.restore()
    except (OSError, ValueError, RuntimeError) as error:
        raise lance_error(f"version {version} cannot be restored", error) from None


_SCALAR_OPTIONS = (
    "with_position", "base_tokenizer", "language", "max_token_length", "lower_case", "stem",
    "remove_stop_words", "custom_stop_words", "ascii_folding", "memory_limit", "num_workers", "skip_merge",
)  # fmt: skip
_VECTOR_OPTIONS = (
    "metric", "num_partitions", "num_sub_vectors", "accelerator", "index_cache_size", "shuffle_partition_batches",
    "shuffle_partition_concurrency", "ivf_centroids_file", "precomputed_partition_dataset", "filter_nan",
    "train", "fragment_ids", "index_uuid", "target_partition_size", "skip_transpose", "num_bits",
    "index_file_version", "max_level", "m", "ef_construction",
)  # fmt: skip


def create_index(dataset: Any, config: IndexConfig) -> None:
    columns = [config.column] if isinstance(config.column, str) else list(config.column)
    if not columns:
        raise invalid("an index needs a column")
    for column in columns:
        if dataset.schema.get_field_index(column) < 0:
            raise invalid(f"unknown column {column!r}: the table has {', '.join(dataset.schema.names)}")
    try:
        if config.index_type in SCALAR_INDEX_TYPES:
            if len(columns) != 1:
                raise invalid(f"a {config.index_type} index covers one column")
            options = {key: getattr(config, key) for key in _SCALAR_OPTIONS if getattr(config, key) is not None}
            dataset.create_scalar_index(
                columns[0], config.index_type, name=config.name, replace=True if config.replace is None else config.replace, **options
            )
            return
        options = {key: getattr(config, key) for key in _VECTOR_OPTIONS if getattr(config, key) is not None}
        for key in ("ivf_centroids", "pq_codebook"):
            if getattr(config, key) is not None:
                import pyarrow as pa

                vectors = getattr(config, key)
                options[key] = pa.FixedSizeListArray.from_arrays(pa.array([v for row in vectors for v in row], pa.float32()), len(vectors[0]))
        dataset.create_index(
            columns[0] if len(columns) == 1 else columns, config.index_type, name=config.name, replace=bool(config.replace), **options
        )
    except (OSError, ValueError, RuntimeError, TypeError) as error:
        raise _fail("datasets.create_index failed", error) from None


def list_indexes(dataset: Any) -> list[IndexEntry]:
    entries = []
    try:
        descriptions = dataset.describe_indices()
    except (OSError, ValueError, RuntimeError) as error:
        raise _fail("datasets.list_indexes failed", error) from None
    for description in descriptions:
        try:
            statistics = dataset.index_statistics(description.name)
        except (OSError, ValueError, RuntimeError):
            statistics = {}
        details = description.details if isinstance(description.details, dict) else {}
        entries.append(
            IndexEntry(
                name=description.name,
                columns=list(description.field_names),
                type=str(description.index_type),
                details_json=json.dumps(_jsonable(details)),
                statistics_json=json.dumps(_jsonable(statistics)),
                fields=[int(field) for field in description.fields],
                type_url=description.type_url,
                num_rows_indexed=description.num_rows_indexed,
                num_segments=len(getattr(description, "segments", None) or []) or None,
                total_size_bytes=description.total_size_bytes,
            )
        )
    return entries


def drop_index(dataset: Any, name: str) -> None:
    if name not in {description.name for description in dataset.describe_indices()}:
        raise invalid(f"the table has no index named {name!r}")
    try:
        dataset.drop_index(name)
    except (OSError, ValueError, RuntimeError) as error:
        raise _fail("datasets.drop_index failed", error) from None


# --- watch_table ---------------------------------------------------------------------------------


def snapshot_reader(dataset: Any) -> Any:
    """Every row of the table, with `_rowid` (what deltas name rows by)."""
    return dataset.scanner(with_row_id=True, batch_size=BATCH_ROWS).to_reader()


def delta_readers(dataset: Any, begin: int, end: int) -> list[tuple[str, Any]]:
    """What changed from version `begin` to `end`: (`inserted` / `updated` / `deleted`, a
    reader of those rows, `deleted` holding `_rowid` only)."""
    delta = dataset.delta(begin_version=begin, end_version=end)
    readers = [("inserted", delta.get_inserted_rows()), ("updated", delta.get_updated_rows())]
    try:
        readers.append(("deleted", delta.get_deleted_row_ids()))
    except (OSError, ValueError, RuntimeError):
        pass  # a table written before stable row ids: deletions cannot be named
    return readers


def public_columns(batch: Any) -> Any:
    """`batch` without Lance's bookkeeping columns."""
    keep = [name for name in batch.schema.names if name not in _DELTA_INTERNAL]
    return batch if len(keep) == len(batch.schema.names) else batch.select(keep)


def latest_version(dataset: Any) -> int:
    return int(dataset.latest_version)


def now_iso() -> str:
    return iso(datetime.now(timezone.utc))


__all__ = [
    "BATCH_ROWS",
    "add_schema_columns",
    "add_sql_columns",
    "count",
    "create_index",
    "delete",
    "delta_readers",
    "drop_columns",
    "drop_index",
    "inspect",
    "latest_version",
    "list_indexes",
    "list_versions",
    "next_batch",
    "optimize",
    "public_columns",
    "restore",
    "search_reader",
    "single_expression",
    "snapshot_reader",
    "stats",
    "update",
    "vector_column",
]
