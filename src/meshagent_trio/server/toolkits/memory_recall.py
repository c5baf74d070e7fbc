"""`recall`: the entities that best match a text, ranked by Lance's full-text index (BM25) over
`name` and `context` (protocol/room-apis.md §15.5).

Each of the two columns has an inverted index (Lance's default tokenizer: lower case, English
stemming, stop words removed, ASCII folding). `ensure_text_index` creates them after the first
entity write, and folds rows written since into them once more than `REFRESH_ROWS` are
unindexed — rows not yet indexed are searched too (Lance scans them), so a recall right after a
write finds what was written. A query is a BM25 multi-match over both columns; `score` is
Lance's BM25 score (higher is better), items come best first, ties in the order Lance gives.

With `include_relationships`, each item carries the relationships from or to it (at most
`MAX_RELATIONSHIPS_PER_ITEM`, oldest first). `limit` is 1 to `MAX_LIMIT` (1002 outside). An
empty memory, or a query with no searchable word, recalls nothing.
"""

from __future__ import annotations

from typing import Any

from meshagent_core.toolkits.memory import MemoryRecallItem, MemoryRecallRelationship, MemoryRecallResult

from .memory_store import ENTITY, RELATIONSHIP, MemoryRef, MemoryStore, invalid
from .memory_tables import DEFAULT_ENTITY_TYPE, quote

TEXT_COLUMNS = ("name", "context")
REFRESH_ROWS = 1000
MAX_LIMIT = 100
MAX_RELATIONSHIPS_PER_ITEM = 50
MAX_QUERY = 4096


def _index_names(dataset: Any) -> dict[str, str]:
    """Column → name of its inverted index."""
    found = {}
    for index in dataset.describe_indices():
        if "inverted" in str(index.type_url).lower() and len(index.field_names) == 1:
            found[index.field_names[0]] = index.name
    return found


def ensure_text_index(store: MemoryStore, ref: MemoryRef) -> None:
    """Create the inverted indexes of the entity dataset, or fold unindexed rows into them
    (blocking; under the memory's lock)."""
    dataset = store.open(ref, ENTITY)
    if dataset is None:
        return
    indexes = _index_names(dataset)
    for column in TEXT_COLUMNS:
        if column not in indexes:
            dataset.create_scalar_index(column, "INVERTED", name=f"{column}_fts")
            dataset = store.open(ref, ENTITY)
    indexes = _index_names(dataset)
    unindexed = max(int(dataset.stats.index_stats(name).get("num_unindexed_rows", 0)) for name in indexes.values())
    if unindexed > REFRESH_ROWS:
        dataset.optimize.optimize_indices(index_names=list(indexes.values()))


def recall(store: MemoryStore, ref: MemoryRef, query: str, limit: int, include_relationships: bool) -> MemoryRecallResult:
    """`recall` (blocking; under the memory's lock)."""
    from lance.query import MultiMatchQuery

    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"limit must be between 1 and {MAX_LIMIT}")
    if len(query) > MAX_QUERY:
        raise invalid(f"the query is longer than {MAX_QUERY} characters")
    store.require(ref)
    result = MemoryRecallResult(name=ref.name, query=query)
    if not query.strip() or store.open(ref, ENTITY) is None:
        return result
    ensure_text_index(store, ref)
    dataset = store.open(ref, ENTITY)
    try:
        found = dataset.to_table(full_text_query=MultiMatchQuery(query, list(TEXT_COLUMNS)), limit=limit).to_pylist()
    except ValueError as error:  # a query Lance cannot tokenise into any term
        if "no terms" in str(error).lower() or "empty" in str(error).lower():
            return result
        raise invalid(f"cannot search for {query!r}: {error}") from None
    relationships = _relationships(store, ref, [row["entity_id"] for row in found]) if include_relationships and found else {}
    for row in found:
        result.items.append(
            MemoryRecallItem(
                entity_id=row["entity_id"],
                name=row["name"],
                entity_type=row.get("entity_type") or DEFAULT_ENTITY_TYPE,
                context=row.get("context"),
                confidence=row.get("confidence"),
                created_at=row.get("created_at"),
                valid_at=row.get("valid_at"),
                score=float(row["_score"]),
                relationships=relationships.get(row["entity_id"], []),
            )
        )
    return result


def _relationships(store: MemoryStore, ref: MemoryRef, entity_ids: list[str]) -> dict[str, list[MemoryRecallRelationship]]:
    dataset = store.open(ref, RELATIONSHIP)
    found: dict[str, list[MemoryRecallRelationship]] = {entity_id: [] for entity_id in entity_ids}
    if dataset is None:
        return found
    listed = ", ".join(quote(entity_id) for entity_id in entity_ids)
    columns = ["source_entity_id", "target_entity_id", "relationship_type", "description", "created_at", "valid_at", "expired_at", "invalid_at"]
    rows = dataset.to_table(columns=columns, filter=f"source_entity_id IN ({listed}) OR target_entity_id IN ({listed})").to_pylist()
    rows.sort(key=lambda row: (row.get("created_at") or "", row["source_entity_id"], row["target_entity_id"], row["relationship_type"]))
    for row in rows:
        relationship = MemoryRecallRelationship(**row)
        for entity_id in {row["source_entity_id"], row["target_entity_id"]}:
            items = found.get(entity_id)
            if items is not None and len(items) < MAX_RELATIONSHIPS_PER_ITEM:
                items.append(relationship)
    return found


__all__ = ["MAX_LIMIT", "ensure_text_index", "recall"]
