"""The local server's configuration, credentials and limits (the bottom floor: imports nothing
else of the server)."""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from meshagent_core.tokens import ApiKey, encode_api_key, parse_api_key

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8078


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
    #: The webhook secret of the server's own project (`MESHAGENT_WEBHOOK_SECRET`); None: one is
    #: made at random and kept in the control plane (protocol/webhooks.md §5).
    webhook_secret: str | None = None
    #: The time source for token expiry (seconds since the epoch).
    clock: Callable[[], float] = field(default=time.time)

    # --- webhooks (protocol/webhooks.md §5–§7) ---------------------------------------------
    #: Seconds one webhook POST may take (a `room.call`, or one attempt of a project webhook).
    webhook_timeout: float = 10.0
    #: Seconds before the first retry of a failed delivery (doubling after each failure).
    webhook_retry_initial: float = 1.0
    #: The longest wait between two attempts.
    webhook_retry_max: float = 60.0
    #: Seconds after its event that an undelivered webhook is given up (marked failed).
    webhook_give_up_after: float = 24 * 3600.0

    # --- the HTTP front -------------------------------------------------------------------
    #: Seconds a connection has to deliver a complete request head (bytes that never form a
    #: request line are dropped the same way).
    request_head_timeout: float = 10.0
    #: Largest request head (request line and headers).
    max_request_head: int = 16 * 1024
    #: Largest request body (REST calls); a larger one gets a 413.
    max_request_body: int = 16 * 1024 * 1024
    #: Open connections (HTTP and WebSocket) served at once; beyond it new ones get a 503.
    #: None: derived at start from the descriptor limit (see `connection_limit`).
    max_connections: int | None = None
    #: File descriptors kept free for storage, databases and logs when the house is full.
    reserved_descriptors: int = 64

    # --- what a connection may have queued for it ----------------------------------------
    #: Unsent outgoing packets (~1 KiB each) above which the connection stops reading its
    #: requests, and a backlog of fan-out (messages, events, relays) starts the slow-reader
    #: clock below.
    output_high_water: int = 4096
    #: Unsent outgoing packets at which the participant is disconnected at once (close 1008)
    #: when what piles up is fan-out (others' messages and events): large enough that a
    #: recipient that reads absorbs a burst, while one that stopped reading is left to the clock.
    output_hard_limit: int = 65536
    #: The same for its own answers piling up behind unread ones (it pipelines and does not
    #: read; its reader is already paused).
    answer_hard_limit: int = 16384
    #: Seconds a participant's output may stay above the high-water mark before it is
    #: disconnected (close 1008: it could not keep up).
    slow_reader_timeout: float = 10.0

    def room_data_dir(self, project_id: str, room: str) -> Path:
        """Where a room keeps its data: `rooms/<room>` for the server's own project (as before
        projects existed), `projects/<project_id>/rooms/<room>` for the others."""
        if project_id == self.credentials.project_id:
            return self.data_dir / "rooms" / room
        return self.data_dir / "projects" / project_id / "rooms" / room

    def project_storage_dir(self, project_id: str) -> Path:
        """The project storage of REST `upload`/`download` (not a room's storage)."""
        return self.data_dir / "projects" / project_id / "storage"

    def room_url(self, room: str) -> str:
        base = self.public_url or f"ws://{self.host}:{self.port}"
        return f"{base.rstrip('/')}/rooms/{room}"

    def connection_limit(self, descriptor_limit: int) -> int:
        """Connections to accept given the process's descriptor limit: `max_connections` when
        set, else half of what the limit leaves after the reserve (a connection takes one
        descriptor, and one more while it uploads or downloads a file)."""
        if self.max_connections is not None:
            return self.max_connections
        return max(16, (descriptor_limit - self.reserved_descriptors) // 2)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Credentials", "ServerConfig", "load_credentials"]
