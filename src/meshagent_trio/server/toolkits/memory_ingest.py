"""Ingesting sources into a memory (protocol/room-apis.md §15.4): what a source is, how its
extraction is written, and why ingesting a source twice changes nothing.

**Sources.** Every ingest names its sources: `ingest_text` one (`text:<sha256 of the text>`),
`ingest_file` one (`storage:<path>`, or `text:<sha256>` for inline text),
`ingest_from_storage` one per path, `ingest_image` one (`image:<sha256 of the bytes>`, or of
the caption and annotations when there are no bytes), `ingest_from_table` one per row
(`table:<namespace/table>:<sha256 of the row's text>`). A source is written as:

* its own entity (id `source_entity_id(source_id)`), typed `MEMORY` (a text), `DOCUMENT` (a
  file), `IMAGE` or `RECORD` (a table row), named after its first line (a file: its path),
  with the text (at most `MAX_SOURCE_CONTEXT` characters) as context and the source's id,
  kind and location in its metadata — the first of the ingest result's `entity_ids`;
* the entities and relationships the strategy found (see `memory_extract` and `memory_llm`);
* a `MENTIONS` relationship from the source's entity to each entity found.

An entity that already exists keeps its type (unless it is the default `ENTITY`), confidence and
metadata; the new source's context is appended to its context when not already in it (at most
`MAX_ENTITY_CONTEXT` characters). Relationships that exist are left as they are.

**Idempotence.** `_sources.lance` records each source's id, content hash, entity ids and counts.
A source whose id and hash are recorded is not written again: the ingest answers what the first
one wrote, and no dataset gets a new version. A source whose content changed (a file edited
since) is written again; what the old content contributed stays. The new sources of one call
are written together, one commit per dataset, the sources registry last: a crash between them
leaves entities without their relationships, and ingesting the source again completes it.

The result's `stats` count the distinct entities (source entities included) and relationships
of all the sources and the number of sources; `entity_ids` lists the entities, each once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from meshagent_core.toolkits.memory import MemoryEntityRecord, MemoryIngestResult, MemoryIngestStats, MemoryRelationshipRecord

from .memory_extract import Extraction, entity_id_for, source_entity_id
from .memory_recall import ensure_text_index
from .memory_store import SOURCES, MemoryRef, MemoryStore, lance_error, now_iso, sources_schema
from .memory_tables import DEFAULT_ENTITY_TYPE, quote, read_entities, upsert_entities, upsert_relationships

MAX_SOURCE_CONTEXT = 4000
MAX_ENTITY_CONTEXT = 4000
MAX_TITLE = 80
MENTIONS = "MENTIONS"


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def title_of(text: str, fallback: str) -> str:
    """The first non-empty line, cut at a word to at most `MAX_TITLE` characters."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            if len(line) <= MAX_TITLE:
                return line
            cut = line[: MAX_TITLE - 1].rsplit(" ", 1)[0]
            return (cut or line[: MAX_TITLE - 1]) + "…"
    return fallback


@dataclass
class Source:
    """One thing to ingest and the text the strategy reads."""

    source_id: str
    kind: str
    content_hash: str
    title: str
    entity_type: str
    text: str
    location: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    #: Entities the source states outright (an image's annotations).
    given: list[MemoryEntityRecord] = field(default_factory=list)
    #: A file to keep in room storage once the source is read: (path, bytes, mime type).
    attachment: tuple[str, bytes, str] | None = None


@dataclass
class Outcome:
    entity_ids: list[str]
    relationships: int


def text_source(text: str) -> Source:
    digest = sha256(text)
    return Source(source_id=f"text:{digest}", kind="text", content_hash=digest, title=title_of(text, "text"), entity_type="MEMORY", text=text)


def file_source(path: str, data: bytes, text: str) -> Source:
    return Source(
        source_id=f"storage:{path}", kind="file", content_hash=sha256(data), title=path, entity_type="DOCUMENT", text=text, location=path
    )


def image_source(caption: str | None, data: bytes | None, annotations: dict[str, str], source: str | None, stored_at: str | None) -> Source:
    lines = [caption.strip()] if caption and caption.strip() else []
    lines += [f"{key}: {value}" for key, value in annotations.items()]
    text = "\n".join(lines)
    digest = sha256(data) if data is not None else sha256(text)
    metadata = {**({"source": source} if source else {}), **({"path": stored_at} if stored_at else {})}
    given = [
        MemoryEntityRecord(name=value.strip(), entity_type=key.strip().upper() or None, context=caption)
        for key, value in annotations.items()
        if value.strip()
    ]
    return Source(
        source_id=f"image:{digest}",
        kind="image",
        content_hash=digest,
        title=title_of(caption or "", source or f"image {digest[:12]}"),
        entity_type="IMAGE",
        text=text,
        location=stored_at,
        metadata=metadata,
        given=given,
    )


def row_source(table: str, text: str) -> Source:
    digest = sha256(text)
    return Source(source_id=f"table:{table}:{digest[:32]}", kind="table", content_hash=digest, title=title_of(text, table), entity_type="RECORD", text=text, location=table)


# --- the sources registry ----------------------------------------------------------------------


def recorded(store: MemoryStore, ref: MemoryRef, sources: list[Source]) -> dict[str, dict[str, Any]]:
    """The recorded sources among `sources` whose content did not change, by source id."""
    dataset = store.open(ref, SOURCES)
    if dataset is None or not sources:
        return {}
    wanted = {source.source_id: source.content_hash for source in sources}
    found: dict[str, dict[str, Any]] = {}
    ids = sorted(wanted)
    for start in range(0, len(ids), 500):
        listed = ", ".join(quote(source_id) for source_id in ids[start : start + 500])
        for row in dataset.to_table(filter=f"source_id IN ({listed})").to_pylist():
            if wanted.get(row["source_id"]) == row["content_hash"]:
                found[row["source_id"]] = row
    return found


def _record(store: MemoryStore, ref: MemoryRef, written: list[tuple[Source, Outcome]]) -> None:
    import pyarrow as pa

    now = now_iso()
    rows = [
        {
            "source_id": source.source_id,
            "kind": source.kind,
            "location": source.location,
            "content_hash": source.content_hash,
            "entity_ids": outcome.entity_ids,
            "entities": len(outcome.entity_ids),
            "relationships": outcome.relationships,
            "ingested_at": now,
        }
        for source, outcome in written
    ]
    data = pa.Table.from_pylist(rows, schema=sources_schema())
    dataset = store.open(ref, SOURCES)
    try:
        if dataset is None:
            store.write(ref, SOURCES, data, "create")
        else:
            dataset.merge_insert("source_id").when_matched_update_all().when_not_matched_insert_all().execute(data)
    except (OSError, ValueError) as error:
        raise lance_error("cannot record the ingested sources", error) from None


# --- writing -----------------------------------------------------------------------------------


def _merged_context(stored: str | None, new: str | None) -> str | None:
    """The context to write for an existing entity (None keeps the stored one)."""
    if not new or (stored and new in stored):
        return None
    return (f"{stored}\n{new}" if stored else new)[:MAX_ENTITY_CONTEXT]


def _own_entity(source: Source) -> MemoryEntityRecord:
    location = {"location": source.location} if source.location else {}
    return MemoryEntityRecord(
        entity_id=source_entity_id(source.source_id),
        name=source.title,
        entity_type=source.entity_type,
        context=source.text[:MAX_SOURCE_CONTEXT] or None,
        confidence=1.0,
        metadata={"source_id": source.source_id, "kind": source.kind, **location, **source.metadata},
    )


def write_sources(store: MemoryStore, ref: MemoryRef, items: list[tuple[Source, Extraction]]) -> list[Outcome]:
    """Write sources and what was found in them, in one write per dataset (blocking; under the
    memory's lock). The same as writing them one after the other: contexts accumulate in order,
    the first source to name a relationship writes it."""
    known = recorded(store, ref, [source for source, _ in items])
    outcomes: dict[str, Outcome] = {
        source_id: Outcome(entity_ids=list(row["entity_ids"] or []), relationships=int(row["relationships"] or 0)) for source_id, row in known.items()
    }
    fresh: list[tuple[Source, Extraction]] = []
    for source, extraction in items:
        if source.source_id not in outcomes and all(source.source_id != other.source_id for other, _ in fresh):
            fresh.append((source, extraction))
    found_ids = {record.entity_id or entity_id_for(record.name) for source, extraction in fresh for record in [*source.given, *extraction.entities]}
    stored = read_entities(store, ref, sorted(found_ids))
    entities: dict[str, MemoryEntityRecord] = {}  # what will be written, by id, in order
    relationships: dict[tuple[str, str, str], MemoryRelationshipRecord] = {}
    written: list[tuple[Source, Outcome]] = []
    for source, extraction in fresh:
        own = _own_entity(source)
        entities[own.entity_id or ""] = own
        found: dict[str, str] = {}  # id -> name, in order
        keys: set[tuple[str, str, str]] = set()
        for record in [*source.given, *extraction.entities]:
            entity_id = record.entity_id or entity_id_for(record.name)
            if entity_id == own.entity_id or entity_id in found:
                continue
            pending, existing = entities.get(entity_id), stored.get(entity_id)
            if pending is None and existing is None:
                entities[entity_id] = MemoryEntityRecord(
                    entity_id=entity_id, name=record.name, entity_type=record.entity_type, context=record.context, confidence=record.confidence
                )
            else:
                base = pending if pending is not None else MemoryEntityRecord(**{key: existing.get(key) for key in ("entity_id", "name", "entity_type", "context")})  # type: ignore[union-attr]
                known_type = base.entity_type not in (None, DEFAULT_ENTITY_TYPE)
                context = _merged_context(base.context, record.context)
                entities[entity_id] = MemoryEntityRecord(
                    entity_id=entity_id,
                    name=base.name,
                    entity_type=base.entity_type if known_type or record.entity_type is None else record.entity_type,
                    context=context if context is not None else base.context,
                    confidence=base.confidence if pending is not None else None,
                )
            found[entity_id] = entities[entity_id].name
        mentions = [
            MemoryRelationshipRecord(
                source_entity_id=own.entity_id or "", target_entity_id=entity_id, relationship_type=MENTIONS, confidence=1.0, source_entity_name=own.name, target_entity_name=name
            )
            for entity_id, name in found.items()
        ]
        for relationship in [*mentions, *extraction.relationships]:
            key = (relationship.source_entity_id, relationship.target_entity_id, relationship.relationship_type)
            keys.add(key)
            relationships.setdefault(key, relationship)
        outcome = Outcome(entity_ids=[own.entity_id or "", *found], relationships=len(keys))
        outcomes[source.source_id] = outcome
        written.append((source, outcome))
    if written:
        upsert_entities(store, ref, list(entities.values()), merge=True)
        upsert_relationships(store, ref, list(relationships.values()), merge=True, only_new=True)
        _record(store, ref, written)
        ensure_text_index(store, ref)
    return [outcomes[source.source_id] for source, _ in items]


def result(ref: MemoryRef, outcomes: list[Outcome]) -> MemoryIngestResult:
    entity_ids: list[str] = []
    seen: set[str] = set()
    relationships = 0
    for outcome in outcomes:
        relationships += outcome.relationships
        for entity_id in outcome.entity_ids:
            if entity_id not in seen:
                seen.add(entity_id)
                entity_ids.append(entity_id)
    stats = MemoryIngestStats(entities=len(entity_ids), relationships=relationships, sources=len(outcomes))
    return MemoryIngestResult(name=ref.name, stats=stats, entity_ids=entity_ids)


__all__ = [
    "MENTIONS",
    "Outcome",
    "Source",
    "file_source",
    "image_source",
    "recorded",
    "result",
    "row_source",
    "sha256",
    "text_source",
    "write_sources",
]
