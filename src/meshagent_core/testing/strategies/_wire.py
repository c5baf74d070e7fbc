"""Strategies for the wire: JSON values, content values, framing-level messages and their
packets, packet streams for receivers, and message envelopes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import strategies as st

from ... import messages as m
from ...content import (
    CONTENT_TYPES,
    BinaryContent,
    Content,
    ControlContent,
    EmptyContent,
    ErrorContent,
    FileContent,
    JsonContent,
    LinkContent,
    RawOutputsContent,
    TextContent,
)
from ...envelope import META_KEY
from ...framing import CHUNK_SIZE, Message, encode_message

#: The integer range every JSON codec of the protocol round-trips exactly (msgspec, `json`).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1

#: Sizes that sit on the 1 KiB packet boundaries, drawn often on purpose.
_BOUNDARY_SIZES = (0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE - 1, 2 * CHUNK_SIZE, 2 * CHUNK_SIZE + 1, 4 * CHUNK_SIZE)

_KNOWN_TYPES = sorted(
    value for name, value in vars(m).items() if name.isupper() and isinstance(value, str) and not name.endswith("_PREFIX")
)


def json_values(
    max_depth: int = 3,
    *,
    max_size: int = 4,
    min_int: int = INT64_MIN,
    max_int: int = INT64_MAX,
    floats: bool = True,
) -> st.SearchStrategy[Any]:
    """JSON values as decoded JSON: None, booleans, integers, finite floats, strings, lists
    and objects with string keys, nested at most `max_depth` containers deep (0: scalars only;
    `meshagent_core.jsondepth` counts depth the same way).

    Every value survives `msgspec.json` and `json` unchanged: no NaN or infinities (msgspec
    writes them as `null`), no lone surrogates (not UTF-8), integers in `[min_int, max_int]`
    (signed 64-bit by default; pass `±(2**53 - 1)` for what JavaScript peers read exactly),
    no floats when `floats=False`. Lists and objects hold at most `max_size` items.

        @given(json_values())
        def test_round_trip(value):
            assert msgspec.json.decode(msgspec.json.encode(value)) == value
    """
    if max_depth < 0:
        raise ValueError("max_depth must not be negative")
    leaves: st.SearchStrategy[Any] = st.none() | st.booleans() | st.integers(min_int, max_int)
    if floats:
        leaves = leaves | st.floats(allow_nan=False, allow_infinity=False)
    leaves = leaves | st.text(max_size=16)
    keys = st.text(max_size=8)
    value = leaves
    for _ in range(max_depth):
        inner = value
        value = leaves | st.lists(inner, max_size=max_size) | st.dictionaries(keys, inner, max_size=max_size)
    return value


def _json_objects(max_depth: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.text(max_size=8), json_values(max(max_depth - 1, 0)), max_size=4)


def _payloads(max_size: int, *, min_size: int = 0) -> st.SearchStrategy[bytes]:
    """Bytes, often exactly on a packet boundary."""
    boundaries = [size for size in _BOUNDARY_SIZES if min_size <= size <= max_size]
    sizes = st.integers(min_size, max_size)
    if boundaries:
        sizes = sizes | st.sampled_from(boundaries)
    return sizes.flatmap(lambda size: st.binary(min_size=size, max_size=size))


def _content_strategies(max_depth: int, max_data_size: int) -> dict[str, st.SearchStrategy[Any]]:
    text = st.text(max_size=16)
    objects = _json_objects(max_depth)
    return {
        "json": st.builds(JsonContent, json=json_values(max_depth)),
        "text": st.builds(TextContent, text=st.text(max_size=64)),
        "empty": st.builds(EmptyContent),
        "error": st.builds(ErrorContent, text=text, code=st.none() | st.integers(INT64_MIN, INT64_MAX)),
        "file": st.builds(FileContent, name=text, mime_type=st.sampled_from(["text/plain", "application/octet-stream"]) | text, data=_payloads(max_data_size)),
        "binary": st.builds(BinaryContent, headers=objects, data=_payloads(max_data_size)),
        "link": st.builds(LinkContent, name=text, url=st.just("https://example.com/") | text),
        "raw": st.builds(RawOutputsContent, outputs=st.lists(json_values(max(max_depth - 1, 0)), max_size=3)),
        "control": st.builds(ControlContent, method=st.just("open"))
        | st.builds(
            ControlContent,
            method=st.just("close"),
            status_code=st.none() | st.sampled_from([1000, 1007]) | st.integers(0, 65535),
            message=st.none() | text,
        ),
    }


def contents(
    kinds: Iterable[str] | None = None, *, max_depth: int = 2, max_data_size: int = 3000
) -> st.SearchStrategy[Content]:
    """Content values (`meshagent_core.content`) of every type: json, text, empty, error,
    file, binary, link, raw and control (open and close), or only the `kinds` named (the
    `type` tags, see `content.CONTENT_TYPES`).

    Each one packs and unpacks to itself in both JSON styles. JSON inside them comes from
    `json_values(max_depth)`; file and binary data is up to `max_data_size` bytes, often
    exactly on a packet boundary.

        @given(contents())
        def test_round_trip(content):
            assert unpack_content(pack_content(content)) == content
    """
    strategies = _content_strategies(max_depth, max_data_size)
    names = sorted(CONTENT_TYPES) if kinds is None else list(kinds)
    unknown = sorted(set(names) - set(strategies))
    if unknown:
        raise ValueError(f"unknown content types {unknown}; the types are {sorted(strategies)}")
    if not names:
        raise ValueError("kinds must name at least one content type")
    return st.one_of([strategies[name] for name in names])


def messages(
    *,
    min_size: int = 0,
    max_size: int = 5000,
    ids: st.SearchStrategy[int] | None = None,
    types: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Message]:
    """Framing-level messages, `framing.Message(id, type, data)`: what `encode_message` /
    `PacketWriter.add` take and `PacketReader` delivers (protocol/wire.md §3).

    `id` is any unsigned 64-bit integer (or from `ids`); `type` is one of the protocol's message
    types or any string UTF-8 can carry (or from `types`); `data` has `min_size` to `max_size`
    bytes, often exactly on a packet boundary (1023, 1024, 1025, ... bytes).

        @given(messages())
        def test_framing_round_trip(message):
            packets = encode_message(*message)
            assert PacketReader().receive_packets(packets) == [message]
    """
    return st.builds(
        Message,
        ids if ids is not None else st.integers(0, UINT64_MAX),
        types if types is not None else st.sampled_from(_KNOWN_TYPES) | st.text(max_size=40),
        _payloads(max_size, min_size=min_size),
    )


def packets_of(message: Message | tuple[int, str, bytes], *, buffers: bool = False) -> st.SearchStrategy[list[Any]]:
    """The packets the core's framing writes for `message` (`encode_message`): the header
    packet, then one data packet per KiB of data.

    With `buffers=True` each packet may also come as a `bytearray` or `memoryview`, which a
    receiver must treat the same (and must copy if it keeps them).

        @given(messages().flatmap(lambda message: st.tuples(st.just(message), packets_of(message))))
        def test_reader(pair):
            message, packets = pair
            assert PacketReader().receive_packets(packets) == [message]
    """
    packets = encode_message(*message)
    if not buffers:
        return st.just(packets)
    kinds = st.sampled_from([bytes, bytearray, memoryview])
    return st.tuples(*(kinds.map(lambda kind, packet=packet: kind(packet)) for packet in packets)).map(list)


StreamKind = Literal["valid", "truncated", "interleaved"]
STREAM_KINDS: tuple[StreamKind, ...] = ("valid", "truncated", "interleaved")


@dataclass(frozen=True)
class PacketStream:
    """A sequence of packets and what a receiver must make of it (see `packet_streams`).

    - `kind`: `"valid"`, `"truncated"` or `"interleaved"`;
    - `packets`: the packets, in order;
    - `messages`: every message whose packets (some or all) are in the stream, in the order
      their header packets appear;
    - `delivered`: the messages a receiver must deliver, in order: all of them for a valid
      stream, all but the cut one for a truncated stream, those before `error_index` for an
      interleaved one;
    - `error_index`: for an interleaved stream, the index of the first packet that cannot
      continue the message in progress (a conforming receiver reports a framing error there;
      the reference receiver cannot reassemble interleaved messages); otherwise None;
    - `incomplete`: for a truncated stream, the message cut short (its header and some, not
      all, of its data packets are the last packets); otherwise None.
    """

    kind: StreamKind
    packets: tuple[bytes, ...]
    messages: tuple[Message, ...]
    delivered: tuple[Message, ...]
    error_index: int | None = None
    incomplete: Message | None = None


def _flat(messages: Iterable[Message]) -> list[bytes]:
    return [packet for message in messages for packet in encode_message(*message)]


@st.composite
def _packet_stream(draw: st.DrawFn, kinds: tuple[StreamKind, ...], max_messages: int, max_size: int) -> PacketStream:
    kind = draw(st.sampled_from(kinds))
    one = messages(max_size=max_size)
    if kind == "valid":
        sent = tuple(draw(st.lists(one, max_size=max_messages)))
        return PacketStream(kind, tuple(_flat(sent)), sent, sent)
    before = tuple(draw(st.lists(one, max_size=max_messages - 1 if kind == "truncated" else max_messages - 2)))
    first = draw(messages(min_size=1, max_size=max_size))  # at least one data packet
    first_packets = encode_message(*first)
    # The header and 0.. (count - 1) data packets of `first`: it is still in progress after them.
    kept = draw(st.integers(1, len(first_packets) - 1))
    if kind == "truncated":
        packets = _flat(before) + first_packets[:kept]
        return PacketStream(kind, tuple(packets), (*before, first), before, incomplete=first)
    second = draw(messages(max_size=max_size, ids=st.integers(0, UINT64_MAX).filter(lambda i: i != first.id)))
    # The rest of `first` merged with `second`, each in its own order; `second`'s header first.
    rest, other = list(first_packets[kept:]), encode_message(*second)
    merged = [other.pop(0)]
    while rest or other:
        take_other = bool(other) and (not rest or draw(st.booleans()))
        merged.append(other.pop(0) if take_other else rest.pop(0))
    prefix = _flat(before) + first_packets[:kept]
    return PacketStream(kind, tuple(prefix + merged), (*before, first, second), before, error_index=len(prefix))


def packet_streams(
    kinds: Iterable[StreamKind] = STREAM_KINDS, *, max_messages: int = 4, max_size: int = 3000
) -> st.SearchStrategy[PacketStream]:
    """Streams of packets to test a receiver with, each a `PacketStream` labelled with its
    kind and what must come out of it:

    - `valid`: the packets of up to `max_messages` whole messages, one after the other;
    - `truncated`: whole messages, then the header and some (not all) data packets of one
      more: the receiver delivers the whole ones and is left with a message in progress;
    - `interleaved`: whole messages, then part of a message, then the header of another
      before the first one is complete (the rest of both follow, merged): the receiver
      delivers the whole ones and reports a framing error at `error_index`.

        @given(packet_streams())
        def test_my_receiver(stream):
            receiver = MyReceiver()
            for index, packet in enumerate(stream.packets):
                if index == stream.error_index:
                    with pytest.raises(FramingError):
                        receiver.feed(packet)
                    break
                receiver.feed(packet)
            assert receiver.delivered == list(stream.delivered)
            assert receiver.in_progress == (stream.kind == "truncated")
    """
    chosen = tuple(kinds)
    unknown = sorted(set(chosen) - set(STREAM_KINDS))
    if unknown or not chosen:
        raise ValueError(f"kinds must be some of {list(STREAM_KINDS)}, not {list(chosen)}")
    if max_messages < 2 and "interleaved" in chosen:
        raise ValueError("an interleaved stream holds at least 2 messages: max_messages must be >= 2")
    if max_messages < 1:
        raise ValueError("max_messages must be >= 1")
    if max_size < 1 and set(chosen) - {"valid"}:
        raise ValueError("a truncated or interleaved stream cuts a message of at least 1 byte: max_size must be >= 1")
    return _packet_stream(chosen, max_messages, max_size)


def envelopes(*, max_depth: int = 2, max_payload: int = 4096) -> st.SearchStrategy[tuple[dict[str, Any], bytes]]:
    """Message envelopes (protocol/wire.md §4.1) as `(header, payload)`: the tuple
    `envelope.unpack_message` returns and `pack_message(header, payload)` takes.

    The header is a JSON object (values from `json_values(max_depth)`) without the reserved
    `__meshagent__` key, which packing adds and unpacking removes; the payload has up to
    `max_payload` bytes (0: always empty), often exactly on a packet boundary.

        @given(envelopes(), st.sampled_from(list(JsonStyle)))
        def test_round_trip(envelope, style):
            header, payload = envelope
            assert unpack_message(pack_message(header, payload, style=style)) == envelope
    """
    headers = st.dictionaries(st.text(max_size=10).filter(lambda key: key != META_KEY), json_values(max_depth), max_size=6)
    return st.tuples(headers, _payloads(max_payload))


__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "STREAM_KINDS",
    "PacketStream",
    "UINT64_MAX",
    "contents",
    "envelopes",
    "json_values",
    "messages",
    "packet_streams",
    "packets_of",
]
