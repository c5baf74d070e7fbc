"""`memory` toolkit contract (protocol/room-apis.md §15): graph memories of a room.

Seventeen unary tools, each a `room.invoke_tool` with `json` arguments; every input carries the
memory's `name` and `namespace` (null: the root namespace) except `list`, and the official
clients send every key, nulls included:

| tool | input | answer |
|---|---|---|
| `list` | `ListInput` | `json` `ListOutput` |
| `create` / `drop` | `CreateInput` / `DropInput` | `empty` |
| `inspect` | `InspectInput` | `json` `MemoryDetails` |
| `query` | `QueryInput` (a read-only Cypher statement) | `json` `QueryOutput` (§12.1-encoded rows) |
| `upsert_table` | `UpsertTableInput` (`records_json`: §12.1-encoded rows as JSON text) | `json` `UpsertOutput` |
| `upsert_nodes` | `UpsertNodesInput` (`records_json`: `MemoryEntityRecord`s as JSON text) | `json` `UpsertOutput` |
| `upsert_relationships` | `UpsertRelationshipsInput` (`MemoryRelationshipRecord`s) | `json` `UpsertOutput` |
| `ingest_text` / `_image` / `_file` / `_from_table` / `_from_storage` | `Ingest…Input` | `json` `MemoryIngestResult` |
| `recall` | `RecallInput` | `json` `MemoryRecallResult` |
| `delete_entities` | `DeleteEntitiesInput` | `json` `MemoryDeleteEntitiesResult` |
| `delete_relationships` | `DeleteRelationshipsInput` | `json` `MemoryDeleteRelationshipsResult` |
| `optimize` | `OptimizeInput` | `json` `MemoryOptimizeResult` |

Records of `upsert_nodes` / `upsert_relationships` are plain JSON objects (the official client
sends `model_dump()`), while `upsert_table` rows use the record value wrappers of §12.1. The
answers of the official client are read leniently (extra keys are ignored). The models that
users build or receive carry the official names (`MemoryEntityRecord`, `MemoryRecallItem`, …)
and, for code ported from the official client, pydantic's `model_dump()` / `model_validate()`.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import msgspec

TOOLKIT = "memory"

#: How an ingest turns content into entities and relationships.
MemoryIngestStrategy = Literal["heuristic", "llm"]
#: The relationship type of a record that names none.
DEFAULT_RELATIONSHIP_TYPE = "RELATED_TO"

_M = TypeVar("_M", bound="MemoryModel")


class MemoryModel(msgspec.Struct, kw_only=True):
    """Base of the memory models: keyword-only Structs with pydantic-style helpers."""

    @classmethod
    def model_validate(cls: type[_M], obj: Any) -> _M:
        """`obj` (a dict) as this model, coercing as pydantic's lax mode mostly does; raises
        `msgspec.ValidationError` (a `ValueError`)."""
        if isinstance(obj, cls):
            return obj
        return msgspec.convert(obj, type=cls, strict=False)

    def model_dump(self, *, mode: Literal["json", "python"] = "python") -> dict[str, Any]:
        """Every field (nested models as dicts), as the official model's `model_dump()`."""
        del mode  # every field is a JSON type already
        dumped: dict[str, Any] = msgspec.to_builtins(self)
        return dumped


# --- records -------------------------------------------------------------------------------


class MemoryEntityRecord(MemoryModel, kw_only=True):
    """An entity (a node of the graph). `entity_id` null: the server derives a stable id from
    the name, so the same name names the same entity."""

    entity_id: str | None = None
    name: str
    entity_type: str | None = None
    context: str | None = None
    confidence: float | None = None
    created_at: str | None = None
    valid_at: str | None = None
    metadata: dict[str, str] | None = None


class MemoryRelationshipRecord(MemoryModel, kw_only=True):
    """A relationship (an edge) from one entity to another; its key is (source, target, type)."""

    source_entity_id: str
    target_entity_id: str
    relationship_type: str = DEFAULT_RELATIONSHIP_TYPE
    description: str | None = None
    confidence: float | None = None
    created_at: str | None = None
    valid_at: str | None = None
    expired_at: str | None = None
    invalid_at: str | None = None
    source_entity_name: str | None = None
    target_entity_name: str | None = None
    metadata: dict[str, str] | None = None


class MemoryRelationshipSelector(MemoryModel, kw_only=True):
    """Which relationships `delete_relationships` removes: every type between the two
    entities when `relationship_type` is null."""

    source_entity_id: str
    target_entity_id: str
    relationship_type: str | None = None


# --- inputs --------------------------------------------------------------------------------


class ListInput(msgspec.Struct):
    namespace: list[str] | None = None


class NamedInput(msgspec.Struct, kw_only=True):
    """What every tool but `list` carries."""

    name: str
    namespace: list[str] | None = None


class CreateInput(NamedInput, kw_only=True):
    overwrite: bool = False
    ignore_exists: bool = False


class DropInput(NamedInput, kw_only=True):
    ignore_missing: bool = False


class InspectInput(NamedInput, kw_only=True):
    pass


class QueryInput(NamedInput, kw_only=True):
    statement: str


class UpsertTableInput(NamedInput, kw_only=True):
    table: str
    records_json: str
    merge: bool = True


class UpsertNodesInput(NamedInput, kw_only=True):
    records_json: str
    merge: bool = True


class UpsertRelationshipsInput(NamedInput, kw_only=True):
    records_json: str
    merge: bool = True


class IngestInput(NamedInput, kw_only=True):
    """What every ingest carries: the strategy and, for `llm`, the model and temperature."""

    strategy: MemoryIngestStrategy = "heuristic"
    llm_model: str | None = None
    llm_temperature: float | None = None


class IngestTextInput(IngestInput, kw_only=True):
    text: str


class IngestImageInput(IngestInput, kw_only=True):
    """`data_base64`: the image (kept in room storage); `annotations_json`: a JSON object of
    strings, as text."""

    caption: str | None = None
    data_base64: str | None = None
    mime_type: str | None = None
    source: str | None = None
    annotations_json: str | None = None


class IngestFileInput(IngestInput, kw_only=True):
    """`path`: a room storage path; or `text` given inline (with its `mime_type`)."""

    path: str | None = None
    text: str | None = None
    mime_type: str | None = None


class IngestFromTableInput(IngestInput, kw_only=True):
    """A table of the `dataset` toolkit: `text_columns` (null: every string column) of up to
    `limit` rows."""

    table: str
    table_namespace: list[str] | None = None
    text_columns: list[str] | None = None
    limit: int | None = None


class IngestFromStorageInput(IngestInput, kw_only=True):
    paths: list[str]


class RecallInput(NamedInput, kw_only=True):
    query: str
    limit: int = 5
    include_relationships: bool = True


class DeleteEntitiesInput(NamedInput, kw_only=True):
    entity_ids: list[str]


class DeleteRelationshipsInput(NamedInput, kw_only=True):
    relationships: list[MemoryRelationshipSelector]


class OptimizeInput(NamedInput, kw_only=True):
    compact: bool = True
    cleanup: bool = True


# --- answers -------------------------------------------------------------------------------


class ListOutput(msgspec.Struct):
    memories: list[str] = msgspec.field(default_factory=list)


class MemoryDatasetSummary(MemoryModel, kw_only=True):
    """One dataset of a memory: `entity`, `relationship` or a table of `upsert_table`."""

    name: str
    rows: int
    columns: list[str] = msgspec.field(default_factory=list)


class MemoryDetails(MemoryModel, kw_only=True):
    """`inspect`: the memory's datasets (none for an empty memory). `path` is where the memory
    lives on the server, relative to the room (not a file system path)."""

    name: str
    namespace: list[str] | None = None
    path: str
    datasets: list[MemoryDatasetSummary] = msgspec.field(default_factory=list)


class QueryOutput(msgspec.Struct):
    """`query`: one object per result row, values in the §12.1 wire form."""

    results: list[dict[str, Any]]


class UpsertOutput(msgspec.Struct):
    """What an upsert wrote (the official client does not read it)."""

    name: str
    rows_written: int


class MemoryIngestStats(MemoryModel, kw_only=True):
    entities: int = 0
    relationships: int = 0
    sources: int = 0


class MemoryIngestResult(MemoryModel, kw_only=True):
    """An ingest's result: the entities it touched, the source's own entity first."""

    name: str
    stats: MemoryIngestStats
    entity_ids: list[str] = msgspec.field(default_factory=list)


class MemoryRecallRelationship(MemoryModel, kw_only=True):
    source_entity_id: str
    target_entity_id: str
    relationship_type: str
    description: str | None = None
    created_at: str | None = None
    valid_at: str | None = None
    expired_at: str | None = None
    invalid_at: str | None = None


class MemoryRecallItem(MemoryModel, kw_only=True):
    """An entity that matched a `recall`, its BM25 `score`, and its relationships."""

    entity_id: str
    name: str
    entity_type: str
    context: str | None = None
    confidence: float | None = None
    created_at: str | None = None
    valid_at: str | None = None
    score: float
    relationships: list[MemoryRecallRelationship] = msgspec.field(default_factory=list)


class MemoryRecallResult(MemoryModel, kw_only=True):
    name: str
    query: str
    items: list[MemoryRecallItem] = msgspec.field(default_factory=list)


class MemoryDeleteEntitiesResult(MemoryModel, kw_only=True):
    name: str
    deleted_entities: int = 0
    deleted_relationships: int = 0


class MemoryDeleteRelationshipsResult(MemoryModel, kw_only=True):
    name: str
    deleted_relationships: int = 0


class MemoryOptimizeDatasetStats(MemoryModel, kw_only=True):
    dataset: str
    fragments_added: int = 0
    fragments_removed: int = 0
    files_added: int = 0
    files_removed: int = 0
    old_versions_removed: int = 0
    bytes_removed: int = 0


class MemoryOptimizeResult(MemoryModel, kw_only=True):
    name: str
    datasets: list[MemoryOptimizeDatasetStats] = msgspec.field(default_factory=list)


__all__ = [
    "DEFAULT_RELATIONSHIP_TYPE",
    "TOOLKIT",
    "CreateInput",
    "DeleteEntitiesInput",
    "DeleteRelationshipsInput",
    "DropInput",
    "IngestFileInput",
    "IngestFromStorageInput",
    "IngestFromTableInput",
    "IngestImageInput",
    "IngestInput",
    "IngestTextInput",
    "InspectInput",
    "ListInput",
    "ListOutput",
    "MemoryDatasetSummary",
    "MemoryDeleteEntitiesResult",
    "MemoryDeleteRelationshipsResult",
    "MemoryDetails",
    "MemoryEntityRecord",
    "MemoryIngestResult",
    "MemoryIngestStats",
    "MemoryIngestStrategy",
    "MemoryModel",
    "MemoryOptimizeDatasetStats",
    "MemoryOptimizeResult",
    "MemoryRecallItem",
    "MemoryRecallRelationship",
    "MemoryRecallResult",
    "MemoryRelationshipRecord",
    "MemoryRelationshipSelector",
    "NamedInput",
    "OptimizeInput",
    "QueryInput",
    "QueryOutput",
    "RecallInput",
    "UpsertNodesInput",
    "UpsertOutput",
    "UpsertRelationshipsInput",
    "UpsertTableInput",
]
