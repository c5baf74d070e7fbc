"""Packet framing: messages <-> 1 KiB packets (ROOM_WIRE §2).

A message `(id, type, data)` travels as one header packet (`id u64, index=0 u32, count u32,
type utf-8`) followed by `count` data packets (`id u64, index u32, <=1024 bytes`). Each packet
is one WebSocket binary message.

`encode_message` and `PacketWriter` produce packets; `PacketReader` reassembles them. Unlike
the reference receiver, the reader never carries bytes of an abandoned message into a later
one: any packet that cannot continue the message in progress raises `FramingError` and the
reader drops the partial message, so the next header packet starts clean. The size announced
by a header packet is checked against `max_message_size` before anything is buffered.
"""

from __future__ import annotations

import struct
from operator import itemgetter
from typing import Iterable, Iterator, NamedTuple, Sequence

from .errors import FramingError, MessageTooLarge

CHUNK_SIZE = 1024
HEADER_PREFIX_SIZE = 16
DATA_PREFIX_SIZE = 12
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
MAX_PACKET_SIZE = DATA_PREFIX_SIZE + CHUNK_SIZE

_HEADER = struct.Struct(">QII")
_DATA = struct.Struct(">QI")
_U64_MAX = (1 << 64) - 1
_ID_FIELD = itemgetter(slice(0, 8))
_INDEX_FIELD = itemgetter(slice(8, 12))
_BODY = itemgetter(slice(DATA_PREFIX_SIZE, None))


class Message(NamedTuple):
    """A reassembled message."""

    id: int
    type: str
    data: bytes


def packet_count(size: int) -> int:
    """Number of data packets for `size` bytes of message data."""
    return -(-size // CHUNK_SIZE)


def encode_message(message_id: int, type: str, data: bytes | bytearray | memoryview) -> list[bytes]:
    """All packets of one message, header packet first."""
    packets: list[bytes] = []
    _append_packets(packets, message_id, type, data)
    return packets


def _append_packets(
    out: list[bytes], message_id: int, type: str, data: bytes | bytearray | memoryview
) -> None:
    if not 0 <= message_id <= _U64_MAX:
        raise ValueError(f"message id {message_id} does not fit in 64 bits")
    size = len(data)
    count = -(-size // CHUNK_SIZE)
    out.append(_HEADER.pack(message_id, 0, count) + type.encode("utf-8"))
    if count == 0:
        return
    view = memoryview(data)
    pack = _DATA.pack
    index = 1
    for start in range(0, size, CHUNK_SIZE):
        out.append(pack(message_id, index) + view[start : start + CHUNK_SIZE])
        index += 1


class PacketWriter:
    """Queues messages and hands back the packets of all of them in one batch.

    The packets of one message are contiguous and messages keep their queue order, which is
    what the reference receiver requires (it cannot reassemble interleaved messages).
    """

    __slots__ = ("_packets",)

    def __init__(self) -> None:
        self._packets: list[bytes] = []

    def add(self, message_id: int, type: str, data: bytes | bytearray | memoryview) -> None:
        _append_packets(self._packets, message_id, type, data)

    def __len__(self) -> int:
        return len(self._packets)

    def flush(self) -> list[bytes]:
        """Every packet queued since the last flush, in order; the queue is left empty."""
        packets, self._packets = self._packets, []
        return packets


class PacketReader:
    """Reassembles packets into messages.

    `receive_packet` returns the completed `Message`, or None while a message is still in
    progress. The reader keeps slices of the packets it is fed until their message completes,
    so a caller must not reuse a mutable buffer it has fed (WebSocket libraries hand out
    immutable `bytes`). A packet that breaks framing raises `FramingError` (or `MessageTooLarge`); the
    partial message is dropped and the reader is ready for the next header packet.
    """

    __slots__ = ("max_message_size", "_id", "_type", "_count", "_next_index", "_chunks")

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_message_size < 0:
            raise ValueError("max_message_size must not be negative")
        self.max_message_size = max_message_size
        self._reset()

    def _reset(self) -> None:
        self._id = -1
        self._type = ""
        self._count = 0
        self._next_index = 0
        self._chunks: list[bytes | bytearray | memoryview] = []

    @property
    def in_progress(self) -> bool:
        """True while a message has been started and not completed."""
        return self._next_index != 0

    @property
    def buffered(self) -> int:
        """Bytes of the message in progress held so far."""
        return sum(len(chunk) for chunk in self._chunks)

    def receive_packets(self, packets: Iterable[bytes]) -> list[Message]:
        """Feed several packets; the completed messages in order. Raises at the first bad
        packet (use `iter_messages` to keep the messages completed before it)."""
        return list(self.iter_messages(packets))

    def iter_messages(self, packets: Iterable[bytes]) -> Iterator[Message]:
        """Feed several packets, yielding each message as it completes.

        A run of full data packets of the message in progress is checked and taken in bulk
        (ids, indices and sizes compared for the whole run at once), which is what makes a
        large message cheap to reassemble; the last packet of each message, and any run that
        does not check out, goes through `receive_packet`, which names the exact problem.
        """
        if not isinstance(packets, (list, tuple)):
            packets = list(packets)
        receive = self.receive_packet
        position, end = 0, len(packets)
        while position < end:
            if self._next_index and self._next_index < self._count:
                taken = self._take_full_packets(packets, position)
                if taken:
                    position += taken
                    continue
            message = receive(packets[position])
            position += 1
            if message is not None:
                yield message

    def _take_full_packets(self, packets: Sequence[bytes], position: int) -> int:
        first = self._next_index
        run = packets[position : position + (self._count - first)]
        count = len(run)
        if count < 2:
            return 0
        lengths = set(map(len, run))
        if (
            len(lengths) != 1
            or MAX_PACKET_SIZE not in lengths
            or b"".join(map(_ID_FIELD, run)) != self._id.to_bytes(8, "big") * count
            or b"".join(map(_INDEX_FIELD, run)) != struct.pack(f">{count}I", *range(first, first + count))
        ):
            return 0
        self._chunks.extend(map(_BODY, run))
        self._next_index = first + count
        return count

    def receive_packet(self, packet: bytes | bytearray | memoryview) -> Message | None:
        if len(packet) < DATA_PREFIX_SIZE:
            raise self._fail(FramingError(f"packet of {len(packet)} bytes is shorter than a packet prefix"))
        message_id, index = _DATA.unpack_from(packet)
        if index == 0:
            return self._receive_header(packet, message_id)
        if self._next_index == 0:
            raise FramingError(f"data packet {index} of message {message_id} arrived without a header packet")
        if message_id != self._id:
            raise self._fail(
                FramingError(
                    f"data packet of message {message_id} arrived while message {self._id} "
                    "was in progress (interleaved messages are not allowed)"
                )
            )
        if index != self._next_index:
            raise self._fail(FramingError(f"message {message_id}: expected packet {self._next_index}, got {index}"))
        size = len(packet) - DATA_PREFIX_SIZE
        if size == 0:
            raise self._fail(FramingError(f"message {message_id}: data packet {index} is empty"))
        if size > CHUNK_SIZE:
            raise self._fail(
                FramingError(f"message {message_id}: data packet {index} carries {size} bytes (at most {CHUNK_SIZE})")
            )
        if index != self._count and size != CHUNK_SIZE:
            raise self._fail(
                FramingError(
                    f"message {message_id}: data packet {index} of {self._count} is short "
                    f"({size} bytes); only the last packet may be"
                )
            )
        if index == self._count and (index - 1) * CHUNK_SIZE + size > self.max_message_size:
            raise self._fail(
                MessageTooLarge(
                    f"message {message_id} is {(index - 1) * CHUNK_SIZE + size} bytes, "
                    f"over the {self.max_message_size}-byte limit",
                    message_id=message_id,
                    limit=self.max_message_size,
                )
            )
        self._chunks.append(packet[DATA_PREFIX_SIZE:])
        if index == self._count:
            message = Message(self._id, self._type, b"".join(self._chunks))
            self._reset()
            return message
        self._next_index = index + 1
        return None

    def _receive_header(self, packet: bytes | bytearray | memoryview, message_id: int) -> Message | None:
        if self._next_index != 0:
            abandoned = self._id
            raise self._fail(
                FramingError(
                    f"header packet of message {message_id} arrived while message {abandoned} "
                    "was in progress (interleaved messages are not allowed)"
                )
            )
        if len(packet) < HEADER_PREFIX_SIZE:
            raise FramingError(
                f"header packet of {len(packet)} bytes is shorter than {HEADER_PREFIX_SIZE}"
            )
        count = _HEADER.unpack_from(packet)[2]
        if count * CHUNK_SIZE - (CHUNK_SIZE - 1) > self.max_message_size:
            raise MessageTooLarge(
                f"message {message_id} announces {count} packets, more than the "
                f"{self.max_message_size}-byte limit allows",
                message_id=message_id,
                limit=self.max_message_size,
            )
        try:
            type = bytes(packet[HEADER_PREFIX_SIZE:]).decode("utf-8")
        except UnicodeDecodeError as error:
            raise FramingError(f"message {message_id}: type is not UTF-8 ({error})") from None
        if count == 0:
            return Message(message_id, type, b"")
        self._id = message_id
        self._type = type
        self._count = count
        self._next_index = 1
        return None

    def _fail(self, error: FramingError) -> FramingError:
        """Drop the message in progress; returns `error` for the caller to raise."""
        self._reset()
        return error
