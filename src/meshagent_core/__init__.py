"""meshagent_core: the sans-IO MeshAgent protocol core.

No sockets, no event loop, no threads, no clock reads: packet framing, the message envelope,
content values, the session state machines, tokens and scopes, as plain codecs and state
machines that an adapter drives.
"""

from .content import (
    CONTROL_CLOSE,
    CONTROL_OPEN,
    BinaryContent,
    Content,
    ControlCloseStatus,
    ControlContent,
    EmptyContent,
    ErrorContent,
    FileContent,
    JsonContent,
    LinkContent,
    RawOutputsContent,
    TextContent,
    pack_content,
    to_content,
    unpack_content,
)
from .envelope import JsonStyle, pack_message, unpack_message
from .errors import (
    ConnectionLost,
    EnvelopeError,
    ErrorCode,
    FramingError,
    LocalProtocolError,
    MessageTooLarge,
    ProtocolError,
    RemoteProtocolError,
    RoomException,
)
from .framing import CHUNK_SIZE, Message, PacketReader, PacketWriter, encode_message
from .session import ClientSession, ServerSession, SessionState, ToolInvocation

__all__ = [
    "BinaryContent",
    "CHUNK_SIZE",
    "CONTROL_CLOSE",
    "CONTROL_OPEN",
    "ClientSession",
    "ConnectionLost",
    "Content",
    "ControlCloseStatus",
    "ControlContent",
    "EmptyContent",
    "EnvelopeError",
    "ErrorCode",
    "ErrorContent",
    "FileContent",
    "FramingError",
    "JsonContent",
    "JsonStyle",
    "LinkContent",
    "LocalProtocolError",
    "Message",
    "MessageTooLarge",
    "PacketReader",
    "PacketWriter",
    "ProtocolError",
    "RawOutputsContent",
    "RemoteProtocolError",
    "RoomException",
    "ServerSession",
    "SessionState",
    "TextContent",
    "ToolInvocation",
    "encode_message",
    "pack_content",
    "pack_message",
    "to_content",
    "unpack_content",
    "unpack_message",
]
