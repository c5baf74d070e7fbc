"""`room.memory`: the room's graph memories (protocol/room-apis.md §15), as the official 0.56
`MemoryClient` — the same method names, keyword arguments and return types.

What the server answers is read as the official client reads it:

* `list`: `json` `{"memories": [str]}` (a missing key is `[]`); anything else is code 1100.
* `inspect`, the ingests, `recall`, the deletes, `optimize`: `json` read leniently (extra keys
  ignored, numbers also from numeric strings as pydantic's lax mode does); an answer of another
  content type or of the wrong shape is code 1100. (The official client raises pydantic's
  `ValidationError` for a `json` answer of the wrong shape; here it is `RoomException` 1100.)
* `query`: `json` `{"results": [rows]}` with §12.1-encoded values (a malformed value raises
  `ValueError`, as there), or typed rows `{"kind": "rows", "rows": [{"columns": [{"name",
  "value"}]}]}`; otherwise 1100.
* `create`, `drop` and the upserts: whatever the answer, it is not read.

Errors of the local server: 2001 a missing memory, 2002 `create` of an existing one, 1001 not
permitted by the token's `memory` grant, 1002 bad input (a write statement in `query`, records
that are not a JSON array of objects), 1003 "dataset 'entity' not found" for a query on a memory
without entities, 1007 the `llm` strategy without a configured model.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Optional

import msgspec

from ..content import JsonContent
from ..errors import ErrorCode, RoomException
from ..toolkits.memory import (
    TOOLKIT,
    CreateInput,
    DeleteEntitiesInput,
    DeleteRelationshipsInput,
    DropInput,
    IngestFileInput,
    IngestFromStorageInput,
    IngestFromTableInput,
    IngestImageInput,
    IngestTextInput,
    InspectInput,
    ListInput,
    MemoryDeleteEntitiesResult,
    MemoryDeleteRelationshipsResult,
    MemoryDetails,
    MemoryEntityRecord,
    MemoryIngestResult,
    MemoryIngestStrategy,
    MemoryOptimizeResult,
    MemoryRecallResult,
    MemoryRelationshipRecord,
    MemoryRelationshipSelector,
    OptimizeInput,
    QueryInput,
    RecallInput,
)
from ..toolkits.records import DatasetRows, decode_record_value, decode_records, encode_records
from .calls import unexpected_response
from .participants import SubClient


def _unexpected(operation: str) -> RoomException:
    return unexpected_response(TOOLKIT, operation)


def _input(type: Any, **fields: Any) -> dict[str, Any]:
    """The wire input: the fields checked (and coerced) as the official request models do."""
    value = msgspec.convert(fields, type=type, strict=False)
    wire: dict[str, Any] = msgspec.to_builtins(value)
    return wire


def _lenient(response: Any, type: Any, operation: str) -> Any:
    if not isinstance(response, JsonContent) or not isinstance(response.json, dict):
        raise _unexpected(operation)
    try:
        return msgspec.convert(response.json, type=type, strict=False)
    except msgspec.ValidationError:
        raise _unexpected(operation) from None


def _records(records: list[Any], type: Any) -> list[dict[str, Any]]:
    return [msgspec.to_builtins(type.model_validate(record)) for record in records]


def memories_from_list_answer(response: Any) -> list[str]:
    """The official client's reading of a `list` answer."""
    if not isinstance(response, JsonContent) or not isinstance(response.json, dict):
        raise _unexpected("list")
    memories = response.json.get("memories", [])
    if not isinstance(memories, list) or not all(isinstance(name, str) for name in memories):
        raise _unexpected("list")
    return list(memories)


def rows_from_query_answer(response: Any) -> list[dict[str, Any]]:
    """The official client's reading of a `query` answer (see the module docstring)."""
    if not isinstance(response, JsonContent) or not isinstance(response.json, dict):
        raise _unexpected("query")
    payload = response.json
    if isinstance(payload.get("results"), list):
        return decode_records(payload["results"])
    unexpected = RoomException("unexpected return type from memory.query", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE)
    rows = payload.get("rows")
    if payload.get("kind") != "rows" or not isinstance(rows, list):
        raise unexpected
    records: list[dict[str, Any]] = []
    for row in rows:
        columns = row.get("columns") if isinstance(row, dict) else None
        if not isinstance(columns, list):
            raise unexpected
        record: dict[str, Any] = {}
        for column in columns:
            if not isinstance(column, dict) or not isinstance(column.get("name"), str):
                raise unexpected
            try:
                record[column["name"]] = decode_record_value(column.get("value"))
            except Exception:
                # the official client names this operation "datasets.memory.query"
                raise RoomException("unexpected return type from datasets.memory.query", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE) from None
        records.append(record)
    return records


class MemoryClient(SubClient):
    """`room.memory`: graph memories of entities and relationships, grown by upserts and ingests,
    read with Cypher `query` and full-text `recall`."""

    async def _invoke(self, operation: str, arguments: dict[str, Any]) -> Any:
        return await self.room.invoke(TOOLKIT, operation, arguments)

    async def list(self, *, namespace: Optional[list[str]] = None) -> list[str]:
        """The names of the memories in `namespace` (the root when None)."""
        return memories_from_list_answer(await self._invoke("list", _input(ListInput, namespace=namespace)))

    async def create(self, *, name: str, namespace: Optional[list[str]] = None, overwrite: bool = False, ignore_exists: bool = False) -> None:
        """Make an empty memory (2002 if it exists, unless `overwrite` replaces it with an empty
        one or `ignore_exists` keeps it)."""
        await self._invoke("create", _input(CreateInput, name=name, namespace=namespace, overwrite=overwrite, ignore_exists=ignore_exists))

    async def drop(self, *, name: str, namespace: Optional[list[str]] = None, ignore_missing: bool = False) -> None:
        """Delete a memory and everything in it."""
        await self._invoke("drop", _input(DropInput, name=name, namespace=namespace, ignore_missing=ignore_missing))

    async def inspect(self, *, name: str, namespace: Optional[list[str]] = None) -> MemoryDetails:
        """The memory's datasets with their row counts and columns."""
        return _lenient(await self._invoke("inspect", _input(InspectInput, name=name, namespace=namespace)), MemoryDetails, "inspect")

    async def query(self, *, name: str, statement: str, namespace: Optional[list[str]] = None) -> list[dict[str, Any]]:
        """Run a read-only Cypher `statement` over the memory's graph; one dict per row."""
        response = await self._invoke("query", _input(QueryInput, name=name, namespace=namespace, statement=statement))
        return rows_from_query_answer(response)

    async def upsert_table(
        self, *, name: str, table: str, records: DatasetRows, merge: bool = True, namespace: Optional[list[str]] = None
    ) -> None:
        """Add rows to (`merge`) or replace the rows of a table of the memory."""
        arguments = {"name": name, "namespace": namespace, "table": table, "records_json": json.dumps(encode_records(records)), "merge": merge}
        await self._invoke("upsert_table", arguments)

    async def upsert_nodes(
        self, *, name: str, records: list[MemoryEntityRecord], merge: bool = True, namespace: Optional[list[str]] = None
    ) -> None:
        """Insert or update entities (by `entity_id`, else by name)."""
        records_json = json.dumps(_records(records, MemoryEntityRecord))
        await self._invoke("upsert_nodes", {"name": name, "namespace": namespace, "records_json": records_json, "merge": merge})

    async def upsert_relationships(
        self, *, name: str, records: list[MemoryRelationshipRecord], merge: bool = True, namespace: Optional[list[str]] = None
    ) -> None:
        """Insert or update relationships (by source, target and type)."""
        records_json = json.dumps(_records(records, MemoryRelationshipRecord))
        await self._invoke("upsert_relationships", {"name": name, "namespace": namespace, "records_json": records_json, "merge": merge})

    async def ingest_text(
        self,
        *,
        name: str,
        text: str,
        namespace: Optional[list[str]] = None,
        strategy: MemoryIngestStrategy = "heuristic",
        llm_model: Optional[str] = None,
        llm_temperature: Optional[float] = None,
    ) -> MemoryIngestResult:
        """Extract entities and relationships from `text` into the memory."""
        arguments = _input(IngestTextInput, name=name, namespace=namespace, text=text, strategy=strategy, llm_model=llm_model, llm_temperature=llm_temperature)
        return _lenient(await self._invoke("ingest_text", arguments), MemoryIngestResult, "ingest_text")

    async def ingest_image(
        self,
        *,
        name: str,
        caption: Optional[str] = None,
        data: Optional[bytes] = None,
        mime_type: Optional[str] = None,
        source: Optional[str] = None,
        annotations: Optional[dict[str, str]] = None,
        namespace: Optional[list[str]] = None,
        strategy: MemoryIngestStrategy = "heuristic",
        llm_model: Optional[str] = None,
        llm_temperature: Optional[float] = None,
    ) -> MemoryIngestResult:
        """An image (kept in room storage), its caption and annotations into the memory."""
        arguments = _input(
            IngestImageInput,
            name=name,
            namespace=namespace,
            caption=caption,
            data_base64=None if data is None else base64.b64encode(data).decode("utf-8"),
            mime_type=mime_type,
            source=source,
            annotations_json=None if annotations is None else json.dumps(annotations),
            strategy=strategy,
            llm_model=llm_model,
            llm_temperature=llm_temperature,
        )
        return _lenient(await self._invoke("ingest_image", arguments), MemoryIngestResult, "ingest_image")

    async def ingest_file(
        self,
        *,
        name: str,
        path: Optional[str] = None,
        text: Optional[str] = None,
        mime_type: Optional[str] = None,
        namespace: Optional[list[str]] = None,
        strategy: MemoryIngestStrategy = "heuristic",
        llm_model: Optional[str] = None,
        llm_temperature: Optional[float] = None,
    ) -> MemoryIngestResult:
        """A file of room storage (text, Markdown, JSON, PDF), or `text` given here, into the memory."""
        arguments = _input(
            IngestFileInput,
            name=name,
            namespace=namespace,
            path=path,
            text=text,
            mime_type=mime_type,
            strategy=strategy,
            llm_model=llm_model,
            llm_temperature=llm_temperature,
        )
        return _lenient(await self._invoke("ingest_file", arguments), MemoryIngestResult, "ingest_file")

    async def ingest_from_table(
        self,
        *,
        name: str,
        table: str,
        text_columns: Optional[list[str]] = None,
        table_namespace: Optional[list[str]] = None,
        limit: Optional[int] = None,
        namespace: Optional[list[str]] = None,
        strategy: MemoryIngestStrategy = "heuristic",
        llm_model: Optional[str] = None,
        llm_temperature: Optional[float] = None,
    ) -> MemoryIngestResult:
        """The rows of a `dataset` table into the memory, one source per row."""
        arguments = _input(
            IngestFromTableInput,
            name=name,
            namespace=namespace,
            table=table,
            table_namespace=table_namespace,
            text_columns=text_columns,
            limit=limit,
            strategy=strategy,
            llm_model=llm_model,
            llm_temperature=llm_temperature,
        )
        return _lenient(await self._invoke("ingest_from_table", arguments), MemoryIngestResult, "ingest_from_table")

    async def ingest_from_storage(
        self,
        *,
        name: str,
        paths: list[str],
        namespace: Optional[list[str]] = None,
        strategy: MemoryIngestStrategy = "heuristic",
        llm_model: Optional[str] = None,
        llm_temperature: Optional[float] = None,
    ) -> MemoryIngestResult:
        """Files of room storage into the memory, one source per file."""
        arguments = _input(
            IngestFromStorageInput, name=name, namespace=namespace, paths=paths, strategy=strategy, llm_model=llm_model, llm_temperature=llm_temperature
        )
        return _lenient(await self._invoke("ingest_from_storage", arguments), MemoryIngestResult, "ingest_from_storage")

    async def recall(
        self, *, name: str, query: str, namespace: Optional[list[str]] = None, limit: int = 5, include_relationships: bool = True
    ) -> MemoryRecallResult:
        """The entities that best match `query` (BM25 over name and context), best first."""
        arguments = _input(RecallInput, name=name, namespace=namespace, query=query, limit=limit, include_relationships=include_relationships)
        return _lenient(await self._invoke("recall", arguments), MemoryRecallResult, "recall")

    async def delete_entities(self, *, name: str, entity_ids: list[str], namespace: Optional[list[str]] = None) -> MemoryDeleteEntitiesResult:
        """Delete entities and their relationships."""
        arguments = _input(DeleteEntitiesInput, name=name, namespace=namespace, entity_ids=entity_ids)
        return _lenient(await self._invoke("delete_entities", arguments), MemoryDeleteEntitiesResult, "delete_entities")

    async def delete_relationships(
        self, *, name: str, relationships: list[MemoryRelationshipSelector], namespace: Optional[list[str]] = None
    ) -> MemoryDeleteRelationshipsResult:
        """Delete relationships (every type between two entities when a selector names none)."""
        selectors = [MemoryRelationshipSelector.model_validate(selector) for selector in relationships]
        arguments = _input(DeleteRelationshipsInput, name=name, namespace=namespace, relationships=selectors)
        return _lenient(await self._invoke("delete_relationships", arguments), MemoryDeleteRelationshipsResult, "delete_relationships")

    async def optimize(self, *, name: str, namespace: Optional[list[str]] = None, compact: bool = True, cleanup: bool = True) -> MemoryOptimizeResult:
        """Compact the memory's datasets and remove their old versions."""
        arguments = _input(OptimizeInput, name=name, namespace=namespace, compact=compact, cleanup=cleanup)
        return _lenient(await self._invoke("optimize", arguments), MemoryOptimizeResult, "optimize")


__all__ = [
    "MemoryClient",
    "MemoryDeleteEntitiesResult",
    "MemoryDeleteRelationshipsResult",
    "MemoryDetails",
    "MemoryEntityRecord",
    "MemoryIngestResult",
    "MemoryOptimizeResult",
    "MemoryRecallResult",
    "MemoryRelationshipRecord",
    "MemoryRelationshipSelector",
    "memories_from_list_answer",
    "rows_from_query_answer",
]
