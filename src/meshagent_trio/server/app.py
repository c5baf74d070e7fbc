"""The local MeshAgent server: the room registry behind the HTTP front, and `run_server`.

`GET /` answers 200 (readiness). `GET /rooms/<room>` with a WebSocket upgrade and a participant
token (`Authorization: Bearer`, or the legacy `?token=`) joins the room of the token's project;
a token that does not verify (an unknown or deleted key), has expired, belongs to a project this
server does not have or that its key may not sign for, or grants another room is refused with
HTTP 403 and a body saying why.

The floors of the server, each importing only the ones below it: `app` (this module), `http`
(accepting, limits, routing), `rooms.connection` (the per-connection loop), `dispatch`, the
toolkits (`hosting`, `toolkits/*`), what a toolkit sees (`toolkit`, `hooks`, `rooms.room`,
`rooms.participant`, `sqlite_store`), and `config` at the bottom.
"""

from __future__ import annotations

import logging
import signal
from typing import Callable
from urllib.parse import parse_qs

import h11
import trio

from meshagent_core.tokens import ParticipantToken

from ..websocket import HandshakeRejected, WebSocketConnection, accept_websocket
from .auth import Refused, authorize
from .config import DEFAULT_HOST, DEFAULT_PORT, Credentials, ServerConfig, load_credentials
from .http import HttpFront, Request, respond, respond_json
from .http.downloads import PREFIX as ROOM_FILES, serve_room_file
from .control import ControlPlane, NotFound, is_valid_room_name
from .rest import RestContext, serve_rest
from .rest.files_front import is_files_path, serve_files
from .rest.mailboxes import is_mail_endpoint, serve_mail
from .rest.oauth import is_oauth_endpoint, serve_oauth
from .rooms.connection import serve_participant
from .rooms.room import Room
from .scheduler import Scheduler
from .services.project_webhooks import ProjectWebhooks
from .services.room_services import RoomServices
from .toolkits.storage import sweep_data_dir

log = logging.getLogger("meshagent_trio.server")
#: Seconds a leave may take to be recorded when the server is stopping (the next start ends
#: what is left active).
RECORD_LEAVE_TIMEOUT = 5.0



class Server:
    """The room registry and the HTTP front of the local server."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        #: the rooms of the server's own project, by name
        self.rooms: dict[str, Room] = {}
        #: the rooms of every project, by project id and name
        self.project_rooms: dict[str, dict[str, Room]] = {config.credentials.project_id: self.rooms}
        self.port: int | None = None
        self.http = HttpFront(config, self._route)
        self.control = ControlPlane(config)
        self.rest = RestContext(config, self.control, room=lambda project_id, name: self.room(name, project_id))
        #: fires the scheduled tasks (protocol/rest.md §20)
        self.scheduler = Scheduler(self.control.tasks, self.rest.room, config.clock)
        #: delivers project webhooks (protocol/webhooks.md §7)
        self.webhooks = ProjectWebhooks(config, self.control)
        #: runs the services of rooms as their sessions start (protocol/webhooks.md §8)
        self.services = RoomServices(config, self.control, self.rest.room)

    def room(self, name: str, project_id: str | None = None) -> Room:
        """The room `name` of the project (default: the server's own), made on first use."""
        project_id = project_id or self.config.credentials.project_id
        rooms = self.project_rooms.setdefault(project_id, {})
        room = rooms.get(name)
        if room is None:
            room = Room(name, self.config.room_data_dir(project_id, name), self.config, project_id=project_id, control=self.control)
            rooms[name] = room
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
        if request.path.startswith(ROOM_FILES):
            return await serve_room_file(request, self.config)
        if request.path.startswith("/agents/") and request.path.endswith("/messages"):  # `connect_agent`'s agent_url
            body = b'{"error": {"code": "not_implemented", "message": "managed agents do not run on the local server (they need an LLM); connect_agent tokens are real, the agent is not"}}'
            await respond_json(request.stream, request.connection, 501, body, [("connection", "close")])
            return False
        if is_oauth_endpoint(request.path):  # the token, authorization and revocation endpoints
            return await serve_oauth(request, self.rest)
        if is_mail_endpoint(request.path):  # the local stand-in for SMTP
            return await serve_mail(request, self.rest)
        if is_files_path(request.path):  # the Files API (`domains.files`)
            return await serve_files(request, self.rest)
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
            token = authorize(self.config, room_name, token_text, self.control.keys.ring)
        except Refused as refused:
            await respond(stream, connection, refused.status, refused.message + "\n")
            return
        project_id = token.project_id or self.config.credentials.project_id
        try:
            await self.control.get_project(project_id)
        except NotFound:
            await respond(stream, connection, 403, f"the participant token belongs to another project ({project_id!r}), which this server does not have\n")
            return
        if not await self.control.room_enabled(project_id, room_name):
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
        await self._serve_recorded(self.room(room_name, project_id), project_id, token, websocket)

    async def _serve_recorded(self, room: Room, project_id: str, token: ParticipantToken, websocket: WebSocketConnection) -> None:
        """Serve a participant, recording its join and leave in the room's session
        (`control.sessions`). A failure to record is logged and never keeps it out of the room."""
        sessions = self.control.sessions
        try:
            attendance = await sessions.participant_joined(project_id, room.name, name=token.name, role=token.role, disconnect=_disconnect_all(room))
        except Exception:
            log.exception("could not record a participant joining room %s", room.name)
            attendance = None
        if attendance is not None and attendance.started_session:
            self.services.room_started(room)
        try:
            # No checkpoint between the join being recorded and the participant entering the
            # room (see control.sessions): a terminate finds it there.
            await serve_participant(room, token, websocket, self.config.room_url(room.name))
        finally:
            if attendance is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(RECORD_LEAVE_TIMEOUT):
                    try:
                        if await sessions.participant_left(attendance):
                            self.services.room_ended(room)
                    except Exception:
                        log.exception("could not record a participant leaving room %s", room.name)

    # --- running --------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled; `task_status.started(port)` once listening."""
        swept = await trio.to_thread.run_sync(sweep_data_dir, self.config.data_dir)
        if swept:
            log.info("removed %d leftovers of an earlier run from %s", swept, self.config.data_dir)
        await self.control.sessions.recover()
        listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        self.port = listeners[0].socket.getsockname()[1]
        if self.config.port == 0:
            self.config.port = self.port
        async with trio.open_nursery() as nursery:
            await nursery.start(self.scheduler.run)
            await nursery.start(self.webhooks.run)
            await nursery.start(self.services.run)
            task_status.started(self.port)
            await trio.serve_listeners(self.handle, listeners, handler_nursery=nursery)


def _disconnect_all(room: Room) -> Callable[[int, str], None]:
    """What ends a session of `room`: each participant is disconnected with a close frame."""

    def disconnect(code: int, reason: str) -> None:
        for participant in list(room.participants.values()):
            participant.evict(code, reason)

    return disconnect


def _serialize_head(request: h11.Request) -> bytes:
    lines = [request.method + b" " + request.target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers.raw_items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def run_server(config: ServerConfig, *, announce: bool = True) -> None:
    """Serve until Ctrl-C or SIGTERM; connections are closed with a close frame on the way out."""
    server = Server(config)
    # The signals are ours before the port opens: a SIGTERM sent as soon as the server answers
    # must shut it down, not kill it with the default action.
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(server.serve)
            if announce:
                secret = await server.control.webhooks.project_secret(config.credentials.project_id)
                print(f"webhooks are signed with (for WebhookServer and ServiceHost):\n  export MESHAGENT_WEBHOOK_SECRET={secret}")
                print(f"meshagent-trio server listening on http://{config.host}:{port}", flush=True)
            async for _ in signals:
                print("shutting down", flush=True)
                nursery.cancel_scope.cancel()
                break


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Credentials", "Server", "ServerConfig", "load_credentials", "run_server"]
