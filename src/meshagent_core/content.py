"""Content values: the typed results, tool arguments and stream chunks (protocol/wire.md §5).

A content value is a JSON header with a `type` discriminator plus, for `file` and `binary`,
bytes that travel as the envelope payload. Each type is one msgspec Struct; names follow the
official client (`JsonContent`, `TextContent`, `FileContent`, ...).

`FileContent` and `BinaryContent` hold their bytes in `data`, which never appears in the JSON
header: `content.header()` gives the header part, `content.data` the payload part.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Any, Mapping, Union

import msgspec

from .envelope import JsonStyle, decode_json, pack_message, split_message
from .errors import EnvelopeError, RoomException
from .jsondepth import MAX_JSON_DEPTH, BoundedDecoder


class ControlCloseStatus(IntEnum):
    NORMAL = 1000
    INVALID_DATA = 1007


def _lenient_int(value: Any) -> int | None:
    """The official decoder's rule for `code` / `status_code`: bool -> None, else int() or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


class _Content(msgspec.Struct, tag_field="type", kw_only=True):
    """Base of every content type."""

    @property
    def data(self) -> bytes:
        return b""

    def header(self) -> msgspec.Struct:
        """The JSON header part (what goes under `arguments` / `chunk`, or the envelope)."""
        return self

    def pack(self, *, style: JsonStyle = JsonStyle.COMPACT) -> bytes:
        """This content as a complete envelope (header + payload)."""
        return pack_message(self.header(), self.data, style=style)


class JsonContent(_Content, tag="json"):
    json: Any

    def __getitem__(self, name: str) -> Any:
        return self.json[name]


class TextContent(_Content, tag="text"):
    text: str


class EmptyContent(_Content, tag="empty"):
    pass


class ErrorContent(_Content, tag="error", omit_defaults=True):
    text: str
    code: Any = None

    def __post_init__(self) -> None:
        self.code = _lenient_int(self.code)

    def to_exception(self) -> RoomException:
        return RoomException(self.text, code=self.code)


class LinkContent(_Content, tag="link"):
    name: str
    url: str


class RawOutputsContent(_Content, tag="raw"):
    outputs: list[Any]


class ControlContent(_Content, tag="control", omit_defaults=True):
    """Stream control: `open` starts a stream, `close` ends it (status 1000 = normal)."""

    method: str
    status_code: Any = None
    message: Any = None

    def __post_init__(self) -> None:
        if self.method == "close":
            status = _lenient_int(self.status_code)
            self.status_code = ControlCloseStatus.NORMAL.value if status is None else status
            if self.message is not None and not isinstance(self.message, str):
                self.message = str(self.message)
        else:
            # Only a close carries status and message on the wire.
            self.status_code = None
            self.message = None

    @property
    def is_open(self) -> bool:
        return self.method == "open"

    @property
    def is_close(self) -> bool:
        return self.method == "close"

    @property
    def is_abnormal_close(self) -> bool:
        return self.method == "close" and self.status_code != ControlCloseStatus.NORMAL


class _FileHeader(msgspec.Struct, tag_field="type", tag="file"):
    name: str
    mime_type: str


class _BinaryHeader(msgspec.Struct, tag_field="type", tag="binary"):
    headers: Any = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.headers, dict):
            self.headers = {}


class FileContent(_Content, tag="file"):
    name: str
    mime_type: str
    data: bytes = b""  # type: ignore[assignment]

    def header(self) -> msgspec.Struct:
        return _FileHeader(self.name, self.mime_type)


class BinaryContent(_Content, tag="binary"):
    headers: dict[str, Any] = msgspec.field(default_factory=dict)
    data: bytes = b""  # type: ignore[assignment]

    def header(self) -> msgspec.Struct:
        return _BinaryHeader(self.headers)


Content = Union[
    JsonContent,
    TextContent,
    EmptyContent,
    ErrorContent,
    FileContent,
    BinaryContent,
    LinkContent,
    RawOutputsContent,
    ControlContent,
]

#: What a content header decodes to: the payload-less types as they are, file and binary as
#: header-only Structs that `_with_payload` completes.
ContentHeader = Union[
    JsonContent,
    TextContent,
    EmptyContent,
    ErrorContent,
    LinkContent,
    RawOutputsContent,
    ControlContent,
    _FileHeader,
    _BinaryHeader,
]

CONTENT_TYPES: frozenset[str] = frozenset(
    {"json", "text", "empty", "error", "file", "binary", "link", "raw", "control"}
)

CONTROL_OPEN = ControlContent(method="open")
CONTROL_CLOSE = ControlContent(method="close")


def _with_payload(header: Any, payload: bytes) -> Content:
    if type(header) is _FileHeader:
        return FileContent(name=header.name, mime_type=header.mime_type, data=payload)
    if type(header) is _BinaryHeader:
        return BinaryContent(headers=header.headers, data=payload)
    return header


def pack_content(content: Content, *, style: JsonStyle = JsonStyle.COMPACT) -> bytes:
    """Envelope bytes of one content value."""
    return pack_message(content.header(), content.data, style=style)


_content_header_decoder = BoundedDecoder(ContentHeader)
_HEADER_CLASSES: dict[str, type] = {
    cls.__struct_config__.tag: cls  # type: ignore[attr-defined]
    for cls in ContentHeader.__args__  # type: ignore[attr-defined]
}


def unpack_content(data: bytes | bytearray | memoryview, limit: int = MAX_JSON_DEPTH) -> Content:
    """Decode an envelope that holds one content value (a response, a hosted tool's result)."""
    header_bytes, payload = split_message(data)
    try:
        header = _content_header_decoder.decode(header_bytes, limit)
    except msgspec.DecodeError:
        # Slow path, only to name the problem precisely (or to read NaN and lone surrogates).
        header_dict = _decode_object(header_bytes, limit)
        return content_from_header(header_dict, payload)
    return _with_payload(header, payload)


def content_from_header(header: Mapping[str, Any], payload: bytes = b"") -> Content:
    """A content value from an already-decoded header (e.g. the `chunk` of a chunk message)."""
    content_type = header.get("type")
    if not isinstance(content_type, str):
        raise EnvelopeError("content header is missing required 'type'")
    cls = _HEADER_CLASSES.get(content_type)
    if cls is None:
        raise EnvelopeError(f"unsupported content type: {content_type}")
    try:
        decoded = msgspec.convert(header, type=cls)
    except msgspec.ValidationError as error:
        raise EnvelopeError(_describe_invalid(content_type, error)) from None
    return _with_payload(decoded, payload)


def is_content_header(value: Any) -> bool:
    """True when `value` is an object whose `type` names a content type."""
    return isinstance(value, dict) and value.get("type") in CONTENT_TYPES


def to_content(value: Content | Mapping[str, Any] | str | None) -> Content:
    """The official client's conversions: object -> json, string -> text, None -> empty."""
    if value is None:
        return EmptyContent()
    if isinstance(value, str):
        return TextContent(text=value)
    if isinstance(value, _Content):
        return value  # type: ignore[return-value]
    if isinstance(value, Mapping):
        return JsonContent(json=dict(value))
    raise TypeError(f"cannot turn {type(value).__name__} into content")


_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


def _describe_invalid(content_type: str, error: msgspec.ValidationError) -> str:
    match = _MISSING_FIELD.search(str(error))
    if match:
        return f"{content_type} content is missing required field '{match.group(1)}'"
    return f"{content_type} content is invalid: {error}"


def _decode_object(header_bytes: bytes | memoryview, limit: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    value = decode_json(header_bytes, limit)
    if not isinstance(value, dict):
        raise EnvelopeError("message header must be an object")
    return value


__all__ = [
    "BinaryContent",
    "CONTROL_CLOSE",
    "CONTROL_OPEN",
    "Content",
    "ContentHeader",
    "ControlCloseStatus",
    "ControlContent",
    "EmptyContent",
    "ErrorContent",
    "FileContent",
    "JsonContent",
    "LinkContent",
    "RawOutputsContent",
    "TextContent",
    "content_from_header",
    "is_content_header",
    "pack_content",
    "to_content",
    "unpack_content",
]
