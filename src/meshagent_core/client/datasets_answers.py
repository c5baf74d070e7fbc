"""How `room.datasets` reads the `dataset` toolkit's answers (protocol/room-apis.md §14): as the
official 0.56 client's pydantic models read them — no keys beyond the model's, numbers also
from numeric strings and integral floats, tagged headers with their `kind` — anything else
raising `RoomException` 1100 "unexpected return type from datasets.<operation>". And the rules
its Arrow streams are checked by (`RULES`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec

from ..content import BinaryContent, JsonContent
from ..errors import RoomException
from ..toolkits.arrow_ipc import require_pyarrow
from ..toolkits.dataset import ERROR_PREFIX, TOOLKIT
from .calls import unexpected_response
from .data_streams import ArrowStreamRules

_ALLOWED_PULL = {"kind", "chunk_size"}
_ALLOWED_DATA = {"kind", "content_type"}


def _is_pull(chunk: Any) -> bool:
    headers = chunk.headers if isinstance(chunk, BinaryContent) else chunk.json if isinstance(chunk, JsonContent) else None
    if not isinstance(headers, dict) or headers.get("kind") != "pull" or not _ALLOWED_PULL.issuperset(headers):
        return False
    size = headers.get("chunk_size")
    return size is None or (isinstance(size, int) and not isinstance(size, bool))


def _is_data(chunk: Any) -> bool:
    if not isinstance(chunk, BinaryContent) or chunk.headers.get("kind") != "data" or not _ALLOWED_DATA.issuperset(chunk.headers):
        return False
    content_type = chunk.headers.get("content_type")
    return content_type is None or isinstance(content_type, str)


RULES = ArrowStreamRules(toolkit=TOOLKIT, is_pull=_is_pull, is_data=_is_data, error_name=ERROR_PREFIX)

Namespace = list[str] | None


def _unexpected(operation: str) -> RoomException:
    return unexpected_response(ERROR_PREFIX, operation)


def _lax(value: Any, type: Any, operation: str) -> Any:
    """`value` as the Struct `type` the way the official (pydantic) models read it: no keys
    beyond the Struct's, every field valid, numbers also from numeric strings and integral
    floats (`{"count": "3"}` is 3); anything else 1100."""
    if not isinstance(value, dict):
        raise _unexpected(operation)
    allowed = set(type.__struct_fields__)
    tag_field = type.__struct_config__.tag_field
    if tag_field is not None:
        allowed.add(tag_field)
    if not allowed.issuperset(value):
        raise _unexpected(operation)
    try:
        return msgspec.convert(value, type=type, strict=False)
    except msgspec.ValidationError:
        raise _unexpected(operation) from None


def _json_answer(content: Any, type: Any, operation: str) -> Any:
    if not isinstance(content, JsonContent):
        raise _unexpected(operation)
    return _lax(content.json, type, operation)


def _tagged(value: Any, type: Any, operation: str) -> Any:
    """`value` as the tagged Struct `type`, whose `kind` must be present (msgspec would take a
    missing tag as the expected one; the official models require it)."""
    if not isinstance(value, dict) or value.get("kind") != type.__struct_config__.tag:
        raise _unexpected(operation)
    return _lax(value, type, operation)


def _parse_time(value: str, operation: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _unexpected(operation) from None


def _json_object(text: str, operation: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise _unexpected(operation) from None
    if not isinstance(value, dict):
        raise _unexpected(operation)
    return value


def _concat(batches: list[Any]) -> Any:
    pa = require_pyarrow()
    if not batches:
        return pa.table({})
    return pa.concat_tables(batches, promote_options="default")


__all__ = ["RULES", "Namespace"]
