"""Rows between the wire and Lance (protocol/room-apis.md §12, §14.3): incoming Arrow chunks
conformed to a table's schema, and record values as SQL literals for `update` (JSON rows become
Arrow with `meshagent_core.toolkits.dataset_arrow`, shared with the client).

Pure pyarrow, no I/O.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import date, datetime, timezone
from typing import Any

from meshagent_core.toolkits.arrow_ipc import require_pyarrow
from meshagent_core.toolkits.dataset_arrow import arrow_value, rows_to_table
from meshagent_core.toolkits.records import DatasetExpression, DatasetJson, DatasetStruct

from .dataset_store import invalid


def conform(table: Any, schema: Any) -> Any:
    """An incoming chunk as rows of `schema`: its columns by name (any order), a missing
    nullable column null, an unknown column or a value that does not cast an error (1002)."""
    pa = require_pyarrow()
    if table.schema.equals(schema, check_metadata=False):
        return table.replace_schema_metadata(schema.metadata)
    unknown = [name for name in table.column_names if schema.get_field_index(name) < 0]
    if unknown:
        raise invalid(f"unknown column {unknown[0]!r}: the table has {', '.join(schema.names)}")
    arrays = []
    for field in schema:
        if table.schema.get_field_index(field.name) < 0:
            if not field.nullable:
                raise invalid(f"column {field.name!r} is missing and may not be null")
            arrays.append(pa.nulls(table.num_rows, type=field.type))
            continue
        column = table.column(field.name)
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
                raise invalid(f"column {field.name!r} holds {column.type}, the table needs {field.type}: {error}") from None
        arrays.append(column)
    try:
        return pa.Table.from_arrays(arrays, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise invalid(f"the rows do not fit the table: {error}") from None


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_literal(value: Any, data_type: Any = None) -> str:
    """A decoded record value as a SQL expression for Lance (`update`): literals, `make_array`,
    `named_struct`; a `DatasetExpression` is the caller's own SQL."""
    pa = require_pyarrow()
    if isinstance(value, DatasetExpression):
        return value.expression
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return f"CAST({_quoted(repr(value))} AS DOUBLE)"
        return repr(value)
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, (bytes, bytearray)):
        return f"X'{bytes(value).hex()}'"
    if isinstance(value, uuid.UUID):
        if data_type is not None and (pa.types.is_string(data_type) or pa.types.is_large_string(data_type)):
            return _quoted(str(value))
        return f"X'{value.bytes.hex()}'"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return f"TIMESTAMP {_quoted(value.isoformat())}"
    if isinstance(value, date):
        return f"DATE {_quoted(value.isoformat())}"
    if isinstance(value, DatasetJson):
        return _quoted(json.dumps(value.to_json()))
    if isinstance(value, DatasetStruct):
        field_types = {field.name: field.type for field in data_type} if data_type is not None and pa.types.is_struct(data_type) else {}
        parts = ", ".join(f"{_quoted(key)}, {sql_literal(item, field_types.get(key))}" for key, item in value.fields.items())
        return f"named_struct({parts})"
    if isinstance(value, list):
        item_type = None
        if data_type is not None and (
            pa.types.is_list(data_type) or pa.types.is_large_list(data_type) or pa.types.is_fixed_size_list(data_type)
        ):
            item_type = data_type.value_type
        return "make_array(" + ", ".join(sql_literal(item, item_type) for item in value) + ")"
    raise invalid(f"unsupported dataset value type {type(value).__name__}")


__all__ = ["arrow_value", "conform", "rows_to_table", "sql_literal"]
