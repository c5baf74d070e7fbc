"""What a REST handler works with: the server's context, who is calling, and the refusals a
handler raises besides the control plane's (`ControlError`: 400, 404, 409, 403)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Awaitable, Callable, Literal

from meshagent_core.tokens import ParticipantToken

from ..config import ServerConfig
from ..control import ControlError, ControlPlane
from ..rooms.room import Room


class RoomDisabled(ControlError):
    status = 423
    code = "room_disabled"


class NotImplementedHere(ControlError):
    status = 501
    code = "not_implemented"


def server_version() -> str:
    try:
        return version("meshagent-trio")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def _no_rooms(project_id: str, name: str) -> Room:
    raise RuntimeError("this REST context serves no rooms")


@dataclass
class RestContext:
    """What a REST handler works with. `room(project_id, name)` is the server's room (made on
    first use, as a join makes it, whether or not anyone is in it): for work that lands in a room
    (a feed message as a file, a scheduled or mailed queue message), with the room's own
    toolkits' functions so that connected participants see it as they see their own work."""

    config: ServerConfig
    control: ControlPlane
    room: Callable[[str, str], Room] = _no_rooms

    @property
    def api_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"


CallerKind = Literal["owner", "service_account", "participant", "oauth_client", "anonymous"]


@dataclass(frozen=True)
class Caller:
    """Who makes a REST call, as authentication found them.

    - `owner`: the server's own API key; acts in every project (`project_id` None).
    - `service_account`: an API key made through REST; acts in its project.
    - `participant`: a participant JWT as the bearer; acts in its project as `name`.
    - `oauth_client`: an access token from the token endpoint; acts in the client's project,
      within the token's scopes (protocol/rest.md §15).
    - `anonymous`: a public route called without credentials.
    """

    kind: CallerKind
    project_id: str | None = None
    #: the user or service account id
    subject_id: str | None = None
    name: str | None = None
    email: str | None = None
    token: ParticipantToken | None = None
    #: the API key a `service_account` caller used (it signs the tokens that caller mints)
    key_id: str | None = None


OWNER = Caller("owner")
ANONYMOUS = Caller("anonymous")

Handler = Callable[[RestContext, dict[str, Any], Caller], Awaitable[Any]]

__all__ = ["ANONYMOUS", "OWNER", "Caller", "CallerKind", "Handler", "NotImplementedHere", "RestContext", "RoomDisabled", "server_version"]
