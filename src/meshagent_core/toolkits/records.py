"""Record values on the wire (protocol/room-apis.md §12): how the `dataset` toolkit's JSON rows,
the `sqlite` toolkit's `value_json` and the `memory` toolkit's records carry values that JSON
has no type for.

Plain JSON scalars (null, booleans, numbers, strings) travel as they are. Anything else is a
single-key wrapper object:

| value | wire |
|---|---|
| `bytes` | `{"binary": "<base64>"}` |
| `uuid.UUID` | `{"uuid": "<canonical text>"}` |
| `DatasetExpression` (SQL evaluated by the server, e.g. `uuid()`) | `{"expression": "<sql>"}` |
| `datetime.date` | `{"date": "YYYY-MM-DD"}` |
| `datetime.datetime` | `{"timestamp": "<ISO 8601>"}`, an aware one in UTC with `Z` |
| `list` | `{"list": [<values>]}` (a bare JSON array is refused when decoding) |
| `DatasetStruct` | `{"struct": {"<field>": <value>}}` |
| `DatasetJson` (any JSON document, kept as JSON) | `{"json": <document>}` |

Decoding refuses an object that is not exactly one known wrapper, and a wrapper holding the
wrong type, with a `ValueError` naming it — the official client's rules and texts. The names
(`DatasetValueEncoder`, `DatasetExpression`, `DatasetStruct`, `DatasetJson`, `encode_records`,
`decode_records`) are the official client's.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Union

__all__ = [
    "DatasetExpression",
    "DatasetJson",
    "DatasetRecord",
    "DatasetRows",
    "DatasetStruct",
    "DatasetValue",
    "DatasetValueEncoder",
    "decode_record_value",
    "decode_records",
    "encode_record_value",
    "encode_records",
]


class DatasetValueEncoder(ABC):
    """A value that says itself how it goes on the wire."""

    @abstractmethod
    def encode_dataset_value(self) -> Any:
        raise NotImplementedError


def _json_document(value: Any, path: str = "json") -> Any:
    """`value` if it is made of JSON types only (string keys); `TypeError` naming where not."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_json_document(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict):
        document = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} object keys must be strings")
            document[key] = _json_document(item, f"{path}.{key}")
        return document
    raise TypeError(f"{path} must contain only JSON-compatible values")


@dataclass(frozen=True, slots=True)
class DatasetExpression(DatasetValueEncoder):
    """A SQL expression the server evaluates in place of a value (e.g. `uuid()`)."""

    expression: str

    def __post_init__(self) -> None:
        normalized = self.expression.strip()
        if not normalized:
            raise ValueError("dataset expression must not be empty")
        object.__setattr__(self, "expression", normalized)

    def encode_dataset_value(self) -> dict[str, str]:
        return {"expression": self.expression}


@dataclass(frozen=True, slots=True)
class DatasetStruct(DatasetValueEncoder):
    """A struct value: named fields, each a record value."""

    fields: dict[str, "DatasetValue"]

    def __post_init__(self) -> None:
        if any(not isinstance(key, str) for key in self.fields):
            raise TypeError("dataset struct keys must be strings")
        object.__setattr__(self, "fields", dict(self.fields))

    def to_json(self) -> dict[str, Any]:
        return {key: encode_record_value(value) for key, value in self.fields.items()}

    def encode_dataset_value(self) -> dict[str, dict[str, Any]]:
        return {"struct": self.to_json()}


@dataclass(frozen=True, slots=True)
class DatasetJson(DatasetValueEncoder):
    """A JSON document stored as JSON (a JSON column), not taken apart into a struct."""

    value: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _json_document(self.value))

    def to_json(self) -> Any:
        return self.value

    def encode_dataset_value(self) -> dict[str, Any]:
        return {"json": self.value}


DatasetValue = Union[None, bool, int, float, str, bytes, uuid.UUID, date, datetime, list, DatasetValueEncoder]
DatasetRecord = dict[str, DatasetValue]
DatasetRows = list[DatasetRecord]


def encode_record_value(value: Any) -> Any:
    """`value` in its wire form (see the module docstring). A `dict` is refused: say
    `DatasetStruct` or `DatasetJson`, which are stored differently."""
    if isinstance(value, DatasetValueEncoder):
        return value.encode_dataset_value()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"binary": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return {"timestamp": value.isoformat().replace("+00:00", "Z")}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, (list, tuple)):
        return {"list": [encode_record_value(item) for item in value]}
    if isinstance(value, dict):
        raise TypeError("dataset object values must use DatasetStruct or DatasetJson")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a dataset value cannot be a {type(value).__name__}")


def _text(wrapper: str, payload: Any, what: str) -> str:
    if not isinstance(payload, str):
        raise ValueError(f"dataset {what} values must be {'base64 strings' if wrapper == 'binary' else 'strings'}")
    return payload


def decode_record_value(value: Any) -> Any:
    """A wire value back to its Python value; `ValueError` for a malformed one."""
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError("dataset object values must use a single-key type wrapper")
        ((wrapper, payload),) = value.items()
        if wrapper == "binary":
            try:
                return base64.b64decode(_text(wrapper, payload, "binary").encode(), validate=True)
            except binascii.Error:
                raise ValueError("dataset binary values must be base64 strings") from None
        if wrapper == "uuid":
            return uuid.UUID(_text(wrapper, payload, "uuid"))
        if wrapper == "expression":
            return DatasetExpression(_text(wrapper, payload, "expression"))
        if wrapper == "date":
            text = _text(wrapper, payload, "date")
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise ValueError("dataset date value is not valid") from None
        if wrapper == "timestamp":
            text = _text(wrapper, payload, "timestamp")
            try:
                return datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("dataset timestamp value is not valid") from None
        if wrapper == "list":
            if not isinstance(payload, list):
                raise ValueError("dataset list values must be arrays")
            return [decode_record_value(item) for item in payload]
        if wrapper == "struct":
            if not isinstance(payload, dict):
                raise ValueError("dataset struct values must be objects")
            return DatasetStruct({key: decode_record_value(item) for key, item in payload.items()})
        if wrapper == "json":
            try:
                return DatasetJson(payload)
            except TypeError as error:
                raise ValueError(str(error)) from None
        raise ValueError(f"unsupported dataset value wrapper '{wrapper}'")
    if isinstance(value, list):
        raise ValueError("dataset list values must use a {'list': [...]} wrapper")
    return value


def encode_records(records: DatasetRows) -> list[dict[str, Any]]:
    """Rows (column name → value) in their wire form."""
    return [{str(key): encode_record_value(value) for key, value in record.items()} for record in records]


def decode_records(records: list[Any]) -> DatasetRows:
    """Wire rows back to Python values; `ValueError` for a row that is not an object or a
    malformed value."""
    decoded: DatasetRows = []
    for record in records:
        if not isinstance(record, dict):
            raise ValueError("dataset records must be objects")
        decoded.append({str(key): decode_record_value(value) for key, value in record.items()})
    return decoded
