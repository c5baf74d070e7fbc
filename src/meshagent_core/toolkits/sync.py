"""`sync` toolkit contract (protocol/documents.md §4, protocol/room-apis.md §7): collaborative documents.

| tool | input | answer |
|---|---|---|
| `create` | `json` `CreateInput` | `empty` |
| `describe` | `json` `DescribeInput` | `json`: the document's JSON form (an object) |
| `open` | request stream: `start` chunk, then `sync` chunks, then control `close` | response stream: `state` chunk, then `sync` chunks, then control `close` |

Every stream chunk is `binary` content whose `headers` are exactly the Struct below and whose
payload is the standard base64 of a Yjs v1 update (empty: nothing to apply). The official
Python client forbids extra header keys in both directions.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

TOOLKIT = "sync"

#: Client-side codes of the official client (protocol/documents.md §4.7).
SYNC_NOT_CONNECTED = 4001
SYNC_ALREADY_CONNECTED = 4002


class CreateInput(msgspec.Struct):
    """`create`: make a document at `path` from `json`, with `schema` or the one its
    extension names (`.schemas/<ext>.json`)."""

    path: str
    json: dict[str, Any] | None = None
    schema: dict[str, Any] | None = None
    schema_path: str | None = None


class DescribeInput(msgspec.Struct):
    """`describe`: the JSON form of the document at `path`."""

    path: str
    schema_path: str | None = None


class StartHeaders(msgspec.Struct, tag_field="kind", tag="start"):
    """First request chunk of `open`. `vector`: base64 state vector of what the client
    already has (on reconnect), so the `state` answer is only the difference."""

    path: str
    create: bool = True
    vector: str | None = None
    schema: dict[str, Any] | None = None
    schema_path: str | None = None
    initial_json: dict[str, Any] | None = None


class SyncHeaders(msgspec.Struct, tag_field="kind", tag="sync"):
    """A request chunk carrying one update (client → server)."""


class StateHeaders(msgspec.Struct, tag_field="kind", tag="state"):
    """First response chunk of `open`: the document's schema and state."""

    path: str
    schema: dict[str, Any]


class RelayHeaders(msgspec.Struct, tag_field="kind", tag="sync"):
    """A response chunk carrying one update (server → client)."""

    path: str


RequestHeaders = StartHeaders | SyncHeaders
ResponseHeaders = StateHeaders | RelayHeaders
RequestKind = Literal["start", "sync"]


def normalize_path(path: str) -> str:
    """The path as the official client sends and compares it (protocol/documents.md §4.2): every leading
    `./` stripped, then every leading `/` (in that order only: `/./a` is `./a`); `.` is
    the empty path."""
    while path.startswith("./"):
        path = path[2:]
    path = path.lstrip("/")
    return "" if path == "." else path


def headers_to_builtins(headers: msgspec.Struct) -> dict[str, Any]:
    return msgspec.to_builtins(headers)


_REQUEST_TYPE: Any = RequestHeaders
_RESPONSE_TYPE: Any = ResponseHeaders


def request_headers(headers: Any) -> StartHeaders | SyncHeaders:
    """Validate a request chunk's headers (`msgspec.ValidationError` when they are not
    a `start` or `sync` header; unknown keys are ignored)."""
    return msgspec.convert(headers, _REQUEST_TYPE)


def response_headers(headers: Any) -> StateHeaders | RelayHeaders:
    """Validate a response chunk's headers, (unknown keys are ignored: the official client is stricter, our server never sends any)."""
    return msgspec.convert(headers, _RESPONSE_TYPE)


__all__ = [
    "SYNC_ALREADY_CONNECTED",
    "SYNC_NOT_CONNECTED",
    "TOOLKIT",
    "CreateInput",
    "DescribeInput",
    "RelayHeaders",
    "RequestHeaders",
    "ResponseHeaders",
    "StartHeaders",
    "StateHeaders",
    "SyncHeaders",
    "headers_to_builtins",
    "normalize_path",
    "request_headers",
    "response_headers",
]
