"""The control plane: what REST makes, in `control.db` (see `plane`). One store per component,
each with its own tables and migrations: `plane.keys`, `plane.accounts`, `plane.access`,
`plane.agents`, `plane.sessions`."""

from . import access, accounts, agents, keys, sessions
from . import billing, domains, feeds, files, llm, mailboxes, oauth, registries, secrets, services, tasks, webhooks
from . import external_oauth
from .common import Conflict, ControlError, Forbidden, NotFound, check_room_name, is_valid_room_name, now_iso, require_project
from .plane import COMPONENTS, FILE_NAME, MIGRATIONS, ControlPlane

#: The order in which the components' migrations run (a component may refer to the tables of
#: the ones before it). Append new components at the end.
for _name, _module in (("keys", keys), ("accounts", accounts), ("access", access), ("agents", agents), ("sessions", sessions), ("services", services), ("secrets", secrets), ("domains", domains), ("feeds", feeds), ("llm", llm), ("registries", registries), ("oauth", oauth), ("mailboxes", mailboxes), ("tasks", tasks), ("webhooks", webhooks), ("billing", billing), ("files", files), ("external_oauth", external_oauth)):
    COMPONENTS[_name] = _module.MIGRATIONS

__all__ = [
    "COMPONENTS",
    "Conflict",
    "ControlError",
    "ControlPlane",
    "FILE_NAME",
    "Forbidden",
    "MIGRATIONS",
    "NotFound",
    "check_room_name",
    "is_valid_room_name",
    "now_iso",
    "require_project",
]
