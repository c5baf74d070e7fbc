"""A room: its participants, the toolkits they host, and per-toolkit state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import msgspec

from ..signed_downloads import ROOM_STORAGE_FOLDER
from .participant import Participant

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..control import ControlPlane


@dataclass
class HostedToolkit:
    """A toolkit registered by a participant (`room.register_toolkit`)."""

    id: str
    name: str
    host: Participant
    title: str | None
    description: str | None
    tools: dict[str, Any]
    public: bool
    annotations: dict[str, str]

    def describe(self) -> dict[str, Any]:
        return {
            "title": self.title or self.name,
            "description": self.description or "",
            "participant_id": self.host.id,
            "annotations": self.annotations,
            "tools": self.tools,
        }


class Room:
    """A room: its participants, hosted toolkits and per-toolkit state."""

    def __init__(
        self, name: str, data_dir: Path, config: "ServerConfig", *, project_id: str | None = None, control: "ControlPlane | None" = None
    ) -> None:
        self.name = name
        self.data_dir = data_dir
        self.config = config
        #: the project the room belongs to (default: the server's own)
        self.project_id = project_id or config.credentials.project_id
        #: the server's control plane (None for a room made outside a server, in tests)
        self.control = control
        self.participants: dict[str, Participant] = {}
        self.hosted_toolkits: dict[str, HostedToolkit] = {}  # by registration id
        self.state: dict[str, Any] = {}  # per-toolkit state, keyed by toolkit name
        data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def storage_dir(self) -> Path:
        path = self.data_dir / ROOM_STORAGE_FOLDER
        path.mkdir(parents=True, exist_ok=True)
        return path

    def toolkit_state(self, name: str, factory: Callable[["Room"], Any]) -> Any:
        """Per-room state of a toolkit, made on first use."""
        if name not in self.state:
            self.state[name] = factory(self)
        return self.state[name]

    def broadcast(
        self,
        type: str,
        header: dict[str, Any] | msgspec.Struct,
        payload: bytes = b"",
        *,
        exclude: Participant | None = None,
        messaging_only: bool = False,
    ) -> None:
        """Send an event to every participant (or every messaging-enabled one)."""
        for participant in list(self.participants.values()):
            if participant is exclude or (messaging_only and not participant.messaging_enabled):
                continue
            participant.send_event(type, header, payload)

    def find_toolkit(self, name: str, participant_id: str | None = None) -> HostedToolkit | None:
        for toolkit in self.hosted_toolkits.values():
            if toolkit.name == name and (participant_id is None or toolkit.host.id == participant_id):
                return toolkit
        return None


__all__ = ["HostedToolkit", "Room"]
