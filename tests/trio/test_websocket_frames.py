"""The WebSocket layer's own framing of data frames (`meshagent_core.client.websocket`): what it
builds and parses must be exactly what the `websockets` protocol builds and parses, in any split
of the byte stream, and everything that is not an unfragmented binary frame must still get the
`websockets` protocol's handling (pongs, the close handshake, its error codes)."""

from __future__ import annotations

import struct

import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN, Protocol
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from meshagent_trio import backend
from meshagent_trio.websocket import MAX_WEBSOCKET_MESSAGE, WebSocketConnection, accept_websocket, connect_websocket

PACKET_SIZES = st.one_of(
    st.integers(0, 130), st.sampled_from([125, 126, 127, 1036, 65535, 65536]), st.integers(0, 4000)
)
PACKETS = st.lists(st.binary(max_size=40).flatmap(lambda b: PACKET_SIZES.map(lambda n: (b * (n // max(len(b), 1) + 1))[:n])), max_size=12)


def _open_pair() -> tuple[ClientProtocol, ServerProtocol]:
    """A `websockets` client and server protocol, handshake done in memory."""
    client = ClientProtocol(parse_uri("ws://localhost/rooms/x"), max_size=MAX_WEBSOCKET_MESSAGE)
    server = ServerProtocol(max_size=MAX_WEBSOCKET_MESSAGE)
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    server.send_response(server.accept(server.events_received()[0]))
    client.receive_data(b"".join(server.data_to_send()))
    client.events_received()
    assert client.state is OPEN and server.state is OPEN
    return client, server


def _ours(protocol: Protocol) -> WebSocketConnection:
    connection = WebSocketConnection(backend, None, protocol)  # type: ignore[arg-type]  # sans-IO use only
    assert connection._start_frames(b"") == []
    assert connection._parse_here and connection._frame_here
    return connection


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


def _frames_of(protocol: Protocol) -> list[Frame]:
    return [event for event in protocol.events_received() if isinstance(event, Frame)]


@settings(max_examples=150, deadline=None)
@given(packets=PACKETS, cuts=st.lists(st.integers(0, 80_000), max_size=20), ping_at=st.integers(0, 12))
def test_server_side_parses_client_frames_in_any_split(packets: list[bytes], cuts: list[int], ping_at: int) -> None:
    client, server = _open_pair()
    ours = _ours(server)
    for index, packet in enumerate(packets):
        if index == ping_at:
            client.send_ping(b"hi")
        client.send_binary(packet)
    received: list[bytes] = []
    for piece in _split(b"".join(client.data_to_send()), cuts):
        received.extend(ours._parse_frames(piece))
    assert received == packets
    assert ours._input_rest == b"" and ours._parse_here
    if ping_at < len(packets):  # the ping went to the protocol, which queued its pong
        client.receive_data(b"".join(server.data_to_send()))
        assert [frame.opcode for frame in _frames_of(client)] == [Opcode.PONG]


@settings(max_examples=100, deadline=None)
@given(packets=PACKETS)
def test_frames_built_here_are_what_websockets_parses(packets: list[bytes]) -> None:
    client, server = _open_pair()
    for sender, receiver in ((_ours(client), server), (_ours(server), client)):
        sender.queue_packets(packets)
        receiver.receive_data(b"".join(sender._outgoing))
        frames = _frames_of(receiver)
        assert [frame.data for frame in frames] == packets
        assert all(frame.opcode is Opcode.BINARY and frame.fin for frame in frames)
        assert receiver.state is OPEN
        sender._outgoing.clear()


def test_client_masks_are_fresh_per_frame() -> None:
    client, _ = _open_pair()
    ours = _ours(client)
    ours.queue_packets([b"\x00" * 200] * 50)
    keys = {ours._outgoing[i][4:8] for i in range(0, 100, 2)}  # 126-length header: 4 bytes, then the key
    assert len(keys) > 45  # 50 random 32-bit keys: a repeat or two at most


def test_client_masks_stay_fresh_across_pool_refills_and_large_batches() -> None:
    client, server = _open_pair()
    ours = _ours(client)
    keys: list[bytes] = []
    for batch in (700, 700, 3000, 1):  # the second batch spans a refill; the third is larger than a pool
        ours.queue_packets([b"\x00" * 10] * batch)
        keys.extend(frame[2:6] for frame in ours._outgoing[0::2])  # short header: 2 bytes, then the key
        sender_bytes = b"".join(ours._outgoing)
        ours._outgoing.clear()
        server.receive_data(sender_bytes)
        assert [event.data for event in server.events_received()] == [b"\x00" * 10] * batch
    assert len(keys) == 4401
    assert len(set(keys)) > 4390  # 4,401 random 32-bit keys: a repeat or two at most


def test_fragmented_message_is_handed_to_the_protocol_and_delivered_whole() -> None:
    client, server = _open_pair()
    ours = _ours(server)
    client.send_binary(b"first")
    client.send_binary(b"ab", fin=False)
    client.send_continuation(b"cd", fin=True)
    client.send_binary(b"last")
    assert ours._parse_frames(b"".join(client.data_to_send())) == [b"first", b"abcd", b"last"]
    assert not ours._parse_here  # the protocol parses this connection from now on
    client.send_binary(b"later")
    data = b"".join(client.data_to_send())
    server.receive_data(data)
    assert ours._take_packets(server.events_received()) == [b"later"]


def test_text_frame_fails_the_connection_with_1003() -> None:
    client, server = _open_pair()
    ours = _ours(server)
    client.send_binary(b"before")
    client.send_text(b"hello")
    assert ours._parse_frames(b"".join(client.data_to_send())) == [b"before"]
    assert server.close_sent is not None and server.close_sent.code == 1003


def test_oversized_frame_fails_with_1009_and_unmasked_frame_with_1002() -> None:
    client, server = _open_pair()
    ours = _ours(server)
    header = struct.pack(">BBQ", 0x82, 0x80 | 127, MAX_WEBSOCKET_MESSAGE + 1) + b"\x00" * 4
    assert ours._parse_frames(header) == []
    assert server.close_sent is not None and server.close_sent.code == 1009

    client, server = _open_pair()
    ours = _ours(server)
    assert ours._parse_frames(bytes((0x82, 3)) + b"abc") == []  # a client frame must be masked
    assert server.close_sent is not None and server.close_sent.code == 1002


def test_close_frame_ends_parsing_and_later_frames_are_discarded() -> None:
    client, server = _open_pair()
    ours = _ours(server)
    client.send_binary(b"one")
    client.send_close(1000, "bye")
    first = b"".join(client.data_to_send())
    after = Frame(Opcode.BINARY, b"late").serialize(mask=True)  # sent after its close: ignored
    assert ours._parse_frames(first + after) == [b"one"]
    assert server.close_rcvd is not None and server.close_rcvd.code == 1000
    assert not ours._parse_here
    assert server.state is not OPEN


async def test_frames_in_the_same_read_as_the_handshake_are_delivered() -> None:
    """Client side: the 101 response and two frames in one write. Server side: a frame right
    after the upgrade request, handed to `accept_websocket` with it."""
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]

        async def raw_server(stream: trio.SocketStream) -> None:
            protocol = ServerProtocol()
            while not (events := protocol.events_received()):
                protocol.receive_data(await stream.receive_some(4096))
            protocol.send_response(protocol.accept(events[0]))
            protocol.send_binary(b"ready")
            protocol.send_binary(b"x" * 2000)
            await stream.send_all(b"".join(protocol.data_to_send()))
            await trio.sleep_forever()

        nursery.start_soon(trio.serve_listeners, raw_server, listeners)
        with trio.fail_after(10):
            client = await connect_websocket(f"ws://127.0.0.1:{port}/rooms/x")
            packets: list[bytes] = []
            while len(packets) < 2:
                packets.extend(await client.receive_packets())
            assert packets == [b"ready", b"x" * 2000]
            await client.abort()

            protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/rooms/x"))
            protocol.send_request(protocol.connect())
            early = Frame(Opcode.BINARY, b"early").serialize(mask=True)
            sock_listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            accepted: list[WebSocketConnection] = []

            async def our_server(stream: trio.SocketStream) -> None:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += await stream.receive_some(4096)
                accepted.append(await accept_websocket(stream, head))
                await trio.sleep_forever()

            nursery.start_soon(trio.serve_listeners, our_server, sock_listeners)
            raw = await trio.open_tcp_stream("127.0.0.1", sock_listeners[0].socket.getsockname()[1])
            await raw.send_all(b"".join(protocol.data_to_send()) + early)  # one write: request and frame
            while not accepted:
                await trio.sleep(0.01)
            assert await accepted[0].receive_packets() == [b"early"]
            await accepted[0].abort()
            await raw.aclose()
        nursery.cancel_scope.cancel()
