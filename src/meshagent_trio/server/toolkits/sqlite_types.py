"""Arrow types ↔ SQLite columns for the `sqlite` toolkit (protocol/room-apis.md §13.2).

A table made from an Arrow schema gets one column per field, declared with the type named here
(SQLite keeps the declared type text; its type affinity follows from the name), `NOT NULL` for a
field that is not nullable:

| Arrow | declared type | stored as |
|---|---|---|
| bool | `BOOLEAN` | integer 0 / 1 |
| int8, int16, int32, int64 | `TINYINT`, `SMALLINT`, `INT32`, `INTEGER` | integer |
| uint8, uint16, uint32 | `UINT8`, `UINT16`, `UINT32` | integer |
| float32, float64 | `FLOAT32`, `REAL` | real (NaN is stored as NULL: SQLite has no NaN) |
| string, large_string | `TEXT` | text |
| binary, large_binary, fixed_size_binary | `BLOB` | blob |
| date32, date64 | `DATE` | text `YYYY-MM-DD` |
| timestamp (any unit) without / with a time zone | `TIMESTAMP` / `TIMESTAMPTZ` | text `YYYY-MM-DD HH:MM:SS.ffffff`, UTC with `Z` when zoned |
| json (the `arrow.json` extension) | `JSON TEXT` | text, checked to be one JSON document (the name keeps SQLite's text affinity, so `1` stays the text `1`) |

Other Arrow types (uint64, float16, decimals, lists, structs, …) are refused with 1002. Reading a
column back, the declared type gives the Arrow type: the names above exactly (in any case), then
`BOOL` as bool, `DATETIME` as timestamp, and SQLite's affinity rules for any other name — a name
containing `INT` is int64, `CHAR`/`CLOB`/`TEXT` string, `BLOB` binary, `REAL`/`FLOA`/`DOUB`
float64, any other name float64 (numeric affinity). Timestamps come back in microseconds (zoned
ones in UTC), large strings and binaries as their plain forms, so the round trip is exact for
the canonical types (bool, the integers above, float32/64, string, binary, date32,
timestamp[us] and timestamp[us, UTC]).

A column with no declared type, and a query column that is an expression, has no fixed type: its
type is inferred from the first rows read, up to the first non-null value of each such column
(at most 256 rows) — integers int64, reals (with or without integers) float64, text string,
blobs binary, a mix of kinds string (their text form), all NULL the null type — and later rows
are converted to it (a value that does not convert, e.g. a real in an int64 column, fails the
read with 1008).

`pyarrow` is imported on first use (`require_pyarrow`; 1007 when it is not installed).
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timezone
from typing import Any, Iterable, Sequence

from meshagent_core import ErrorCode, RoomException
from meshagent_core.toolkits.arrow_ipc import require_pyarrow
from meshagent_core.toolkits.records import DatasetJson, DatasetStruct

from ..toolkit import invalid_request


def pyarrow() -> Any:
    """The `pyarrow` module; 1007 when the server has none."""
    try:
        return require_pyarrow()
    except ImportError as error:
        raise RoomException(str(error), code=ErrorCode.DEPENDENCY_MISSING) from None


_INTEGERS = {
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INT32",
    "int64": "INTEGER",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
}


def declared_type(data_type: Any) -> str:
    """The declared SQLite type for an Arrow type; 1002 for one the toolkit cannot store."""
    pa = pyarrow()
    types = pa.types
    if types.is_boolean(data_type):
        return "BOOLEAN"
    if str(data_type) in _INTEGERS:
        return _INTEGERS[str(data_type)]
    if types.is_float32(data_type):
        return "FLOAT32"
    if types.is_float64(data_type):
        return "REAL"
    if types.is_string(data_type) or types.is_large_string(data_type):
        return "TEXT"
    if types.is_binary(data_type) or types.is_large_binary(data_type) or types.is_fixed_size_binary(data_type):
        return "BLOB"
    if types.is_date(data_type):
        return "DATE"
    if types.is_timestamp(data_type):
        return "TIMESTAMP" if data_type.tz is None else "TIMESTAMPTZ"
    if is_json(data_type):
        return "JSON TEXT"
    raise invalid_request(f"the sqlite toolkit cannot store Arrow type {data_type} (see the supported types)")


def is_json(data_type: Any) -> bool:
    return getattr(data_type, "extension_name", None) == "arrow.json"


def quote_identifier(name: str) -> str:
    """`name` as a SQL identifier (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def column_definition(field: Any) -> str:
    """`"name" TYPE [NOT NULL]` for an Arrow field."""
    if not field.name:
        raise invalid_request("a column name must not be empty")
    definition = f"{quote_identifier(field.name)} {declared_type(field.type)}"
    return definition if field.nullable else definition + " NOT NULL"


def arrow_type(declared: str | None) -> Any:
    """The Arrow type of a column declared `declared`; None: no fixed type (inferred)."""
    pa = pyarrow()
    name = (declared or "").strip().upper()
    if not name:
        return None
    base = name.split("(", 1)[0].strip()
    exact = {
        "BOOLEAN": pa.bool_(),
        "BOOL": pa.bool_(),
        "TINYINT": pa.int8(),
        "SMALLINT": pa.int16(),
        "INT32": pa.int32(),
        "INTEGER": pa.int64(),
        "UINT8": pa.uint8(),
        "UINT16": pa.uint16(),
        "UINT32": pa.uint32(),
        "FLOAT32": pa.float32(),
        "REAL": pa.float64(),
        "TEXT": pa.string(),
        "BLOB": pa.binary(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us"),
        "DATETIME": pa.timestamp("us"),
        "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
        "JSON TEXT": pa.json_() if hasattr(pa, "json_") else pa.string(),  # pyarrow 19 has the JSON type
    }.get(base)
    if exact is not None:
        return exact
    # SQLite's affinity rules (https://sqlite.org/datatype3.html §3.1), in their order.
    if "INT" in name:
        return pa.int64()
    if "CHAR" in name or "CLOB" in name or "TEXT" in name:
        return pa.string()
    if "BLOB" in name:
        return pa.binary()
    return pa.float64()


def column_field(name: str, declared: str | None, not_null: bool) -> Any:
    """The Arrow field of a table column (an untyped column has the null type)."""
    pa = pyarrow()
    data_type = arrow_type(declared)
    return pa.field(name, data_type if data_type is not None else pa.null(), nullable=not not_null)


# --- writing: Arrow → SQLite values --------------------------------------------------------------


def _kind(data_type: Any) -> str:
    """The family of an Arrow type, for compatibility checks."""
    types = pyarrow().types
    if types.is_null(data_type):
        return "null"
    if is_json(data_type):
        return "json"
    if types.is_boolean(data_type):
        return "bool"
    if types.is_integer(data_type):
        return "int"
    if types.is_floating(data_type):
        return "float"
    if types.is_string(data_type) or types.is_large_string(data_type):
        return "string"
    if types.is_binary(data_type) or types.is_large_binary(data_type) or types.is_fixed_size_binary(data_type):
        return "binary"
    if types.is_date(data_type):
        return "date"
    if types.is_timestamp(data_type):
        return "timestamp" if data_type.tz is None else "timestamptz"
    return "other"


#: Which data families a column of each family accepts.
_ACCEPTS = {
    "bool": {"bool"},
    "int": {"int"},
    "float": {"float", "int"},
    "string": {"string"},
    "json": {"json", "string"},
    "binary": {"binary"},
    "date": {"date"},
    "timestamp": {"timestamp"},
    "timestamptz": {"timestamptz"},
}


def check_column(table: str, column: str, target: Any, source: Any) -> None:
    """1002 unless data of Arrow type `source` fits a column of type `target` (None: untyped)."""
    kind = _kind(source)
    if kind == "null":
        return
    if target is None:
        declared_type(source)  # any storable type
        return
    if kind not in _ACCEPTS.get(_kind(target), set()):
        raise invalid_request(f"column {column!r} of table {table!r} holds {target} values; the data for it is {source}")


def column_values(array: Any, target: Any, column: str) -> list[Any]:
    """The values of an Arrow column as SQLite values, converted to the column's type `target`
    (None: as they are). Values out of the target's range are 1002."""
    pa = pyarrow()
    if target is not None and _kind(target) == "json" or is_json(array.type):
        return _json_texts(array.cast(pa.string()) if is_json(array.type) else array, column)
    if target is not None and not array.type.equals(target) and _kind(array.type) != "null":
        try:
            array = array.cast(target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise invalid_request(f"a value for column {column!r} does not fit {target}: {error}") from None
    kind = _kind(array.type if target is None or _kind(array.type) != "null" else target)
    if kind == "date":
        return array.cast(pa.string()).to_pylist()
    if kind == "timestamp":
        return array.cast(pa.timestamp("us"), safe=True).cast(pa.string()).to_pylist()
    if kind == "timestamptz":
        return array.cast(pa.timestamp("us", tz="UTC"), safe=True).cast(pa.string()).to_pylist()
    if kind == "float":
        return [None if value is not None and value != value else value for value in array.to_pylist()]  # NaN → NULL
    if kind == "other":
        declared_type(array.type)
    return array.to_pylist()


def _json_texts(array: Any, column: str) -> list[Any]:
    """JSON column values: each a JSON document's text (1002 for text that is not JSON)."""
    texts = array.cast(pyarrow().string()).to_pylist() if _kind(array.type) == "null" else array.to_pylist()
    for text in texts:
        if text is not None:
            try:
                json.loads(text)
            except ValueError:
                raise invalid_request(f"a value for column {column!r} is not JSON: {text[:80]!r}") from None
    return texts


def format_timestamp(value: datetime) -> str:
    """A datetime as stored: `YYYY-MM-DD HH:MM:SS.ffffff`, zoned ones in UTC with `Z`."""
    if value.tzinfo is None:
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%fZ")


def sql_value(value: Any) -> Any:
    """A decoded record value (protocol/room-apis.md §12.1) or JSON parameter as a value SQLite
    can bind: bytes as blobs, UUIDs, dates and timestamps as text (timestamps as stored), JSON
    documents, structs and lists as JSON text. 1002 for anything else."""
    if value is None or isinstance(value, (int, float, str, bytes)):
        return int(value) if isinstance(value, bool) else value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (DatasetJson, DatasetStruct, list)):
        return json.dumps(_plain(value), separators=(",", ":"))
    raise invalid_request(f"a value of type {type(value).__name__} cannot be stored in sqlite")


def _plain(value: Any) -> Any:
    if isinstance(value, DatasetJson):
        return value.value
    if isinstance(value, DatasetStruct):
        return {key: _plain(item) for key, item in value.fields.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (uuid.UUID, date)):
        return sql_value(value)
    return value


def check_value(table: str, column: str, target: Any, value: Any) -> None:
    """1002 unless a decoded record value fits a column of Arrow type `target` (None: untyped)."""
    if value is None or target is None:
        return
    kind = _kind(target)
    fits = {
        "bool": isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "string": isinstance(value, (str, uuid.UUID, DatasetJson, DatasetStruct, list)),
        "binary": isinstance(value, bytes),
        "date": isinstance(value, date) and not isinstance(value, datetime),
        "timestamp": isinstance(value, datetime) and value.tzinfo is None,
        "timestamptz": isinstance(value, datetime) and value.tzinfo is not None,
    }.get(kind, True)
    if not fits:
        raise invalid_request(f"column {column!r} of table {table!r} holds {target} values, not {type(value).__name__} ({value!r:.60})")


# --- reading: SQLite values → Arrow --------------------------------------------------------------


def infer_type(values: Iterable[Any]) -> Any:
    """The Arrow type for an untyped column from its values (see the module docstring)."""
    pa = pyarrow()
    kinds = {type(value) for value in values if value is not None}
    if not kinds:
        return pa.null()
    if kinds == {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    if kinds == {bytes}:
        return pa.binary()
    return pa.string()


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def to_arrow(values: Sequence[Any], target: Any, column: str) -> Any:
    """SQLite values of one column as an Arrow array of type `target`; 1008 for a stored value
    that is not of the column's type (SQLite lets any column hold any value)."""
    pa = pyarrow()
    kind = _kind(target)
    try:
        if kind == "bool":
            if any(value not in (0, 1, None) or isinstance(value, float) for value in values):
                raise ValueError("not 0 or 1")
            return pa.array([None if value is None else bool(value) for value in values], pa.bool_())
        if kind == "string":
            return pa.array([_text(value) for value in values], target)
        if kind == "binary":
            return pa.array([value.encode() if isinstance(value, str) else value for value in values], target)
        if kind in ("date", "timestamp", "timestamptz"):
            if any(value is not None and not isinstance(value, str) for value in values):
                raise ValueError("not text")
            return pa.array(values, pa.string()).cast(target)
        if kind == "null":
            if any(value is not None for value in values):
                raise ValueError("a value where the first rows had none")
            return pa.nulls(len(values))
        if kind == "int" and any(isinstance(value, float) for value in values):
            raise ValueError("a real number")
        return pa.array(values, target)
    except (ValueError, TypeError, OverflowError, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
        raise RoomException(
            f"column {column!r} holds a value that is not {target} ({str(error)[:120]})", code=ErrorCode.OPERATION_FAILED
        ) from None


class BatchBuilder:
    """Record batches of rows read from SQLite, for columns `names` with Arrow types `types`
    (None: inferred from the first batch built, then fixed). `nullable[i]` False marks a column
    declared NOT NULL."""

    def __init__(self, names: Sequence[str], types: Sequence[Any], nullable: Sequence[bool] | None = None) -> None:
        self.names = list(names)
        self.types = list(types)
        self.nullable = list(nullable) if nullable is not None else [True] * len(self.names)
        self._schema: Any = None

    @property
    def settled(self) -> bool:
        return all(data_type is not None for data_type in self.types)

    def schema(self) -> Any:
        """The schema (every column typed: `settle` first when some are inferred)."""
        if self._schema is None:
            pa = pyarrow()
            self._schema = pa.schema(
                [pa.field(name, data_type, nullable=nullable) for name, data_type, nullable in zip(self.names, self.types, self.nullable)]
            )
        return self._schema

    def settle(self, rows: Sequence[Sequence[Any]]) -> None:
        """Infer the untyped columns from `rows` (the null type when there are none)."""
        for index, data_type in enumerate(self.types):
            if data_type is None:
                self.types[index] = infer_type(row[index] for row in rows)
                if self._schema is not None:
                    self._schema = None

    def batch(self, rows: Sequence[Sequence[Any]]) -> Any:
        """`rows` (tuples in column order) as one record batch of `schema()`."""
        pa = pyarrow()
        if not self.settled:
            self.settle(rows)
        columns = list(zip(*rows)) if rows else [() for _ in self.names]
        arrays = [to_arrow(list(values), data_type, name) for values, data_type, name in zip(columns, self.types, self.names)]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema())


__all__ = [
    "BatchBuilder",
    "arrow_type",
    "check_column",
    "check_value",
    "column_definition",
    "column_field",
    "column_values",
    "declared_type",
    "format_timestamp",
    "infer_type",
    "pyarrow",
    "quote_identifier",
    "sql_value",
    "to_arrow",
]
