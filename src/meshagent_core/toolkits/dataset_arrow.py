"""Record values (protocol/room-apis.md §12.1) as Arrow: how rows of Python values — decoded JSON
rows on the server, the caller's record dicts on the client — become a `pyarrow.Table`, of a
table's schema or with inferred types (one definition for both sides, as the official client
converts them).

A `DatasetJson` becomes its JSON text, a `DatasetStruct` a struct, a UUID 16 bytes (its text in
a string column), an ISO string a date or timestamp in such a column; a `DatasetExpression` is
refused (1002): only the server's SQL paths evaluate expressions. Columns of only UUIDs or only
JSON documents are inferred as `arrow.uuid` / `arrow.json`. `pyarrow` is imported on use.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

from ..errors import ErrorCode, RoomException
from .arrow_ipc import require_pyarrow
from .records import DatasetExpression, DatasetJson, DatasetStruct


def _invalid(message: str) -> RoomException:
    return RoomException(message, code=ErrorCode.INVALID_REQUEST)


def arrow_value(value: Any, data_type: Any = None) -> Any:
    """A decoded record value as the Python value pyarrow builds `data_type` from (None: for
    type inference)."""
    pa = require_pyarrow()
    if isinstance(value, DatasetExpression):
        raise _invalid("dataset Arrow writes do not support DatasetExpression values")
    if isinstance(value, DatasetJson):
        return json.dumps(value.to_json())
    if isinstance(value, DatasetStruct):
        value = value.fields
    if isinstance(value, uuid.UUID):
        if data_type is not None and (pa.types.is_string(data_type) or pa.types.is_large_string(data_type)):
            return str(value)
        return value.bytes
    if isinstance(value, str) and data_type is not None:
        if pa.types.is_date(data_type):
            return date.fromisoformat(value)
        if pa.types.is_timestamp(data_type):
            return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    if isinstance(value, list):
        item_type = None
        if data_type is not None and (
            pa.types.is_list(data_type) or pa.types.is_large_list(data_type) or pa.types.is_fixed_size_list(data_type)
        ):
            item_type = data_type.value_type
        return [arrow_value(item, item_type) for item in value]
    if isinstance(value, dict):
        field_types = {field.name: field.type for field in data_type} if data_type is not None and pa.types.is_struct(data_type) else {}
        return {str(key): arrow_value(item, field_types.get(str(key))) for key, item in value.items()}
    return value


def _column(pa: Any, values: list[Any], data_type: Any) -> Any:
    if isinstance(data_type, pa.ExtensionType):
        return pa.ExtensionArray.from_storage(data_type, pa.array(values, type=data_type.storage_type))
    return pa.array(values, type=data_type)


def _inferred_type(pa: Any, raw: list[Any]) -> Any:
    """`arrow.uuid` / `arrow.json` for columns of only UUIDs / JSON documents (pyarrow cannot
    infer them), else None (pyarrow infers)."""
    present = [value for value in raw if value is not None]
    if present and all(isinstance(value, uuid.UUID) for value in present):
        return pa.uuid()
    if present and all(isinstance(value, DatasetJson) for value in present):
        return pa.json_() if hasattr(pa, "json_") else pa.string()  # arrow.json: pyarrow 19+
    return None


def rows_to_table(rows: list[dict[str, Any]], schema: Any = None) -> Any:
    """Decoded JSON rows as an Arrow table: of `schema` when given (its columns in its order;
    a column a row lacks is null), else with inferred types in first-seen column order."""
    pa = require_pyarrow()
    if schema is None:
        names: list[str] = []
        for row in rows:
            names.extend(name for name in row if name not in names)
    else:
        names = list(schema.names)
        unknown = sorted({name for row in rows for name in row} - set(names))
        if unknown:
            raise _invalid(f"unknown column {unknown[0]!r}: the table has {', '.join(names)}")
    columns = []
    fields = []
    for name in names:
        raw = [row.get(name) for row in rows]
        data_type = schema.field(name).type if schema is not None else _inferred_type(pa, raw)
        try:
            values = [arrow_value(value, data_type) for value in raw]
            array = _column(pa, values, data_type) if data_type is not None else pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as error:
            raise _invalid(f"column {name!r}: {error}") from None
        columns.append(array)
        fields.append(schema.field(name) if schema is not None else pa.field(name, array.type))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=schema.metadata if schema is not None else None))



__all__ = ["arrow_value", "rows_to_table"]
