"""`WebhookServer` (protocol/webhooks.md §3) on Trio, over real sockets: the request forms,
signature refusals with the official reasons, the `events()` iterator and its bound, the
callbacks, and the reverse WebSocket form through a bridge to a room of the real local server
(what the platform does when it dials the service)."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import httpx
import pytest
import trio

from meshagent_core.client.websocket import HandshakeRejected, connect_websocket
from meshagent_core.webhooks import CallEvent, RoomEndedEvent, RoomStartedEvent, UnknownEvent, sign, webhook_body
from meshagent_trio import RoomClient, WebhookServer, backend, connect, send_webhook
from roomtest import mint, room_url
from webhooktest import bridge

SECRET = "webhook-secret-0123456789abcdef"
STARTED = {"room_name": "r1", "room_url": "wss://example/rooms/r1"}


class Recorder(WebhookServer):
    def __init__(self, **options: Any) -> None:
        super().__init__(host="127.0.0.1", port=0, **options)
        self.seen: list[Any] = []
        self.rooms: list[RoomClient] = []

    async def on_room_started(self, event: RoomStartedEvent) -> None:
        self.seen.append(event)

    async def on_room_ended(self, event: RoomEndedEvent) -> None:
        self.seen.append(event)

    async def on_call(self, event: CallEvent) -> None:
        self.seen.append(event)


def webhook_url(server: WebhookServer) -> str:
    return f"http://127.0.0.1:{server.bound_port}{server.path}"


async def post(server: WebhookServer, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(webhook_url(server), content=body, headers=headers)


def signed(event: str, data: Any, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = webhook_body(event, data)
    return body, {"Content-Type": "application/json", "Meshagent-Signature": sign(body, secret)}


async def test_signed_webhooks_reach_the_callbacks_and_the_iterator() -> None:
    async with Recorder(webhook_secret=SECRET) as server, server.events() as events:
        call = {"room_name": "r1", "room_url": "ws://x/rooms/r1", "token": "jwt", "arguments": {"a": 1}}
        await send_webhook(url=webhook_url(server), event="room.call", data=call, secret=SECRET)
        await send_webhook(url=webhook_url(server), event="room.started", data=STARTED, secret=SECRET)
        await send_webhook(url=webhook_url(server), event="room.ended", data={"room_name": "r1"}, secret=SECRET)
        await send_webhook(url=webhook_url(server), event="room.other", data=[1, 2], secret=SECRET)
        expected = [
            CallEvent(room_name="r1", room_url="ws://x/rooms/r1", token="jwt", arguments={"a": 1}),
            RoomStartedEvent(**STARTED),
            RoomEndedEvent(room_name="r1"),
        ]
        assert server.seen == expected
        with trio.fail_after(5):
            assert [await events.__anext__() for _ in range(4)] == [*expected, UnknownEvent(name="room.other", data=[1, 2])]
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(f"http://127.0.0.1:{server.bound_port}/")).json() == {"ok": True}
            assert (await http.get(f"http://127.0.0.1:{server.bound_port}/elsewhere")).status_code == 404
    assert server.bound_port is None
    assert [event async for event in events] == []  # ended with the server


async def test_refusals_carry_the_official_reasons() -> None:
    async with Recorder(webhook_secret=SECRET) as server:
        body, headers = signed("room.started", STARTED)
        cases = [
            ({"Content-Type": "application/json"}, body, 401, "missing signature"),
            ({**headers, "Meshagent-Signature": headers["Meshagent-Signature"][7:]}, body, 401, "missing signature"),
            ({**headers, "Meshagent-Signature": sign(body, "another")}, body, 401, "invalid jwt"),
            ({**headers, "Meshagent-Signature": "Bearer not.a.jwt"}, body, 401, "invalid jwt"),
            (headers, body.replace(b"r1", b"r2"), 401, "signature does not match payload"),
        ]
        compact = json.dumps({"event": "room.started", "data": STARTED}, separators=(",", ":")).encode()
        cases.append(({**headers, "Meshagent-Signature": sign(compact, SECRET)}, compact, 401, "signature does not match payload"))
        cases.append((headers, b"[1, 2]", 400, "invalid request body"))
        for request_headers, request_body, status, reason in cases:
            answer = await post(server, request_body, request_headers)
            assert (answer.status_code, answer.reason_phrase, answer.text) == (status, reason, f"{status}: {reason}")
        # The same compact text with the signature of its Python rendering is accepted.
        assert (await post(server, compact, headers)).status_code == 200
        assert server.seen == [RoomStartedEvent(**STARTED)]


async def test_the_header_form_wins_and_a_body_without_json_type_is_empty() -> None:
    async with Recorder(webhook_secret=SECRET) as server:
        body, headers = signed("room.ended", {"room_name": "from-header"})
        answer = await post(server, b"not json at all", {"Meshagent-Webhook": body.decode(), "Meshagent-Signature": headers["Meshagent-Signature"]})
        assert answer.status_code == 200
        async with httpx.AsyncClient(timeout=10) as http:  # any method carrying the header: GET too
            assert (await http.get(webhook_url(server), headers={"Meshagent-Webhook": body.decode(), "Meshagent-Signature": headers["Meshagent-Signature"]})).status_code == 200
        assert server.seen == [RoomEndedEvent(room_name="from-header")] * 2
        # A body without a JSON content type is the envelope {}: signed as such it passes the
        # signature check, then has no event name.
        plain = await post(server, b'{"event": "room.ended"}', {"Content-Type": "text/plain", "Meshagent-Signature": sign(b"{}", SECRET)})
        assert (plain.status_code, plain.reason_phrase) == (400, "webhook body has no event name")
        unsigned = await post(server, b"whatever", {"Content-Type": "text/plain"})
        assert unsigned.reason_phrase == "missing signature"


async def test_bounds_and_bad_bodies() -> None:
    async with Recorder(validate_webhook_secret=False) as server:
        huge = json.dumps({"event": "room.ended", "data": {"room_name": "x" * (1024 * 1024)}}).encode()
        assert (await post(server, huge, {"Content-Type": "application/json"})).status_code == 413
        malformed = await post(server, b"{", {"Content-Type": "application/json"})
        assert malformed.status_code == 400 and malformed.reason_phrase.startswith("malformed webhook body")
        deep = b'{"event": "e", "data": ' + b"[" * 300 + b"]" * 300 + b"}"
        assert (await post(server, deep, {"Content-Type": "application/json"})).status_code == 400
        wrong = await post(server, b'{"event": "room.ended", "data": {"room_name": 5}}', {"Content-Type": "application/json"})
        assert wrong.status_code == 400 and "room.ended" in wrong.reason_phrase
        assert (await post(server, b'{"event": "room.ended", "data": {"room_name": "ok"}}', {"Content-Type": "application/json"})).status_code == 200
        assert server.seen == [RoomEndedEvent(room_name="ok")]


async def test_a_full_event_buffer_answers_503_and_holds_no_more() -> None:
    server = Recorder(validate_webhook_secret=False)
    server.event_delivery_timeout = 0.2
    async with server, server.events(max_buffer=2) as events:
        headers = {"Content-Type": "application/json"}
        statuses = []
        for index in range(4):
            answer = await post(server, webhook_body("room.ended", {"room_name": f"r{index}"}), headers)
            statuses.append((answer.status_code, answer.reason_phrase))
        assert [status for status, _ in statuses] == [200, 200, 503, 503]
        assert "not reading" in statuses[2][1]
        assert server.seen == [RoomEndedEvent(room_name="r0"), RoomEndedEvent(room_name="r1")]  # a 503 is not handled
        assert [await events.__anext__(), await events.__anext__()] == server.seen
        assert (await post(server, webhook_body("room.ended", {"room_name": "r4"}), headers)).status_code == 200
        assert await events.__anext__() == RoomEndedEvent(room_name="r4")
    # A closed iterator takes nothing: webhooks are answered at once.
    async with server:
        server.events(max_buffer=1)  # never read
        closed = server.events(max_buffer=1)
        await closed.aclose()
        with trio.fail_after(2):
            assert (await post(server, webhook_body("room.ended", {"room_name": "a"}), {"Content-Type": "application/json"})).status_code == 200
        assert (await post(server, webhook_body("room.ended", {"room_name": "b"}), {"Content-Type": "application/json"})).status_code == 503


async def test_a_failing_callback_is_a_500_and_the_server_goes_on() -> None:
    class Failing(Recorder):
        async def on_room_ended(self, event: RoomEndedEvent) -> None:
            raise RuntimeError("boom")

    async with Failing(validate_webhook_secret=False) as server:
        headers = {"Content-Type": "application/json"}
        assert (await post(server, webhook_body("room.ended", {"room_name": "x"}), headers)).status_code == 500
        assert (await post(server, webhook_body("room.started", STARTED), headers)).status_code == 200


def test_configuration_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHAGENT_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ValueError, match="needs a webhook secret"):
        WebhookServer()
    monkeypatch.setenv("MESHAGENT_WEBHOOK_SECRET", "from-env")
    monkeypatch.setenv("MESHAGENT_PORT", "9123")
    server = WebhookServer()
    assert (server._webhook_secret, server._port, server._host, server.path) == ("from-env", 9123, "0.0.0.0", "/webhook")
    with pytest.raises(ValueError, match="path"):
        WebhookServer(path="webhook")
    monkeypatch.setenv("MESHAGENT_PORT", "eighty")
    with pytest.raises(ValueError, match="MESHAGENT_PORT"):
        WebhookServer()


async def test_run_serves_until_sigterm() -> None:
    server = Recorder(validate_webhook_secret=False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.run)
        with trio.fail_after(5):
            while server.bound_port is None:
                await trio.sleep(0.01)
            assert (await post(server, webhook_body("room.ended", {"room_name": "x"}), {"Content-Type": "application/json"})).status_code == 200
            os.kill(os.getpid(), signal.SIGTERM)
            while server.bound_port is not None:
                await trio.sleep(0.01)
    assert server.seen == [RoomEndedEvent(room_name="x")]


# --- the reverse form --------------------------------------------------------------------------


class Answering(WebhookServer):
    def __init__(self) -> None:
        super().__init__(host="127.0.0.1", port=0, webhook_secret=SECRET)
        self.answered: list[str] = []
        self.left = trio.Event()

    async def on_call_answered(self, room: RoomClient) -> None:
        self.answered.append(room.local_participant.get_attribute("name"))
        await room.messaging.enable()
        await room.storage.upload(path="reverse.txt", data=b"over the room's own socket", overwrite=True)


async def test_the_reverse_form_runs_the_room_over_the_accepted_socket(server, credentials) -> None:
    service = Answering()
    call = {"room_name": "test-room", "room_url": room_url(server), "token": mint(credentials, name="reverse-agent"), "arguments": None}
    async with service, connect(room_url(server), mint(credentials, name="observer")) as observer:
        await observer.messaging.enable()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bridge, backend, f"ws://127.0.0.1:{service.bound_port}/webhook", call, room_url(server), SECRET)
            with trio.fail_after(10):
                while not await observer.storage.exists(path="reverse.txt"):
                    await trio.sleep(0.02)
                agent = None
                while agent is None:
                    agent = next((p for p in observer.messaging.remote_participants if p.get_attribute("name") == "reverse-agent"), None)
                    await trio.sleep(0.02)
            assert service.answered == ["reverse-agent"]
            # Dismissed: the service's room client closes its socket; the bridge ends, and the
            # participant leaves the room.
            await observer.messaging.send_message(to=agent, type="dismiss", message={})
        with trio.fail_after(10):
            while any(p.get_attribute("name") == "reverse-agent" for p in observer.messaging.remote_participants):
                await trio.sleep(0.02)


async def test_the_reverse_form_refuses_what_is_not_a_signed_call(server, credentials) -> None:
    service = Answering()
    call = {"room_name": "test-room", "room_url": room_url(server), "token": mint(credentials, name="x"), "arguments": None}
    async with service:
        url = f"ws://127.0.0.1:{service.bound_port}/webhook"
        with pytest.raises(HandshakeRejected) as refused:
            await connect_websocket(backend, url, headers={"Meshagent-Webhook": webhook_body("room.call", call).decode()})
        assert refused.value.status == 401 and "missing signature" in refused.value.body
        ended = webhook_body("room.ended", {"room_name": "x"}).decode()
        with pytest.raises(HandshakeRejected) as refused:
            await connect_websocket(backend, url, headers={"Meshagent-Webhook": ended, "Meshagent-Signature": sign(ended, SECRET)})
        assert refused.value.status == 400
    assert service.answered == []


async def test_a_reverse_call_ends_when_the_server_stops(server, credentials) -> None:
    service = Answering()
    call = {"room_name": "test-room", "room_url": room_url(server), "token": mint(credentials, name="stopping-agent"), "arguments": None}
    async with connect(room_url(server), mint(credentials, name="observer")) as observer:
        await observer.messaging.enable()
        async with trio.open_nursery() as nursery:
            async with service:
                nursery.start_soon(bridge, backend, f"ws://127.0.0.1:{service.bound_port}/webhook", call, room_url(server), SECRET)
                with trio.fail_after(10):
                    while not service.answered or not await observer.storage.exists(path="reverse.txt"):
                        await trio.sleep(0.02)
            # The server left the room cleanly: the bridge sees the close and ends by itself.
        with trio.fail_after(10):
            while any(p.get_attribute("name") == "stopping-agent" for p in observer.messaging.remote_participants):
                await trio.sleep(0.02)
