"""The message envelope: `header_len u64 BE || header JSON || payload` (protocol/wire.md §4.1).

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
import struct
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Mapping, TypeVar

import msgspec

from .errors import EnvelopeError
from .jsondepth import MAX_JSON_DEPTH, BoundedDecoder, decode_bounded, loads_bounded

HEADER_LENGTH_SIZE = 8
META_KEY = "__meshagent__"

_json_encoder = msgspec.json.Encoder()
_json_decoder = BoundedDecoder()
_python_encoder = json.JSONEncoder(default=str)
# json.dumps() builds a C encoder on every call; keeping one makes PYTHON style ~2x faster.
_python_c_encoder = (
    c_make_encoder(None, str, encode_basestring_ascii, None, ": ", ", ", False, False, True)
    if c_make_encoder is not None
    else None
)
_U64 = struct.Struct(">Q")

_EMPTY_META_COMPACT = b'"__meshagent__":{"v":1,"otel":{}}}'
_EMPTY_META_PYTHON = '"__meshagent__": {"v": 1, "otel": {}}}'

T = TypeVar("T")


class JsonStyle(enum.Enum):
    """How header JSON is written. Both are accepted by every receiver."""

    COMPACT = "compact"
    PYTHON = "python"


_PYTHON_STYLE = JsonStyle.PYTHON  # a global lookup instead of an enum attribute one, per message


def encode_header(
    header: Mapping[str, Any] | msgspec.Struct,
    *,
    trace: Mapping[str, str] | None = None,
    style: JsonStyle = JsonStyle.COMPACT,
) -> bytes:
    """Header JSON bytes, with `__meshagent__` appended as the last key.

    `trace` is the W3C trace-context carrier for `otel` (`{}` when None). In COMPACT style,
    what JSON cannot carry as UTF-8 (a lone surrogate) falls back to PYTHON style's escapes;
    NaN and infinities become `null` (the official client writes bare `NaN`, which is not JSON).
    """
    if style is _PYTHON_STYLE:
        return _encode_header_python(header, trace)
    return _encode_header_compact(header, trace)


def _encode_header_compact(header: Mapping[str, Any] | msgspec.Struct, trace: Mapping[str, str] | None) -> bytes:
    if isinstance(header, dict) and META_KEY in header:
        header = {k: v for k, v in header.items() if k != META_KEY}
    try:
        body = _json_encoder.encode(header)
    except UnicodeEncodeError:
        return _encode_header_python(header, trace)
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
    if type(header) is dict and not trace and _python_c_encoder is not None and META_KEY not in header:
        body = "".join(_python_c_encoder(header, 0))
        if len(body) == 2:
            return ("{" + _EMPTY_META_PYTHON).encode("ascii")
        return (body[:-1] + ", " + _EMPTY_META_PYTHON).encode("ascii")
    if isinstance(header, msgspec.Struct):
        header = msgspec.to_builtins(header)
    elif not isinstance(header, Mapping):
        raise TypeError(f"a message header must be a JSON object, not {type(header).__name__}")
    if trace or META_KEY in header or _python_c_encoder is None or type(header) is not dict:
        # Python dict semantics, as the official client: a caller key named __meshagent__
        # keeps its position and takes the reserved value.
        full = dict(header)
        full[META_KEY] = {"v": 1, "otel": dict(trace) if trace else {}}
        return _python_encoder.encode(full).encode("utf-8")
    body = "".join(_python_c_encoder(header, 0))
    if len(body) == 2:
        return ("{" + _EMPTY_META_PYTHON).encode("ascii")
    return (body[:-1] + ", " + _EMPTY_META_PYTHON).encode("ascii")


def pack_message(
    header: Mapping[str, Any] | msgspec.Struct,
    payload: bytes | bytearray | memoryview | None = b"",
    *,
    trace: Mapping[str, str] | None = None,
    style: JsonStyle = JsonStyle.COMPACT,
) -> bytes:
    """Envelope bytes for `header` and `payload` (None is the same as no payload)."""
    if style is _PYTHON_STYLE:
        header_bytes = _encode_header_python(header, trace)
    else:
        header_bytes = _encode_header_compact(header, trace)
    if payload:
        return b"".join((_U64.pack(len(header_bytes)), header_bytes, payload))
    return _U64.pack(len(header_bytes)) + header_bytes


def split_message(data: bytes | bytearray | memoryview) -> tuple[bytes | memoryview, bytes]:
    """(header JSON bytes, payload) of an envelope, without decoding the JSON."""
    size = len(data)
    if size < HEADER_LENGTH_SIZE:
        raise EnvelopeError("message is too short")
    end = HEADER_LENGTH_SIZE + _U64.unpack_from(data)[0]
    if size < end:
        raise EnvelopeError("message header is incomplete")
    if type(data) is bytes:
        return data[HEADER_LENGTH_SIZE:end], data[end:] if end < size else b""
    view = memoryview(data)
    return view[HEADER_LENGTH_SIZE:end], bytes(view[end:])


def decode_json(header_bytes: bytes | memoryview, limit: int = MAX_JSON_DEPTH) -> Any:
    """Any JSON value, nested at most `limit` deep. Falls back to the standard library for what
    the official client can send but strict JSON parsers refuse: bare NaN/Infinity, lone
    surrogate escapes."""
    try:
        return _json_decoder.decode(header_bytes, limit)
    except msgspec.DecodeError as error:
        try:
            return loads_bounded(bytes(header_bytes), limit)
        except ValueError:
            raise EnvelopeError(f"invalid message header: {error}") from None


def unpack_message(data: bytes | bytearray | memoryview, limit: int = MAX_JSON_DEPTH) -> tuple[dict[str, Any], bytes]:
    """(header, payload) of an envelope; the header is a dict without `__meshagent__`."""
    header_bytes, payload = split_message(data)
    header = decode_json(header_bytes, limit)
    if type(header) is not dict:
        raise EnvelopeError("message header must be an object")
    header.pop(META_KEY, None)
    return header, payload


def decode_header_as(header_bytes: bytes | memoryview, type: type[T]) -> T:
    """Decode header JSON straight into a msgspec Struct.

    Unknown keys, `__meshagent__` among them, are ignored by the Struct. A header that does not
    fit raises `EnvelopeError` naming what is wrong.
    """
    try:
        return decode_bounded(header_bytes, type)
    except msgspec.DecodeError as error:
        _raise_for_undecodable(header_bytes)
        raise EnvelopeError(f"invalid {_type_label(type)} header: {error}") from None


def strip_meta(header: dict[str, Any]) -> dict[str, Any]:
    header.pop(META_KEY, None)
    return header


def _raise_for_undecodable(header_bytes: bytes | memoryview) -> None:
    if not isinstance(decode_json(header_bytes), dict):
        raise EnvelopeError("message header must be an object")


def _type_label(type: Any) -> str:
    return getattr(type, "__name__", str(type))
