from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from meshagent_core import CHUNK_SIZE, FramingError, MessageTooLarge, PacketReader, PacketWriter, encode_message
from meshagent_core.framing import Message, packet_count
from meshagent_core.testing.strategies import messages


def header(message_id: int, count: int, type: bytes = b"t") -> bytes:
    return struct.pack(">QII", message_id, 0, count) + type


def data_packet(message_id: int, index: int, body: bytes) -> bytes:
    return struct.pack(">QI", message_id, index) + body


@given(messages())
def test_round_trip_any_message(message: Message) -> None:
    message_id, type, data = message
    packets = encode_message(message_id, type, data)
    assert len(packets) == 1 + packet_count(len(data))
    assert all(len(p) <= 12 + CHUNK_SIZE for p in packets[1:])
    assert all(len(p) > 12 for p in packets[1:])
    reader = PacketReader()
    assert reader.receive_packets(packets) == [(message_id, type, data)]
    assert not reader.in_progress


@given(st.lists(messages(), max_size=8))
def test_writer_batches_messages_in_order(sent: list[Message]) -> None:
    writer = PacketWriter()
    for message in sent:
        writer.add(*message)
    batch = writer.flush()
    assert writer.flush() == []
    assert PacketReader().receive_packets(batch) == sent


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=2100), max_size=30), st.integers(min_value=0, max_value=10_000))
def test_arbitrary_packets_raise_only_framing_errors_and_respect_the_limit(packets: list[bytes], limit: int) -> None:
    reader = PacketReader(max_message_size=limit)
    for packet in packets:
        try:
            message = reader.receive_packet(packet)
        except FramingError:
            continue
        assert reader.buffered <= limit
        if message is not None:
            assert len(message.data) <= limit


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=50), st.binary(max_size=3000)),
        min_size=1,
        max_size=6,
        unique_by=lambda message: message[0],
    ),
    st.data(),
)
def test_corrupted_streams_never_deliver_mixed_bytes(messages: list, draw: st.DataObject) -> None:
    """Whatever packets are dropped, duplicated or swapped, every delivered message is exactly
    one of the messages that was sent."""
    sent = {}
    stream = []
    for message_id, data in messages:
        sent[message_id] = data
        stream.extend(encode_message(message_id, "t", data))
    mutated = draw.draw(st.permutations(stream)) if draw.draw(st.booleans()) else list(stream)
    if mutated and draw.draw(st.booleans()):
        del mutated[draw.draw(st.integers(0, len(mutated) - 1))]
    reader = PacketReader()
    for packet in mutated:
        try:
            message = reader.receive_packet(packet)
        except FramingError:
            continue
        if message is not None:
            assert sent[message.id] == message.data


# --- each malformed-packet case, by name ----------------------------------------------------


def test_packet_shorter_than_prefix() -> None:
    with pytest.raises(FramingError, match="shorter than a packet prefix"):
        PacketReader().receive_packet(b"\x00" * 11)


def test_header_packet_shorter_than_16_bytes() -> None:
    with pytest.raises(FramingError, match="shorter than 16"):
        PacketReader().receive_packet(struct.pack(">QI", 1, 0) + b"\x00")


def test_data_packet_without_header() -> None:
    with pytest.raises(FramingError, match="without a header packet"):
        PacketReader().receive_packet(data_packet(1, 1, b"x"))


def test_wrong_index() -> None:
    reader = PacketReader()
    reader.receive_packet(header(1, 3))
    reader.receive_packet(data_packet(1, 1, b"a" * CHUNK_SIZE))
    with pytest.raises(FramingError, match="expected packet 2, got 3"):
        reader.receive_packet(data_packet(1, 3, b"a"))
    assert not reader.in_progress and reader.buffered == 0


def test_foreign_id() -> None:
    reader = PacketReader()
    reader.receive_packet(header(1, 2))
    with pytest.raises(FramingError, match="message 9 arrived while message 1"):
        reader.receive_packet(data_packet(9, 1, b"a" * CHUNK_SIZE))
    # The real message's later packets are refused too (it was dropped), and the next header
    # starts clean: unlike the reference receiver, nothing stale is kept.
    with pytest.raises(FramingError):
        reader.receive_packet(data_packet(1, 2, b"b"))
    assert reader.receive_packets([header(2, 1), data_packet(2, 1, b"ok")]) == [(2, "t", b"ok")]


def test_interleaved_header() -> None:
    reader = PacketReader()
    reader.receive_packet(header(1, 2))
    with pytest.raises(FramingError, match="interleaved"):
        reader.receive_packet(header(2, 1))
    assert not reader.in_progress


def test_short_packet_before_the_last() -> None:
    reader = PacketReader()
    reader.receive_packet(header(1, 2))
    with pytest.raises(FramingError, match="is short"):
        reader.receive_packet(data_packet(1, 1, b"a" * 10))


def test_oversized_data_packet() -> None:
    reader = PacketReader()
    reader.receive_packet(header(1, 1))
    with pytest.raises(FramingError, match="at most 1024"):
        reader.receive_packet(data_packet(1, 1, b"a" * (CHUNK_SIZE + 1)))


def test_empty_data_packet() -> None:
    reader = PacketReader()
    reader.receive_packet(header(1, 1))
    with pytest.raises(FramingError, match="is empty"):
        reader.receive_packet(data_packet(1, 1, b""))


def test_type_not_utf8() -> None:
    with pytest.raises(FramingError, match="not UTF-8"):
        PacketReader().receive_packet(header(1, 0, b"\xff\xfe"))


def test_oversize_packet_count_refused_before_buffering() -> None:
    reader = PacketReader(max_message_size=4096)
    with pytest.raises(MessageTooLarge) as info:
        reader.receive_packet(header(7, 2**32 - 1))
    assert info.value.message_id == 7 and info.value.limit == 4096
    assert reader.buffered == 0 and not reader.in_progress
    # Exactly at the limit is fine.
    data = b"x" * 4096
    assert reader.receive_packets(encode_message(8, "t", data)) == [(8, "t", data)]


def test_last_packet_pushing_past_the_limit() -> None:
    reader = PacketReader(max_message_size=1500)
    reader.receive_packet(header(1, 2))  # 2 packets may hold 1025..2048 bytes
    reader.receive_packet(data_packet(1, 1, b"a" * CHUNK_SIZE))
    with pytest.raises(MessageTooLarge):
        reader.receive_packet(data_packet(1, 2, b"b" * 600))
    assert reader.buffered == 0


def test_message_id_must_fit_64_bits() -> None:
    with pytest.raises(ValueError):
        encode_message(2**64, "t", b"")


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=9), st.binary(min_size=0, max_size=6000)),
        min_size=1,
        max_size=5,
    ),
    st.data(),
)
def test_batched_reassembly_matches_packet_by_packet(messages: list, draw: st.DataObject) -> None:
    """`receive_packets` takes runs of full packets in bulk; it must deliver exactly what
    feeding the same packets one by one delivers, and fail at the same packets."""
    stream = [p for message_id, data in messages for p in encode_message(message_id, "t", data)]
    mutations = draw.draw(st.lists(st.tuples(st.sampled_from(["drop", "dup", "flip", "swap"]), st.integers(0, 10_000)), max_size=3))
    for kind, at in mutations:
        if not stream:
            break
        i = at % len(stream)
        if kind == "drop":
            del stream[i]
        elif kind == "dup":
            stream.insert(i, stream[i])
        elif kind == "flip":
            packet = bytearray(stream[i])
            packet[at % min(len(packet), 16)] ^= 0x01
            stream[i] = bytes(packet)
        elif i + 1 < len(stream):
            stream[i], stream[i + 1] = stream[i + 1], stream[i]
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    batches = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]

    def per_packet() -> tuple[list, int]:
        reader, delivered, errors = PacketReader(max_message_size=20_000), [], 0
        for batch in batches:
            for packet in batch:
                try:
                    message = reader.receive_packet(packet)
                except FramingError:
                    errors += 1
                    break  # as the batched reader: the rest of this batch is lost
                if message is not None:
                    delivered.append(message)
        return delivered, errors

    def batched() -> tuple[list, int]:
        reader, delivered, errors = PacketReader(max_message_size=20_000), [], 0
        for batch in batches:
            try:
                delivered.extend(reader.receive_packets(batch))
            except FramingError as error:
                delivered.extend(error.completed)
                errors += 1
        return delivered, errors

    assert batched() == per_packet()


def test_a_bad_packet_inside_a_bulk_run_is_named() -> None:
    packets = encode_message(1, "t", b"x" * 10_000)
    packets[5] = packets[5][:12] + b"y" * 100  # short packet in the middle of the run
    reader = PacketReader()
    with pytest.raises(FramingError, match="data packet 5 of 10 is short"):
        reader.receive_packets(packets)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_fed_buffers_may_be_reused(kind) -> None:
    """Chunks held across batches are copied unless the packet is immutable `bytes`."""
    data = bytes(range(256)) * 40  # 10 packets
    packets = encode_message(3, "t", data)
    buffers = [bytearray(p) for p in packets]
    reader = PacketReader()
    assert reader.receive_packets([kind(b) for b in buffers[:7]]) == []
    for buffer in buffers[:7]:
        buffer[12:] = b"\xee" * (len(buffer) - 12)  # the caller reuses its buffers
    assert reader.receive_packets([kind(b) for b in buffers[7:]]) == [(3, "t", data)]
