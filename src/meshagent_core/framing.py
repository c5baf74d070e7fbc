"""Packet framing: messages <-> 1 KiB packets (protocol/wire.md §3).

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
from typing import Iterable, NamedTuple, Sequence

from .errors import FramingError, MessageTooLarge

CHUNK_SIZE = 1024
HEADER_PREFIX_SIZE = 16
DATA_PREFIX_SIZE = 12
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
MAX_PACKET_SIZE = DATA_PREFIX_SIZE + CHUNK_SIZE

_HEADER = struct.Struct(">QII")
_DATA = struct.Struct(">QI")
_ID_FIELD = itemgetter(slice(0, 8))
_INDEX_FIELD = itemgetter(slice(8, 12))
_BODY = itemgetter(slice(DATA_PREFIX_SIZE, None))
#: Big-endian u32 indices 0..4096 back to back, to check a run's index fields in one compare.
_INDEX_TABLE_SIZE = 4096
_INDEX_TABLE = struct.pack(f">{_INDEX_TABLE_SIZE + 1}I", *range(_INDEX_TABLE_SIZE + 1))
#: From this many packets on, bodies are joined from views (one copy) rather than slices.
_VIEW_JOIN_MIN_PACKETS = 64




class Message(NamedTuple):
    """A reassembled message."""

    id: int
    type: str
    data: bytes


_new_message = tuple.__new__  # _new_message(Message, (id, type, data)): NamedTuple's __new__ minus its Python frame


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
    size = len(data)
    try:
        if size <= CHUNK_SIZE:
            if size:
                out.append(_HEADER.pack(message_id, 0, 1) + type.encode("utf-8"))
                out.append(_DATA.pack(message_id, 1) + data)
            else:
                out.append(_HEADER.pack(message_id, 0, 0) + type.encode("utf-8"))
            return
        count = -(-size // CHUNK_SIZE)
        out.append(_HEADER.pack(message_id, 0, count) + type.encode("utf-8"))
    except struct.error:
        raise ValueError(f"message id {message_id} does not fit in 64 bits") from None
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
    progress. `bytes` packets are kept as views until their message completes (one copy, at
    the end); other buffers are copied on arrival, so a caller may reuse them. A packet that breaks framing raises `FramingError` (or `MessageTooLarge`); the
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

    def receive_packets(self, packets: Iterable[bytes | bytearray | memoryview]) -> list[Message]:
        """Feed a batch of packets (e.g. all that one socket read produced); the completed
        messages in order.

        A message whose packets are all in the batch, and runs of full data packets of a
        message in progress, are checked and taken in bulk (ids, indices and sizes compared for
        the whole run at once), which is what makes reassembly cheap. Anything that does not
        check out goes through `receive_packet`, which names the exact problem: the
        `FramingError` raised carries, in `completed`, the messages this batch finished before
        the bad packet.
        """
        if not isinstance(packets, (list, tuple)):
            packets = list(packets)
        messages: list[Message] = []
        position, end = 0, len(packets)
        try:
            while position < end:
                if self._next_index == 0:
                    taken = self._take_whole_message(packets, position, messages)
                elif self._next_index + 2 < self._count and end - position > 2:
                    taken = self._take_full_packets(packets, position)
                else:
                    taken = 0
                if taken:
                    position += taken
                    continue
                message = self.receive_packet(packets[position])
                position += 1
                if message is not None:
                    messages.append(message)
        except FramingError as error:
            error.completed = messages
            raise
        return messages

    def _take_whole_message(self, packets: Sequence[bytes | bytearray | memoryview], position: int, messages: list[Message]) -> int:
        """A header packet followed, in this batch, by all its data packets: check the run and
        deliver the message in one step. 0 when the general path must handle it."""
        header = packets[position]
        if len(header) < HEADER_PREFIX_SIZE:
            return 0
        message_id, index, count = _HEADER.unpack_from(header)
        if index != 0 or count == 0 or position + count >= len(packets):
            return 0
        if count == 1:
            body = packets[position + 1]
            size = len(body) - DATA_PREFIX_SIZE
            if not 0 < size <= CHUNK_SIZE or size > self.max_message_size:
                return 0
            if body[:DATA_PREFIX_SIZE] != _DATA.pack(message_id, 1):
                return 0
            data = bytes(body[DATA_PREFIX_SIZE:])
        else:
            run = packets[position + 1 : position + 1 + count]
            last = len(run[-1]) - DATA_PREFIX_SIZE
            if (
                not 0 < last <= CHUNK_SIZE
                or (count - 1) * CHUNK_SIZE + last > self.max_message_size
                or not self._check_run(run[:-1], message_id, 1)
                or run[-1][:DATA_PREFIX_SIZE] != _DATA.pack(message_id, count)
            ):
                return 0
            data = b"".join(self._bodies(run))
        try:
            type_name = str(header[HEADER_PREFIX_SIZE:], "utf-8")
        except UnicodeDecodeError:
            return 0
        messages.append(_new_message(Message, (message_id, type_name, data)))
        return 1 + count

    @staticmethod
    def _check_run(run: Sequence[bytes | bytearray | memoryview], message_id: int, first: int) -> bool:
        """True when `run` is exactly the full (1036-byte) packets `first`, `first+1`, … of
        message `message_id`."""
        count = len(run)
        last = first + count
        if last <= _INDEX_TABLE_SIZE:
            indices = _INDEX_TABLE[first * 4 : last * 4]
        else:
            indices = struct.pack(f">{count}I", *range(first, last))
        return (
            set(map(len, run)) == {MAX_PACKET_SIZE}
            and b"".join(map(_ID_FIELD, run)) == message_id.to_bytes(8, "big") * count
            and b"".join(map(_INDEX_FIELD, run)) == indices
        )

    @staticmethod
    def _bodies(run: Sequence[bytes | bytearray | memoryview]) -> Iterable[bytes | memoryview]:
        """The data of a run of packets for an immediate join: views for large runs (the join is
        then the only copy), slices for small ones (cheaper than making views)."""
        if len(run) >= _VIEW_JOIN_MIN_PACKETS:
            return map(_BODY, map(memoryview, run))
        return map(_BODY, run)

    def _take_full_packets(self, packets: Sequence[bytes | bytearray | memoryview], position: int) -> int:
        first = self._next_index
        # Leave the message's last packet to receive_packet, which checks the size limit.
        run = packets[position : position + (self._count - first)]
        if len(run) < 2 or not self._check_run(run, self._id, first):
            return 0
        # These chunks are held until the message completes: views only of immutable packets.
        if set(map(type, run)) == {bytes}:
            self._chunks.extend(map(_BODY, map(memoryview, run)))
        else:
            self._chunks.extend(map(bytes, map(_BODY, run)))
        self._next_index = first + len(run)
        return len(run)

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
        self._chunks.append(
            memoryview(packet)[DATA_PREFIX_SIZE:] if type(packet) is bytes else bytes(packet[DATA_PREFIX_SIZE:])
        )
        if index == self._count:
            message = _new_message(Message, (self._id, self._type, b"".join(self._chunks)))
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
            type = str(packet[HEADER_PREFIX_SIZE:], "utf-8")
        except UnicodeDecodeError as error:
            raise FramingError(f"message {message_id}: type is not UTF-8 ({error})") from None
        if count == 0:
            return _new_message(Message, (message_id, type, b""))
        self._id = message_id
        self._type = type
        self._count = count
        self._next_index = 1
        return None

    def _fail(self, error: FramingError) -> FramingError:
        """Drop the message in progress; returns `error` for the caller to raise."""
        self._reset()
        return error
