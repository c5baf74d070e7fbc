"""The local MeshAgent server: HTTP (h11) and room WebSockets on one port.

`GET /` answers 200 (readiness). `GET /rooms/<room>` with a WebSocket upgrade and a participant
token (`Authorization: Bearer`, or the legacy `?token=`) joins the room; a token that does not
verify, has expired, belongs to another project or grants another room is refused with HTTP
403 and a body saying why.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import parse_qs, urlsplit

import h11
import jwt
import trio

from meshagent_core.tokens import ApiKey, ParticipantToken, encode_api_key, parse_api_key, verify_participant_jwt

from ..websocket import HandshakeRejected, accept_websocket
from .room import Room, serve_participant

log = logging.getLogger("meshagent_trio.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8078
MAX_REQUEST_HEAD = 16 * 1024
_ROOM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Credentials:
    """The project and the API key whose secret signs the tokens this server trusts."""

    project_id: str
    key_id: str
    secret: str

    @property
    def api_key(self) -> str:
        return encode_api_key(ApiKey(id=self.key_id, project_id=self.project_id, secret=self.secret))


def load_credentials(data_dir: Path, environ: Mapping[str, str] | None = None) -> tuple[Credentials, bool]:
    """From `MESHAGENT_API_KEY`, or `MESHAGENT_PROJECT_ID` + `MESHAGENT_KEY_ID` +
    `MESHAGENT_SECRET`, else from (or newly into) `<data_dir>/credentials.json`.
    Returns the credentials and whether they were just created."""
    environ = os.environ if environ is None else environ
    if environ.get("MESHAGENT_API_KEY"):
        key = parse_api_key(environ["MESHAGENT_API_KEY"])
        return Credentials(key.project_id, key.id, key.secret), False
    parts = [environ.get(name) for name in ("MESHAGENT_PROJECT_ID", "MESHAGENT_KEY_ID", "MESHAGENT_SECRET")]
    if all(parts):
        return Credentials(*parts), False  # type: ignore[arg-type]
    path = data_dir / "credentials.json"
    if path.exists():
        stored = json.loads(path.read_text())
        return Credentials(stored["project_id"], stored["key_id"], stored["secret"]), False
    credentials = Credentials(str(uuid.uuid4()), str(uuid.uuid4()), secrets.token_urlsafe(32))
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        json.dump({"project_id": credentials.project_id, "key_id": credentials.key_id, "secret": credentials.secret}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    return credentials, True


@dataclass
class ServerConfig:
    data_dir: Path
    credentials: Credentials
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: Largest room message accepted from a participant (its header packet is refused first).
    max_message_size: int = 64 * 1024 * 1024
    #: Requests of one connection that run at once; later ones wait their turn (in order).
    max_pending_calls: int = 256
    #: Requests of one connection that may wait for their turn before new ones are refused.
    max_queued_calls: int = 10_000
    #: Largest file a `storage.upload` may write.
    max_upload_size: int = 1024 * 1024 * 1024
    #: Public base URL, for `room_url` (defaults to ws://host:port).
    public_url: str | None = None
    #: The time source for token expiry (seconds since the epoch).
    clock: Callable[[], float] = field(default=time.time)

    def room_url(self, room: str) -> str:
        base = self.public_url or f"ws://{self.host}:{self.port}"
        return f"{base.rstrip('/')}/rooms/{room}"


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Server:
    """The room registry and the HTTP front of the local server."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.rooms: dict[str, Room] = {}
        self.port: int | None = None

    def room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            room = Room(name, self.config.data_dir / "rooms" / name, self.config)
            self.rooms[name] = room
        return room

    def authorize(self, room_name: str, token_text: str | None) -> ParticipantToken:
        """The verified participant token, or `Refused(403, why)`."""
        if token_text is None:
            raise Refused(403, "missing participant token (Authorization: Bearer <jwt>)")
        credentials = self.config.credentials
        try:
            token = verify_participant_jwt(
                token_text,
                lookup_secret=lambda kid: credentials.secret if kid == credentials.key_id else None,
                default_secret=credentials.secret,
                now=self.config.clock(),
            )
        except jwt.ExpiredSignatureError:
            raise Refused(403, "the participant token has expired") from None
        except jwt.InvalidTokenError as error:
            raise Refused(403, f"invalid participant token: {error}") from None
        if token.project_id is not None and token.project_id != credentials.project_id:
            raise Refused(403, "the participant token belongs to another project")
        granted_room = token.grant_scope("room")
        if granted_room != room_name:
            raise Refused(403, f"the participant token does not grant access to room {room_name!r}")
        return token

    # --- HTTP -----------------------------------------------------------------------------

    async def handle(self, stream: trio.SocketStream) -> None:
        try:
            await self._handle(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            pass
        finally:
            await stream.aclose()

    async def _handle(self, stream: trio.SocketStream) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                connection.receive_data(data)
                if not data and connection.their_state is not h11.SEND_BODY:
                    return
                continue
            if isinstance(event, (h11.ConnectionClosed,)) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):
                continue
            target = urlsplit(event.target.decode("latin-1"))
            headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers}
            if target.path.startswith("/rooms/"):
                await self._room_request(stream, connection, event, target.path[len("/rooms/") :], target.query, headers)
                return
            if event.method == b"GET" and target.path == "/":
                await _respond(stream, connection, 200, "ok\n")
            else:
                await _respond(stream, connection, 404, f"no route for {event.method.decode()} {target.path}\n")
            await _finish_request(stream, connection)
            if connection.our_state is h11.MUST_CLOSE:
                return
            connection.start_next_cycle()

    async def _room_request(
        self,
        stream: trio.SocketStream,
        connection: h11.Connection,
        request: h11.Request,
        room_name: str,
        query: str,
        headers: dict[str, str],
    ) -> None:
        if headers.get("upgrade", "").lower() != "websocket":
            await _respond(stream, connection, 426, "this path takes a WebSocket upgrade\n")
            return
        if not _ROOM_NAME.match(room_name) or ".." in room_name:
            await _respond(stream, connection, 404, f"invalid room name {room_name!r}\n")
            return
        token_text = None
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token_text = authorization[7:].strip()
        else:
            token_text = (parse_qs(query).get("token") or [None])[0]
        try:
            token = self.authorize(room_name, token_text)
        except Refused as refused:
            await _respond(stream, connection, refused.status, refused.message + "\n")
            return
        while (event := connection.next_event()) is not h11.PAUSED:
            if event is h11.NEED_DATA:
                await _respond(stream, connection, 400, "a WebSocket upgrade request has no body\n")
                return
        trailing, _ = connection.trailing_data
        head = _serialize_head(request)
        try:
            websocket = await accept_websocket(stream, head + trailing)
        except HandshakeRejected:
            return
        room = self.room(room_name)
        await serve_participant(room, token, websocket, self.config.room_url(room_name))

    # --- running --------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled; `task_status.started(port)` once listening."""
        listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        self.port = listeners[0].socket.getsockname()[1]
        if self.config.port == 0:
            self.config.port = self.port
        async with trio.open_nursery() as nursery:
            task_status.started(self.port)
            await trio.serve_listeners(self.handle, listeners, handler_nursery=nursery)


async def _respond(stream: trio.SocketStream, connection: h11.Connection, status: int, body: str) -> None:
    data = body.encode()
    headers = [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(data)))]
    if status >= 400 and status != 404:
        headers.append(("connection", "close"))
    await stream.send_all(connection.send(h11.Response(status_code=status, headers=headers)) + connection.send(h11.Data(data=data)) + connection.send(h11.EndOfMessage()))


async def _finish_request(stream: trio.SocketStream, connection: h11.Connection) -> None:
    """Read what is left of the request (its body) so the connection can be reused."""
    while connection.their_state is h11.SEND_BODY:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive_some(65536))


def _serialize_head(request: h11.Request) -> bytes:
    lines = [request.method + b" " + request.target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers.raw_items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def run_server(config: ServerConfig, *, announce: bool = True) -> None:
    """Serve until Ctrl-C or SIGTERM; connections are closed with a close frame on the way out."""
    server = Server(config)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve)
        if announce:
            print(f"meshagent-trio server listening on http://{config.host}:{port}", flush=True)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                print("shutting down", flush=True)
                nursery.cancel_scope.cancel()
                break
