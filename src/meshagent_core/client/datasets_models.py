"""What `room.datasets` returns and takes besides Arrow data (protocol/room-apis.md §14), with the
official 0.56 names: `TableVersion`, `TableBranch`, `TableIndex`, `DatasetOptimizeResult`,
`DatasetTableStats`, `DatasetSqlQuery`, `DatasetSqlStatement`, `DatasetSqlCancelResult`,
`DatasetWatchEvent`; the configs `DatasetIndexConfig`, `DatasetOptimizeConfig` and
`SqlTableReference` are the wire Structs themselves. Also the official client's rule for a
`where` given as a dict (`where_clause`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, AsyncIterable, Literal, Union

from ..errors import ErrorCode, RoomException
from ..toolkits.dataset import IndexConfig, OptimizeConfig, SqlTableRef
from ..toolkits.records import DatasetJson, DatasetRows, DatasetStruct

#: The official names of the configs (msgspec Structs: build them with keywords).
DatasetIndexConfig = IndexConfig
DatasetOptimizeConfig = OptimizeConfig
SqlTableReference = SqlTableRef

#: Chunks of rows for a streamed JSON-rows write (the official alias).
DatasetRowChunks = Union[AsyncIterable[DatasetRows], list[DatasetRows]]


@dataclass(frozen=True)
class TableVersion:
    """One version of a table."""

    version: int
    timestamp: datetime
    metadata: dict[str, Any]


@dataclass(frozen=True)
class TableBranch:
    """One branch of a namespace (`main` is always there)."""

    name: str
    parent_branch: str | None = None
    parent_version: int | None = None
    created_at: datetime | None = None
    manifest_size: int | None = None


@dataclass(frozen=True)
class TableIndex:
    """One index of a table."""

    name: str
    columns: list[str]
    type: str
    fields: list[int] = field(default_factory=list)
    type_url: str | None = None
    num_rows_indexed: int | None = None
    num_segments: int | None = None
    total_size_bytes: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    statistics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetOptimizeResult:
    """What `optimize` did: compaction metrics, whether indexes were optimized, cleanup metrics."""

    compaction: dict[str, Any] | None = None
    optimized_indices: bool = False
    cleanup: dict[str, Any] | None = None


@dataclass(frozen=True)
class DatasetTableStats:
    """`stats`: dataset statistics and per-field data statistics."""

    dataset: dict[str, Any]
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DatasetSqlQuery:
    """An open result set: read it with `read_sql_query(query_id=…)`, end it with
    `close_sql_query`."""

    schema: Any
    query_id: str


@dataclass(frozen=True, slots=True)
class DatasetSqlStatement:
    """A statement that ran (INSERT, DELETE)."""

    rows_affected: int


DatasetSqlExecution = Union[DatasetSqlQuery, DatasetSqlStatement]


@dataclass(frozen=True, slots=True)
class DatasetSqlCancelResult:
    status: Literal["cancelled", "cancelling", "not_cancellable"]


@dataclass(frozen=True)
class DatasetWatchEvent:
    """One item of `watch_table`: rows (`kind` `data`; `phase` `initial` or `delta`, then
    `change_type` `inserted` / `updated` / `deleted`) or a marker that everything up to
    `version` was sent (`kind` `ready`)."""

    kind: Literal["data", "ready"]
    phase: str | None = None
    table: Any = None
    version: int | None = None
    change_type: str | None = None
    begin_version: int | None = None
    end_version: int | None = None
    watch_event: str | None = None


def optional_int(value: Any) -> int | None:
    """A version as the official client reads it: an int, or a numeric string."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def sql_literal(value: Any) -> str:
    """A value in a `where` given as a dict, as the official client writes it."""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, uuid.UUID):
        return f"X'{value.bytes.hex()}'"
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return f"'{value.isoformat().replace('+00:00', 'Z')}'"
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    if isinstance(value, DatasetJson):
        return "'" + json.dumps(value.to_json()).replace("'", "''") + "'"
    if isinstance(value, DatasetStruct):
        fields = ", ".join(f"'{key}', {sql_literal(inner)}" for key, inner in value.fields.items())
        return f"named_struct({fields})"
    if isinstance(value, list):
        return "[" + ", ".join(sql_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        raise RoomException("dataset object values must use DatasetStruct or DatasetJson", code=ErrorCode.INVALID_REQUEST)
    raise RoomException(f"unsupported dataset value type {type(value).__name__}", code=ErrorCode.INVALID_REQUEST)


def where_clause(where: str | dict[str, Any] | None) -> str | None:
    """A `where` dict as `column = literal AND …` (as the official client sends it)."""
    if isinstance(where, dict):
        return " AND ".join(f"{column} = {sql_literal(value)}" for column, value in where.items())
    return where


__all__ = [
    "DatasetIndexConfig",
    "DatasetOptimizeConfig",
    "DatasetOptimizeResult",
    "DatasetRowChunks",
    "DatasetSqlCancelResult",
    "DatasetSqlExecution",
    "DatasetSqlQuery",
    "DatasetSqlStatement",
    "DatasetTableStats",
    "DatasetWatchEvent",
    "SqlTableReference",
    "TableBranch",
    "TableIndex",
    "TableVersion",
    "optional_int",
    "sql_literal",
    "where_clause",
]
