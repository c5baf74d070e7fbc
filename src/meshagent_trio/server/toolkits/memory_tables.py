"""Writing a memory's datasets: the upserts, the deletes and `optimize` (protocol/room-apis.md §15.2).

Everything here blocks (Lance, Arrow): called in worker threads, under the memory's lock.

**Entities** are keyed by `entity_id`; a record without one gets the id of its name
(`entity_id_for`: a UUID 5 of the normalised name, so the same name is the same entity whoever
writes it). **Relationships** are keyed by (`source_entity_id`, `target_entity_id`,
`relationship_type`); a null or empty type is `RELATED_TO`. Types are graph labels: letters,
digits and `_`, starting with a letter or `_`, and not the name of a table of the memory.

`merge` (both): a record whose key exists updates that row field by field — a null field keeps
the stored value, and `metadata` maps are merged (the record's keys win). `merge: false`
replaces the stored row with the record as sent. New keys are inserted either way. Within one
call the last record of a key wins. `created_at` is the time of the first write when no record
gave one (it is kept across updates), and `entity_type` is `ENTITY` when never given (recall
answers need a type). A relationship whose endpoint entity does not exist yet is kept; when the
record names that endpoint (`source_entity_name` / `target_entity_name`) the entity is created
with that name, otherwise the edge joins the graph once the entity exists.

**Tables** (`upsert_table`): rows in the §12.1 wire form (the official client's encoding; the
TypeScript client's bare arrays, plain objects and `{"encoding": "base64", "data"}` bytes are
read too). `merge: true` appends the rows (columns the table lacks are added, missing ones are
null; a column whose type changes is refused with 1002); `merge: false` replaces the table's
rows. Tables are plain data: they join the graph as nodes labelled with the table's name.

Limits: `records_json` of at most `MAX_RECORDS_JSON` bytes and `MAX_RECORDS` records.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import msgspec

from meshagent_core.jsondepth import BoundedDecoder
from meshagent_core.toolkits.memory import (
    DEFAULT_RELATIONSHIP_TYPE,
    MemoryDeleteEntitiesResult,
    MemoryDeleteRelationshipsResult,
    MemoryEntityRecord,
    MemoryOptimizeDatasetStats,
    MemoryOptimizeResult,
    MemoryRelationshipRecord,
    MemoryRelationshipSelector,
)
from meshagent_core.toolkits.records import DatasetExpression, DatasetJson, DatasetStruct, decode_record_value

from .memory_extract import entity_id_for
from .memory_store import (
    ENTITY,
    RELATIONSHIP,
    RELATIONSHIP_KEY,
    SOURCES,
    MemoryRef,
    MemoryStore,
    check_table_name,
    entity_schema,
    invalid,
    lance_error,
    now_iso,
    relationship_schema,
)

MAX_RECORDS_JSON = 32 * 1024 * 1024
MAX_RECORDS = 50_000
MAX_LABEL = 64
DEFAULT_ENTITY_TYPE = "ENTITY"
#: Ids per Lance filter when looking rows up.
_FILTER_CHUNK = 500
_WRAPPERS = frozenset({"binary", "uuid", "expression", "date", "timestamp", "list", "struct", "json"})
_decode_json = BoundedDecoder().decode


# --- reading records_json ------------------------------------------------------------------------


def parse_records_json(records_json: str) -> list[Any]:
    """The JSON array of `records_json`; 1002 for anything else."""
    if len(records_json) > MAX_RECORDS_JSON:
        raise invalid(f"records_json is larger than {MAX_RECORDS_JSON} bytes")
    try:
        records = _decode_json(records_json)
    except (msgspec.DecodeError, ValueError) as error:
        raise invalid(f"records_json is not valid JSON: {error}") from None
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise invalid("records_json must be a JSON array of objects")
    if len(records) > MAX_RECORDS:
        raise invalid(f"at most {MAX_RECORDS} records per call")
    return records


def entity_records(records_json: str) -> list[MemoryEntityRecord]:
    try:
        return msgspec.convert(parse_records_json(records_json), list[MemoryEntityRecord], strict=False)
    except msgspec.ValidationError as error:
        raise invalid(f"invalid entity record: {error}") from None


def relationship_records(records_json: str) -> list[MemoryRelationshipRecord]:
    try:
        return msgspec.convert(parse_records_json(records_json), list[MemoryRelationshipRecord], strict=False)
    except msgspec.ValidationError as error:
        raise invalid(f"invalid relationship record: {error}") from None


def table_rows(records_json: str) -> list[dict[str, Any]]:
    """The rows of `upsert_table` as Python values (see the module docstring)."""
    rows = []
    for index, record in enumerate(parse_records_json(records_json)):
        try:
            rows.append({str(key): _decode_value(value) for key, value in record.items()})
        except (ValueError, TypeError) as error:
            raise invalid(f"invalid value in record {index}: {error}") from None
    return rows


def _decode_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode_value(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in _WRAPPERS:
            return decode_record_value(value)
        if set(value) == {"encoding", "data"} and value["encoding"] == "base64":
            return decode_record_value({"binary": value["data"]})
        return DatasetStruct({str(key): _decode_value(item) for key, item in value.items()})
    return value


# --- small helpers -------------------------------------------------------------------------------


def check_label(value: str, what: str) -> str:
    """A relationship type: a graph label (letters, digits, `_`)."""
    if not value or len(value) > MAX_LABEL or not (value[0].isascii() and (value[0].isalpha() or value[0] == "_")) or not all(
        character.isascii() and (character.isalnum() or character == "_") for character in value
    ):
        raise invalid(f"invalid {what} {value!r}: use up to {MAX_LABEL} letters, digits and '_', starting with a letter or '_'")
    return value


def quote(value: str) -> str:
    """A string literal for a Lance filter."""
    return "'" + value.replace("'", "''") + "'"


def _in_filter(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(quote(value) for value in values)})"


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _FILTER_CHUNK):
        yield values[start : start + _FILTER_CHUNK]


def _rows_where(dataset: Any, column: str, values: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(values):
        rows.extend(dataset.to_table(filter=_in_filter(column, chunk)).to_pylist())
    return rows


def _metadata(value: Any) -> dict[str, str] | None:
    """A map column's value (Arrow gives a list of pairs) as a dict."""
    if value is None:
        return None
    return dict(value) if not isinstance(value, dict) else value


def relationship_types(store: MemoryStore, ref: MemoryRef) -> set[str]:
    """The relationship types of the memory, upper-cased (labels are case-insensitive)."""
    dataset = store.open(ref, RELATIONSHIP)
    if dataset is None:
        return set()
    column = dataset.to_table(columns=["relationship_type"]).column("relationship_type")
    return {str(value).upper() for value in column.unique().to_pylist() if value is not None}


def _merge(stored: dict[str, Any] | None, record: dict[str, Any], merge: bool) -> dict[str, Any]:
    if stored is None:
        return record
    stored = {**stored, "metadata": _metadata(stored.get("metadata"))}
    if not merge:
        return {**record, "created_at": record.get("created_at") or stored.get("created_at")}
    merged = {key: (value if value is not None else stored.get(key)) for key, value in record.items()}
    if stored.get("metadata") or record.get("metadata"):
        merged["metadata"] = {**(stored.get("metadata") or {}), **(record.get("metadata") or {})}
    return merged


def _upsert(store: MemoryStore, ref: MemoryRef, table: str, schema: Any, key: list[str], rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa

    data = pa.Table.from_pylist(rows, schema=schema)
    dataset = store.open(ref, table)
    try:
        if dataset is None:
            store.write(ref, table, data, "create")
        else:
            dataset.merge_insert(key).when_matched_update_all().when_not_matched_insert_all().execute(data)
    except (OSError, ValueError, pa.ArrowException) as error:
        raise lance_error(f"cannot write the {table} dataset", error) from None


# --- entities ------------------------------------------------------------------------------------


def upsert_entities(store: MemoryStore, ref: MemoryRef, records: list[MemoryEntityRecord], merge: bool) -> list[str]:
    """Write entities (see the module docstring); their ids, in the order given."""
    rows: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for record in records:
        name = record.name.strip()
        if not name:
            raise invalid("an entity's name must not be empty")
        entity_id = record.entity_id if record.entity_id else entity_id_for(name)
        if record.confidence is not None and not math.isfinite(record.confidence):
            raise invalid(f"entity {name!r}: confidence must be a finite number")
        row = msgspec.to_builtins(record)
        row.update(entity_id=entity_id, name=name)
        if entity_id not in rows:
            order.append(entity_id)
        rows[entity_id] = row
    if not rows:
        return []
    dataset = store.open(ref, ENTITY)
    stored = {row["entity_id"]: row for row in _rows_where(dataset, "entity_id", list(rows))} if dataset is not None else {}
    now = now_iso()
    merged = []
    for entity_id in order:
        row = _merge(stored.get(entity_id), rows[entity_id], merge)
        row["created_at"] = row.get("created_at") or now
        row["entity_type"] = row.get("entity_type") or DEFAULT_ENTITY_TYPE
        merged.append(row)
    _upsert(store, ref, ENTITY, entity_schema(), ["entity_id"], merged)
    return order


def existing_entity_ids(store: MemoryStore, ref: MemoryRef, ids: list[str]) -> set[str]:
    dataset = store.open(ref, ENTITY)
    if dataset is None or not ids:
        return set()
    found: set[str] = set()
    for chunk in _chunks(ids):
        found.update(dataset.to_table(columns=["entity_id"], filter=_in_filter("entity_id", chunk)).column("entity_id").to_pylist())
    return found


def read_entities(store: MemoryStore, ref: MemoryRef, ids: list[str]) -> dict[str, dict[str, Any]]:
    dataset = store.open(ref, ENTITY)
    if dataset is None or not ids:
        return {}
    return {row["entity_id"]: {**row, "metadata": _metadata(row.get("metadata"))} for row in _rows_where(dataset, "entity_id", ids)}


# --- relationships -------------------------------------------------------------------------------


def upsert_relationships(store: MemoryStore, ref: MemoryRef, records: list[MemoryRelationshipRecord], merge: bool, only_new: bool = False) -> int:
    """Write relationships (see the module docstring); how many distinct keys were written.
    `only_new` leaves stored relationships as they are (what an ingest does)."""
    tables = {table.upper() for table in (ENTITY, RELATIONSHIP, *store.user_tables(ref))}
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        if not record.source_entity_id or not record.target_entity_id:
            raise invalid("a relationship needs a source_entity_id and a target_entity_id")
        kind = check_label((record.relationship_type or DEFAULT_RELATIONSHIP_TYPE).strip() or DEFAULT_RELATIONSHIP_TYPE, "relationship_type")
        if kind.upper() in tables:
            raise invalid(f"relationship_type {kind!r} is the name of a dataset of the memory: a graph label names one thing")
        if record.confidence is not None and not math.isfinite(record.confidence):
            raise invalid("a relationship's confidence must be a finite number")
        row = msgspec.to_builtins(record)
        row["relationship_type"] = kind
        rows[(record.source_entity_id, record.target_entity_id, kind)] = row
    if not rows:
        return 0
    dataset = store.open(ref, RELATIONSHIP)
    stored: dict[tuple[str, str, str], dict[str, Any]] = {}
    if dataset is not None:
        for row in _rows_where(dataset, "source_entity_id", sorted({key[0] for key in rows})):
            key = (row["source_entity_id"], row["target_entity_id"], row["relationship_type"])
            if key in rows:
                stored[key] = row
    if only_new:
        rows = {key: row for key, row in rows.items() if key not in stored}
        if not rows:
            return 0
    now = now_iso()
    merged = []
    for key, row in rows.items():
        row = _merge(stored.get(key), row, merge)
        row["created_at"] = row.get("created_at") or now
        merged.append(row)
    _create_named_endpoints(store, ref, merged)
    _upsert(store, ref, RELATIONSHIP, relationship_schema(), RELATIONSHIP_KEY, merged)
    return len(merged)


def _create_named_endpoints(store: MemoryStore, ref: MemoryRef, rows: list[dict[str, Any]]) -> None:
    named: dict[str, str] = {}
    for row in rows:
        for side in ("source", "target"):
            name = row.get(f"{side}_entity_name")
            if isinstance(name, str) and name.strip():
                named.setdefault(row[f"{side}_entity_id"], name.strip())
    existing = existing_entity_ids(store, ref, list(named))
    missing = [entity_id for entity_id in named if entity_id not in existing]
    if missing:
        upsert_entities(store, ref, [MemoryEntityRecord(entity_id=entity_id, name=named[entity_id]) for entity_id in missing], merge=True)


# --- deletes -------------------------------------------------------------------------------------


def _delete(dataset: Any, predicate: str) -> int:
    count = int(dataset.count_rows(filter=predicate))
    if count:
        dataset.delete(predicate)
    return count


def delete_entities(store: MemoryStore, ref: MemoryRef, entity_ids: list[str]) -> MemoryDeleteEntitiesResult:
    """Delete entities and every relationship from or to them."""
    ids = sorted(set(entity_ids))
    deleted_entities = deleted_relationships = 0
    entities, relationships = store.open(ref, ENTITY), store.open(ref, RELATIONSHIP)
    for chunk in _chunks(ids):
        if entities is not None:
            deleted_entities += _delete(entities, _in_filter("entity_id", chunk))
        if relationships is not None:
            deleted_relationships += _delete(relationships, f"{_in_filter('source_entity_id', chunk)} OR {_in_filter('target_entity_id', chunk)}")
    return MemoryDeleteEntitiesResult(name=ref.name, deleted_entities=deleted_entities, deleted_relationships=deleted_relationships)


def delete_relationships(store: MemoryStore, ref: MemoryRef, selectors: list[MemoryRelationshipSelector]) -> MemoryDeleteRelationshipsResult:
    """Delete the selected relationships (every type between the two entities when the selector
    names none)."""
    dataset = store.open(ref, RELATIONSHIP)
    deleted = 0
    if dataset is not None:
        for start in range(0, len(selectors), 100):
            clauses = []
            for selector in selectors[start : start + 100]:
                clause = f"(source_entity_id = {quote(selector.source_entity_id)} AND target_entity_id = {quote(selector.target_entity_id)}"
                if selector.relationship_type:
                    clause += f" AND relationship_type = {quote(selector.relationship_type)}"
                clauses.append(clause + ")")
            if clauses:
                deleted += _delete(dataset, " OR ".join(clauses))
    return MemoryDeleteRelationshipsResult(name=ref.name, deleted_relationships=deleted)


# --- tables --------------------------------------------------------------------------------------


def _arrow_value(value: Any) -> Any:
    if isinstance(value, DatasetStruct):
        return {key: _arrow_value(item) for key, item in value.fields.items()}
    if isinstance(value, DatasetJson):
        return msgspec.json.encode(value.value).decode()
    if isinstance(value, DatasetExpression):
        raise ValueError(f"expressions ({value.expression!r}) are not evaluated in memory tables: send the value")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if isinstance(value, list):
        return [_arrow_value(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    return value


def rows_to_arrow(rows: list[dict[str, Any]]) -> Any:
    """Rows as an Arrow table whose types are inferred (null-only columns become strings)."""
    import pyarrow as pa

    try:
        converted = [{key: _arrow_value(value) for key, value in row.items()} for row in rows]
        table = pa.Table.from_pylist(converted)
    except ValueError as error:
        raise invalid(str(error)) from None
    except pa.ArrowException as error:
        raise invalid(f"the rows do not form a table: {error}") from None
    for index, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(index, pa.field(field.name, pa.string()), pa.nulls(len(table), pa.string()))
    return table


def upsert_table(store: MemoryStore, ref: MemoryRef, table: str, rows: list[dict[str, Any]], merge: bool) -> int:
    """Append (`merge`) or replace the rows of a table of the memory."""
    import pyarrow as pa

    check_table_name(table)
    if table.upper() in relationship_types(store, ref):
        raise invalid(f"table name {table!r} is a relationship type of the memory: a graph label names one thing")
    if not rows:
        return 0
    data = rows_to_arrow(rows)
    dataset = store.open(ref, table)
    try:
        if dataset is None or not merge:
            store.write(ref, table, data, "overwrite")
            return len(rows)
        schema = dataset.schema
        if set(data.schema.names) <= set(schema.names):
            store.write(ref, table, _conform(data, schema), "append")
        else:
            combined = pa.concat_tables([dataset.to_table(), data], promote_options="permissive")
            store.write(ref, table, combined, "overwrite")
    except (OSError, ValueError, pa.ArrowException) as error:
        raise lance_error(f"cannot write table {table!r}", error) from None
    return len(rows)


def _conform(data: Any, schema: Any) -> Any:
    import pyarrow as pa

    columns = []
    for field in schema:
        if field.name in data.schema.names:
            columns.append(data.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(len(data), field.type))
    return pa.Table.from_arrays(columns, schema=schema)


# --- optimize ------------------------------------------------------------------------------------


def optimize(store: MemoryStore, ref: MemoryRef, compact: bool, cleanup: bool) -> MemoryOptimizeResult:
    """Compact each dataset's files and fold new rows into its indexes (`compact`), then remove
    the versions no one reads any more (`cleanup`: every version but the latest; the memory's
    lock keeps readers out meanwhile)."""
    results = []
    for table in [*store.datasets(ref), SOURCES]:
        dataset = store.open(ref, table)
        if dataset is None:
            continue
        stats = MemoryOptimizeDatasetStats(dataset=table)
        if compact:
            metrics = dataset.optimize.compact_files()
            stats.fragments_added, stats.fragments_removed = metrics.fragments_added, metrics.fragments_removed
            stats.files_added, stats.files_removed = metrics.files_added, metrics.files_removed
            if dataset.describe_indices():
                dataset.optimize.optimize_indices()
        if cleanup:
            cleaned = dataset.cleanup_old_versions(older_than=timedelta(0))
            stats.old_versions_removed, stats.bytes_removed = cleaned.old_versions, cleaned.bytes_removed
        if table != SOURCES:
            results.append(stats)
    return MemoryOptimizeResult(name=ref.name, datasets=results)


__all__ = [
    "DEFAULT_ENTITY_TYPE",
    "MAX_RECORDS",
    "MAX_RECORDS_JSON",
    "check_label",
    "delete_entities",
    "delete_relationships",
    "entity_records",
    "existing_entity_ids",
    "optimize",
    "parse_records_json",
    "quote",
    "read_entities",
    "relationship_records",
    "relationship_types",
    "rows_to_arrow",
    "table_rows",
    "upsert_entities",
    "upsert_relationships",
    "upsert_table",
]
