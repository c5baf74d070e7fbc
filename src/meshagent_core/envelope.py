"""The message envelope: `header_len u64 BE || header JSON || payload` (ROOM_WIRE §3.1).

Every packed header gets the reserved `__meshagent__` key (`{"v": 1, "otel": {...}}`) as its
last key; every unpacked header has it removed before anything else looks at it.

Two JSON styles are offered. `COMPACT` (the default) is msgspec's compact UTF-8 JSON: any JSON
receiver accepts it (the official clients use `json.loads` / `JSON.parse`) and it is several
times faster. `PYTHON` reproduces the official client's bytes exactly (`json.dumps` defaults:
`", "` / `": "` separators, non-ASCII escaped), for byte-level conformance and for peers that
hash header bytes.
"""

from __future__ import annotations

import enum
import json
from typing import Any, Mapping, TypeVar

import msgspec

from .errors import EnvelopeError

HEADER_LENGTH_SIZE = 8
META_KEY = "__meshagent__"

_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder()
_python_encoder = json.JSONEncoder(default=str)

_EMPTY_META_COMPACT = b'"__meshagent__":{"v":1,"otel":{}}}'
_EMPTY_META_PYTHON = '"__meshagent__": {"v": 1, "otel": {}}}'
_META_KEY_BYTES = b'"__meshagent__"'

T = TypeVar("T")


class JsonStyle(enum.Enum):
    """How header JSON is written. Both are accepted by every receiver."""

    COMPACT = "compact"
    PYTHON = "python"


def encode_header(
    header: Mapping[str, Any] | msgspec.Struct,
    *,
    trace: Mapping[str, str] | None = None,
    style: JsonStyle = JsonStyle.COMPACT,
) -> bytes:
    """Header JSON bytes, with `__meshagent__` appended as the last key.

    `trace` is the W3C trace-context carrier for `otel` (`{}` when None).
    """
    if style is JsonStyle.PYTHON:
        return _encode_header_python(header, trace)
    if isinstance(header, dict) and META_KEY in header:
        header = {k: v for k, v in header.items() if k != META_KEY}
    body = _json_encoder.encode(header)
    if body[:1] != b"{":
        raise TypeError(f"a message header must be a JSON object, not {type(header).__name__}")
    if trace:
        meta = b'"__meshagent__":{"v":1,"otel":' + _json_encoder.encode(trace) + b"}}"
    else:
        meta = _EMPTY_META_COMPACT
    if len(body) == 2:
        return b"{" + meta
    return body[:-1] + b"," + meta


def _encode_header_python(
    header: Mapping[str, Any] | msgspec.Struct, trace: Mapping[str, str] | None
) -> bytes:
    if isinstance(header, msgspec.Struct):
        header = msgspec.to_builtins(header)
    elif not isinstance(header, Mapping):
        raise TypeError(f"a message header must be a JSON object, not {type(header).__name__}")
    # Python dict semantics, as the official client: a caller key named __meshagent__ keeps
    # its position and takes the reserved value.
    full = dict(header)
    full[META_KEY] = {"v": 1, "otel": dict(trace) if trace else {}}
    return _python_encoder.encode(full).encode("utf-8")


def pack_message(
    header: Mapping[str, Any] | msgspec.Struct,
    payload: bytes | bytearray | memoryview = b"",
    *,
    trace: Mapping[str, str] | None = None,
    style: JsonStyle = JsonStyle.COMPACT,
) -> bytes:
    """Envelope bytes for `header` and `payload`."""
    header_bytes = encode_header(header, trace=trace, style=style)
    return b"".join((len(header_bytes).to_bytes(8, "big"), header_bytes, payload))


def split_message(data: bytes | bytearray | memoryview) -> tuple[memoryview, bytes]:
    """(header JSON bytes, payload) of an envelope, without decoding the JSON."""
    size = len(data)
    if size < HEADER_LENGTH_SIZE:
        raise EnvelopeError("message is too short")
    header_length = int.from_bytes(data[:HEADER_LENGTH_SIZE], "big")
    end = HEADER_LENGTH_SIZE + header_length
    if size < end:
        raise EnvelopeError("message header is incomplete")
    view = memoryview(data)
    return view[HEADER_LENGTH_SIZE:end], bytes(view[end:])


def unpack_message(data: bytes | bytearray | memoryview) -> tuple[dict[str, Any], bytes]:
    """(header, payload) of an envelope; the header is a dict without `__meshagent__`."""
    header_bytes, payload = split_message(data)
    try:
        header = _json_decoder.decode(header_bytes)
    except msgspec.DecodeError as error:
        raise EnvelopeError(f"invalid message header: {error}") from None
    if not isinstance(header, dict):
        raise EnvelopeError("message header must be an object")
    header.pop(META_KEY, None)
    return header, payload


def decode_header_as(header_bytes: bytes | memoryview, type: type[T]) -> T:
    """Decode header JSON straight into a msgspec Struct.

    Unknown keys, `__meshagent__` among them, are ignored by the Struct. A header that does not
    fit raises `EnvelopeError` naming what is wrong.
    """
    try:
        return msgspec.json.decode(header_bytes, type=type)
    except msgspec.DecodeError as error:
        _raise_for_undecodable(header_bytes)
        raise EnvelopeError(f"invalid {_type_label(type)} header: {error}") from None


def strip_meta(header: dict[str, Any]) -> dict[str, Any]:
    header.pop(META_KEY, None)
    return header


def _raise_for_undecodable(header_bytes: bytes | memoryview) -> None:
    try:
        value = _json_decoder.decode(header_bytes)
    except msgspec.DecodeError as error:
        raise EnvelopeError(f"invalid message header: {error}") from None
    if not isinstance(value, dict):
        raise EnvelopeError("message header must be an object")


def _type_label(type: Any) -> str:
    return getattr(type, "__name__", str(type))
