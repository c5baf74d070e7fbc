"""Error codes and exception types shared by every layer.

Two families, as in h11: a *local* protocol error means this side was asked to do something
the protocol forbids (a bug in the caller); a *remote* protocol error means the peer sent
something malformed. Application-level failures travel as `RoomException` with a wire code.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Integer codes carried by `error` content (protocol/wire.md §7.2)."""

    PERMISSION_DENIED = 1001
    INVALID_REQUEST = 1002
    NOT_FOUND = 1003
    ALREADY_EXISTS = 1004
    CONFLICT = 1005
    INVALID_STATE = 1006
    DEPENDENCY_MISSING = 1007
    OPERATION_FAILED = 1008
    TIMEOUT = 1009
    UNEXPECTED_RESPONSE_TYPE = 1100
    MEMORY_NOT_FOUND = 2001
    MEMORY_ALREADY_EXISTS = 2002
    STORAGE_NOT_FOUND = 3001
    STORAGE_RECURSIVE_REQUIRED = 3002
    STORAGE_INVALID_HANDLE = 3003
    STORAGE_INVALID_PATH = 3004
    STORAGE_ALREADY_EXISTS = 3005
    SYNC_NOT_CONNECTED = 4001
    SYNC_ALREADY_CONNECTED = 4002
    QUEUE_NOT_FOUND = 5001
    QUEUE_ALREADY_EXISTS = 5002
    CONTAINER_NOT_FOUND = 6001
    SERVICE_NOT_FOUND = 7001
    SERVICE_RESTART_NOT_ALLOWED = 7002
    SERVICE_ALREADY_EXISTS = 7003


class RoomException(Exception):
    """A failed room operation: the text and code of an `error` content, or a local failure.

    `code` is the wire error code (None when the peer sent none). `status_code` follows the
    official client: 400 for error responses, the close status for abnormally closed streams.
    """

    def __init__(self, message: str, code: int | None = None, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class ConnectionLost(RoomException):
    """The connection ended while a request or stream was still waiting for its answer."""


class ProtocolError(Exception):
    """Base class of protocol violations."""

    #: Code reported on the wire when this error is turned into `error` content.
    code: int = ErrorCode.INVALID_REQUEST


class LocalProtocolError(ProtocolError):
    """This side tried to do something the protocol state does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break the protocol."""


class FramingError(RemoteProtocolError):
    """A packet that cannot belong to a well-formed message (protocol/wire.md §3.6).

    Raised by `PacketReader.receive_packets`, `completed` holds the messages the same batch
    finished before the bad packet.
    """

    completed: list = []


class MessageTooLarge(FramingError):
    """A header packet announced a message over the configured maximum size."""

    def __init__(self, message: str, *, message_id: int, limit: int) -> None:
        super().__init__(message)
        self.message_id = message_id
        self.limit = limit


class EnvelopeError(RemoteProtocolError):
    """A message whose envelope or content header cannot be decoded (protocol/wire.md §4.4)."""
