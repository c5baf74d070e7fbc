"""The local MeshAgent server: the room registry behind the HTTP front, and `run_server`.

`GET /` answers 200 (readiness). `GET /rooms/<room>` with a WebSocket upgrade and a participant
token (`Authorization: Bearer`, or the legacy `?token=`) joins the room; a token that does not
verify, has expired, belongs to another project or grants another room is refused with HTTP
403 and a body saying why.

The floors of the server, each importing only the ones below it: `app` (this module), `http`
(accepting, limits, routing), `rooms.connection` (the per-connection loop), `dispatch`, the
toolkits (`hosting`, `toolkits/*`), what a toolkit sees (`toolkit`, `hooks`, `rooms.room`,
`rooms.participant`, `sqlite_store`), and `config` at the bottom.
"""

from __future__ import annotations

import logging
import signal
from urllib.parse import parse_qs

import h11
import trio

from ..websocket import HandshakeRejected, accept_websocket
from .auth import Refused, authorize
from .config import DEFAULT_HOST, DEFAULT_PORT, Credentials, ServerConfig, load_credentials
from .http import HttpFront, Request, respond, respond_json
from .control import ControlPlane, is_valid_room_name
from .rest import RestContext, serve_rest
from .rooms.connection import serve_participant
from .rooms.room import Room
from .toolkits.storage import sweep_data_dir

log = logging.getLogger("meshagent_trio.server")



class Server:
    """The room registry and the HTTP front of the local server."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.rooms: dict[str, Room] = {}
        self.port: int | None = None
        self.http = HttpFront(config, self._route)
        self.control = ControlPlane(config)
        self.rest = RestContext(config, self.control)

    def room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            room = Room(name, self.config.data_dir / "rooms" / name, self.config)
            self.rooms[name] = room
        return room

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve one accepted connection."""
        await self.http.handle(stream)

    async def _route(self, request: Request) -> bool:
        if request.path.startswith("/rooms/"):
            await self._join_room(request, request.path[len("/rooms/") :])
            return False
        if request.method == "GET" and request.path == "/":
            await respond(request.stream, request.connection, 200, "ok\n")
            return True
        served = await serve_rest(request, self.rest)
        if served is not None:
            return served
        await respond(request.stream, request.connection, 404, f"no route for {request.method} {request.path}\n")
        return True

    async def _join_room(self, request: Request, room_name: str) -> None:
        stream, connection, headers = request.stream, request.connection, request.headers
        if headers.get("upgrade", "").lower() != "websocket":
            await respond(stream, connection, 426, "this path takes a WebSocket upgrade\n")
            return
        if not is_valid_room_name(room_name):
            await respond(stream, connection, 404, f"invalid room name {room_name!r}\n")
            return
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token_text: str | None = authorization[7:].strip()
        else:
            token_text = (parse_qs(request.query).get("token") or [None])[0]
        try:
            token = authorize(self.config, room_name, token_text)
        except Refused as refused:
            await respond(stream, connection, refused.status, refused.message + "\n")
            return
        if not await self.control.room_enabled(self.config.credentials.project_id, room_name):
            body = b'{"error": {"code": "room_disabled", "message": "This room is currently disabled."}}'
            await respond_json(stream, connection, 423, body, [("connection", "close")])
            return
        while (event := connection.next_event()) is not h11.PAUSED:
            if event is h11.NEED_DATA:
                await respond(stream, connection, 400, "a WebSocket upgrade request has no body\n")
                return
        trailing, _ = connection.trailing_data
        try:
            websocket = await accept_websocket(stream, _serialize_head(request.event) + trailing)
        except HandshakeRejected:
            return
        await serve_participant(self.room(room_name), token, websocket, self.config.room_url(room_name))

    # --- running --------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled; `task_status.started(port)` once listening."""
        swept = await trio.to_thread.run_sync(sweep_data_dir, self.config.data_dir)
        if swept:
            log.info("removed %d leftovers of an earlier run from %s", swept, self.config.data_dir)
        listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        self.port = listeners[0].socket.getsockname()[1]
        if self.config.port == 0:
            self.config.port = self.port
        async with trio.open_nursery() as nursery:
            task_status.started(self.port)
            await trio.serve_listeners(self.handle, listeners, handler_nursery=nursery)


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


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Credentials", "Server", "ServerConfig", "load_credentials", "run_server"]
