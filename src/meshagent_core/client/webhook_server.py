"""`WebhookServer`: receives MeshAgent webhooks (protocol/webhooks.md §3), as the official 0.56
class of that name, on every event loop (an adapter binds its `RoomClient`:
`meshagent_trio.WebhookServer`, `meshagent_anyio.WebhookServer`).

Routes: `GET /` answers `{"ok": true}`; `POST <path>` (and `GET <path>`) take a webhook. The
envelope is the `Meshagent-Webhook` header when there is one, else a JSON body (a body
without a JSON content type counts as `{}`). With `validate_webhook_secret` (the default) the
`Meshagent-Signature` is checked (`meshagent_core.webhooks.verify`); refusals are 401 with the
official reasons, a malformed or non-object envelope is 400. A valid one is handed to the
`events()` iterators, then to `on_webhook` (which calls `on_room_started`, `on_room_ended`,
`on_call`), and answered `200 {"ok": true}`.

A `GET <path>` WebSocket upgrade carrying a signed `room.call` is the reverse form: the room
dialled us. The socket is accepted, a `RoomClient` runs the room protocol over it, and
`on_call_answered(room)` is awaited; the server keeps the room until the room side closes it
(or the server stops).

Differences from the official class, all deliberate: callbacks may be replaced by
`async for event in server.events()`; no aiohttp `app` to share; malformed JSON and a known
event whose `data` does not fit are 400 (the official server fails with a 500); an exception
in a callback is logged and answered 500; validation without a secret is refused at
construction (the official server answers every request 401).
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

import msgspec

from ..jsondepth import loads_bounded
from ..webhooks import (
    ENVELOPE_HEADER,
    INVALID_BODY,
    SIGNATURE_HEADER,
    CallEvent,
    RoomEndedEvent,
    RoomStartedEvent,
    WebhookBodyError,
    WebhookEvent,
    WebhookSignatureError,
    read_event,
    verify,
)
from .answering import CallServer, answer_reverse, until_released
from .http_server import HttpLimits, HttpRequest, HttpResponse, Upgrade, error_response, json_response

if TYPE_CHECKING:
    from .backend import ByteStream
    from .room import RoomClient

log = logging.getLogger("meshagent_core.client.webhook_server")

DEFAULT_PATH = "/webhook"
DEFAULT_PORT = 8080
#: Webhook envelopes are small; this bounds a request body (413 beyond).
MAX_WEBHOOK_BODY = 1024 * 1024
#: Events an `events()` iterator holds for a consumer that has not read them yet.
DEFAULT_EVENT_BUFFER = 64
#: Seconds a webhook waits for room in a full `events()` buffer before it is answered 503.
EVENT_DELIVERY_TIMEOUT = 2.0


class WebhookRefused(Exception):
    """A webhook request that is not taken: `status` and the official `reason`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason

    def response(self) -> HttpResponse:
        return error_response(self.status, self.reason)


def webhook_envelope(request: HttpRequest, *, secret: str | None, validate: bool) -> dict[str, Any]:
    """The envelope of a webhook request, checked as the official receiver does (see the
    module docstring); raises `WebhookRefused`."""
    header = request.headers.get(ENVELOPE_HEADER.lower())
    if header is not None:
        text: bytes = header.encode("latin-1")
    elif request.headers.get("content-type", "").startswith("application/json"):
        text = request.body
    else:
        text = b"{}"
    if validate:
        if not secret:
            raise WebhookRefused(401, "invalid jwt")
        try:
            return verify(text, request.headers.get(SIGNATURE_HEADER.lower()), secret, now=time.time())
        except WebhookBodyError as error:
            raise WebhookRefused(400, str(error)) from None
        except WebhookSignatureError as error:
            raise WebhookRefused(401, str(error)) from None
    try:
        envelope = loads_bounded(text.decode("utf-8"))
    except ValueError as error:  # includes UnicodeDecodeError
        raise WebhookRefused(400, f"malformed webhook body: {error}") from None
    if not isinstance(envelope, dict):
        raise WebhookRefused(400, INVALID_BODY)
    return envelope


def envelope_event(envelope: dict[str, Any]) -> WebhookEvent:
    """The event model of a checked envelope (`meshagent_core.webhooks.read_event`); raises
    `WebhookRefused` (400) when it does not fit."""
    try:
        return read_event(msgspec.json.encode(envelope))
    except WebhookBodyError as error:
        raise WebhookRefused(400, str(error)) from None


def _port_from_environment(environ: Any) -> int:
    value = environ.get("MESHAGENT_PORT")
    if value is None:
        return DEFAULT_PORT
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"MESHAGENT_PORT must be a port number, not {value!r}") from None


def check_port(port: int) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"port must be a number from 0 to 65535, not {port!r}")
    return port


def check_path(path: str) -> str:
    if not isinstance(path, str) or not path.startswith("/") or any(c in path for c in "?# \r\n"):
        raise ValueError(f"a webhook path starts with '/' and has no query, fragment or spaces, not {path!r}")
    return path


class WebhookEvents:
    """The events a `WebhookServer` receives from now on (`server.events()`), until the server
    stops or this is closed (`aclose()`, or leaving `async with`).

    It holds at most `max_buffer` events. When it is full, a webhook waits up to
    `WebhookServer.event_delivery_timeout` seconds for room, then is answered 503 (the sender
    may retry; an event may then reach another iterator twice), so a consumer that stops
    reading costs neither unbounded memory nor a hung sender. Close it when done."""

    def __init__(self, server: "WebhookServer", max_buffer: int) -> None:
        if max_buffer < 1:
            raise ValueError("max_buffer must be at least 1")
        self._server = server
        self._send, self._receive = server.backend.open_memory_channel(max_buffer)
        self._closed = False
        server._feeds.add(self)

    def __aiter__(self) -> "WebhookEvents":
        return self

    async def __anext__(self) -> WebhookEvent:
        try:
            async for event in self._receive:
                return event
        except self._server.backend.stream_errors:  # closed under us
            pass
        raise StopAsyncIteration

    async def __aenter__(self) -> "WebhookEvents":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def _end(self) -> None:
        """No more events (the server stops): what is buffered is still delivered."""
        self._server._feeds.discard(self)
        self._send.close()

    async def aclose(self) -> None:
        self._closed = True
        self._end()
        self._receive.close()

    async def _deliver(self, event: WebhookEvent) -> None:
        try:
            await self._send.send(event)
        except self._server.backend.stream_errors:  # closed by its consumer meanwhile
            self._server._feeds.discard(self)


class WebhookServer(CallServer):
    """Receives MeshAgent webhooks over HTTP (see the module docstring).

    Subclass it and override `on_room_started`, `on_room_ended`, `on_call` or
    `on_call_answered` (or `on_webhook` for every envelope), or read `events()`. Serve it with
    `async with server:` (`start()`/`stop()` are the same two halves, for the same task), or
    `await server.run()` until SIGTERM, SIGABRT or SIGINT.
    """

    kind = "webhook server"
    #: Seconds a webhook waits for room in a full `events()` buffer before it is answered 503.
    event_delivery_timeout: float = EVENT_DELIVERY_TIMEOUT

    def __init__(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        webhook_secret: str | None = None,
        path: str | None = None,
        validate_webhook_secret: bool | None = None,
        limits: HttpLimits | None = None,
    ) -> None:
        self._host = "0.0.0.0" if host is None else host
        self._port = check_port(_port_from_environment(os.environ) if port is None else port)
        self._path = check_path(DEFAULT_PATH if path is None else path)
        self._validate_webhook_secret = True if validate_webhook_secret is None else bool(validate_webhook_secret)
        self._webhook_secret = os.getenv("MESHAGENT_WEBHOOK_SECRET") if webhook_secret is None else webhook_secret
        if self._validate_webhook_secret and not self._webhook_secret:
            raise ValueError(
                "validate_webhook_secret needs a webhook secret: pass webhook_secret=, set "
                "MESHAGENT_WEBHOOK_SECRET, or pass validate_webhook_secret=False"
            )
        self.limits = limits or HttpLimits(max_body=MAX_WEBHOOK_BODY)
        self._feeds: set[WebhookEvents] = set()
        self._init_running()

    @property
    def path(self) -> str:
        return self._path

    # --- what a subclass overrides (the official names) --------------------------------------

    async def on_webhook(self, *, payload: dict[str, Any]) -> None:
        """Every accepted envelope; by default calls `on_room_started`, `on_room_ended` or
        `on_call` by its event name (other names are ignored)."""
        event = envelope_event(payload)
        if isinstance(event, RoomStartedEvent):
            await self.on_room_started(event)
        elif isinstance(event, RoomEndedEvent):
            await self.on_room_ended(event)
        elif isinstance(event, CallEvent):
            await self.on_call(event)

    async def on_room_started(self, event: RoomStartedEvent) -> None:
        pass

    async def on_room_ended(self, event: RoomEndedEvent) -> None:
        pass

    async def on_call(self, event: CallEvent) -> None:
        pass

    async def on_call_answered(self, room: "RoomClient") -> None:
        """The reverse form: the room dialled this server; `room` is connected over that socket."""

    # --- events as an iterator ---------------------------------------------------------------

    def events(self, *, max_buffer: int = DEFAULT_EVENT_BUFFER) -> WebhookEvents:
        """The events accepted from now on: `async with server.events() as events: async for
        event in events:` (`CallEvent`, `RoomStartedEvent`, `RoomEndedEvent`, `UnknownEvent`).
        See `WebhookEvents` for what a full buffer does."""
        return WebhookEvents(self, max_buffer)

    async def _deliver(self, event: WebhookEvent) -> bool:
        """Hand `event` to every open `events()` iterator; False when one stayed full."""
        feeds = list(self._feeds)
        if not feeds:
            return True
        with self.backend.move_on_after(self.event_delivery_timeout) as scope:
            for feed in feeds:
                await feed._deliver(event)
        return not scope.cancelled_caught

    # --- requests ----------------------------------------------------------------------------

    async def _handle(self, request: HttpRequest) -> HttpResponse | Upgrade:
        if request.path == "/" and request.method in ("GET", "HEAD"):
            return json_response({"ok": True})
        if request.path != self._path:
            return error_response(404, "Not Found")
        if request.method not in ("GET", "POST"):
            return HttpResponse(405, b"405: Method Not Allowed", headers=[("allow", "GET, POST")])
        try:
            envelope = webhook_envelope(request, secret=self._webhook_secret, validate=self._validate_webhook_secret)
            if request.wants_upgrade:
                return self._upgrade(envelope)
            event = envelope_event(envelope)
        except WebhookRefused as refused:
            return refused.response()
        if not await self._deliver(event):
            return error_response(503, "webhook event buffer full: the events() consumer is not reading")
        try:
            await self.on_webhook(payload=envelope)
        except WebhookRefused as refused:  # a subclass's on_webhook calling envelope_event
            return refused.response()
        except Exception:
            log.exception("the webhook handler failed on %s", envelope.get("event"))
            return error_response(500, "the webhook handler failed")
        return json_response({"ok": True})

    def _upgrade(self, envelope: dict[str, Any]) -> Upgrade:
        if envelope.get("event") != CallEvent.name:
            raise WebhookRefused(400, "only a room.call webhook may open a WebSocket")
        event = envelope_event(envelope)
        assert isinstance(event, CallEvent)

        async def takeover(stream: "ByteStream", request_bytes: bytes) -> None:
            await self._answer_reverse(stream, request_bytes, event)

        return Upgrade(takeover)

    async def _answer_reverse(self, stream: "ByteStream", request_bytes: bytes, event: CallEvent) -> None:
        calls = self._calls
        assert calls is not None

        async def serve(room: "RoomClient") -> None:
            await self.on_call_answered(room=room)
            await until_released(room, calls.stopping)

        await answer_reverse(self.backend, self.room_client_class, stream, request_bytes, event, calls, serve, f"to {self._path}")

    # --- running -----------------------------------------------------------------------------

    def _listen_address(self) -> tuple[str, int]:
        return self._host, self._port

    def _announce(self) -> None:
        log.info("webhook server listening on http://%s:%s%s", self._host, self.bound_port, self._path)

    def _stopping(self) -> None:
        for feed in list(self._feeds):
            feed._end()


__all__ = [
    "DEFAULT_EVENT_BUFFER",
    "EVENT_DELIVERY_TIMEOUT",
    "MAX_WEBHOOK_BODY",
    "WebhookEvents",
    "WebhookRefused",
    "WebhookServer",
    "envelope_event",
    "webhook_envelope",
]
