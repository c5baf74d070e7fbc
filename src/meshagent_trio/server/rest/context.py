"""What a REST handler works with: the server's context, who is calling, and the refusals a
handler raises besides the control plane's (`ControlError`: 400, 404, 409, 403)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Awaitable, Callable, Literal

from meshagent_core.tokens import ParticipantToken

from ..config import ServerConfig
from ..control import ControlError, ControlPlane


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


@dataclass
class RestContext:
    """What a REST handler works with."""

    config: ServerConfig
    control: ControlPlane

    @property
    def api_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"


CallerKind = Literal["owner", "service_account", "participant", "anonymous"]


@dataclass(frozen=True)
class Caller:
    """Who makes a REST call, as authentication found them.

    - `owner`: the server's own API key; acts in every project (`project_id` None).
    - `service_account`: an API key made through REST; acts in its project.
    - `participant`: a participant JWT as the bearer; acts in its project as `name`.
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
